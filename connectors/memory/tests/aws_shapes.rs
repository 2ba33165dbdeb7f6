//! esmd-memory's records against payloads recorded from AWS (see fixtures/README.md).

mod support;

use esmd_api::{OrderedSource, QueueSource, ShardId};
use esmd_memory::{MemoryLog, MemoryLogOptions, MemoryQueue, MemoryQueueOptions};
use serde_json::Value;
use std::time::Duration;
use support::shape::Shape;

fn fixture(text: &str) -> Value {
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["value"].clone()
}

fn log() -> MemoryLog {
    MemoryLog::new(MemoryLogOptions { stream_name: "orders".into(), shards: 1, region: "us-east-1".into(), account: "111111111111".into() })
}

#[test]
fn kinesis_record_matches_the_recording() {
    let expected = fixture(include_str!("fixtures/kinesis_record.json"));
    let log = log();
    let (shard, _) = log.append(b"test_0", "hello");
    let record = &log.records(&shard)[0];
    let actual: Value = serde_json::from_slice(&record.encoded).unwrap();
    // Keys are compared as sets: the recorder sorted this record's keys.
    Shape::default().check(&expected, &actual, "record");
    // AWS's own order (Lambda developer guide, Kinesis sample event).
    let keys: Vec<&String> = actual.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["kinesis", "eventSource", "eventVersion", "eventID", "eventName", "invokeIdentityArn", "awsRegion", "eventSourceARN"]);
    let inner: Vec<&String> = actual["kinesis"].as_object().unwrap().keys().collect();
    assert_eq!(inner, ["kinesisSchemaVersion", "partitionKey", "sequenceNumber", "data", "approximateArrivalTimestamp"]);
    assert!(actual["kinesis"]["approximateArrivalTimestamp"].is_f64());
}

#[test]
fn kinesis_batch_info_matches_the_recording_in_order() {
    let expected = fixture(include_str!("fixtures/kinesis_failure_record.json"));
    let log = log();
    let (shard, _) = log.append(b"k", "x");
    let (key, info) = OrderedSource::encoder(&log).batch_info(&shard, &log.records(&shard));
    assert_eq!(key, "KinesisBatchInfo");
    let mut shape = Shape::ordered();
    shape.check(&expected["KinesisBatchInfo"], &info, "KinesisBatchInfo");
}

#[tokio::test]
async fn sqs_record_matches_the_recording_in_order() {
    let expected = fixture(include_str!("fixtures/sqs_record.json"));
    let q = MemoryQueue::new(MemoryQueueOptions { name: "q".into(), account: "111111111111".into(), ..Default::default() });
    // The recorded body, with its queue URL placeholder filled in.
    let body = r#"{"destination": "http://sqs.us-east-1.localhost/111111111111/d", "fail_attempts": 1}"#;
    q.send(body, None);
    let records = q.receive(1, Duration::ZERO).await.unwrap();
    let actual: Value = serde_json::from_slice(&records[0].encoded).unwrap();
    let mut shape = Shape::ordered();
    shape.check(&expected, &actual, "record");
    assert_eq!(actual["md5OfBody"], format!("{:x}", md5_of(body)));
    let event: Value = serde_json::from_slice(&q.encoder().encode_event(&ShardId::new("q"), &records, None)).unwrap();
    assert_eq!(event["Records"][0], actual);
}

#[tokio::test]
async fn fifo_record_matches_the_recording() {
    let expected = fixture(include_str!("fixtures/sqs_fifo_record.json"));
    let q = MemoryQueue::new(MemoryQueueOptions { name: "q.fifo".into(), fifo: true, account: "111111111111".into(), ..Default::default() });
    q.send(r#"{"message": 1, "fail_attempts": 0}"#, Some("1"));
    let records = q.receive(1, Duration::ZERO).await.unwrap();
    let actual: Value = serde_json::from_slice(&records[0].encoded).unwrap();
    let mut shape = Shape::with_free(&["MessageDeduplicationId"]);
    shape.check(&expected, &actual, "record");
    // AWS's own attribute order (Lambda developer guide, SQS FIFO sample event).
    let keys: Vec<&String> = actual["attributes"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["ApproximateReceiveCount", "SentTimestamp", "SequenceNumber", "MessageGroupId", "SenderId", "MessageDeduplicationId", "ApproximateFirstReceiveTimestamp"]
    );
}

/// MD5 through the queue itself would be circular; this is the RFC 1321 digest by other means.
fn md5_of(body: &str) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(body.as_bytes()).into())
}

#[test]
#[should_panic(expected = "stood for")]
fn the_shape_check_rejects_a_placeholder_standing_for_two_values() {
    let expected: Value = serde_json::json!({"a": "x:<seq:1>", "b": "<seq:1>"});
    Shape::default().check(&expected, &serde_json::json!({"a": "x:1", "b": 2}), "doc");
}

#[test]
#[should_panic(expected = "keys at")]
fn the_shape_check_rejects_a_missing_key() {
    let expected: Value = serde_json::json!({"a": "<x>", "b": 1});
    Shape::default().check(&expected, &serde_json::json!({"a": "y"}), "doc");
}

#[test]
#[should_panic(expected = "does not match")]
fn the_shape_check_rejects_a_wrong_literal_part() {
    let expected: Value = serde_json::json!({"arn": "arn:<partition>:kinesis:<region>:111111111111:stream/<name>"});
    Shape::default().check(&expected, &serde_json::json!({"arn": "arn:aws:sqs:us-east-1:111111111111:stream/s"}), "doc");
}
