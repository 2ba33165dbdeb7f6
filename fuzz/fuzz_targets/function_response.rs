//! A function's response as esmd reads it (src/invoke/response.rs, src/invoke/http.rs): the
//! partial batch response (`batchItemFailures`), tumbling-window `state`, the Lambda error
//! object an emulator answers a failed invocation with, and `Retry-After`.
//!
//! Input: the response body. The batch it answers is built from the body itself (half of
//! the identifiers it names, as SQS, Kinesis and Kafka records) plus a few fixed records, so
//! both "names a record" and "names no record" are reached.
#![no_main]

use bytes::Bytes;
use esmd::invoke::http::{looks_like_function_error, parse_retry_after};
use esmd::invoke::response::{batch_verdict, window_state, BatchVerdict};
use esmd_api::{ItemId, Position, Record};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::time::{Duration, SystemTime};

fn record(item_id: ItemId) -> Record {
    Record {
        position: Position::new("0"),
        partition_key: Bytes::new(),
        arrival_ms: 0,
        data: Bytes::new(),
        encoded: Bytes::new(),
        item_id,
        receive_count: 0,
        invalid: None,
    }
}

/// The identifiers a body names (`batchItemFailures[].itemIdentifier`), when it is an object.
fn named(body: &[u8]) -> Vec<Value> {
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) else { return Vec::new() };
    match o.get("batchItemFailures") {
        Some(Value::Array(items)) => items.iter().filter_map(|i| i.get("itemIdentifier").cloned()).collect(),
        _ => Vec::new(),
    }
}

fn batch(body: &[u8]) -> Vec<Record> {
    let mut records = vec![
        record(ItemId::Str("1".into())),
        record(ItemId::Str("".into())),
        record(ItemId::KafkaOffset { partition: "t-0".into(), offset: 0 }),
    ];
    for id in named(body).iter().step_by(2) {
        match id {
            Value::String(s) => records.push(record(ItemId::Str(s.as_str().into()))),
            Value::Object(o) => {
                if let (Some(p), Some(off)) = (o.get("partition").and_then(Value::as_str), o.get("offset").and_then(Value::as_i64)) {
                    records.push(record(ItemId::KafkaOffset { partition: p.into(), offset: off }));
                }
            }
            _ => {}
        }
    }
    records
}

fuzz_target!(|body: &[u8]| {
    let records = batch(body);
    let verdict = batch_verdict(body, &records);
    assert_eq!(verdict, batch_verdict(body, &records), "not deterministic");
    match &verdict {
        BatchVerdict::Success => {}
        BatchVerdict::Partial(indices) => {
            assert!(!indices.is_empty(), "an empty partial response is a success");
            assert!(indices.windows(2).all(|w| w[0] < w[1]), "indices not ascending and unique: {indices:?}");
            assert!(indices.iter().all(|&i| i < records.len()), "index out of the batch: {indices:?}");
            // Every named identifier is a record of the batch, and every index is named: a
            // partial response never acknowledges a record the function named, nor fails one
            // it did not.
            let ids = named(body);
            for &i in indices {
                assert!(ids.iter().any(|id| records[i].item_id.matches(id)), "record {i} failed but not named");
            }
            for id in &ids {
                assert!(indices.iter().any(|&i| records[i].item_id.matches(id)), "{id} named but not failed");
            }
        }
        BatchVerdict::Malformed(why) => assert!(!why.is_empty()),
    }
    // A body that is not JSON (and not blank) can never be read as a success.
    if serde_json::from_slice::<Value>(body).is_err() && !body.iter().all(u8::is_ascii_whitespace) {
        assert!(matches!(verdict, BatchVerdict::Malformed(_)), "unreadable body accepted: {verdict:?}");
    }

    if let Some(state) = window_state(body) {
        assert!(!state.is_null());
    }

    if looks_like_function_error(body) && !body.starts_with(b"Task timed out after ") {
        let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) else { panic!("an error object that is not an object") };
        assert!(o.get("errorType").is_some_and(Value::is_string) && o.get("errorMessage").is_some_and(Value::is_string));
        assert!(!o.contains_key("batchItemFailures"));
    }

    let text = String::from_utf8_lossy(body);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Some(delay) = parse_retry_after(&text, now) {
        if let Ok(secs) = text.trim().parse::<u64>() {
            assert_eq!(delay, Duration::from_secs(secs));
        }
    }
});
