//! Building and watching mappings for the engine tests: an in-memory source, a real HTTP
//! function (support::function), the embedded checkpoint store and a file destination.
#![allow(dead_code)]

use base64::Engine as _;
use esmd::checkpoint::embedded::EmbeddedStore;
use esmd::checkpoint::CheckpointStore;
use esmd::destination::file::FileDestination;
use esmd::engine::context::{MappingCtx, RecordFilter};
use esmd::engine::settings::{BatchSettings, QueueSettings, RetryBackoff, StreamSettings};
use esmd::invoke::http::{HttpInvoker, HttpInvokerOptions};
use esmd::metrics::MappingMetrics;
use esmd::status::StatusRegistry;
use esmd::supervisor::{QueueMapping, StreamMapping};
use esmd_api::{OrderedSource, QueueSource};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// esmd's logs on the test's output, filtered by `RUST_LOG` (nothing when it is unset).
pub fn logs_from_env() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
    }
}

pub fn fast_backoff() -> RetryBackoff {
    RetryBackoff { min: Duration::from_millis(1), max: Duration::from_millis(20) }
}

pub fn stream_settings(batch_size: usize, window_ms: u64) -> StreamSettings {
    StreamSettings {
        batch: BatchSettings { batch_size, window: Duration::from_millis(window_ms), ..Default::default() },
        backoff: fast_backoff(),
        ..Default::default()
    }
}

pub fn queue_settings(batch_size: usize, concurrency: usize) -> QueueSettings {
    QueueSettings {
        batch: BatchSettings { batch_size, window: Duration::ZERO, ..Default::default() },
        maximum_concurrency: concurrency,
        receive_wait: Duration::from_millis(100),
        backoff: fast_backoff(),
        ..Default::default()
    }
}

pub struct Mapping {
    pub registry: StatusRegistry,
    pub stop: CancellationToken,
    pub handle: JoinHandle<()>,
    pub destination: PathBuf,
}

impl Mapping {
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle).await.expect("mapping stops").expect("no panic");
    }

    pub fn checkpoint(&self, shard: &str) -> Option<String> {
        self.registry.snapshot().get("m")?.shards.get(shard)?.checkpoint.clone()
    }

    /// Waits until the shard's checkpoint is `position`.
    pub async fn wait_checkpoint(&self, shard: &str, position: &str, timeout: Duration) {
        crate::support::wait::eventually_every(&format!("the checkpoint of {shard} to reach {position}"), timeout, Duration::from_millis(5), || {
            match self.checkpoint(shard) {
                Some(cp) if cp == position => Ok(()),
                cp => Err(format!("it is {cp:?}\n{:#?}", self.registry.snapshot())),
            }
        })
        .await
    }

    /// Failure records written to the file destination so far.
    pub fn failures(&self) -> Vec<Value> {
        read_failures(&self.destination)
    }
}

/// The failure records written so far. A last line without its newline is still being
/// written (the test reads while the mapping runs) and is left for the next look.
pub fn read_failures(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().map(|l| serde_json::from_str(l).expect("failure record is JSON")).collect()
}

pub fn ctx(url: &str, encoder: Arc<dyn esmd_api::EventEncoder>, destination: &Path, registry: &StatusRegistry, stop: &CancellationToken) -> MappingCtx {
    let invoker = HttpInvoker::new(HttpInvokerOptions {
        url: url.to_string(),
        timeout: Duration::from_secs(10),
        max_concurrency: 64,
        headers: vec![],
        function_arn: Some("arn:aws:lambda:us-east-1:000000000000:function:f".into()),
    })
    .expect("invoker");
    MappingCtx {
        name: "m".into(),
        invoker: Arc::new(invoker),
        encoder,
        destination: Some(Arc::new(FileDestination::new(destination))),
        filter: None,
        metrics: MappingMetrics::new("m", "memory"),
        status: registry.mapping("m", "memory"),
        shutdown: stop.child_token(),
    }
}

/// Starts a stream mapping over `source` with its checkpoints in `dir`.
pub fn start_stream(
    source: Arc<dyn OrderedSource>,
    url: &str,
    settings: StreamSettings,
    dir: &Path,
    filter: Option<Arc<dyn RecordFilter>>,
) -> Mapping {
    let registry = StatusRegistry::default();
    let stop = CancellationToken::new();
    let destination = dir.join("failures.jsonl");
    let mut ctx = ctx(url, source.encoder(), &destination, &registry, &stop);
    ctx.filter = filter;
    let store: Arc<dyn CheckpointStore> = Arc::new(EmbeddedStore::open(&dir.join("checkpoints.redb")).expect("store"));
    let mapping = StreamMapping { ctx: Arc::new(ctx), settings: Arc::new(settings), source, store };
    let handle = tokio::spawn(mapping.run());
    Mapping { registry, stop, handle, destination }
}

pub fn start_queue(source: Arc<dyn QueueSource>, url: &str, settings: QueueSettings, dir: &Path) -> Mapping {
    let registry = StatusRegistry::default();
    let stop = CancellationToken::new();
    let destination = dir.join("failures.jsonl");
    let ctx = ctx(url, source.encoder(), &destination, &registry, &stop);
    let mapping = QueueMapping { ctx: Arc::new(ctx), settings: Arc::new(settings), source };
    let handle = tokio::spawn(mapping.run());
    Mapping { registry, stop, handle, destination }
}

/// (sequenceNumber, partitionKey, data) of each Kinesis record in an event.
pub fn kinesis_records(event: &Value) -> Vec<(String, String, String)> {
    event["Records"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    let k = &r["kinesis"];
                    let data = base64::engine::general_purpose::STANDARD.decode(k["data"].as_str().unwrap_or_default()).unwrap_or_default();
                    (
                        k["sequenceNumber"].as_str().unwrap_or_default().to_string(),
                        k["partitionKey"].as_str().unwrap_or_default().to_string(),
                        String::from_utf8_lossy(&data).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// (messageId, body) of each SQS record in an event.
pub fn sqs_records(event: &Value) -> Vec<(String, String)> {
    event["Records"]
        .as_array()
        .map(|rs| rs.iter().map(|r| (r["messageId"].as_str().unwrap_or_default().to_string(), r["body"].as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}
