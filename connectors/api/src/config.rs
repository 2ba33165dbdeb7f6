//! What a connector needs to read and check its config section: one issue type with the key
//! path, the checks every section uses, and typed deserialization that keeps the path of an
//! error. A leaf module: it depends on nothing else of esmd.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A problem in a config section. `path` is relative to the mapping (`source.queue_url`,
/// `destination_config.on_failure.connection.uri`); `message` is the whole sentence and starts
/// with that key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    pub path: String,
    pub message: String,
}

impl ConfigIssue {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigIssue { path: path.into(), message: message.into() }
    }
}

/// A deserialization error with the key path where it happened.
pub type TableError = serde_path_to_error::Error<serde_json::Error>;

/// Reads a config table into `T`, keeping the key path of the first error (`seed.poison`,
/// `tls.ca_file`), which the service joins to the table's own path.
pub fn from_table<T: DeserializeOwned>(table: Value) -> Result<T, TableError> {
    serde_path_to_error::deserialize(table)
}

/// Where in the file `e` happened: `at` (the table's own path) joined with the error's path,
/// and with the offending key itself for an unknown field (serde reports those at the table).
pub fn error_path(at: &str, e: &TableError) -> String {
    let mut path = at.to_string();
    for segment in e.path().iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => path = join(&path, &format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } => path = join(&path, key),
            serde_path_to_error::Segment::Enum { variant } => path = join(&path, variant),
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    if let Some(unknown) = unknown_field(&e.inner().to_string()) {
        if !path.ends_with(unknown) {
            path = join(&path, unknown);
        }
    }
    path
}

/// A section's deserialization error as an issue: `at` is the section's path relative to the
/// mapping (`destination_config.on_failure.connection`).
pub fn table_issue(at: &str, e: TableError) -> ConfigIssue {
    let path = error_path(at, &e);
    let message = format!("{path}: {}", e.into_inner());
    ConfigIssue { path, message }
}

/// `unknown field `foo`, expected ...` → `foo` (serde's wording, stable across versions).
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(&rest[..rest.find('`')?])
}

/// Appends a key to a path: `join("a", "b") == "a.b"`, `join("", "b") == "b"`,
/// `join("a", "[0]") == "a[0]"`.
pub fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else if key.is_empty() {
        base.to_string()
    } else if key.starts_with('[') {
        format!("{base}{key}")
    } else {
        format!("{base}.{key}")
    }
}

/// `key = value is out of range (lo–hi)` unless `lo <= value <= hi`.
pub fn range(issues: &mut Vec<ConfigIssue>, key: &str, value: i128, lo: i128, hi: i128) {
    if !(lo..=hi).contains(&value) {
        issues.push(ConfigIssue::new(key, format!("{key} = {value} is out of range ({lo}–{hi})")));
    }
}

/// A name of 1..=max characters, each accepted by `allowed` (`described` for the message).
pub fn check_name(issues: &mut Vec<ConfigIssue>, key: &str, value: &str, max: usize, described: &str, allowed: impl Fn(char) -> bool) {
    if value.is_empty() || value.chars().count() > max || !value.chars().all(allowed) {
        issues.push(ConfigIssue::new(key, format!("{key} = {value:?} is not a valid name (1–{max} characters of [{described}])")));
    }
}

/// TLS client authentication (Kafka's and RabbitMQ's `tls` tables): a certificate file and a
/// key file go together. `key` is the table (`source.tls`).
pub fn check_client_certificate(issues: &mut Vec<ConfigIssue>, key: &str, cert_file: Option<&std::path::Path>, key_file: Option<&std::path::Path>) {
    if cert_file.is_some() != key_file.is_some() {
        issues.push(ConfigIssue::new(key, format!("{key}: cert_file and key_file go together (mutual TLS needs both)")));
    }
}

/// `key` starts with `http://` or `https://` (endpoint overrides of emulators).
pub fn check_http_url(issues: &mut Vec<ConfigIssue>, key: &str, url: &str) {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        issues.push(ConfigIssue::new(key, format!("{key} = {url:?} is not an http(s) URL")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[test]
    fn checks_name_the_key_and_the_range() {
        let mut issues = Vec::new();
        range(&mut issues, "source.shards", 0, 1, 1024);
        range(&mut issues, "source.shards", 4, 1, 1024);
        check_name(&mut issues, "source.queue", "a b", 255, "A-Za-z", |c| c.is_ascii_alphabetic());
        check_http_url(&mut issues, "source.endpoint_url", "localhost:1");
        let messages: Vec<_> = issues.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "source.shards = 0 is out of range (1–1024)",
                "source.queue = \"a b\" is not a valid name (1–255 characters of [A-Za-z])",
                "source.endpoint_url = \"localhost:1\" is not an http(s) URL",
            ]
        );
    }

    #[test]
    fn table_errors_keep_their_path() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Inner {
            n: u8,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            inner: Inner,
        }
        let e = from_table::<Outer>(json!({"inner": {"n": 300}})).unwrap_err();
        assert_eq!(e.path().to_string(), "inner.n");
        let unknown = from_table::<Outer>(json!({"inner": {"n": 1, "m": 2}})).unwrap_err();
        let issue = table_issue("connection", unknown);
        assert_eq!(issue.path, "connection.inner.m");
        assert!(issue.message.starts_with("connection.inner.m: unknown field `m`"), "{}", issue.message);
        assert_eq!(join("a", "[0]"), "a[0]");
        assert_eq!(join("", "b"), "b");
    }
}
