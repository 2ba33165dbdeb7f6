//! The stream engine against a raw client on an in-memory backlog (`benches/throughput.rs`).
//!
//! Backlog: an in-memory stream (4 shards, 100-byte records). Function: the no-op HTTP server
//! in its own process (`noop.rs`). "raw" reads every shard directly and POSTs batches of 100,
//! encoded as it goes, with 16 concurrent requests (reqwest, pooled connections): the ceiling
//! for this function and machine. "esmd" runs a mapping with batch size 100 and
//! parallelization factor 4 (16 lanes) through the whole engine: polling, lanes, batching,
//! invoking, checkpoints in redb. Both run in the bench's process (the memory stream lives
//! there), so its CPU time over each phase is that client's: the function is elsewhere. Clocks
//! run from the function's first completed request to its last, as in the drains. esmd's phase
//! ends when every shard's checkpoint is at its last record; that time is printed too: it holds
//! the memory reader's long poll (500 ms, `LONG_POLL` in connectors/memory), after which the
//! engine writes the last checkpoints, so it says more about the tail than about throughput.

use super::noop::NoopFunction;
use super::process::own_cpu_time;
use super::table::Drain;
use esmd::checkpoint::embedded::EmbeddedStore;
use esmd::engine::settings::{BatchSettings, StreamSettings};
use esmd::status::StatusRegistry;
use esmd::supervisor::StreamMapping;
use esmd_api::OrderedSource;
use esmd_memory::{MemoryLog, MemoryLogOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub const SHARDS: usize = 4;
pub const BATCH: usize = 100;
pub const CONCURRENCY: usize = 16;
const RECORD_BYTES: usize = 100;

pub const RAW: &str = "raw reqwest";
pub const ESMD: &str = "esmd";

/// The drain's rows and each phase's CPU time (the bench process: the client alone).
pub struct Throughput {
    pub drain: Drain,
    pub cpu: Vec<(String, Duration)>,
    /// esmd's phase, from the mapping's start until every checkpoint is at its shard's end.
    pub esmd_checkpointed: Duration,
}

impl Throughput {
    pub fn print(&self) {
        println!("stream drain: {} records × {RECORD_BYTES} B, {SHARDS} shards, batch {BATCH}, {CONCURRENCY} concurrent invokes, no-op HTTP function in its own process on 127.0.0.1\n", self.drain.n);
        self.drain.print();
        for (name, cpu) in &self.cpu {
            println!("  CPU {:.2} s ({:.2} s per million records): {name}", cpu.as_secs_f64(), cpu.as_secs_f64() * 1e6 / self.drain.n.max(1) as f64);
        }
        println!("  esmd: mapping start to every checkpoint at its shard's end {:.2} s", self.esmd_checkpointed.as_secs_f64());
    }
}

fn backlog(records: usize) -> MemoryLog {
    let log = MemoryLog::new(MemoryLogOptions { stream_name: "bench".into(), shards: SHARDS, ..Default::default() });
    let payload = vec![b'x'; RECORD_BYTES];
    for i in 0..records {
        log.append(format!("key-{}", i % 1000).as_bytes(), payload.clone());
    }
    log
}

/// Drains `records` records with the raw client, then with esmd.
pub async fn drain(records: usize) -> Throughput {
    let function = NoopFunction::start("").await;
    let log = backlog(records);
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(CONCURRENCY).tcp_nodelay(true).build().expect("http client");
    // Opens the pool's connections and warms the function, as esmd's first batches will.
    raw(&backlog(1_000), &client, &function.url).await;
    function.reset().await;
    let cpu = own_cpu_time();
    raw(&log, &client, &function.url).await;
    let raw_cpu = own_cpu_time() - cpu;
    let raw_t = function.span().await;
    function.reset().await;
    let cpu = own_cpu_time();
    let esmd_checkpointed = esmd_run(&log, &function.url).await;
    let esmd_cpu = own_cpu_time() - cpu;
    let esmd_t = function.span().await;
    Throughput {
        drain: Drain { n: records, unit: "records", vs: "vs raw".into(), rows: vec![(RAW.into(), raw_t), (ESMD.into(), esmd_t)] },
        cpu: vec![(RAW.into(), raw_cpu), (ESMD.into(), esmd_cpu)],
        esmd_checkpointed,
    }
}

async fn raw(log: &MemoryLog, client: &reqwest::Client, url: &str) {
    let encoder = log.encoder();
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for shard in log.shards() {
        for chunk in log.records(&shard).chunks(BATCH) {
            let event = encoder.encode_event(&shard, chunk, None);
            let permit = slots.clone().acquire_owned().await.expect("semaphore");
            let (client, url) = (client.clone(), url.to_string());
            tasks.spawn(async move {
                let r = client.post(&url).body(event).send().await.expect("post");
                assert!(r.status().is_success());
                let _ = r.bytes().await;
                drop(permit);
            });
        }
    }
    while tasks.join_next().await.is_some() {}
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
    let ctx = super::mapping_ctx("bench", "memory", url, CONCURRENCY, log.encoder(), &registry, stop.clone());
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
