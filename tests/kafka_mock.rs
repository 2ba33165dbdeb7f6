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
use support::kafka::{committed, kafka_records, produce, wait_all_committed, Message};

fn source(bootstrap: &str, topic: &str, group: &str) -> Arc<KafkaSource> {
    let config: KafkaSourceConfig = serde_json::from_value(json!({
        "bootstrap_servers": [bootstrap], "topic": topic, "consumer_group_id": group,
        // The mock cluster answers fast; keep group joins and rebalances short.
        "properties": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}
    }))
    .expect("config");
    Arc::new(KafkaSource::new(KafkaOptions { mapping: "m".into(), config, starting_position: StartFrom::TrimHorizon }).expect("source"))
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

    // First run: batches below offset 100 succeed, the one holding 100 never answers.
    let f = FunctionServer::start(|event| {
        let records = kafka_records(event);
        if records.iter().any(|r| r.1 >= 100) {
            Reply::delay(Duration::from_secs(120), Reply::empty())
        } else {
            Reply::empty()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(source(&bs, "t", "g2"), &f.url(), stream_settings(10, 0), dir.path(), None);
    let start = std::time::Instant::now();
    while committed(&bs, "g2", "t", 1).await != [100] {
        assert!(start.elapsed() < Duration::from_secs(30), "never committed 100: {:?}", committed(&bs, "g2", "t", 1).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    m.handle.abort();
    let _ = m.handle.await;
    assert_eq!(committed(&bs, "g2", "t", 1).await, [100], "nothing past the unfinished batch");

    // Second run, same group: starts exactly at 100 and finishes the rest.
    let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
    let s = seen.clone();
    let f2 = FunctionServer::start(move |event| {
        s.lock().unwrap().extend(kafka_records(event).into_iter().map(|r| r.1));
        Reply::empty()
    })
    .await;
    let dir2 = tempfile::tempdir().unwrap();
    let m2 = start_stream(source(&bs, "t", "g2"), &f2.url(), stream_settings(10, 0), dir2.path(), None);
    wait_all_committed(&bs, "g2", "t", 1, Duration::from_secs(30)).await;
    m2.stop().await;
    assert_eq!(*seen.lock().unwrap(), (100..300).collect::<Vec<_>>());
}
