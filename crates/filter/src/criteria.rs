//! A mapping's `FilterCriteria`: up to ten patterns, ORed.

use crate::error::FilterError;
use crate::pattern::Pattern;
use serde_json::Value;

/// At most this many patterns per mapping (AWS: 5 by default, 10 with a raised quota).
pub const MAX_PATTERNS: usize = 10;
/// At most this many characters per pattern.
pub const MAX_PATTERN_CHARS: usize = 4096;

/// The compiled `FilterCriteria.Filters` of a mapping: a record is kept when any pattern
/// matches it.
#[derive(Debug, Clone)]
pub struct FilterCriteria {
    patterns: Vec<Pattern>,
}

impl FilterCriteria {
    /// Compiles every pattern; errors name the index of the offending one. An empty list
    /// filters nothing out, like a mapping without criteria.
    pub fn compile(patterns: &[String]) -> Result<FilterCriteria, FilterError> {
        if patterns.len() > MAX_PATTERNS {
            return Err(FilterError::TooManyPatterns { count: patterns.len(), max: MAX_PATTERNS });
        }
        let patterns = patterns
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let length = text.chars().count();
                if length > MAX_PATTERN_CHARS {
                    return Err(FilterError::PatternTooLong { index, length, max: MAX_PATTERN_CHARS });
                }
                Pattern::compile(text).map_err(|source| FilterError::Filter { index, source: Box::new(source) })
            })
            .collect::<Result<_, _>>()?;
        Ok(FilterCriteria { patterns })
    }

    /// Whether the record's filter target passes.
    #[must_use]
    pub fn matches(&self, event: &Value) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|pattern| pattern.matches(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn patterns_are_ored() {
        let c = FilterCriteria::compile(&texts(&[r#"{"a": [1]}"#, r#"{"b": [2]}"#])).unwrap();
        assert!(c.matches(&json!({"a": 1})) && c.matches(&json!({"b": 2})));
        assert!(!c.matches(&json!({"a": 2})));
    }

    #[test]
    fn can_be_shared_between_workers() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<FilterCriteria>();
        shareable::<crate::Pattern>();
    }

    #[test]
    fn no_patterns_keep_everything() {
        assert!(FilterCriteria::compile(&[]).unwrap().matches(&json!({})));
    }

    #[test]
    fn limits_name_the_offending_pattern() {
        let eleven = texts(&[r#"{"a": [1]}"#; 11]);
        assert_eq!(
            FilterCriteria::compile(&eleven).unwrap_err(),
            FilterError::TooManyPatterns { count: 11, max: 10 }
        );
        assert!(FilterCriteria::compile(&eleven[..10]).is_ok());

        let long = format!(r#"{{"a": ["{}"]}}"#, "x".repeat(MAX_PATTERN_CHARS));
        let err = FilterCriteria::compile(&[texts(&[r#"{"a": [1]}"#]), vec![long]].concat()).unwrap_err();
        assert!(matches!(err, FilterError::PatternTooLong { index: 1, max: 4096, .. }), "{err}");

        let exactly = format!(r#"{{"a": ["{}"]}}"#, "é".repeat(MAX_PATTERN_CHARS - 11));
        assert_eq!(exactly.chars().count(), MAX_PATTERN_CHARS);
        assert!(FilterCriteria::compile(&[exactly]).is_ok(), "characters are counted, not bytes");

        let err = FilterCriteria::compile(&texts(&[r#"{"a": [1]}"#, r#"{"a": [1]}"#, r#"{"a": 1}"#])).unwrap_err();
        assert!(matches!(err, FilterError::Filter { index: 2, .. }));
        assert!(err.to_string().contains("Filters[2]") && err.to_string().contains("Invalid pattern"));
    }
}
