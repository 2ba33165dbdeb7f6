//! Draining a Kafka backlog: esmd against the raw rdkafka consumer, same backlog, one run.
//!
//!     cargo bench --bench kafka_drain [-- RECORDS]        (default 1,000,000)
//!
//! Backlog: RECORDS messages of 1 KB in 256 partitions of librdkafka's in-process mock cluster,
//! 1000 distinct keys, spread round-robin. The mock keeps at most 5 MB (and 100,000 messages) per partition and
//! silently trims older ones, so a 1 GB backlog needs about 200 partitions or more; the bench
//! checks that nothing was trimmed. "raw" is a StreamConsumer in its own group reading every message and
//! touching its payload: the ceiling of the client on this machine. "esmd" runs a mapping over
//! the same topic in another group, into a no-op HTTP function on 127.0.0.1, until the group
//! has committed every partition's end. Clocks run from the first record delivered to the last
//! (raw: received; esmd: the function's first and last request), so the group join, the same
//! for both, is not counted.

use bytes::Bytes;
use esmd::checkpoint::embedded::EmbeddedStore;
use esmd::engine::context::MappingCtx;
use esmd::engine::settings::{BatchSettings, StreamSettings};
use esmd::invoke::http::{HttpInvoker, HttpInvokerOptions};
use esmd::metrics::MappingMetrics;
use esmd::status::StatusRegistry;
use esmd::supervisor::StreamMapping;
use esmd_api::{OrderedSource, StartFrom};
use esmd_kafka::mock::EmbeddedKafka;
use esmd_kafka::{KafkaOptions, KafkaSource, KafkaSourceConfig};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "bench";
const PARTITIONS: i32 = 256;
const VALUE_BYTES: usize = 1024;

type Span = Arc<Mutex<(Option<Instant>, Option<Instant>)>>;

/// A no-op function; remembers when the first and the last request arrived.
async fn function() -> (String, Span, Arc<AtomicU64>) {
    let span: Span = Arc::default();
    let bytes = Arc::new(AtomicU64::new(0));
    let (f, b) = (span.clone(), bytes.clone());
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: Bytes| {
            let (f, b) = (f.clone(), b.clone());
            async move {
                let now = Instant::now();
                let mut span = f.lock().unwrap();
                if let (Some(first), Some(last)) = (span.0, span.1) {
                    // Long pauses between requests are part of the result; say where they were.
                    if (now - last) > Duration::from_millis(500) {
                        eprintln!("  (no request for {:.1} s before {:.2} s)", (now - last).as_secs_f64(), (now - first).as_secs_f64());
                    }
                }
                span.0.get_or_insert(now);
                span.1 = Some(now);
                drop(span);
                b.fetch_add(body.len() as u64, Ordering::Relaxed);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, span, bytes)
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
    let (url, span, _bytes) = function().await;
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
    let invoker = HttpInvoker::new(HttpInvokerOptions { url, timeout: Duration::from_secs(30), max_concurrency: 64, headers: vec![], function_arn: None }).expect("invoker");
    let ctx = MappingCtx {
        name: group.into(),
        invoker: Arc::new(invoker),
        encoder: source.encoder(),
        destination: None,
        filter: None,
        metrics: MappingMetrics::new(group, "kafka"),
        status: registry.mapping(group, "kafka"),
        shutdown: stop.child_token(),
    };
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
    let elapsed = match *span.lock().unwrap() {
        (Some(first), Some(last)) => last - first,
        _ => Duration::ZERO,
    };
    stop.cancel();
    let _ = handle.await;
    elapsed
}

fn main() {
    if std::env::var("BENCH_KAFKA_DEBUG").is_ok() {
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter("debug").init();
    }
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run then.
    let benching = std::env::args().any(|a| a == "--bench");
    let records: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(if benching { 1_000_000 } else { 5_000 });
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
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

        let raw_t = raw(&bs, records).await;
        let rows = [
            ("esmd batch 100, 1 lane/partition", esmd(&bs, "esmd-100", 100, 1, &high).await),
            ("esmd batch 1000, 1 lane/partition", esmd(&bs, "esmd-1000", 1000, 1, &high).await),
            ("esmd batch 1000, 4 lanes/partition", esmd(&bs, "esmd-1000x4", 1000, 4, &high).await),
        ];
        let rate = |d: Duration| records as f64 / d.as_secs_f64().max(1e-9);
        println!("| consumer | seconds | records/s | vs raw |");
        println!("|---|---:|---:|---:|");
        println!("| raw rdkafka StreamConsumer | {:.2} | {:.0} | 100% |", raw_t.as_secs_f64(), rate(raw_t));
        for (name, d) in rows {
            println!("| {name} | {:.2} | {:.0} | {:.0}% |", d.as_secs_f64(), rate(d), 100.0 * rate(d) / rate(raw_t));
        }
    });
}
