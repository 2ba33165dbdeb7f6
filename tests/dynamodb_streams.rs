//! The DynamoDB Streams connector against moto: every change type with every stream view
//! type, per-item order across lanes, and AWS's event and failure-record shapes.
#![cfg(feature = "dynamodb-streams")]

mod common;
mod support;

use common::{start_stream, stream_settings};
use esmd_dynamodb_streams::{dynamodb_streams_source, DynamoDbStreamsOptions, DynamoDbStreamsSource};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::dynamodb::DynamoDb;
use support::function::{FunctionServer, Reply};
use support::moto::{EsmdProcess, MotoServer};

// The shape check esmd-memory's recorded-payload tests use, shared rather than copied.
#[path = "../connectors/memory/tests/support/shape.rs"]
#[allow(dead_code)]
mod shape;

fn source(endpoint: &str, stream_arn: &str) -> Arc<DynamoDbStreamsSource> {
    let config = serde_json::from_value(json!({"stream_arn": stream_arn, "endpoint_url": endpoint})).unwrap();
    let mut options = DynamoDbStreamsOptions::new(config, "us-east-1");
    options.sdk = Some(support::moto::sdk_config_for(endpoint));
    options.idle_poll_interval = Duration::from_millis(100);
    Arc::new(dynamodb_streams_source(options).unwrap())
}

/// A function that succeeds and keeps every record it saw, in order.
async fn recording_function() -> (FunctionServer, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let s = seen.clone();
    let f = FunctionServer::start(move |event| {
        s.lock().unwrap().extend(event["Records"].as_array().cloned().unwrap_or_default());
        Reply::empty()
    })
    .await;
    (f, seen)
}

async fn wait_records(seen: &Arc<Mutex<Vec<Value>>>, n: usize) -> Vec<Value> {
    support::wait::eventually(&format!("{n} records"), Duration::from_secs(30), || {
        let got = seen.lock().unwrap().clone();
        if got.len() >= n {
            Ok(got)
        } else {
            Err(format!("{} of {n} records: {got:#?}", got.len()))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insert_modify_remove_with_each_stream_view_type() {
    let moto = MotoServer::start().await;
    let db = DynamoDb::new(&moto.endpoint());
    for view in ["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"] {
        let table = format!("t-{}", view.to_lowercase().replace('_', "-"));
        let arn = db.create_table_with_stream(&table, view).await;
        db.put(&table, json!({"pk": {"S": "a"}, "n": {"N": "1"}})).await;
        db.put(&table, json!({"pk": {"S": "a"}, "n": {"N": "2"}, "tags": {"SS": ["x"]}})).await;
        db.delete(&table, json!({"pk": {"S": "a"}})).await;

        let (f, seen) = recording_function().await;
        let dir = tempfile::tempdir().unwrap();
        let m = start_stream(source(&moto.endpoint(), &arn), &f.url(), stream_settings(10, 0), dir.path(), None);
        let records = wait_records(&seen, 3).await;
        m.stop().await;

        assert_eq!(records.len(), 3, "{view}: {records:#?}");
        let names: Vec<&str> = records.iter().map(|r| r["eventName"].as_str().unwrap()).collect();
        assert_eq!(names, ["INSERT", "MODIFY", "REMOVE"], "{view}");
        for r in &records {
            let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"], "{view}");
            assert_eq!(r["eventVersion"], "1.1");
            assert_eq!(r["eventSource"], "aws:dynamodb");
            assert_eq!(r["eventSourceARN"], arn.as_str());
            let d = &r["dynamodb"];
            assert_eq!(d["Keys"], json!({"pk": {"S": "a"}}), "{view}");
            assert_eq!(d["StreamViewType"], view);
            assert!(d["ApproximateCreationDateTime"].as_i64().unwrap() > 1_700_000_000, "{view}: whole seconds");
            assert!(d["SequenceNumber"].is_string() && d["SizeBytes"].as_i64().unwrap() > 0);
        }
        let (new, old) = (view.contains("NEW"), view.contains("OLD"));
        let image = |i: usize, which: &str| records[i]["dynamodb"].get(which).cloned();
        let v1 = json!({"n": {"N": "1"}, "pk": {"S": "a"}});
        let v2 = json!({"n": {"N": "2"}, "pk": {"S": "a"}, "tags": {"SS": ["x"]}});
        assert_eq!(image(0, "NewImage"), new.then(|| v1.clone()), "{view} INSERT");
        assert_eq!(image(0, "OldImage"), None, "{view} INSERT");
        assert_eq!(image(1, "NewImage"), new.then(|| v2.clone()), "{view} MODIFY");
        assert_eq!(image(1, "OldImage"), old.then(|| v1.clone()), "{view} MODIFY");
        assert_eq!(image(2, "NewImage"), None, "{view} REMOVE");
        assert_eq!(image(2, "OldImage"), old.then(|| v2.clone()), "{view} REMOVE");
    }
}

/// Many items changed many times, read with 4 lanes: every change of an item arrives in the
/// order it was made (the item's keys are the partition key).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_of_one_item_keep_their_order_across_lanes() {
    let moto = MotoServer::start().await;
    let db = DynamoDb::new(&moto.endpoint());
    let arn = db.create_table_with_stream("items", "NEW_IMAGE").await;
    for round in 0..10 {
        for item in 0..20 {
            db.put("items", json!({"pk": {"S": format!("item-{item}")}, "v": {"N": round.to_string()}})).await;
        }
    }
    let (f, seen) = recording_function().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(7, 0);
    settings.parallelization_factor = 4;
    let m = start_stream(source(&moto.endpoint(), &arn), &f.url(), settings, dir.path(), None);
    let records = wait_records(&seen, 200).await;
    m.stop().await;
    assert_eq!(records.len(), 200);
    let mut last: HashMap<String, i64> = HashMap::new();
    for r in &records {
        let pk = r["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap().to_string();
        let v: i64 = r["dynamodb"]["NewImage"]["v"]["N"].as_str().unwrap().parse().unwrap();
        if let Some(prev) = last.insert(pk.clone(), v) {
            assert_eq!(v, prev + 1, "{pk}: change {v} after {prev}");
        }
    }
    assert_eq!(last.len(), 20);
}

/// The event record and the failure record field by field against AWS's (tests/fixtures).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_and_failure_records_match_the_aws_recordings() {
    let moto = MotoServer::start().await;
    let db = DynamoDb::new(&moto.endpoint());
    // The recorded scenario's table: key my_partition_key, a binary attribute, NEW_IMAGE.
    let arn = db.create_keyed_table("recorded", &[("my_partition_key", "S", "HASH")], "NEW_IMAGE").await;
    db.put("recorded", json!({"my_partition_key": {"S": "hello world"}, "binary_key": {"B": "Zm9vYmFy"}})).await;

    let f = FunctionServer::start(|_| Reply::ok(json!({"errorType": "Error", "errorMessage": "boom"}))).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(1, 0);
    settings.maximum_retry_attempts = Some(1);
    let m = start_stream(source(&moto.endpoint(), &arn), &f.url(), settings, dir.path(), None);
    support::wait::wait_for("a failure record", Duration::from_secs(30), || !m.failures().is_empty()).await;
    let failures_file = m.destination.clone();
    m.stop().await;

    let events = f.requests();
    assert_eq!(events.len(), 2, "1 + maximum_retry_attempts invocations");
    let record = &events[0]["Records"][0];
    // The recording is AWS's account; moto's is another.
    let expected = fixture(&include_str!("fixtures/dynamodb_record.json").replace("111111111111", support::moto::ACCOUNT));
    // SizeBytes is the server's count (moto overestimates it): only its type is compared.
    shape::Shape::with_free(&["SizeBytes"]).check(&expected, record, "record");
    let keys: Vec<&String> = record.as_object().unwrap().keys().collect();
    let expected_keys: Vec<&String> = expected.as_object().unwrap().keys().collect();
    assert_eq!(keys, expected_keys, "AWS's key order");

    let failures = common::read_failures(&failures_file);
    assert_eq!(failures.len(), 1);
    let mut expected = fixture(&include_str!("fixtures/dynamodb_failure_record.json").replace("111111111111", support::moto::ACCOUNT));
    // The function is the test's HTTP server, whose stand-in ARN has the test ctx's account.
    expected["requestContext"]["functionArn"] = json!("arn:<partition>:lambda:<region>:000000000000:function:<resource:4>");
    shape::Shape::ordered().check(&expected, &failures[0], "failure record");
    assert_eq!(failures[0]["DDBStreamBatchInfo"]["startSequenceNumber"], record["dynamodb"]["SequenceNumber"]);
}

fn fixture(text: &str) -> Value {
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["value"].clone()
}

/// `esmd run` with a dynamodb_streams source from a config file (the app's wiring).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn esmd_run_reads_a_table_stream_named_in_a_config_file() {
    let moto = MotoServer::start().await;
    let db = DynamoDb::new(&moto.endpoint());
    let arn = db.create_table_with_stream("configured", "NEW_AND_OLD_IMAGES").await;
    for i in 0..5 {
        db.put("configured", json!({"pk": {"S": format!("item-{i}")}})).await;
    }
    let (f, seen) = recording_function().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("esmd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[admin]
listen = "127.0.0.1:0"
[checkpoint]
path = "{}"
[[mappings]]
name = "changes"
starting_position = "TRIM_HORIZON"
source = {{ type = "dynamodb_streams", stream_arn = "{arn}", endpoint_url = "{}" }}
function = {{ type = "http", url = "{}" }}
"#,
            dir.path().display(),
            moto.endpoint(),
            f.url()
        ),
    )
    .unwrap();
    let _child = EsmdProcess::run(&config, dir.path());
    let records = wait_records(&seen, 5).await;
    assert!(records.iter().all(|r| r["eventName"] == "INSERT" && r["eventSourceARN"] == arn.as_str()));
}
