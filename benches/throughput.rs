//! Throughput of the stream engine against a raw client on the same backlog, in one run.
//!
//!     cargo bench --bench throughput [-- RECORDS]
//!
//! Backlog: an in-memory stream (4 shards, 100-byte records). Function: a no-op HTTP server
//! on 127.0.0.1. "raw" reads every shard directly and POSTs pre-encoded batches of 100 with
//! 16 concurrent requests (reqwest, pooled connections): the ceiling for this function and
//! machine. "esmd" runs a mapping with batch size 100 and parallelization factor 4 (16 lanes)
//! through the whole engine: polling, lanes, batching, invoking, checkpoints in redb.

use bytes::Bytes;
use esmd::checkpoint::embedded::EmbeddedStore;
use esmd::engine::context::MappingCtx;
use esmd::engine::settings::{BatchSettings, StreamSettings};
use esmd::invoke::http::{HttpInvoker, HttpInvokerOptions};
use esmd::metrics::MappingMetrics;
use esmd::status::StatusRegistry;
use esmd::supervisor::StreamMapping;
use esmd_api::OrderedSource;
use esmd_memory::{MemoryLog, MemoryLogOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

const SHARDS: usize = 4;
const BATCH: usize = 100;
const CONCURRENCY: usize = 16;

async fn function() -> (String, Arc<AtomicU64>) {
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: Bytes| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(body.len() as u64, Ordering::Relaxed);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn backlog(records: usize) -> MemoryLog {
    let log = MemoryLog::new(MemoryLogOptions { stream_name: "bench".into(), shards: SHARDS, ..Default::default() });
    let payload = vec![b'x'; 100];
    for i in 0..records {
        log.append(format!("key-{}", i % 1000).as_bytes(), payload.clone());
    }
    log
}

async fn raw(log: &MemoryLog, url: &str) -> Duration {
    let client = reqwest::Client::new();
    let encoder = log.encoder();
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for shard in log.shards() {
        for chunk in log.records(&shard).chunks(BATCH) {
            let event = encoder.encode_event(&shard, chunk, None);
            let permit = slots.clone().acquire_owned().await.expect("semaphore");
            let (client, url) = (client.clone(), url.to_string());
            tasks.spawn(async move {
                let r = client.post(&url).body(event).send().await.expect("post");
                assert!(r.status().is_success());
                drop(permit);
            });
        }
    }
    while tasks.join_next().await.is_some() {}
    start.elapsed()
}

async fn esmd_run(log: &MemoryLog, url: &str) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = StatusRegistry::default();
    let stop = CancellationToken::new();
    let last: Vec<(String, String)> = log
        .shards()
        .iter()
        .map(|s| (s.to_string(), log.records(s).last().map(|r| r.position.to_string()).unwrap_or_default()))
        .collect();
    let invoker = HttpInvoker::new(HttpInvokerOptions {
        url: url.to_string(),
        timeout: Duration::from_secs(30),
        max_concurrency: CONCURRENCY,
        headers: vec![],
        function_arn: None,
    })
    .expect("invoker");
    let ctx = MappingCtx {
        name: "bench".into(),
        invoker: Arc::new(invoker),
        encoder: log.encoder(),
        destination: None,
        filter: None,
        metrics: MappingMetrics::new("bench", "memory"),
        status: registry.mapping("bench", "memory"),
        shutdown: stop.clone(),
    };
    let settings = StreamSettings {
        batch: BatchSettings { batch_size: BATCH, window: Duration::ZERO, ..Default::default() },
        parallelization_factor: CONCURRENCY / SHARDS,
        ..Default::default()
    };
    let store = EmbeddedStore::open(&dir.path().join("cp.redb")).expect("store");
    let start = Instant::now();
    let handle = tokio::spawn(
        StreamMapping { ctx: Arc::new(ctx), settings: Arc::new(settings), source: Arc::new(log.clone()), store: Arc::new(store) }.run(),
    );
    loop {
        let snap = registry.snapshot();
        let done = snap.get("bench").is_some_and(|m| last.iter().all(|(s, p)| m.shards.get(s).and_then(|x| x.checkpoint.as_deref()) == Some(p)));
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();
    stop.cancel();
    let _ = handle.await;
    elapsed
}

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run then.
    let benching = std::env::args().any(|a| a == "--bench");
    let records: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(if benching { 200_000 } else { 2_000 });
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (url, _) = function().await;
        let log = backlog(records);
        // Warm the connection pool and the function once.
        raw(&backlog(1_000), &url).await;
        let raw_t = raw(&log, &url).await;
        let esmd_t = esmd_run(&log, &url).await;
        let rate = |d: Duration| records as f64 / d.as_secs_f64();
        println!("stream drain: {records} records × 100 B, {SHARDS} shards, batch {BATCH}, {CONCURRENCY} concurrent invokes, no-op HTTP function on 127.0.0.1");
        println!("| client | seconds | records/s | batches/s | vs raw |");
        println!("|---|---|---|---|---|");
        for (name, t) in [("raw reqwest", raw_t), ("esmd", esmd_t)] {
            println!("| {name} | {:.2} | {:.0} | {:.0} | {:.0}% |", t.as_secs_f64(), rate(t), rate(t) / BATCH as f64, 100.0 * raw_t.as_secs_f64() / t.as_secs_f64());
        }
    });
}
