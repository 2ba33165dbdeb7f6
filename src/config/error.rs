//! What can be wrong with a config, reported all at once.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The mapping's name; `mappings[3]` when the mapping has no usable name; `None` outside
    /// `[[mappings]]`.
    pub mapping: Option<String>,
    /// Key path inside the mapping (`source.shards`, `filter_criteria.filters[0].pattern`), or
    /// from the top of the file outside mappings (`admin.listen`). Empty for the whole file.
    pub key: String,
    /// 1-based line in the file, where the format tells (TOML always; JSON and YAML for syntax
    /// errors).
    pub line: Option<usize>,
    /// The complete message: names the key and, for numbers, the allowed range.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        match &self.mapping {
            Some(m) if m.starts_with("mappings[") => write!(f, "{m}: ")?,
            Some(m) => write!(f, "mapping {m:?}: ")?,
            None => {}
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: unknown config format: name the file *.toml, *.yaml, *.yml or *.json", path.display())]
    UnknownFormat { path: PathBuf },
    /// Every problem found, in file order; `Display` prints one per line.
    #[error("{}", render(problems))]
    Invalid { problems: Vec<Problem> },
    /// `stream_settings()` asked of a queue mapping or `queue_settings()` of a stream mapping.
    #[error("mapping {mapping:?}: source type {source_type:?} is a {actual}, not a {wanted}")]
    WrongFamily { mapping: String, source_type: &'static str, actual: &'static str, wanted: &'static str },
}

impl ConfigError {
    /// The problems of an invalid config (empty for the other kinds of error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems } => problems,
            _ => &[],
        }
    }
}

fn render(problems: &[Problem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// A problem before it is attributed: `path` is the absolute key path (`mappings[2].batch_size`)
/// from which the mapping, the relative key and the line are worked out at the end. The same
/// type the connectors report their sections' problems with (paths relative to the mapping).
pub(crate) use esmd_api::config::ConfigIssue as Issue;

/// `issue` with `base` put in front of its path (a mapping's issues are found with paths
/// relative to the mapping).
pub(crate) fn rebase(mut issue: Issue, base: &str) -> Issue {
    issue.path = esmd_api::config::join(base, &issue.path);
    issue
}

/// Splits `mappings[3].source.shards` into `(Some(3), "source.shards")`.
pub(crate) fn split_mapping(path: &str) -> (Option<usize>, &str) {
    if let Some(rest) = path.strip_prefix("mappings[") {
        if let Some((index, rest)) = rest.split_once(']') {
            if let Ok(index) = index.parse() {
                return (Some(index), rest.strip_prefix('.').unwrap_or(rest));
            }
        }
    }
    (None, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_one_problem_per_line() {
        let e = ConfigError::Invalid {
            problems: vec![
                Problem {
                    mapping: Some("orders".into()),
                    key: "batch_size".into(),
                    line: Some(7),
                    message: "batch_size = 20000 is out of range (1–10000)".into(),
                },
                Problem { mapping: None, key: "admin.listen".into(), line: None, message: "admin.listen: bad".into() },
                Problem { mapping: Some("mappings[2]".into()), key: "name".into(), line: None, message: "missing field `name`".into() },
            ],
        };
        assert_eq!(
            e.to_string(),
            "line 7: mapping \"orders\": batch_size = 20000 is out of range (1–10000)\nadmin.listen: bad\nmappings[2]: missing field `name`"
        );
        assert_eq!(e.problems().len(), 3);
    }

    #[test]
    fn splits_mapping_paths() {
        assert_eq!(split_mapping("mappings[3].source.shards"), (Some(3), "source.shards"));
        assert_eq!(split_mapping("mappings[0]"), (Some(0), ""));
        assert_eq!(split_mapping("admin.listen"), (None, "admin.listen"));
        assert_eq!(split_mapping("mappings"), (None, "mappings"));
    }
}
