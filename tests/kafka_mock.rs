//! The Kafka connector against librdkafka's in-process mock cluster: the real consumer, group
//! protocol and commits, with no server to install. tests/kafka_tansu.rs repeats the core of
//! these against an independent broker.
#![cfg(feature = "kafka")]

mod common;
mod support;

use common::{start_stream, stream_settings};
use esmd_kafka::mock::EmbeddedKafka;
use esmd_kafka::{KafkaOptions, KafkaSource, KafkaSourceConfig};
use esmd_api::StartFrom;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::function::{FunctionServer, Reply};
use support::kafka::{committed, kafka_records, produce, read_topic, wait_all_committed, wait_committed, Message};

fn source(bootstrap: &str, topic: &str, group: &str) -> Arc<KafkaSource> {
    source_from(bootstrap, topic, group, StartFrom::TrimHorizon)
}

fn source_from(bootstrap: &str, topic: &str, group: &str, start: StartFrom) -> Arc<KafkaSource> {
    let config: KafkaSourceConfig = serde_json::from_value(json!({
        "bootstrap_servers": [bootstrap], "topic": topic, "consumer_group_id": group,
        // The mock cluster answers fast; keep group joins and rebalances short.
        "properties": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}
    }))
    .expect("config");
    Arc::new(KafkaSource::new(KafkaOptions { mapping: "m".into(), config, starting_position: start, counters: esmd_api::no_counters() }).expect("source"))
}

/// A function that succeeds and records the offsets it was given, in arrival order.
async fn offsets_function() -> (FunctionServer, Arc<Mutex<Vec<i64>>>) {
    let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
    let s = seen.clone();
    let f = FunctionServer::start(move |event| {
        s.lock().unwrap().extend(kafka_records(event).into_iter().map(|r| r.1));
        Reply::empty()
    })
    .await;
    (f, seen)
}

fn keyed(n: usize, keys: usize) -> impl Iterator<Item = Message> {
    (0..n).map(move |i| Message::keyed(format!("k{}", i % keys), format!("{{\"i\":{i}}}")))
}

/// Every record arrives once, each key's records in offset order across 10 lanes, the
/// events have AWS's shape, and the group ends committed at every high watermark.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delivers_in_key_order_with_parallelization_10_and_commits_everything() {
    let kafka = EmbeddedKafka::start(3).unwrap();
    let bs = kafka.bootstrap_servers().to_string();
    kafka.create_topic("orders", 3).unwrap();
    produce(&bs, "orders", keyed(3000, 40)).await;

    let seen: Arc<Mutex<Vec<(String, i64, String)>>> = Arc::default();
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (s, e) = (seen.clone(), events.clone());
    let f = FunctionServer::start(move |event| {
        for (p, o, k, _) in kafka_records(event) {
            s.lock().unwrap().push((p, o, k));
        }
        let mut ev = e.lock().unwrap();
        if ev.len() < 3 {
            ev.push(event.clone());
        }
        Reply::empty()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(50, 20);
    settings.parallelization_factor = 10;
    let m = start_stream(source(&bs, "orders", "g1"), &f.url(), settings, dir.path(), None);
    wait_all_committed(&bs, "g1", "orders", 3, Duration::from_secs(60)).await;
    // Each partition's lag (high watermark − committed) comes down to 0 in /status.
    support::wait::eventually("every partition's lag to be 0", Duration::from_secs(10), || {
        let snap = m.registry.snapshot();
        let lags: Vec<Option<u64>> = (0..3).map(|p| snap.get("m").and_then(|s| s.shards.get(&format!("orders-{p}"))).and_then(|s| s.backlog)).collect();
        if lags.iter().all(|l| *l == Some(0)) { Ok(()) } else { Err(format!("lags {lags:?}")) }
    })
    .await;
    m.stop().await;

    let seen = seen.lock().unwrap().clone();
    let unique: BTreeSet<(String, i64)> = seen.iter().map(|(p, o, _)| (p.clone(), *o)).collect();
    assert_eq!(unique.len(), 3000, "every record delivered");
    assert_eq!(seen.len(), 3000, "none twice without failures");
    let mut last: HashMap<(String, String), i64> = HashMap::new();
    for (p, o, k) in &seen {
        if let Some(prev) = last.insert((p.clone(), k.clone()), *o) {
            assert!(*o > prev, "key {k} on {p}: offset {o} after {prev}");
        }
    }
    let event = &events.lock().unwrap()[0];
    assert_eq!(event["eventSource"], "SelfManagedKafka");
    assert_eq!(event["bootstrapServers"], bs.as_str());
    let (partition, records) = event["records"].as_object().unwrap().iter().next().unwrap();
    assert!(partition.starts_with("orders-"));
    let r = &records[0];
    assert_eq!(r["topic"], "orders");
    assert_eq!(r["timestampType"], "CREATE_TIME");
    assert!(r["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
    assert!(r["headers"].is_array());
}

/// A crash (the task aborted mid-batch) loses nothing: the group resumes from the finished
/// watermark, so the unfinished batch is delivered again and nothing after it is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_mid_batch_resumes_from_the_finished_watermark() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let bs = kafka.bootstrap_servers().to_string();
    kafka.create_topic("t", 1).unwrap();
    produce(&bs, "t", (0..300).map(|i| Message { partition: Some(0), key: None, value: format!("{i}"), timestamp: None })).await;

    // First run: batches below offset 100 succeed, the one holding 100 never answers. Where
    // that batch starts depends on how the reads split the partition (a loaded machine reads
    // smaller chunks), so the function notes it.
    let hung_from: Arc<Mutex<Option<i64>>> = Arc::default();
    let hung = hung_from.clone();
    let f = FunctionServer::start(move |event| {
        let records = kafka_records(event);
        if records.iter().any(|r| r.1 >= 100) {
            hung.lock().unwrap().get_or_insert(records.iter().map(|r| r.1).min().unwrap_or(100));
            Reply::delay(Duration::from_secs(120), Reply::empty())
        } else {
            Reply::empty()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(source(&bs, "t", "g2"), &f.url(), stream_settings(10, 0), dir.path(), None);
    let start = support::wait::eventually("the batch holding offset 100 to be invoked", Duration::from_secs(30), || hung_from.lock().unwrap().ok_or_else(|| "not yet".to_string())).await;
    assert!(start <= 100);
    wait_committed(&bs, "g2", "t", &[start], Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    m.handle.abort();
    let _ = m.handle.await;
    assert_eq!(committed(&bs, "g2", "t", 1).await, [start], "nothing past the unfinished batch");

    // Second run, same group: starts exactly at the unfinished batch and finishes the rest.
    let (f2, seen) = offsets_function().await;
    let dir2 = tempfile::tempdir().unwrap();
    let m2 = start_stream(source(&bs, "t", "g2"), &f2.url(), stream_settings(10, 0), dir2.path(), None);
    wait_all_committed(&bs, "g2", "t", 1, Duration::from_secs(30)).await;
    m2.stop().await;
    assert_eq!(*seen.lock().unwrap(), (start..300).collect::<Vec<_>>());
}

/// Two consumers in one group: the second joins mid-backlog, partitions move, and every
/// record is still delivered and committed. Duplicates are allowed (at least once), gaps not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebalance_between_two_consumers_loses_nothing() {
    let kafka = EmbeddedKafka::start(3).unwrap();
    let bs = kafka.bootstrap_servers().to_string();
    kafka.create_topic("r", 4).unwrap();
    produce(&bs, "r", keyed(4000, 64)).await;

    let seen_a: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let seen_b: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let slow = |seen: Arc<Mutex<Vec<(String, i64)>>>| {
        move |event: &Value| {
            seen.lock().unwrap().extend(kafka_records(event).into_iter().map(|r| (r.0, r.1)));
            Reply::delay(Duration::from_millis(15), Reply::empty())
        }
    };
    let fa = FunctionServer::start(slow(seen_a.clone())).await;
    let fb = FunctionServer::start(slow(seen_b.clone())).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_stream(source(&bs, "r", "g3"), &fa.url(), stream_settings(20, 0), da.path(), None);
    support::wait::eventually("consumer A to get going", Duration::from_secs(30), || {
        let n = seen_a.lock().unwrap().len();
        if n >= 600 { Ok(()) } else { Err(format!("{n} of 600 records")) }
    })
    .await;
    let b = start_stream(source(&bs, "r", "g3"), &fb.url(), stream_settings(20, 0), db.path(), None);
    wait_all_committed(&bs, "g3", "r", 4, Duration::from_secs(120)).await;
    a.stop().await;
    b.stop().await;

    let (sa, sb) = (seen_a.lock().unwrap().clone(), seen_b.lock().unwrap().clone());
    assert!(!sb.is_empty(), "the second consumer got partitions");
    let all: BTreeSet<(String, i64)> = sa.iter().chain(sb.iter()).cloned().collect();
    assert_eq!(all.len(), 4000, "no record lost across the rebalance");
    let ua: BTreeSet<_> = sa.iter().cloned().collect();
    let ub: BTreeSet<_> = sb.iter().cloned().collect();
    eprintln!(
        "A delivered {} ({} unique), B delivered {} ({} unique), both {}",
        sa.len(), ua.len(), sb.len(), ub.len(), ua.intersection(&ub).count()
    );
}

/// Members joining and leaving over and over: with the eager protocol every rebalance revokes
/// all of A's partitions and hands some straight back to A, while A still has batches in
/// flight. Per partition key, the first deliveries (both functions log into one sequence) keep
/// the produced order, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn churn_revoking_and_reassigning_partitions_keeps_each_keys_order() {
    common::logs_from_env();
    let kafka = EmbeddedKafka::start(3).unwrap();
    let bs = kafka.bootstrap_servers().to_string();
    kafka.create_topic("c", 4).unwrap();
    let total = 6000;
    produce(&bs, "c", keyed(total, 48)).await;

    // One log for every function: arrival order across consumers is the delivery order.
    let log: Arc<Mutex<Vec<(String, i64, String)>>> = Arc::default();
    let slow = |log: Arc<Mutex<Vec<(String, i64, String)>>>| {
        move |event: &Value| {
            log.lock().unwrap().extend(kafka_records(event).into_iter().map(|(p, o, k, _)| (p, o, k)));
            Reply::delay(Duration::from_millis(20), Reply::empty())
        }
    };
    let fa = FunctionServer::start(slow(log.clone())).await;
    let fb = FunctionServer::start(slow(log.clone())).await;
    let da = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(20, 0);
    settings.parallelization_factor = 4;
    let a = start_stream(source(&bs, "c", "gc"), &fa.url(), settings.clone(), da.path(), None);
    for round in 0..4 {
        let before = log.lock().unwrap().len();
        support::wait::eventually("deliveries to go on", Duration::from_secs(60), || {
            let n = log.lock().unwrap().len();
            if n >= before + 400 || n >= total { Ok(()) } else { Err(format!("{n} delivered (round {round})")) }
        })
        .await;
        let db = tempfile::tempdir().unwrap();
        let b = start_stream(source(&bs, "c", "gc"), &fb.url(), settings.clone(), db.path(), None);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        b.stop().await;
    }
    wait_all_committed(&bs, "gc", "c", 4, Duration::from_secs(120)).await;
    a.stop().await;

    let log = log.lock().unwrap().clone();
    let unique: BTreeSet<(String, i64)> = log.iter().map(|(p, o, _)| (p.clone(), *o)).collect();
    assert_eq!(unique.len(), total, "no record lost across the rebalances");
    let mut seen: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut last: HashMap<(String, String), i64> = HashMap::new();
    let mut violations = Vec::new();
    for (p, o, k) in &log {
        if !seen.insert((p.clone(), *o)) {
            continue;
        }
        if let Some(prev) = last.insert((p.clone(), k.clone()), *o) {
            if *o < prev {
                violations.push(format!("key {k} on {p}: first delivery of {o} after {prev}"));
            }
        }
    }
    eprintln!("{} deliveries of {total} records", log.len());
    assert!(violations.is_empty(), "{} order violations, first: {:?}", violations.len(), &violations[..violations.len().min(5)]);
}

/// Bisect isolates a poison record; it and records older than the age limit go to a
/// `kafka://` destination, one message per record with its original key; the partition moves
/// past them and the group commits everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_and_expired_records_reach_the_kafka_destination_and_are_committed_past() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let bs = kafka.bootstrap_servers().to_string();
    kafka.create_topic("p", 1).unwrap();
    kafka.create_topic("p-dlq", 1).unwrap();
    let old = esmd_api::time::now_ms() - 2 * 3600 * 1000;
    let mut msgs: Vec<Message> = (0..3).map(|i| Message { partition: Some(0), key: Some(format!("old{i}")), value: format!("old {i}"), timestamp: Some(old) }).collect();
    msgs.extend((3..20).map(|i| Message { partition: Some(0), key: Some(format!("k{i}")), value: if i == 11 { "poison".into() } else { format!("ok {i}") }, timestamp: None }));
    produce(&bs, "p", msgs).await;

    let delivered: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let d = delivered.clone();
    let f = FunctionServer::start(move |event| {
        let records = kafka_records(event);
        if records.iter().any(|r| r.3 == "poison") {
            return Reply::error("poison");
        }
        d.lock().unwrap().extend(records.iter().map(|r| r.1));
        Reply::empty()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(20, 50);
    settings.bisect_batch_on_function_error = true;
    settings.maximum_retry_attempts = Some(1);
    settings.maximum_record_age = Some(Duration::from_secs(60));
    let src = source(&bs, "p", "g4");
    let registry = esmd::status::StatusRegistry::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut ctx = common::ctx(&f.url(), esmd_api::OrderedSource::encoder(&*src), &dir.path().join("unused"), &registry, &stop);
    let producer = esmd_kafka::FailureProducer::with_properties(vec![("bootstrap.servers".into(), bs.clone())]).unwrap();
    ctx.destination = Some(Arc::new(esmd_kafka::KafkaDestination::new(producer, "p-dlq".into())));
    let store = Arc::new(esmd::checkpoint::embedded::EmbeddedStore::open(&dir.path().join("c.redb")).unwrap());
    let handle = tokio::spawn(esmd::supervisor::StreamMapping { ctx: Arc::new(ctx), settings: Arc::new(settings), source: src, store }.run());

    wait_all_committed(&bs, "g4", "p", 1, Duration::from_secs(60)).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), handle).await.unwrap().unwrap();

    assert_eq!(*delivered.lock().unwrap(), (3..20).filter(|&i| i != 11).collect::<BTreeSet<i64>>());
    let dlq = read_topic(&bs, "p-dlq", 4, Duration::from_secs(20)).await;
    assert_eq!(dlq.len(), 4, "{dlq:?}");
    let keys: Vec<Option<String>> = dlq.iter().map(|m| m.0.clone()).collect();
    assert_eq!(keys, [Some("old0".into()), Some("old1".into()), Some("old2".into()), Some("k11".into())]);
    let aged: Value = serde_json::from_str(&dlq[0].1).unwrap();
    assert_eq!(aged["requestContext"]["condition"], "RecordAgeExceeded");
    assert!(aged.get("responseContext").is_none());
    assert_eq!(aged["KafkaBatchInfo"]["batchSize"], 3);
    assert_eq!(aged["KafkaBatchInfo"]["recordsInfo"]["p-0"]["firstRecordOffset"], "0");
    assert_eq!(aged["payload"]["offset"], 0);
    let poison: Value = serde_json::from_str(&dlq[3].1).unwrap();
    assert_eq!(poison["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(poison["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(poison["responseContext"]["functionError"], "Unhandled");
    assert_eq!(poison["KafkaBatchInfo"]["batchSize"], 1);
    assert_eq!(poison["KafkaBatchInfo"]["bootstrapServers"], bs.as_str());
    assert_eq!(poison["payload"]["offset"], 11);
    assert_eq!(poison["payload"]["value"], "cG9pc29u");
}

/// ReportBatchItemFailures with Kafka's identifier: the batch is finished up to the named
/// record and retried from it; an identifier naming no record fails the whole batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partial_batch_response_retries_from_the_named_offset() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let bs = kafka.bootstrap_servers().to_string();
    kafka.create_topic("q", 1).unwrap();
    produce(&bs, "q", (0..10).map(|i| Message { partition: Some(0), key: None, value: format!("{i}"), timestamp: None })).await;
    let f = FunctionServer::replies([
        Reply::batch_item_failures([json!({"partition": "q-0", "offset": 999})]),
        Reply::batch_item_failures([json!({"partition": "q-0", "offset": 6}), json!({"partition": "q-0", "offset": 8})]),
        Reply::empty(),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(10, 200);
    settings.report_batch_item_failures = true;
    let m = start_stream(source(&bs, "q", "g5"), &f.url(), settings, dir.path(), None);
    wait_all_committed(&bs, "g5", "q", 1, Duration::from_secs(30)).await;
    m.stop().await;
    let offsets: Vec<Vec<i64>> = f.requests().iter().map(|e| kafka_records(e).into_iter().map(|r| r.1).collect()).collect();
    assert_eq!(offsets, [(0..10).collect::<Vec<_>>(), (0..10).collect(), (6..10).collect()]);
}

/// LATEST skips the backlog; once the group has committed offsets they win over the starting
/// position. (AT_TIMESTAMP needs ListOffsets by time, which the mock cluster does not answer:
/// tests/kafka_tansu.rs covers it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latest_and_committed_offsets_winning() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let bs = kafka.bootstrap_servers().to_string();
    kafka.create_topic("s", 1).unwrap();
    produce(&bs, "s", (0..10).map(|i| Message { partition: Some(0), key: None, value: format!("{i}"), timestamp: None })).await;

    let (f, seen) = offsets_function().await;

    // LATEST, new group: only records written after the partition was assigned.
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(source_from(&bs, "s", "sg", StartFrom::Latest), &f.url(), stream_settings(10, 0), dir.path(), None);
    support::wait::eventually("the partition to be assigned", Duration::from_secs(30), || {
        let state = m.registry.snapshot().get("m").and_then(|s| s.shards.get("s-0")).map(|s| s.state.clone());
        if state == Some(esmd::status::ShardState::Running) { Ok(()) } else { Err(format!("partition state {state:?}")) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    produce(&bs, "s", (10..13).map(|i| Message { partition: Some(0), key: None, value: format!("{i}"), timestamp: None })).await;
    wait_all_committed(&bs, "sg", "s", 1, Duration::from_secs(30)).await;
    m.stop().await;
    assert_eq!(*seen.lock().unwrap(), [10, 11, 12]);

    // The same group with TRIM_HORIZON: its committed offset wins, nothing is replayed.
    seen.lock().unwrap().clear();
    produce(&bs, "s", [Message { partition: Some(0), key: None, value: "13".into(), timestamp: None }]).await;
    let dir2 = tempfile::tempdir().unwrap();
    let m = start_stream(source_from(&bs, "s", "sg", StartFrom::TrimHorizon), &f.url(), stream_settings(10, 0), dir2.path(), None);
    wait_all_committed(&bs, "sg", "s", 1, Duration::from_secs(30)).await;
    m.stop().await;
    assert_eq!(*seen.lock().unwrap(), [13]);
}

/// Filters see the decoded value: only matching records reach the function, and the group
/// commits past the others too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filters_match_the_decoded_value_and_commit_past_the_rest() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let bs = kafka.bootstrap_servers().to_string();
    kafka.create_topic("f", 1).unwrap();
    produce(
        &bs,
        "f",
        (0..30).map(|i| Message { partition: Some(0), key: None, value: if i % 3 == 0 { format!("{{\"kind\":\"order\",\"n\":{i}}}") } else { format!("plain {i}") }, timestamp: None }),
    )
    .await;
    let (f, seen) = offsets_function().await;
    let filter = esmd_filter::FilterCriteria::compile(&[r#"{"value": {"kind": ["order"]}}"#.to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(source(&bs, "f", "fg"), &f.url(), stream_settings(10, 50), dir.path(), Some(Arc::new(filter)));
    wait_all_committed(&bs, "fg", "f", 1, Duration::from_secs(30)).await;
    m.stop().await;
    assert_eq!(*seen.lock().unwrap(), (0..30).filter(|i| i % 3 == 0).collect::<Vec<_>>());
}

/// A partition revoked and handed straight back to the same consumer: the old reader stops, and
/// the next reader starts at the offset the consumer finished (its final commit may be refused
/// while the group rebalances), in order, with nothing skipped. (Messages an old reader takes
/// after the revoke are covered in connectors/kafka's unit tests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_handed_straight_back_is_read_again_from_the_committed_offset() {
    use esmd_api::{ErrorKind, OrderedSource};
    common::logs_from_env();
    let kafka = EmbeddedKafka::start(1).unwrap();
    let bs = kafka.bootstrap_servers().to_string();
    kafka.create_topic("back", 1).unwrap();
    kafka.create_topic("other", 1).unwrap();
    produce(&bs, "back", (0..50).map(|i| Message { partition: Some(0), key: None, value: format!("{i}"), timestamp: None })).await;
    let src = source(&bs, "back", "bg");
    let assigned = || async {
        src.list_shards().await.unwrap().into_iter().next().ok_or_else(|| "not assigned".to_string())
    };
    let shard = support::wait::until("a partition to be assigned", Duration::from_secs(30), assigned).await;
    let mut first = src.open(&shard, StartFrom::TrimHorizon).await.unwrap();
    let mut records = Vec::new();
    let start = std::time::Instant::now();
    while records.len() < 50 {
        assert!(start.elapsed() < Duration::from_secs(30), "read {} of 50", records.len());
        records.extend(first.read(100).await.unwrap().records);
    }
    first.commit(&records[9].position).await.unwrap();
    wait_committed(&bs, "bg", "back", &[10], Duration::from_secs(10)).await;

    // A second member on another topic: the group rebalances, revoking back-0 and assigning it
    // to the same consumer again, whose new fetch starts at the committed offset 10.
    let other = source(&bs, "other", "bg");
    let revoked = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match first.read(100).await {
                Ok(b) => assert!(b.records.is_empty(), "records after the end of the partition: {:?}", b.records.iter().map(|r| r.position.to_string()).collect::<Vec<_>>()),
                Err(e) if e.kind == ErrorKind::Revoked => return,
                Err(e) => panic!("read: {e}"),
            }
        }
    })
    .await;
    assert!(revoked.is_ok(), "the first reader was never revoked");
    drop(first);

    let shard = support::wait::until("the partition to be assigned again", Duration::from_secs(30), assigned).await;
    let mut second = support::wait::until("the partition to open again", Duration::from_secs(30), || async {
        src.open(&shard, StartFrom::TrimHorizon).await.map_err(|e| e.to_string())
    })
    .await;
    let mut offsets = Vec::new();
    let start = std::time::Instant::now();
    while offsets.len() < 40 {
        assert!(start.elapsed() < Duration::from_secs(30), "read {offsets:?}");
        offsets.extend(second.read(100).await.unwrap().records.iter().map(|r| r.position.to_string().parse::<i64>().unwrap()));
    }
    assert_eq!(offsets, (10..50).collect::<Vec<_>>());
    drop(second);
    other.close().await;
    src.close().await;
}

/// A reader whose read is abandoned mid-wait (shutdown, a restarted worker) still hands the
/// partition's queue to the next reader, which reads on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_abandoned_read_hands_the_partition_on() {
    use esmd_api::OrderedSource;
    let kafka = EmbeddedKafka::start(1).unwrap();
    let bs = kafka.bootstrap_servers().to_string();
    kafka.create_topic("h", 1).unwrap();
    let src = source(&bs, "h", "hg");
    let start = std::time::Instant::now();
    let shard = support::wait::until("a partition to be assigned", Duration::from_secs(30), || async {
        src.list_shards().await.unwrap().into_iter().next().ok_or_else(|| "never assigned".to_string())
    })
    .await;
    let mut first = src.open(&shard, StartFrom::TrimHorizon).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(50), first.read(10)).await.is_err(), "nothing to read yet");
    drop(first);

    produce(&bs, "h", (0..5).map(|i| Message { partition: Some(0), key: None, value: format!("{i}"), timestamp: None })).await;
    let mut second = src.open(&shard, StartFrom::TrimHorizon).await.expect("the queue was handed back");
    let mut offsets = Vec::new();
    while offsets.len() < 5 {
        assert!(start.elapsed() < Duration::from_secs(30), "read {offsets:?}");
        offsets.extend(second.read(10).await.unwrap().records.iter().map(|r| r.position.to_string()));
    }
    assert_eq!(offsets, ["0", "1", "2", "3", "4"]);
    drop(second);
    src.close().await;
}
