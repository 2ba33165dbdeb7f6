//! One compiled event pattern.

use crate::complexity;
use crate::error::{invalid, FilterError};
use crate::flatten::{flatten, Rule};
use crate::json::Json;
use crate::ops::Wildcard;
use crate::tree::Tree;
use serde_json::Value;
use std::collections::HashMap;

/// An EventBridge event pattern, validated and compiled once; [`Pattern::matches`] then reads
/// the event in place.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The `$or` alternatives; a pattern without `$or` has one.
    alternatives: Vec<Tree>,
}

impl Pattern {
    /// Compiles a pattern written as JSON, refusing what AWS refuses.
    pub fn compile(json: &str) -> Result<Pattern, FilterError> {
        let parsed = Json::parse(json).map_err(|e| invalid(format!("Filter is not valid JSON: {e}")))?;
        let rules = flatten(&parsed)?;
        check_complexity(&rules)?;
        Ok(Pattern { alternatives: rules.iter().map(|rule| Tree::build(rule)).collect() })
    }

    /// Whether the event matches the pattern.
    #[must_use]
    pub fn matches(&self, event: &Value) -> bool {
        self.alternatives.iter().any(|alternative| alternative.matches(event))
    }
}

/// AWS scores the wildcards of each field together; a field's value list is shared by every
/// alternative that has it, so duplicates are dropped inside the check.
fn check_complexity(rules: &[Rule]) -> Result<(), FilterError> {
    let mut by_path: HashMap<&str, Vec<&Wildcard>> = HashMap::new();
    for (path, leaf) in rules.iter().flatten() {
        by_path.entry(path).or_default().extend(leaf.wildcards());
    }
    by_path.into_values().try_for_each(complexity::check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pattern(text: &str) -> Pattern {
        Pattern::compile(text).unwrap()
    }

    #[test]
    fn or_alternatives() {
        let p = pattern(r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPU"]}, {"namespace": ["AWS/EC2"]}]}"#);
        assert!(p.matches(&json!({"source": "aws.cloudwatch", "metricName": "CPU"})));
        assert!(p.matches(&json!({"source": "aws.cloudwatch", "namespace": "AWS/EC2"})));
        assert!(!p.matches(&json!({"source": "aws.cloudwatch", "metricName": "Disk"})));
        assert!(!p.matches(&json!({"source": "other", "metricName": "CPU"})));
    }

    #[test]
    fn nested_or_inside_a_field() {
        let p = pattern(r#"{"detail": {"$or": [{"c": [{"numeric": [">", 0]}]}, {"d": [{"numeric": ["<", 10]}]}]}}"#);
        assert!(p.matches(&json!({"detail": {"c": 1}})));
        assert!(p.matches(&json!({"detail": {"d": 1}})));
        assert!(!p.matches(&json!({"detail": {"c": 0, "d": 11}})));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for (text, why) in [
            ("not json", "Filter is not valid JSON"),
            (r#"{"a": "x"}"#, "must be an object or an array"),
            (r#"{"f": [{"wildcard": "*:*:*:*:*:event-bus/*"}]}"#, "Rule is too complex"),
        ] {
            let err = Pattern::compile(text).unwrap_err().to_string();
            assert!(err.starts_with("Invalid pattern: ") && err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn complexity_is_scored_per_field() {
        let split = r#"{"a": [{"wildcard": "*/datasync/*.bif"}, {"wildcard": "*/datasync/*.tif"}],
                        "b": [{"wildcard": "*/datasync/*.tiff"}, {"wildcard": "*/datasync/*.svs"}]}"#;
        assert!(Pattern::compile(split).is_ok());
        let together = r#"{"a": [{"wildcard": "*/datasync/*.bif"}, {"wildcard": "*/datasync/*.tif"},
                                 {"wildcard": "*/datasync/*.tiff"}, {"wildcard": "*/datasync/*.svs"}]}"#;
        assert!(Pattern::compile(together).is_err());
    }
}
