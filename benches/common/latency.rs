//! Idle → invoke latency with a batching window of 0: how long after a record is appended to an
//! idle in-memory stream the function receives it. The reader long-polls (`LONG_POLL` in
//! connectors/memory) and is woken by the append through a `Notify`, so no poll interval is
//! part of the latency: what is measured is the engine (read, lanes, batch, encode) plus the
//! HTTP call. "raw" is the floor: a plain reqwest POST of the same event to the same function,
//! measured the same way (append/post → the function's handler runs).

use super::function::Function;
use esmd::checkpoint::embedded::EmbeddedStore;
use esmd::engine::settings::{BatchSettings, StreamSettings};
use esmd::status::StatusRegistry;
use esmd::supervisor::StreamMapping;
use esmd_api::OrderedSource;
use esmd_memory::{MemoryLog, MemoryLogOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A request that takes longer than this is a hang, not a latency.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Latencies of `samples` single records through esmd and of as many raw POSTs.
pub struct Latencies {
    pub esmd: Vec<Duration>,
    pub raw: Vec<Duration>,
}

/// The `q` quantile (0..=1) of `samples`, nearest rank.
pub fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len().max(1));
    s.get(rank - 1).copied().unwrap_or_default()
}

/// Gaps between samples: 5–150 ms, so some appends find the reader inside a long poll and
/// some right as it returns empty and polls again. A fixed xorshift: runs are comparable.
struct Gaps(u64);

impl Gaps {
    fn next(&mut self) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(5 + self.0 % 146)
    }
}

pub async fn measure(samples: usize) -> Latencies {
    let function = Function::start().await;
    let log = MemoryLog::new(MemoryLogOptions { stream_name: "idle".into(), shards: 1, ..Default::default() });
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = StatusRegistry::default();
    let stop = CancellationToken::new();
    let ctx = super::mapping_ctx("idle", "memory", &function.url, 16, log.encoder(), &registry, stop.clone());
    // AWS's defaults for a stream: batch 100, window 0.
    let settings = StreamSettings { batch: BatchSettings { batch_size: 100, window: Duration::ZERO, ..Default::default() }, ..Default::default() };
    let store = EmbeddedStore::open(&dir.path().join("cp.redb")).expect("checkpoint store");
    let handle = tokio::spawn(
        StreamMapping { ctx: Arc::new(ctx), settings: Arc::new(settings), source: Arc::new(log.clone()), store: Arc::new(store) }.run(),
    );

    let payload = vec![b'x'; 100];
    let mut gaps = Gaps(0x2545_F491_4F6C_DD1D);
    // The first record opens the invoker's connection; later ones find it pooled, as raw does.
    log.append(b"warm-up", payload.clone());
    assert!(function.next_request(TIMEOUT).await, "esmd did not invoke the function");
    let mut esmd = Vec::with_capacity(samples);
    for i in 0..samples {
        tokio::time::sleep(gaps.next()).await;
        let sent = Instant::now();
        log.append(format!("k{i}").as_bytes(), payload.clone());
        assert!(function.next_request(TIMEOUT).await, "esmd did not invoke the function within {TIMEOUT:?}");
        esmd.push(function.last().expect("a request arrived") - sent);
    }
    stop.cancel();
    let _ = handle.await;

    // The same one-record event, POSTed by a pooled client after the same gaps.
    let shard = log.shards()[0].clone();
    let event = log.encoder().encode_event(&shard, &log.records(&shard)[..1], None);
    let client = reqwest::Client::new();
    client.post(&function.url).body(event.clone()).send().await.expect("warm-up POST");
    function.next_request(TIMEOUT).await;
    let mut raw = Vec::with_capacity(samples);
    for _ in 0..samples {
        tokio::time::sleep(gaps.next()).await;
        let sent = Instant::now();
        let response = client.post(&function.url).body(event.clone()).send().await.expect("POST");
        assert!(response.status().is_success());
        assert!(function.next_request(TIMEOUT).await);
        raw.push(function.last().expect("a request arrived") - sent);
    }
    Latencies { esmd, raw }
}
