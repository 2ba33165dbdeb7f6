//! Trying a pattern on an event, and reading test-vector files: the one code path shared by
//! `esmd filter-test` and the vector test.

use crate::error::FilterError;
use crate::pattern::Pattern;
use serde_json::Value;

/// What [`test_event_pattern`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    /// The pattern matches the event.
    Match,
    /// The pattern is valid but does not match the event.
    NoMatch,
    /// The pattern (or the event) was refused; the message says why.
    Invalid(String),
}

/// Compiles `pattern` and matches it against `event`; both are JSON texts.
#[must_use]
pub fn test_event_pattern(pattern: &str, event: &str) -> TestOutcome {
    let pattern = match Pattern::compile(pattern) {
        Ok(pattern) => pattern,
        Err(e) => return TestOutcome::Invalid(e.to_string()),
    };
    let event: Value = match serde_json::from_str(event) {
        Ok(event) => event,
        Err(e) => return TestOutcome::Invalid(FilterError::InvalidEvent(format!("not valid JSON: {e}")).to_string()),
    };
    if pattern.matches(&event) {
        TestOutcome::Match
    } else {
        TestOutcome::NoMatch
    }
}

/// Reads a JSON5 vector file holding `Event` and `EventPattern`, and returns both as JSON
/// texts: `(event, pattern)`. Either may also be given as a string holding the JSON text, as
/// AWS's API takes them.
pub fn parse_vector_file(text: &str) -> Result<(String, String), FilterError> {
    let doc: Value = json5::from_str(text).map_err(|e| FilterError::InvalidVector(format!("not JSON5: {e}")))?;
    let Value::Object(doc) = doc else {
        return Err(FilterError::InvalidVector("expected an object with \"Event\" and \"EventPattern\"".into()));
    };
    let member = |key: &str| match doc.get(key) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(value) => Ok(value.to_string()),
        None => Err(FilterError::InvalidVector(format!("\"{key}\" is missing"))),
    };
    Ok((member("Event")?, member("EventPattern")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        assert_eq!(test_event_pattern(r#"{"a": [1]}"#, r#"{"a": 1}"#), TestOutcome::Match);
        assert_eq!(test_event_pattern(r#"{"a": [1]}"#, r#"{"a": 2}"#), TestOutcome::NoMatch);
        let TestOutcome::Invalid(why) = test_event_pattern(r#"{"a": 1}"#, "{}") else { panic!() };
        assert!(why.starts_with("Invalid pattern: "), "{why}");
        let TestOutcome::Invalid(why) = test_event_pattern(r#"{"a": [1]}"#, "{") else { panic!() };
        assert!(why.starts_with("Invalid event: "), "{why}");
    }

    #[test]
    fn reads_json5_vectors() {
        let text = r#"
            // a comment
            {
              "Event": {"id": "1", "n": 300.0,},
              EventPattern: {"id": ["1"],},
            }"#;
        let (event, pattern) = parse_vector_file(text).unwrap();
        assert_eq!(event, r#"{"id":"1","n":300.0}"#);
        assert_eq!(pattern, r#"{"id":["1"]}"#);
        assert_eq!(test_event_pattern(&pattern, &event), TestOutcome::Match);
    }

    #[test]
    fn string_members_are_taken_verbatim() {
        let (event, pattern) = parse_vector_file(r#"{"Event": "{\"a\": 1}", "EventPattern": "{\"a\": [1]}"}"#).unwrap();
        assert_eq!((event.as_str(), pattern.as_str()), (r#"{"a": 1}"#, r#"{"a": [1]}"#));
    }

    #[test]
    fn bad_files_are_reported() {
        for text in ["{", "[]", r#"{"Event": {}}"#, r#"{"EventPattern": {}}"#] {
            let err = parse_vector_file(text).unwrap_err();
            assert!(matches!(err, FilterError::InvalidVector(_)), "{text}: {err}");
        }
    }
}
