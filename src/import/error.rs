//! What an import found: errors (nothing is written) and warnings and notes (the output is
//! written, and they say what it leaves out or what the user must add). Each names the input
//! and the key path in it, in the syntax `--set` takes.

use std::fmt;
use std::path::PathBuf;

/// Something that stops the import, at a key path of one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The input's name (its path, or `-` for stdin).
    pub input: String,
    /// `Resources.OrdersMapping.Properties.BatchSize`, `EventSourceMappings[2].Topics`; empty
    /// for the whole input.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.as_str() {
            "" => write!(f, "{}: {}", self.input, self.message),
            path => write!(f, "{}: {path}: {}", self.input, self.message),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Something in the input that the output leaves out or changes.
    Warning,
    /// Something the output needs that the input does not say (credentials, brokers).
    Note,
}

/// A warning or note; printed on stderr and written as a comment beside the mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub severity: Severity,
    pub input: String,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        match (self.input.as_str(), self.path.as_str()) {
            ("", _) => write!(f, "{level}: {}", self.message),
            (input, "") => write!(f, "{level}: {input}: {}", self.message),
            (input, path) => write!(f, "{level}: {input}: {path}: {}", self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("-o {}: esmd import writes TOML; name the output *.toml", path.display())]
    OutputFormat { path: PathBuf },
    /// A `--set` or `--parameter` argument that cannot be used.
    #[error("{option} {arg}: {why}")]
    Option { option: &'static str, arg: String, why: String },
    /// Every problem found, one per line; nothing was written.
    #[error("{}", render(problems))]
    Invalid { problems: Vec<Problem> },
}

impl ImportError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            ImportError::Invalid { problems } => problems,
            _ => &[],
        }
    }
}

fn render(problems: &[Problem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// Collects what one input's conversion finds; every problem is kept so that all of them are
/// reported at once.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub problems: Vec<Problem>,
    pub notices: Vec<Notice>,
}

impl Findings {
    pub fn error(&mut self, input: &str, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { input: input.into(), path: path.into(), message: message.into() });
    }

    pub fn notice(&mut self, severity: Severity, input: &str, path: impl Into<String>, message: impl Into<String>) {
        self.notices.push(Notice { severity, input: input.into(), path: path.into(), message: message.into() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_input_and_path() {
        let p = Problem { input: "t.yaml".into(), path: "Resources.M.Properties.BatchSize".into(), message: "bad".into() };
        assert_eq!(p.to_string(), "t.yaml: Resources.M.Properties.BatchSize: bad");
        let whole = Problem { input: "-".into(), path: String::new(), message: "not JSON".into() };
        assert_eq!(whole.to_string(), "-: not JSON");
        let n = Notice { severity: Severity::Warning, input: "a.json".into(), path: "KMSKeyArn".into(), message: "not imported".into() };
        assert_eq!(n.to_string(), "warning: a.json: KMSKeyArn: not imported");
        let e = ImportError::Invalid { problems: vec![p, whole] };
        assert_eq!(e.to_string().lines().count(), 2);
        assert_eq!(e.problems().len(), 2);
    }
}
