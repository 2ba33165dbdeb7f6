//! From text to a JSON tree, whatever the format, keeping where each key sits in the file.
//!
//! Every format is read into a `serde_json::Value` first: interpolation, splitting mappings
//! apart and typed deserialization then work the same way for all three. TOML is walked from
//! its spanned parse tree so each key path keeps its line; serde errors later only carry a key
//! path, and the line is looked up from that path.

use super::error::Issue;
use super::Format;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A parsed config file.
pub(crate) struct Document {
    pub root: Value,
    /// Key path → 1-based line of the key (TOML only).
    lines: HashMap<String, usize>,
}

impl Document {
    /// The line of `path`, or of its nearest ancestor that has one (a missing key is reported
    /// at the table that lacks it).
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.lines.get(path) {
                return Some(*line);
            }
            path = parent(path)?;
        }
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `` → None.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

pub(crate) use esmd_api::config::join;

/// Parses `text`. A syntax error is fatal (nothing after it can be trusted); problems with
/// single values (a TOML number too large for JSON) are returned beside the document.
pub(crate) fn parse(text: &str, format: Format) -> Result<(Document, Vec<Issue>), (Option<usize>, String)> {
    let mut issues = Vec::new();
    let (root, lines) = match format {
        Format::Toml => {
            let table = DeTable::parse(text).map_err(|e| {
                let line = e.span().map(|s| LineIndex::new(text).line(s.start));
                (line, format!("TOML syntax: {}", e.message().trim_end()))
            })?;
            let index = LineIndex::new(text);
            let mut lines = HashMap::new();
            // The root gets no line: a missing top-level key is not "on line 1".
            let root = toml_table(table.into_inner(), "", &index, &mut lines, &mut issues);
            (root, lines)
        }
        Format::Json => {
            let root = serde_json::from_str::<Value>(text).map_err(|e| (Some(e.line()), format!("JSON syntax: {e}")))?;
            (root, HashMap::new())
        }
        Format::Yaml => {
            let root = serde_norway::from_str::<Value>(text)
                .map_err(|e| (e.location().map(|l| l.line()), format!("YAML syntax: {e}")))?;
            // An empty YAML file is null; treat it like an empty TOML file.
            let root = if root.is_null() { Value::Object(Map::new()) } else { root };
            (root, HashMap::new())
        }
    };
    if !root.is_object() {
        return Err((None, "the top level of the file must be a table/object".into()));
    }
    Ok((Document { root, lines }, issues))
}

/// Byte offset → line.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }
}

fn toml_table(
    table: DeTable<'_>,
    path: &str,
    index: &LineIndex,
    lines: &mut HashMap<String, usize>,
    issues: &mut Vec<Issue>,
) -> Value {
    let mut map = Map::new();
    for (key, value) in table {
        let child = join(path, key.get_ref());
        lines.insert(child.clone(), index.line(key.span().start));
        let value = toml_value(value, &child, index, lines, issues);
        map.insert(key.into_inner().into_owned(), value);
    }
    Value::Object(map)
}

fn toml_value(
    value: Spanned<DeValue<'_>>,
    path: &str,
    index: &LineIndex,
    lines: &mut HashMap<String, usize>,
    issues: &mut Vec<Issue>,
) -> Value {
    lines.entry(path.to_string()).or_insert_with(|| index.line(value.span().start));
    match value.into_inner() {
        DeValue::String(s) => Value::String(s.into_owned()),
        DeValue::Boolean(b) => Value::Bool(b),
        DeValue::Integer(i) => {
            if let Ok(n) = i64::from_str_radix(i.as_str(), i.radix()) {
                Value::Number(n.into())
            } else if let Ok(n) = u64::from_str_radix(i.as_str(), i.radix()) {
                Value::Number(n.into())
            } else {
                issues.push(Issue::new(path, format!("{path}: integer {i} is too large")));
                Value::Null
            }
        }
        DeValue::Float(f) => match f.as_str().parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => {
                issues.push(Issue::new(path, format!("{path}: {f} is not a finite number")));
                Value::Null
            }
        },
        // Kept as text: the one datetime key (starting_position_timestamp) reads RFC 3339.
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| toml_value(item, &format!("{path}[{i}]"), index, lines, issues))
                .collect(),
        ),
        DeValue::Table(table) => toml_table(table, path, index, lines, issues),
    }
}

/// Deserializes `value`, found at absolute key path `at`. On error the issue's path is the
/// exact key that failed: serde_path_to_error tracks the way down, and an unknown key (which
/// serde reports on its table) gets its own name appended.
pub(crate) fn deserialize_at<T: DeserializeOwned>(value: Value, at: &str) -> Result<T, Issue> {
    esmd_api::config::from_table::<T>(value).map_err(|e| table_error(at, e))
}

/// A connector's (or our own) deserialization error inside the table at `at`.
pub(crate) fn table_error(at: &str, e: esmd_api::config::TableError) -> Issue {
    let path = esmd_api::config::error_path(at, &e);
    keyed(&path, e.into_inner())
}

/// Splits a `type`-selected table (`[mappings.source]`, `[mappings.function]`) into its type
/// and the remaining keys. Done by hand rather than with serde's internally tagged enums: those
/// buffer the table and lose the key path of errors inside it.
pub(crate) fn split_tagged(value: Value, at: &str, default: Option<&str>) -> Result<(String, Value), Issue> {
    let Value::Object(mut map) = value else {
        return Err(keyed(at, "expected a table with a `type` key"));
    };
    let type_name = match map.remove("type") {
        Some(Value::String(t)) => t,
        Some(other) => return Err(keyed(&join(at, "type"), format!("expected a string, found {other}"))),
        None => match default {
            Some(d) => d.to_string(),
            None => return Err(keyed(at, "missing key `type`")),
        },
    };
    Ok((type_name, Value::Object(map)))
}

/// An issue whose message starts with the key, relative to its mapping.
pub(crate) fn keyed(path: &str, message: impl std::fmt::Display) -> Issue {
    let (_, relative) = super::error::split_mapping(path);
    if relative.is_empty() {
        Issue::new(path, message.to_string())
    } else {
        Issue::new(path, format!("{relative}: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn toml_keeps_lines_of_keys() {
        let text = "[admin]\nlisten = \"x\"\n\n[[mappings]]\nname = \"a\"\n[mappings.source]\ntype = \"memory\"\n\n[[mappings]]\nname = \"b\"\nbatch_size = 5\n";
        let (doc, issues) = parse(text, Format::Toml).unwrap();
        assert!(issues.is_empty());
        assert_eq!(doc.line_of("admin.listen"), Some(2));
        assert_eq!(doc.line_of("mappings[0].name"), Some(5));
        assert_eq!(doc.line_of("mappings[0].source.type"), Some(7));
        assert_eq!(doc.line_of("mappings[1].batch_size"), Some(11));
        // Unknown paths fall back to the nearest known ancestor.
        assert_eq!(doc.line_of("mappings[0].source.nope"), doc.line_of("mappings[0].source"));
        assert_eq!(doc.root["mappings"][1]["batch_size"], 5);
    }

    #[test]
    fn toml_values_become_json() {
        let text = "a = 0x10\nb = 1.5\nc = 1979-05-27T07:32:00Z\nd = [1, \"x\"]\ne = { f = true }\nbig = 18446744073709551615\n";
        let (doc, issues) = parse(text, Format::Toml).unwrap();
        assert!(issues.is_empty());
        assert_eq!(doc.root, serde_json::json!({"a": 16, "b": 1.5, "c": "1979-05-27T07:32:00Z", "d": [1, "x"], "e": {"f": true}, "big": 18446744073709551615u64}));
        let (_, issues) = parse("x = nan\n", Format::Toml).unwrap();
        assert_eq!(issues, vec![Issue::new("x", "x: nan is not a finite number")]);
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let (line, message) = parse("a = 1\nb = \n", Format::Toml).err().unwrap();
        assert_eq!(line, Some(2), "{message}");
        assert!(message.starts_with("TOML syntax"));
        let (line, _) = parse("{\n\"a\": 1,\n}", Format::Json).err().unwrap();
        assert_eq!(line, Some(3));
        let (line, _) = parse("a: 1\nb: [\n", Format::Yaml).err().unwrap();
        assert!(line.is_some());
        assert!(parse("[1]", Format::Json).is_err(), "top level must be a table");
        assert!(parse("", Format::Yaml).unwrap().0.root.is_object());
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Vec<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn deserialize_errors_name_the_key_path() {
        let e = deserialize_at::<Outer>(serde_json::json!({"inner": [{"n": 1}, {"n": "x"}]}), "mappings[4].source").unwrap_err();
        assert_eq!(e.path, "mappings[4].source.inner[1].n");
        assert!(e.message.starts_with("source.inner[1].n: invalid type"), "{}", e.message);
        let e = deserialize_at::<Outer>(serde_json::json!({"inner": [{"n": 1, "m": 2}]}), "admin").unwrap_err();
        assert_eq!(e.path, "admin.inner[0].m");
        assert!(e.message.starts_with("admin.inner[0].m: unknown field `m`"), "{}", e.message);
    }

    #[test]
    fn joins_and_parents() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a", "[1]"), "a[1]");
        assert_eq!(join("a[1]", "b"), "a[1].b");
        assert_eq!(parent("a[1].b"), Some("a[1]"));
        assert_eq!(parent("a[1]"), Some("a"));
        assert_eq!(parent("a"), Some(""));
        assert_eq!(parent(""), None);
    }
}
