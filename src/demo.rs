//! `esmd demo`: everything in one process, no servers needed.
//!
//! A backlog over several shards, with a few poison records the function rejects and a few
//! records older than the mapping's maximum age, sits in a source that runs in process: an
//! embedded Kafka (librdkafka's mock cluster, read through the real consumer-group path) or,
//! with `--source memory`, an in-memory Kinesis-shaped stream. Each comes from its connector's
//! embedded backlog. A local HTTP function receives AWS-shaped events. The
//! mapping runs with parallelization, bisection, retries, a maximum record age and a file
//! destination; the demo prints what happened.

use crate::admin::{self, AdminState};
use crate::checkpoint::embedded::EmbeddedStore;
use crate::destination::file::FileDestination;
use crate::engine::context::MappingCtx;
use crate::engine::settings::{BatchSettings, RetryBackoff, StreamSettings};
use crate::invoke::http::{HttpInvoker, HttpInvokerOptions};
use crate::metrics::MappingMetrics;
use crate::status::StatusRegistry;
use crate::supervisor::StreamMapping;
use axum::body::Bytes as BodyBytes;
use axum::http::StatusCode;
use base64::Engine as _;
use crate::connectors;
use esmd_api::connector::{BacklogRecord, EmbeddedBacklog};
use esmd_api::time::now_ms;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Where the demo's backlog lives: a source type whose connector can run it in process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoSource(&'static str);

impl DemoSource {
    /// `kafka` (an embedded cluster read by a consumer group), `memory` (an in-memory
    /// Kinesis-shaped stream); `None` when this build cannot embed that source.
    pub fn named(name: &str) -> Option<DemoSource> {
        connectors::embedded().into_iter().find(|n| *n == name).map(DemoSource)
    }

    pub fn name(self) -> &'static str {
        self.0
    }

    /// `--source`'s values, with the sources this build can embed listed in `--help`.
    fn parser() -> impl clap::builder::TypedValueParser<Value = DemoSource> {
        use clap::builder::TypedValueParser;
        clap::builder::PossibleValuesParser::new(connectors::embedded()).try_map(|name| DemoSource::named(&name).ok_or_else(|| format!("{name}: not an embedded source")))
    }
}

impl Default for DemoSource {
    /// A broker's consumer group when the build has one, else the in-memory stream.
    fn default() -> Self {
        DemoSource(connectors::embedded().first().copied().unwrap_or("memory"))
    }
}

impl fmt::Display for DemoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct DemoOptions {
    /// Where the backlog lives.
    #[arg(long, value_parser = DemoSource::parser(), default_value_t = DemoSource::default())]
    pub source: DemoSource,
    /// Records in the backlog.
    #[arg(long, default_value_t = 5000)]
    pub records: usize,
    /// Shards of the in-memory stream.
    #[arg(long, default_value_t = 4)]
    pub shards: usize,
    /// Every Nth record is poison (the function fails any batch holding one).
    #[arg(long, default_value_t = 997)]
    pub poison_every: usize,
    /// Records written two hours in the past, beyond the one-hour maximum record age.
    #[arg(long, default_value_t = 3)]
    pub expired: usize,
    #[arg(long, default_value_t = 4)]
    pub parallelization_factor: usize,
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Admin endpoint (/metrics, /status) while the demo runs; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: String,
    /// Where checkpoints and the failure file go. Kept after the demo so the failure records
    /// can be read; each run starts it afresh.
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_seconds: u64,
    /// Once done, keep the admin endpoint (/metrics, /status) up until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
}

/// `esmd demo`'s state directory, in the working directory.
pub const DEFAULT_STATE_DIR: &str = "esmd-demo";

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            source: DemoSource::default(),
            records: 5000,
            shards: 4,
            poison_every: 997,
            expired: 3,
            parallelization_factor: 4,
            batch_size: 100,
            listen: "127.0.0.1:9464".into(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            timeout_seconds: 120,
            serve: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo: {0}")]
    Setup(String),
    #[error("demo: not finished after {0:?} (see /status)")]
    Timeout(Duration),
}

/// What the demo saw, printed at the end.
#[derive(Debug, Default)]
pub struct DemoReport {
    pub records: usize,
    pub shards: usize,
    pub delivered: u64,
    pub invocations: u64,
    pub failed_invocations: u64,
    /// Positions of the poison and expired records: sequence numbers, or `partition@offset`.
    pub poison_written: Vec<String>,
    pub expired_written: Vec<String>,
    /// (condition, first position, batchSize) per failure record.
    pub failures: Vec<(String, String, u64)>,
    pub failure_file: PathBuf,
    pub peak_iterator_age_ms: u64,
    pub elapsed: Duration,
    pub admin: String,
    pub source: String,
    /// The admin endpoint stayed up after the report (`--serve`).
    pub served: bool,
}

impl DemoReport {
    /// Every poison and expired record reached the destination as a batch of its own, and
    /// every other record reached the function.
    pub fn isolated_all(&self) -> bool {
        let named: Vec<&String> = self.failures.iter().filter(|f| f.2 == 1).map(|f| &f.1).collect();
        self.poison_written.iter().chain(&self.expired_written).all(|p| named.contains(&p))
            && self.delivered as usize == self.records - self.poison_written.len() - self.expired_written.len()
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(f, "esmd demo: {} records over {} shards of {} in {:.2} s ({:.0} records/s)", self.records, self.shards, self.source, secs, self.records as f64 / secs)?;
        writeln!(f, "  delivered to the function : {}", self.delivered)?;
        writeln!(f, "  invocations               : {} ({} failed)", self.invocations, self.failed_invocations)?;
        writeln!(f, "  poison records written    : {}", self.poison_written.len())?;
        writeln!(f, "  expired records written   : {}", self.expired_written.len())?;
        writeln!(f, "  peak iterator age         : {} ms", self.peak_iterator_age_ms)?;
        writeln!(f, "  failure records ({}) in {}:", self.failures.len(), self.failure_file.display())?;
        const SHOWN: usize = 20;
        for (condition, seq, size) in self.failures.iter().take(SHOWN) {
            writeln!(f, "    {condition:<24} at {seq} (batch of {size})")?;
        }
        if self.failures.len() > SHOWN {
            writeln!(f, "    … and {} more", self.failures.len() - SHOWN)?;
        }
        let admin = if self.served { "admin endpoint           " } else { "admin endpoint was       " };
        writeln!(f, "  {admin} : http://{}/metrics", self.admin)?;
        writeln!(f, "  every poison and expired record isolated: {}", if self.isolated_all() { "yes" } else { "NO" })
    }
}

#[derive(Default)]
struct FunctionStats {
    invocations: AtomicU64,
    failed: AtomicU64,
    delivered: AtomicU64,
}

/// The demo's function: a real HTTP server that fails any batch holding a poison record.
async fn function(stats: Arc<FunctionStats>, body: BodyBytes) -> (StatusCode, String) {
    stats.invocations.fetch_add(1, Ordering::Relaxed);
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::BAD_REQUEST, "not JSON".into());
    };
    // Kinesis: Records[].kinesis.data; Kafka: records.<topic-N>[].value. Both base64.
    let mut payloads: Vec<&str> = event["Records"].as_array().into_iter().flatten().filter_map(|r| r["kinesis"]["data"].as_str()).collect();
    if let Some(partitions) = event["records"].as_object() {
        payloads.extend(partitions.values().filter_map(|v| v.as_array()).flatten().filter_map(|r| r["value"].as_str()));
    }
    let poisoned = payloads.iter().any(|data| base64::engine::general_purpose::STANDARD.decode(data).is_ok_and(|d| d.starts_with(b"poison")));
    if poisoned {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::INTERNAL_SERVER_ERROR, r#"{"errorMessage":"poison record"}"#.into());
    }
    stats.delivered.fetch_add(payloads.len() as u64, Ordering::Relaxed);
    (StatusCode::OK, r#"{"batchItemFailures":[]}"#.into())
}

/// Runs the demo; `done` gets the report as soon as the backlog is finished (with `--serve`,
/// before the admin endpoint is left up until `interrupt`).
pub async fn run(opts: DemoOptions, interrupt: impl Future<Output = ()> + Send + 'static, done: impl FnOnce(&DemoReport)) -> Result<DemoReport, DemoError> {
    let setup = |what: &str, e: &dyn fmt::Display| DemoError::Setup(format!("{what}: {e}"));
    let state_dir = opts.state_dir.clone();
    std::fs::create_dir_all(&state_dir).map_err(|e| setup(&format!("state directory {}", state_dir.display()), &e))?;
    let failure_file = state_dir.join("failures.jsonl");
    // A fresh run: an earlier run's checkpoints would skip the new backlog's records.
    for old in [failure_file.clone(), state_dir.join("checkpoints.redb")] {
        match std::fs::remove_file(&old) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(setup(&format!("removing {}", old.display()), &e)),
        }
    }

    let mut report = DemoReport { records: opts.records, shards: opts.shards.max(1), failure_file: failure_file.clone(), ..Default::default() };
    let backlog = backlog(&opts, &mut report).await?;
    let last_by_shard = backlog.last_by_shard.clone();

    // The function.
    let stats = Arc::new(FunctionStats::default());
    let fn_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| setup("function listener", &e))?;
    let fn_addr = fn_listener.local_addr().map_err(|e| setup("function listener", &e))?;
    let stop = CancellationToken::new();
    {
        let stats = stats.clone();
        let app = axum::Router::new().route("/", axum::routing::post(move |body| function(stats.clone(), body)));
        let stop = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(fn_listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        });
    }

    // Admin endpoint.
    let registry = StatusRegistry::default();
    let prometheus = crate::metrics::install_recorder().map_err(|e| setup("metrics", &e))?;
    let admin_listener = match tokio::net::TcpListener::bind(&opts.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(listen = %opts.listen, error = %e, "admin address taken; using a free port");
            tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| setup("admin listener", &e))?
        }
    };
    report.admin = admin_listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    // Its own token: with `--serve` it outlives the mapping.
    let admin_stop = CancellationToken::new();
    {
        let state = AdminState { registry: registry.clone(), prometheus };
        let admin_stop = admin_stop.clone();
        tokio::spawn(admin::serve(admin_listener, state, async move { admin_stop.cancelled().await }));
    }
    tracing::info!(admin = %report.admin, "demo running; metrics at /metrics, shard status at /status");

    // The mapping.
    let invoker = HttpInvoker::new(HttpInvokerOptions {
        url: format!("http://{fn_addr}/"),
        timeout: Duration::from_secs(30),
        max_concurrency: 64,
        headers: vec![],
        function_arn: Some("arn:aws:lambda:us-east-1:000000000000:function:esmd-demo".into()),
    })
    .map_err(|e| setup("invoker", &e))?;
    let store = EmbeddedStore::open(&state_dir.join("checkpoints.redb")).map_err(|e| setup("checkpoint store", &e))?;
    let ctx = Arc::new(MappingCtx {
        name: "demo".into(),
        invoker: Arc::new(invoker),
        encoder: backlog.embedded.source.encoder(),
        destination: Some(Arc::new(FileDestination::new(&failure_file))),
        filter: None,
        metrics: MappingMetrics::new("demo", backlog.embedded.source.kind()),
        status: registry.mapping("demo", backlog.embedded.source.kind()),
        shutdown: stop.child_token(),
    });
    let settings = StreamSettings {
        batch: BatchSettings { batch_size: opts.batch_size, window: Duration::ZERO, ..Default::default() },
        parallelization_factor: opts.parallelization_factor,
        maximum_record_age: Some(Duration::from_secs(3600)),
        maximum_retry_attempts: Some(2),
        bisect_batch_on_function_error: true,
        backoff: RetryBackoff { min: Duration::from_millis(5), max: Duration::from_millis(200) },
        ..Default::default()
    };
    let started = Instant::now();
    let mapping = StreamMapping { ctx: ctx.clone(), settings: Arc::new(settings), source: backlog.embedded.source.clone(), store: Arc::new(store) };
    let running = tokio::spawn(mapping.run());

    // Wait until every shard's checkpoint reaches its last record.
    let deadline = Duration::from_secs(opts.timeout_seconds);
    let interrupted = CancellationToken::new();
    {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            interrupt.await;
            interrupted.cancel();
        });
    }
    let mut outcome = Ok(());
    loop {
        let snapshot = registry.snapshot();
        if let Some(m) = snapshot.get("demo") {
            for s in m.shards.values() {
                report.peak_iterator_age_ms = report.peak_iterator_age_ms.max(s.iterator_age_ms);
            }
            let done = last_by_shard.iter().all(|(shard, last)| m.shards.get(shard).and_then(|s| s.checkpoint.as_ref()) == Some(last));
            if done {
                break;
            }
        }
        if started.elapsed() > deadline {
            outcome = Err(DemoError::Timeout(deadline));
            break;
        }
        if interrupted.is_cancelled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report.elapsed = started.elapsed();
    stop.cancel();
    let _ = running.await;
    // The mapping has closed its consumer; only now may the embedded cluster go.
    drop(backlog);

    report.invocations = stats.invocations.load(Ordering::Relaxed);
    report.failed_invocations = stats.failed.load(Ordering::Relaxed);
    report.delivered = stats.delivered.load(Ordering::Relaxed);
    if let Ok(text) = std::fs::read_to_string(&failure_file) {
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let condition = v["requestContext"]["condition"].as_str().unwrap_or_default().to_string();
            let (first, size) = if let Some(info) = v.get("KafkaBatchInfo") {
                let first = info["recordsInfo"].as_object().and_then(|m| m.iter().next()).map(|(p, r)| format!("{p}@{}", r["firstRecordOffset"].as_str().unwrap_or_default()));
                (first.unwrap_or_default(), info["batchSize"].as_u64().unwrap_or_default())
            } else {
                let info = &v["KinesisBatchInfo"];
                (info["startSequenceNumber"].as_str().unwrap_or_default().to_string(), info["batchSize"].as_u64().unwrap_or_default())
            };
            report.failures.push((condition, first, size));
        }
    }
    if outcome.is_ok() && opts.serve && !interrupted.is_cancelled() {
        report.served = true;
        done(&report);
        tracing::info!(admin = %report.admin, "demo finished; the admin endpoint stays up until Ctrl-C");
        interrupted.cancelled().await;
    } else if outcome.is_ok() {
        done(&report);
    }
    admin_stop.cancel();
    outcome.map(|()| report)
}

/// The demo's backlog, and what it needs to stay alive.
struct Backlog {
    embedded: EmbeddedBacklog,
    /// The last position written to each shard: the demo is done when every checkpoint is there.
    last_by_shard: BTreeMap<String, String>,
}

fn is_poison(opts: &DemoOptions, i: usize) -> bool {
    i >= opts.expired && opts.poison_every > 0 && i % opts.poison_every == opts.poison_every - 1
}

fn demo_record(opts: &DemoOptions, i: usize) -> (String, Vec<u8>) {
    let key = format!("customer-{}", i % 97);
    let data = if is_poison(opts, i) { format!("poison #{i}") } else { format!("{{\"order\":{i},\"customer\":\"{key}\"}}") };
    (key, data.into_bytes())
}

/// The records, written through the chosen source's connector.
async fn backlog(opts: &DemoOptions, report: &mut DemoReport) -> Result<Backlog, DemoError> {
    let setup = |e: String| DemoError::Setup(format!("{} backlog: {e}", opts.source));
    let connector = connectors::source(opts.source.name()).ok_or_else(|| setup("no such connector in this build".into()))?;
    let two_hours_ago = now_ms() - 2 * 3600 * 1000;
    let records: Vec<BacklogRecord> = (0..opts.records)
        .map(|i| {
            let (key, data) = demo_record(opts, i);
            BacklogRecord { key, data, timestamp_ms: (i < opts.expired).then_some(two_hours_ago) }
        })
        .collect();
    let embedded = connector.embedded_backlog(opts.shards.max(1), &records).ok_or_else(|| setup("this source cannot run in process".into()))?.await.map_err(setup)?;
    report.source = embedded.description.into();
    let mut last_by_shard = BTreeMap::new();
    for (i, p) in embedded.positions.iter().enumerate() {
        if is_poison(opts, i) {
            report.poison_written.push(p.label.clone());
        }
        if i < opts.expired {
            report.expired_written.push(p.label.clone());
        }
        last_by_shard.insert(p.shard.clone(), p.position.clone());
    }
    Ok(Backlog { embedded, last_by_shard })
}
