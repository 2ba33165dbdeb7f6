//! Reading a function's response: partial batch failures and tumbling-window state.
//!
//! AWS's rules (recorded in the `*_report_batch_item_*_scenarios` snapshots): an empty body,
//! `null`, `""`, `[]`, `{}`, or `batchItemFailures` that is null or empty mean success. A
//! failure entry must carry an `itemIdentifier` that names a record of the batch; anything else
//! (empty or null identifier, wrong key, a number where a string is expected, an identifier of
//! a record not in the batch, a body that is not JSON) fails the whole batch, so a typo in a
//! function can never acknowledge records it did not process.

use esmd_api::Record;
use serde_json::Value;

/// How a function that ran without error judged its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchVerdict {
    Success,
    /// Indices (into the batch, ascending, deduplicated) of the records the function named.
    Partial(Vec<usize>),
    /// The response could not be read as a partial batch response: the whole batch failed.
    Malformed(String),
}

/// Reads `batchItemFailures` against the batch it answers.
pub fn batch_verdict(body: &[u8], records: &[Record]) -> BatchVerdict {
    let value = match parse_body(body) {
        Ok(v) => v,
        Err(e) => return BatchVerdict::Malformed(e),
    };
    let failures = match &value {
        Value::Null => return BatchVerdict::Success,
        Value::String(s) if s.is_empty() => return BatchVerdict::Success,
        Value::Array(a) if a.is_empty() => return BatchVerdict::Success,
        Value::Object(o) => match o.get("batchItemFailures") {
            None | Some(Value::Null) => return BatchVerdict::Success,
            Some(Value::Array(items)) if items.is_empty() => return BatchVerdict::Success,
            Some(Value::Array(items)) => items,
            Some(other) => {
                return BatchVerdict::Malformed(format!("batchItemFailures is not a list: {other}"))
            }
        },
        other => return BatchVerdict::Malformed(format!("unexpected response: {}", truncate(other))),
    };
    let mut indices = Vec::with_capacity(failures.len());
    for item in failures {
        let Some(id) = item.get("itemIdentifier") else {
            return BatchVerdict::Malformed(format!("batch item failure without itemIdentifier: {item}"));
        };
        match records.iter().position(|r| r.item_id.matches(id)) {
            Some(i) => indices.push(i),
            None => {
                return BatchVerdict::Malformed(format!("itemIdentifier {id} names no record of the batch"))
            }
        }
    }
    indices.sort_unstable();
    indices.dedup();
    BatchVerdict::Partial(indices)
}

/// The `state` a tumbling-window function returned; `None` when it returned none.
pub fn window_state(body: &[u8]) -> Option<Value> {
    match parse_body(body).ok()? {
        Value::Object(mut o) => o.remove("state").filter(|s| !s.is_null()),
        _ => None,
    }
}

fn parse_body(body: &[u8]) -> Result<Value, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| format!("response is not JSON: {e}"))
}

fn truncate(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use esmd_api::{ItemId, Position};

    fn rec(seq: &str) -> Record {
        Record {
            position: Position::new(seq),
            partition_key: Bytes::new(),
            arrival_ms: 0,
            data: Bytes::new(),
            encoded: Bytes::new(),
            item_id: ItemId::Str(seq.into()),
            receive_count: 0,
            invalid: None,
        }
    }

    fn verdict(body: &str) -> BatchVerdict {
        batch_verdict(body.as_bytes(), &[rec("1"), rec("2"), rec("3")])
    }

    #[test]
    fn aws_success_scenarios() {
        // empty_string_success, empty_list_success, null_success, empty_dict_success,
        // empty_batch_item_failure_success, null_batch_item_failure_success
        for body in ["\"\"", "[]", "null", "{}", r#"{"batchItemFailures":[]}"#, r#"{"batchItemFailures":null}"#, ""] {
            assert_eq!(verdict(body), BatchVerdict::Success, "{body}");
        }
    }

    #[test]
    fn aws_failure_scenarios_fail_the_whole_batch() {
        // item_identifier_not_present_failure, empty_string_item_identifier_failure,
        // null_item_identifier_failure, invalid_key_foo_failure, invalid_key_foo_null_value_failure
        for body in [
            r#"{"batchItemFailures":[{"itemIdentifier":123}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"foo":123}]}"#,
            r#"{"batchItemFailures":[{"foo":null}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"99"}]}"#,
            "not json",
            "42",
        ] {
            assert!(matches!(verdict(body), BatchVerdict::Malformed(_)), "{body}");
        }
    }

    #[test]
    fn partial_names_records() {
        assert_eq!(
            verdict(r#"{"batchItemFailures":[{"itemIdentifier":"3"},{"itemIdentifier":"2"},{"itemIdentifier":"3"}]}"#),
            BatchVerdict::Partial(vec![1, 2])
        );
    }

    #[test]
    fn state_is_read() {
        assert_eq!(window_state(br#"{"state":{"n":1}}"#), Some(serde_json::json!({"n":1})));
        assert_eq!(window_state(br#"{"batchItemFailures":[]}"#), None);
    }
}
