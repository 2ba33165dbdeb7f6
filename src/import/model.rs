//! One imported mapping as it will be written, and what converting it said. Keys are kept in
//! the order they are added, with the input path each came from, so that a problem esmd's own
//! validation finds in the output can be reported at the AWS key it came from.

use super::error::Severity;

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Mapping {
    pub name: String,
    /// Where in the input it came from (`Resources.OrdersMapping`), for the comment above it.
    pub origin: String,
    /// `[[mappings]]` keys after `name`: `uuid`, `enabled`, the parameters.
    pub keys: Vec<(String, toml::Value)>,
    /// `[mappings.source]`, `type` first.
    pub source: Vec<(String, toml::Value)>,
    /// `[mappings.function]`, `type` first.
    pub function: Vec<(String, toml::Value)>,
    /// `[[mappings.filter_criteria.filters]]` patterns (JSON text).
    pub patterns: Vec<String>,
    /// esmd key path → input key path.
    pub key_paths: Vec<(String, String)>,
    /// Environment variables the output reads without a default (credentials, brokers), with a
    /// value of the right shape for checking the output.
    pub variables: Vec<(String, String)>,
}

/// A warning or note before it is attributed to an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Said {
    pub severity: Severity,
    pub path: String,
    pub message: String,
}

/// A mapping being built, and everything its conversion found.
#[derive(Debug, Default)]
pub(crate) struct Build {
    pub mapping: Mapping,
    pub said: Vec<Said>,
    /// (input path, message): the mapping cannot be written.
    pub errors: Vec<(String, String)>,
}

impl Build {
    pub fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.said.push(Said { severity: Severity::Warning, path: path.to_string(), message: message.into() });
    }

    pub fn note(&mut self, path: &str, message: impl Into<String>) {
        self.said.push(Said { severity: Severity::Note, path: path.to_string(), message: message.into() });
    }

    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push((path.to_string(), message.into()));
    }

    pub fn key(&mut self, key: &str, value: toml::Value, from: &str) {
        self.mapping.keys.push((key.to_string(), value));
        self.mapping.key_paths.push((key.to_string(), from.to_string()));
    }

    pub fn source(&mut self, key: &str, value: toml::Value, from: &str) {
        self.mapping.source.push((key.to_string(), value));
        self.mapping.key_paths.push((format!("source.{key}"), from.to_string()));
    }

    pub fn function(&mut self, key: &str, value: toml::Value, from: &str) {
        self.mapping.function.push((key.to_string(), value));
        self.mapping.key_paths.push((format!("function.{key}"), from.to_string()));
    }

    /// `${NAME}` for a value the input does not hold; `sample` stands in for it when the
    /// output is checked.
    pub fn variable(&mut self, name: &str, sample: &str) -> String {
        if !self.mapping.variables.iter().any(|(n, _)| n == name) {
            self.mapping.variables.push((name.to_string(), sample.to_string()));
        }
        format!("${{{name}}}")
    }

    /// The input path an esmd key came from: the longest recorded prefix of `key`.
    pub fn input_path_of(mapping: &Mapping, key: &str) -> Option<String> {
        mapping
            .key_paths
            .iter()
            .filter(|(k, _)| key == k || key.starts_with(&format!("{k}.")) || key.starts_with(&format!("{k}[")))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, path)| path.clone())
    }
}

/// Text from the input as an esmd string: `${` would be read as a variable reference.
pub(crate) fn text(s: &str) -> toml::Value {
    toml::Value::String(s.replace("${", "$${"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_paths_by_longest_prefix() {
        let mut b = Build::default();
        b.key("filter_criteria", toml::Value::Boolean(true), "FilterCriteria");
        b.source("queue_url", text("q"), "EventSourceArn");
        assert_eq!(Build::input_path_of(&b.mapping, "filter_criteria.filters[0].pattern").as_deref(), Some("FilterCriteria"));
        assert_eq!(Build::input_path_of(&b.mapping, "source.queue_url").as_deref(), Some("EventSourceArn"));
        assert_eq!(Build::input_path_of(&b.mapping, "batch_size"), None);
        assert_eq!(b.variable("X_PASSWORD", "p"), "${X_PASSWORD}");
        b.variable("X_PASSWORD", "p");
        assert_eq!(b.mapping.variables.len(), 1);
        assert_eq!(text("a${b}"), toml::Value::String("a$${b}".into()));
    }
}
