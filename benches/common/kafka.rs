//! Draining a Kafka backlog: esmd against the raw rdkafka consumer, same backlog, one run.
//!
//! Backlog: N messages of 1 KB in 256 partitions of librdkafka's in-process mock cluster,
//! 1000 distinct keys, spread round-robin. The mock keeps at most 5 MB (and 100,000 messages)
//! per partition and silently trims older ones, so a 1 GB backlog needs about 200 partitions or
//! more; the drain checks that nothing was trimmed. "raw" is a StreamConsumer in its own group
//! reading every message and touching its payload: the ceiling of the client on this machine.
//! "esmd" runs a mapping over the same topic in another group, into a no-op HTTP function on
//! 127.0.0.1, until the group has committed every partition's end. Clocks run from the first
//! record delivered to the last (raw: received; esmd: the function's first and last request),
//! so the group join, the same for both, is not counted.

use super::function::Function;
use super::table::Drain;
use esmd::checkpoint::embedded::EmbeddedStore;
use esmd::engine::settings::{BatchSettings, StreamSettings};
use esmd::status::StatusRegistry;
use esmd::supervisor::StreamMapping;
use esmd_api::{OrderedSource, StartFrom};
use esmd_kafka::mock::EmbeddedKafka;
use esmd_kafka::{KafkaOptions, KafkaSource, KafkaSourceConfig};
use esmd_kafka::rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use esmd_kafka::rdkafka::message::Message;
use esmd_kafka::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "bench";
const PARTITIONS: i32 = 256;
const VALUE_BYTES: usize = 1024;

/// The raw row's name; esmd rows are named by [`esmd_row`].
pub const RAW: &str = "raw rdkafka StreamConsumer";

pub fn esmd_row(batch: usize, lanes: usize) -> String {
    format!("esmd batch {batch}, {lanes} lane{}/partition", if lanes == 1 { "" } else { "s" })
}

/// Seeds a fresh mock cluster with `records` messages, drains it with the raw consumer and
/// with esmd once per `(batch size, lanes per partition)`.
pub async fn drain(records: usize, configs: &[(usize, usize)]) -> Drain {
    let kafka = EmbeddedKafka::start(1).expect("mock cluster");
    kafka.create_topic(TOPIC, PARTITIONS).expect("topic");
    let seeding = Instant::now();
    kafka.seed(TOPIC, records, 1000, VALUE_BYTES, Some(PARTITIONS), |i| format!("{{\"n\":{i}}}").into_bytes()).await.expect("seed");
    let bs = kafka.bootstrap_servers().to_string();
    let (low, high): (Vec<i64>, Vec<i64>) = {
        let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bs).create().expect("consumer");
        (0..PARTITIONS).map(|p| c.fetch_watermarks(TOPIC, p, Duration::from_secs(10)).expect("watermarks")).unzip()
    };
    assert_eq!(high.iter().sum::<i64>() as usize, records);
    assert!(low.iter().all(|&l| l == 0), "the mock cluster trimmed the backlog (5 MB per partition): use fewer records or more partitions");
    println!("backlog: {records} records of {VALUE_BYTES} B in {PARTITIONS} partitions (seeded in {:.1} s)\n", seeding.elapsed().as_secs_f64());

    let cpu = super::process::own_cpu_time();
    let mut rows = vec![(RAW.to_string(), raw(&bs, records).await)];
    let mut cpu_seconds = vec![(super::process::own_cpu_time() - cpu).as_secs_f64()];
    for &(batch, lanes) in configs {
        let group = format!("esmd-{batch}x{lanes}");
        let cpu = super::process::own_cpu_time();
        rows.push((esmd_row(batch, lanes), esmd(&bs, &group, batch, lanes, &high).await));
        cpu_seconds.push((super::process::own_cpu_time() - cpu).as_secs_f64());
    }
    // The whole phase (group join, draining, the commit check): where a drain's time goes.
    for ((name, _), cpu) in rows.iter().zip(&cpu_seconds) {
        println!("  CPU {cpu:.1} s: {name}");
    }
    Drain { n: records, unit: "records", vs: "vs raw".into(), rows }
}

async fn raw(bootstrap: &str, records: usize) -> Duration {
    let mut cfg = ClientConfig::new();
    let cfg = cfg
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "raw-bench")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let consumer: StreamConsumer = cfg.create().expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    let mut seen = 0usize;
    let mut touched = 0u64;
    let mut first = None;
    while seen < records {
        let m = consumer.recv().await.expect("message");
        first.get_or_insert_with(Instant::now);
        touched += m.payload().map_or(0, |p| p.len() as u64);
        seen += 1;
    }
    assert!(touched >= (records * VALUE_BYTES) as u64);
    first.map(|f| f.elapsed()).unwrap_or_default()
}

fn committed_all(bootstrap: &str, group: &str, high: &[i64]) -> bool {
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).expect("committed");
    (0..PARTITIONS).all(|p| matches!(got.find_partition(TOPIC, p).map(|e| e.offset()), Some(Offset::Offset(o)) if o == high[p as usize]))
}

async fn esmd(bootstrap: &str, group: &str, batch_size: usize, lanes: usize, high: &[i64]) -> Duration {
    // The function counts bytes: done is decided by the group's commits, not by the count.
    let function = Function::start(b"", true).await;
    let mut props = serde_json::json!({});
    // BENCH_KAFKA_DEBUG=cgrp,fetch logs librdkafka's view to stderr.
    if let Ok(d) = std::env::var("BENCH_KAFKA_DEBUG") {
        props["debug"] = serde_json::json!(d);
    }
    let config: KafkaSourceConfig = serde_json::from_value(serde_json::json!({"bootstrap_servers": [bootstrap], "topic": TOPIC, "consumer_group_id": group, "properties": props})).expect("config");
    let source = Arc::new(KafkaSource::new(KafkaOptions { mapping: group.into(), config, starting_position: StartFrom::TrimHorizon }).expect("source"));
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = StatusRegistry::default();
    let stop = CancellationToken::new();
    let ctx = super::mapping_ctx(group, "kafka", &function.url, 64, source.encoder(), &registry, stop.child_token());
    let settings = StreamSettings {
        batch: BatchSettings { batch_size, window: Duration::ZERO, ..Default::default() },
        parallelization_factor: lanes,
        ..Default::default()
    };
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("c.redb")).expect("store"));
    let handle = tokio::spawn(StreamMapping { ctx: Arc::new(ctx), settings: Arc::new(settings), source, store }.run());
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (bs, g, h) = (bootstrap.to_string(), group.to_string(), high.to_vec());
        if tokio::task::spawn_blocking(move || committed_all(&bs, &g, &h)).await.expect("join") {
            break;
        }
    }
    // First request to last: the commit check's polling is not counted.
    let elapsed = function.span();
    stop.cancel();
    let _ = handle.await;
    elapsed
}
