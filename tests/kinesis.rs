//! The Kinesis connector against moto (delivery, order, restarts, iterator renewal, AWS's
//! shapes) and kinesis-local (splits and merges mid-run). Functions are real HTTP servers.
#![cfg(feature = "kinesis")]

mod common;
mod support;

use common::{kinesis_records, start_stream, stream_settings};
use esmd_kinesis::{kinesis_source, sequence_cmp, KinesisOptions, KinesisSource, ReaderOptions};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::function::{FunctionServer, Reply};
use support::kinesis::{client, create_stream, put_records};
use support::moto::{EsmdProcess, MotoServer};

// The shape check esmd-memory's recorded-payload tests use, shared rather than copied.
#[path = "../connectors/memory/tests/support/shape.rs"]
#[allow(dead_code)]
mod shape;

/// The account the test ARNs use (the HTTP invoker's stand-in function ARN has it too).
const ACCOUNT: &str = "000000000000";

fn source(endpoint: &str, stream: &str, reader: ReaderOptions) -> Arc<KinesisSource> {
    let config = serde_json::from_value(json!({"stream_name": stream, "endpoint_url": endpoint})).unwrap();
    let mut options = KinesisOptions::new(config, "us-east-1", ACCOUNT);
    options.sdk = Some(support::moto::sdk_config_for(endpoint));
    options.reader = reader;
    // Tests wait less than Lambda's second between empty reads, and find new shards quickly.
    options.idle_poll_interval = Duration::from_millis(100);
    options.discovery_interval = Duration::from_millis(500);
    Arc::new(kinesis_source(options).unwrap())
}

/// Records a function saw, in the order it saw them: (shard from eventID, sequence, key, data).
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

fn recording_function_handler(seen: Seen) -> impl Fn(&Value) -> Reply + Send + Sync + 'static {
    move |event| {
        let shards: Vec<String> = event["Records"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["eventID"].as_str().unwrap_or_default().split(':').next().unwrap_or_default().to_string())
            .collect();
        let mut s = seen.lock().unwrap();
        for (shard, (seq, key, data)) in shards.into_iter().zip(kinesis_records(event)) {
            s.push((shard, seq, key, data));
        }
        Reply::empty()
    }
}

async fn wait_for(seen: &Seen, unique: usize, timeout: Duration) {
    support::wait::eventually("the records", timeout, || {
        let n = seen.lock().unwrap().iter().map(|r| (r.0.clone(), r.1.clone())).collect::<BTreeSet<_>>().len();
        if n >= unique { Ok(()) } else { Err(format!("{n} of {unique} records delivered")) }
    })
    .await
}

/// Data `{"k":key,"i":n}`: n counts the key's records in production order.
fn keyed_records(n: usize, keys: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    // A small xorshift: random keys without a rand dependency in every test binary.
    let mut x = seed.max(1);
    let mut counts: HashMap<String, usize> = HashMap::new();
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = format!("key-{}", x % keys as u64);
            let i = counts.entry(key.clone()).or_default();
            *i += 1;
            let data = json!({"k": key, "i": *i}).to_string().into_bytes();
            (key, data)
        })
        .collect()
}

/// Each key's `i` values in the order the function saw them must increase.
fn assert_key_order(seen: &[(String, String, String, String)]) {
    let mut last: HashMap<&str, i64> = HashMap::new();
    for (_, seq, key, data) in seen {
        let i = serde_json::from_str::<Value>(data).unwrap()["i"].as_i64().unwrap();
        if let Some(prev) = last.insert(key, i) {
            assert!(i > prev, "key {key}: record {i} (seq {seq}) after {prev}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_shards_20k_records_parallelization_5_all_delivered_in_key_order() {
    let moto = MotoServer::start().await;
    let kinesis = client(&moto.endpoint());
    create_stream(&kinesis, "orders", 4).await;
    let records = keyed_records(20_000, 300, 42);
    let written = put_records(&kinesis, "orders", &records).await;
    assert_eq!(written.iter().map(|w| &w.0).collect::<BTreeSet<_>>().len(), 4, "records spread over the 4 shards");

    let seen: Seen = Arc::default();
    let f = FunctionServer::start(recording_function_handler(seen.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(100, 0);
    settings.parallelization_factor = 5;
    let m = start_stream(source(&moto.endpoint(), "orders", ReaderOptions::default()), &f.url(), settings, dir.path(), None);
    wait_for(&seen, 20_000, Duration::from_secs(120)).await;

    // Every shard ends checkpointed at its last record, and /status says so.
    let mut last: HashMap<&str, &str> = HashMap::new();
    for (shard, seq) in &written {
        let e = last.entry(shard).or_insert(seq);
        if sequence_cmp(seq, e).is_gt() {
            *e = seq;
        }
    }
    for (shard, seq) in &last {
        m.wait_checkpoint(shard, seq, Duration::from_secs(30)).await;
    }
    let snapshot = m.registry.snapshot();
    let status = &snapshot["m"];
    for shard in last.keys() {
        let s = &status.shards[*shard];
        assert_eq!(s.millis_behind_latest, Some(0), "{shard}: caught up");
        assert!(s.parents.is_empty());
    }
    m.stop().await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 20_000, "none twice without failures");
    let expected: BTreeSet<(String, String)> = written.into_iter().collect();
    let got: BTreeSet<(String, String)> = seen.iter().map(|r| (r.0.clone(), r.1.clone())).collect();
    assert_eq!(got, expected);
    assert_key_order(&seen);
}

/// A crash (the mapping's task aborted with batches in flight) and a restart: the second run
/// starts from the checkpoints, so nothing is skipped and only unfinished batches repeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_resumes_from_checkpoints_without_gaps() {
    let moto = MotoServer::start().await;
    let kinesis = client(&moto.endpoint());
    create_stream(&kinesis, "clicks", 2).await;
    let records = keyed_records(3_000, 50, 7);
    let written = put_records(&kinesis, "clicks", &records).await;

    let seen: Seen = Arc::default();
    let f = FunctionServer::start(recording_function_handler(seen.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let batch = 50;
    let lanes = 2;
    let mut settings = stream_settings(batch, 0);
    settings.parallelization_factor = lanes;
    let m = start_stream(source(&moto.endpoint(), "clicks", ReaderOptions::default()), &f.url(), settings.clone(), dir.path(), None);
    wait_for(&seen, 1_000, Duration::from_secs(60)).await;
    // Slow the function down so batches are in flight when the task dies.
    f.set_handler({
        let record = recording_function_handler(seen.clone());
        move |event| {
            record(event);
            Reply::delay(Duration::from_millis(200), Reply::empty())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    m.handle.abort();
    let _ = m.handle.await;
    // Aborting the mapping drops its shard tasks at their next poll; until then they hold the
    // checkpoint store open (redb allows one opener).
    support::wait::wait_for("the checkpoint store to be released", Duration::from_secs(10), || {
        esmd::checkpoint::embedded::EmbeddedStore::open(&dir.path().join("checkpoints.redb")).is_ok()
    })
    .await;
    let first_run = seen.lock().unwrap().len();
    assert!(first_run < 3_000, "the crash came before the end ({first_run} delivered)");

    f.set_handler(recording_function_handler(seen.clone()));
    let m = start_stream(source(&moto.endpoint(), "clicks", ReaderOptions::default()), &f.url(), settings, dir.path(), None);
    wait_for(&seen, 3_000, Duration::from_secs(60)).await;
    m.stop().await;

    let seen = seen.lock().unwrap().clone();
    let expected: BTreeSet<(String, String)> = written.into_iter().collect();
    let got: BTreeSet<(String, String)> = seen.iter().map(|r| (r.0.clone(), r.1.clone())).collect();
    assert_eq!(got, expected, "no gap");
    // At most the batches that were in flight (or delivered but not yet checkpointed) on each
    // lane of each shard at the crash come again.
    let repeated = seen.len() - 3_000;
    assert!(repeated <= 2 * lanes * batch * 2, "{repeated} records repeated");
    assert_key_order(&dedup_keep_last(&seen));
}

/// Replays after a crash restart a key's sequence; order holds within each delivery run. Keep
/// each record's last delivery to check the order the function ended with.
fn dedup_keep_last(seen: &[(String, String, String, String)]) -> Vec<(String, String, String, String)> {
    let mut last_index: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, r) in seen.iter().enumerate() {
        last_index.insert((&r.0, &r.1), i);
    }
    seen.iter().enumerate().filter(|(i, r)| last_index[&(r.0.as_str(), r.1.as_str())] == *i).map(|(_, r)| r.clone()).collect()
}

/// An iterator that expires mid-stream (AWS: after 5 minutes unused) is renewed right after
/// the last record read, never from the starting position: no record is skipped or repeated.
/// Neither emulator expires iterators within a test, so the reader's test hook answers every
/// third read as ExpiredIteratorException would; the renewal itself is the engine's real path
/// (GetShardIterator AFTER_SEQUENCE_NUMBER on the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_iterators_are_renewed_after_the_last_record_read() {
    let moto = MotoServer::start().await;
    let kinesis = client(&moto.endpoint());
    create_stream(&kinesis, "s", 1).await;
    let records = keyed_records(1_000, 10, 3);
    let written = put_records(&kinesis, "s", &records).await;

    let seen: Seen = Arc::default();
    let f = FunctionServer::start(recording_function_handler(seen.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let reader = ReaderOptions { expire_iterator_every_reads: 3, records_per_read: 100, ..Default::default() };
    // Reads of 100 records: the 1000 take 10 reads and meet 3 or more expiries.
    let m = start_stream(source(&moto.endpoint(), "s", reader), &f.url(), stream_settings(10, 0), dir.path(), None);
    wait_for(&seen, 1_000, Duration::from_secs(60)).await;
    m.wait_checkpoint(&written[999].0, &written[999].1, Duration::from_secs(10)).await;
    m.stop().await;
    let seen = seen.lock().unwrap().clone();
    let seqs: Vec<&String> = seen.iter().map(|r| &r.1).collect();
    let expected: Vec<&String> = written.iter().map(|w| &w.1).collect();
    assert_eq!(seqs, expected, "every record once, in shard order");
}

/// The event a function receives and the failure record a given-up batch produces, field by
/// field against what AWS itself sent (connectors/memory/tests/fixtures, recorded by
/// LocalStack's AWS-validated tests; see the README there).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_and_failure_records_match_the_aws_recordings() {
    let moto = MotoServer::start().await;
    let kinesis = client(&moto.endpoint());
    create_stream(&kinesis, "recorded", 1).await;
    let written = put_records(&kinesis, "recorded", &[("test_0".into(), b"hello".to_vec())]).await;

    // The function fails with Lambda's error object: 2 invocations, then the failure record.
    let f = FunctionServer::start(|_| Reply::ok(json!({"errorType": "Error", "errorMessage": "boom"}))).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(1, 0);
    settings.maximum_retry_attempts = Some(1);
    let m = start_stream(source(&moto.endpoint(), "recorded", ReaderOptions::default()), &f.url(), settings, dir.path(), None);
    m.wait_checkpoint(&written[0].0, &written[0].1, Duration::from_secs(30)).await;
    let failures_file = m.destination.clone();
    m.stop().await;

    let events = f.requests();
    assert_eq!(events.len(), 2);
    let record = &events[0]["Records"][0];
    let expected = fixture(&include_str!("../connectors/memory/tests/fixtures/kinesis_record.json").replace("111111111111", ACCOUNT));
    // The recorder sorted this record's keys: compared as sets, then AWS's documented order.
    shape::Shape::default().check(&expected, record, "record");
    let keys: Vec<&String> = record.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["kinesis", "eventSource", "eventVersion", "eventID", "eventName", "invokeIdentityArn", "awsRegion", "eventSourceARN"]);
    assert_eq!(record["kinesis"]["data"], "aGVsbG8=");
    assert_eq!(record["eventSourceARN"], format!("arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/recorded"));
    assert!(record["kinesis"]["approximateArrivalTimestamp"].as_f64().unwrap() > 1.7e9);

    let failures = common::read_failures(&failures_file);
    assert_eq!(failures.len(), 1);
    let mut expected = fixture(&include_str!("../connectors/memory/tests/fixtures/kinesis_failure_record.json").replace("111111111111", ACCOUNT));
    // The recorder wrote one placeholder for every timestamp; the failure's own time is not the
    // record's arrival.
    expected["timestamp"] = json!("<failure-timestamp>");
    // This recording kept AWS's key order.
    shape::Shape::ordered().check(&expected, &failures[0], "failure record");
    let info = &failures[0]["KinesisBatchInfo"];
    assert_eq!(info["startSequenceNumber"], written[0].1.as_str());
    assert_eq!(info["shardId"], written[0].0.as_str());
}

fn fixture(text: &str) -> Value {
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["value"].clone()
}

/// Splits and merges while the mapping runs (kinesis-local: moto keeps writing to a split
/// shard's closed parent). A child starts only after its parents are read to their end, so
/// every key's records arrive in production order across the reshards, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn splits_and_merges_mid_run_finish_parents_first_and_keep_key_order() {
    let kl = support::kinesis::KinesisLocal::start().await;
    let c = kl.client();
    create_stream(&c, "reshard", 2).await;
    let records = keyed_records(3_000, 60, 11);
    let (phase1, rest) = records.split_at(1_000);
    let (phase2, phase3) = rest.split_at(1_000);

    let seen: Seen = Arc::default();
    let f = FunctionServer::start(recording_function_handler(seen.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(20, 0);
    settings.parallelization_factor = 3;
    let m = start_stream(source(&kl.endpoint(), "reshard", ReaderOptions::default()), &f.url(), settings, dir.path(), None);

    let mut written = put_records(&c, "reshard", phase1).await;
    // Split shard 0 at the middle of its hash range: children 2 and 3.
    support::kinesis::split_in_half(&c, "reshard", "shardId-000000000000").await;
    written.extend(put_records(&c, "reshard", phase2).await);
    // Merge the upper child with shard 1, its neighbour: child 4.
    c.merge_shards().stream_name("reshard").shard_to_merge("shardId-000000000003").adjacent_shard_to_merge("shardId-000000000001").send().await.unwrap();
    support::kinesis::wait_active(&c, "reshard").await;
    written.extend(put_records(&c, "reshard", phase3).await);

    let shards = support::kinesis::shards(&c, "reshard").await;
    assert_eq!(shards.len(), 5, "{shards:?}");
    assert!(written.iter().any(|w| w.0 == "shardId-000000000002") && written.iter().any(|w| w.0 == "shardId-000000000004"), "records went to the children");
    wait_for(&seen, 3_000, Duration::from_secs(120)).await;
    let snapshot = m.registry.snapshot();
    m.stop().await;

    let seen = seen.lock().unwrap().clone();
    let expected: BTreeSet<(String, String)> = written.into_iter().collect();
    let got: BTreeSet<(String, String)> = seen.iter().map(|r| (r.0.clone(), r.1.clone())).collect();
    assert_eq!(got, expected, "nothing lost");
    assert_eq!(seen.len(), 3_000, "nothing twice");
    assert_key_order(&seen);
    // Each child's first record came after every record of its parents.
    let first = |shard: &str| seen.iter().position(|r| r.0 == shard);
    let last = |shard: &str| seen.iter().rposition(|r| r.0 == shard);
    for (child, parent, adjacent) in &shards {
        for p in parent.iter().chain(adjacent) {
            if let (Some(child_first), Some(parent_last)) = (first(child), last(p)) {
                assert!(child_first > parent_last, "{child} started (at {child_first}) before its parent {p} ended (at {parent_last})");
            }
        }
        let status = &snapshot["m"].shards[child.as_str()];
        let parents: Vec<String> = parent.iter().chain(adjacent).cloned().collect();
        assert_eq!(status.parents, parents, "/status lineage of {child}");
    }
    for closed in ["shardId-000000000000", "shardId-000000000001", "shardId-000000000003"] {
        assert_eq!(snapshot["m"].shards[closed].state, esmd::status::ShardState::Finished, "{closed}");
    }
}

/// LATEST applies to shards the mapping has never read from. A child of a shard it did read
/// starts at its first record: here the split happens while esmd is down, and the records
/// written to the children meanwhile still arrive after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latest_mapping_reads_children_of_read_parents_from_their_start() {
    let kl = support::kinesis::KinesisLocal::start().await;
    let c = kl.client();
    create_stream(&c, "latest", 1).await;
    let seen: Seen = Arc::default();
    let f = FunctionServer::start(recording_function_handler(seen.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(10, 0);
    settings.starting_position = esmd_api::StartFrom::Latest;

    let m = start_stream(source(&kl.endpoint(), "latest", ReaderOptions::default()), &f.url(), settings.clone(), dir.path(), None);
    // LATEST counts from when the reader opened: wait for the first poll before producing.
    support::wait::eventually("the shard to run", Duration::from_secs(20), || {
        let state = m.registry.snapshot().get("m").and_then(|s| s.shards.get("shardId-000000000000")).map(|s| s.state.clone());
        if state == Some(esmd::status::ShardState::Running) { Ok(()) } else { Err(format!("shard state {state:?}")) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let records = keyed_records(200, 10, 5);
    let mut written = put_records(&c, "latest", &records[..100]).await;
    wait_for(&seen, 100, Duration::from_secs(30)).await;
    m.stop().await;

    support::kinesis::split_in_half(&c, "latest", "shardId-000000000000").await;
    written.extend(put_records(&c, "latest", &records[100..]).await);

    let m = start_stream(source(&kl.endpoint(), "latest", ReaderOptions::default()), &f.url(), settings, dir.path(), None);
    wait_for(&seen, 200, Duration::from_secs(30)).await;
    m.stop().await;
    let seen = seen.lock().unwrap().clone();
    let expected: BTreeSet<(String, String)> = written.into_iter().collect();
    let got: BTreeSet<(String, String)> = seen.iter().map(|r| (r.0.clone(), r.1.clone())).collect();
    assert_eq!(got, expected);
    assert_key_order(&seen);
}

/// Filters see `data` decoded as JSON; records whose data is not JSON match no JSON pattern.
/// Filtered-out records are finished: the checkpoint reaches the shard's last record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filters_match_decoded_json_data_and_filtered_records_are_checkpointed() {
    let moto = MotoServer::start().await;
    let kinesis = client(&moto.endpoint());
    create_stream(&kinesis, "filtered", 1).await;
    let mut records = keyed_records(60, 3, 9);
    records.push(("key-1".into(), b"not json".to_vec()));
    let written = put_records(&kinesis, "filtered", &records).await;

    let seen: Seen = Arc::default();
    let f = FunctionServer::start(recording_function_handler(seen.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let filter = esmd_filter::FilterCriteria::compile(&[r#"{"data": {"k": ["key-1"]}}"#.to_string()]).unwrap();
    let m = start_stream(source(&moto.endpoint(), "filtered", ReaderOptions::default()), &f.url(), stream_settings(10, 0), dir.path(), Some(Arc::new(filter)));
    let last = written.last().unwrap();
    m.wait_checkpoint(&last.0, &last.1, Duration::from_secs(30)).await;
    m.stop().await;
    let seen = seen.lock().unwrap().clone();
    let wanted = records.iter().filter(|(k, d)| k == "key-1" && d.starts_with(b"{")).count();
    assert!(wanted > 0);
    assert_eq!(seen.len(), wanted);
    assert!(seen.iter().all(|r| r.2 == "key-1" && r.3.starts_with('{')));
}

/// ReportBatchItemFailures names sequence numbers: the records before the named one are
/// finished, the batch is retried from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partial_batch_responses_name_sequence_numbers() {
    let moto = MotoServer::start().await;
    let kinesis = client(&moto.endpoint());
    create_stream(&kinesis, "partial", 1).await;
    let written = put_records(&kinesis, "partial", &keyed_records(30, 1, 13)).await;
    let poison = written[14].1.clone();
    let calls: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let failed_once = Arc::new(Mutex::new(false));
    let (c, once, p) = (calls.clone(), failed_once.clone(), poison.clone());
    let f = FunctionServer::start(move |event| {
        let seqs: Vec<String> = kinesis_records(event).into_iter().map(|r| r.0).collect();
        c.lock().unwrap().push(seqs.clone());
        let mut once = once.lock().unwrap();
        if !*once && seqs.contains(&p) {
            *once = true;
            return Reply::batch_item_failures([p.clone()]);
        }
        Reply::empty()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(10, 0);
    settings.report_batch_item_failures = true;
    let m = start_stream(source(&moto.endpoint(), "partial", ReaderOptions::default()), &f.url(), settings, dir.path(), None);
    m.wait_checkpoint(&written[29].0, &written[29].1, Duration::from_secs(30)).await;
    m.stop().await;
    let calls = calls.lock().unwrap().clone();
    let failing = calls.iter().position(|c| c.contains(&poison)).unwrap();
    assert_eq!(calls[failing + 1][0], poison, "retried from the named record: {calls:?}");
    let delivered: BTreeSet<&String> = calls.iter().flatten().collect();
    assert_eq!(delivered.len(), 30);
    assert!(m_failures_empty(&dir));
}

fn m_failures_empty(dir: &tempfile::TempDir) -> bool {
    common::read_failures(&dir.path().join("failures.jsonl")).is_empty()
}

/// AT_TIMESTAMP starts at the first record that arrived at or after the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_timestamp_starts_at_the_first_record_after_the_time() {
    let moto = MotoServer::start().await;
    let kinesis = client(&moto.endpoint());
    create_stream(&kinesis, "timed", 1).await;
    let records = keyed_records(40, 4, 17);
    put_records(&kinesis, "timed", &records[..20]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let at = esmd_api::time::now_ms();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = put_records(&kinesis, "timed", &records[20..]).await;

    let seen: Seen = Arc::default();
    let f = FunctionServer::start(recording_function_handler(seen.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(10, 0);
    settings.starting_position = esmd_api::StartFrom::AtTimestamp(at);
    let m = start_stream(source(&moto.endpoint(), "timed", ReaderOptions::default()), &f.url(), settings, dir.path(), None);
    m.wait_checkpoint(&later[19].0, &later[19].1, Duration::from_secs(30)).await;
    m.stop().await;
    let seqs: Vec<String> = seen.lock().unwrap().iter().map(|r| r.1.clone()).collect();
    assert_eq!(seqs, later.iter().map(|w| w.1.clone()).collect::<Vec<_>>());
}

/// `esmd run` with a kinesis source from a config file: the app's wiring, the SDK's default
/// credential chain (environment variables, as a deployment would set them), /status per shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn esmd_run_reads_a_stream_named_in_a_config_file() {
    use std::process::Command;
    let moto = MotoServer::start().await;
    let kinesis = client(&moto.endpoint());
    create_stream(&kinesis, "configured", 2).await;
    put_records(&kinesis, "configured", &keyed_records(200, 20, 23)).await;
    let seen: Seen = Arc::default();
    let f = FunctionServer::start(recording_function_handler(seen.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let admin_port = support::moto::free_port();
    let config = dir.path().join("esmd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[admin]
listen = "127.0.0.1:{admin_port}"
[checkpoint]
path = "{}"
[[mappings]]
name = "clicks"
starting_position = "TRIM_HORIZON"
parallelization_factor = 2
source = {{ type = "kinesis", stream_name = "configured", region = "us-east-1", endpoint_url = "{}" }}
function = {{ type = "http", url = "{}" }}
"#,
            dir.path().display(),
            moto.endpoint(),
            f.url()
        ),
    )
    .unwrap();
    let mut child = EsmdProcess::run(&config, dir.path());
    wait_for(&seen, 200, Duration::from_secs(60)).await;
    let status: Value = reqwest::Client::builder().no_proxy().build().unwrap().get(format!("http://127.0.0.1:{admin_port}/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["clicks"]["source"], "kinesis");
    let shard = &status["clicks"]["shards"]["shardId-000000000000"];
    assert!(shard["position"].is_string(), "{status:#}");
    assert_eq!(shard["parents"], json!([]), "{status:#}");
    assert!(shard["millis_behind_latest"].is_u64(), "{status:#}");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let exit = support::wait::eventually("esmd to exit after SIGTERM", Duration::from_secs(60), || {
        child.0.try_wait().unwrap().ok_or_else(|| "esmd did not exit after SIGTERM".to_string())
    })
    .await;
    assert!(exit.success(), "{exit:?}");
}

/// Tumbling windows on a real stream: every record reaches exactly one final state, that of the
/// window its approximateArrivalTimestamp falls in, on its own shard; each invocation of a
/// window carries the state the one before returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tumbling_windows_aggregate_each_record_once_per_shard_and_window() {
    let moto = MotoServer::start().await;
    let kinesis = client(&moto.endpoint());
    create_stream(&kinesis, "windows", 2).await;
    let records = keyed_records(300, 30, 7);
    let written = put_records(&kinesis, "windows", &records).await;
    // The function appends [sequenceNumber, arrival] of each record to its state.
    let f = FunctionServer::start(|event| {
        let mut seen: Vec<Value> = event["state"]["seen"].as_array().cloned().unwrap_or_default();
        for r in event["Records"].as_array().into_iter().flatten() {
            seen.push(json!([r["kinesis"]["sequenceNumber"], r["kinesis"]["approximateArrivalTimestamp"]]));
        }
        Reply::ok(json!({"state": {"seen": seen}}))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(40, 0);
    settings.tumbling_window = Some(Duration::from_secs(1));
    let m = start_stream(source(&moto.endpoint(), "windows", ReaderOptions::default()), &f.url(), settings, dir.path(), None);
    let is_final = |e: &Value| e["isFinalInvokeForWindow"] == json!(true);
    let seen_len = |e: &Value| e["state"]["seen"].as_array().map_or(0, Vec::len);
    support::wait::eventually("final states to cover every record", Duration::from_secs(60), || {
        let requests = f.requests();
        let covered = requests.iter().filter(|e| is_final(e)).map(seen_len).sum::<usize>();
        if covered >= written.len() {
            Ok(())
        } else {
            Err(format!("final states cover too few records ({covered} of {}): {requests:#?}", written.len()))
        }
    })
    .await;
    m.stop().await;

    let secs = |iso: &Value| chrono::DateTime::parse_from_rfc3339(iso.as_str().unwrap()).unwrap().timestamp() as f64;
    let mut counted = BTreeSet::new();
    let mut state: HashMap<(String, String), Value> = HashMap::new();
    for e in f.requests() {
        let shard = e["shardId"].as_str().unwrap().to_string();
        let window = (shard.clone(), e["window"]["start"].as_str().unwrap().to_string());
        assert_eq!(&e["state"], state.get(&window).unwrap_or(&json!({})), "state chains within {window:?}");
        if !is_final(&e) {
            assert!(e["Records"].as_array().is_some_and(|r| !r.is_empty()));
            let mut seen = e["state"]["seen"].as_array().cloned().unwrap_or_default();
            seen.extend(e["Records"].as_array().unwrap().iter().map(|r| json!([r["kinesis"]["sequenceNumber"], r["kinesis"]["approximateArrivalTimestamp"]])));
            state.insert(window, json!({"seen": seen}));
            continue;
        }
        assert_eq!(e["Records"], json!([]));
        let (start, end) = (secs(&e["window"]["start"]), secs(&e["window"]["end"]));
        assert_eq!(end - start, 1.0);
        for item in e["state"]["seen"].as_array().unwrap() {
            let arrival = item[1].as_f64().unwrap();
            assert!(start <= arrival && arrival < end, "record arrived at {arrival}, outside its window [{start}, {end})");
            assert!(counted.insert((shard.clone(), item[0].as_str().unwrap().to_string())), "{item} counted twice");
        }
        state.remove(&window);
    }
    let expected: BTreeSet<(String, String)> = written.into_iter().collect();
    assert_eq!(counted, expected);

    // Each event has the documented shape: keys in AWS's order, AWS's types, whole-second
    // window bounds in UTC.
    let doc: Value = serde_json::from_str(include_str!("fixtures/aws-docs/kinesis-time-window-event.json")).unwrap();
    let requests = f.requests();
    let first = requests.iter().find(|e| !is_final(e)).expect("an invocation with records");
    same_shape(&doc, first, "event");
    let last = requests.iter().find(|e| is_final(e)).expect("a final invocation");
    assert_eq!(keys(last), keys(&doc), "final invocation's keys");
    for e in &requests {
        for bound in ["start", "end"] {
            let t = e["window"][bound].as_str().unwrap();
            assert!(t.len() == 20 && t.ends_with('Z'), "window.{bound} {t:?} is not like 2020-12-09T07:04:00Z");
        }
        assert_eq!(e["eventSourceARN"], first["Records"][0]["eventSourceARN"]);
        assert_eq!(e["isWindowTerminatedEarly"], json!(false));
    }
}

fn keys(v: &Value) -> Vec<&String> {
    v.as_object().map(|o| o.keys().collect()).unwrap_or_default()
}

/// The same keys in the same order and the same JSON types, all the way down; `state` is the
/// function's own and only has to be an object.
fn same_shape(expected: &Value, actual: &Value, path: &str) {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    assert_eq!(kind(actual), kind(expected), "{path}: type");
    if path.ends_with(".state") {
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(_)) => {
            assert_eq!(keys(actual), keys(expected), "{path}: keys");
            for (k, v) in e {
                same_shape(v, &actual[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(e), Some(a)) = (e.first(), a.first()) {
                same_shape(e, a, &format!("{path}[0]"));
            }
        }
        _ => {}
    }
}
