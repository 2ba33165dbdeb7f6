//! `esmd run`: builds every mapping of a config, serves the admin endpoint, runs until a
//! shutdown signal, then stops polling, lets in-flight batches finish within the deadline and
//! writes checkpoints.

use crate::admin::{self, AdminState};
use crate::checkpoint::embedded::EmbeddedStore;
use crate::checkpoint::CheckpointStore;
use crate::config::{CheckpointKind, Config, DestinationKind, FunctionConfig, MappingConfig};
use crate::connectors;
use crate::destination::aws::sdk_config;
use crate::destination::file::FileDestination;
use crate::destination::s3::S3Destination;
use crate::destination::sns::SnsDestination;
use crate::destination::sqs::SqsDestination;
use crate::destination::Destination;
use crate::engine::context::{MappingCtx, RecordFilter};
use crate::invoke::http::{stand_in_arn, HttpInvoker, HttpInvokerOptions};
use crate::invoke::lambda::{LambdaInvoker, LambdaInvokerOptions};
use crate::invoke::Invoker;
use crate::metrics::MappingMetrics;
use crate::status::StatusRegistry;
use crate::supervisor::{QueueMapping, StreamMapping};
use esmd_api::connector::{DestinationContext, OpenContext, OpenedSource};
use esmd_api::{OrderedSource, StartFrom};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("mapping {mapping:?}: {message}")]
    Mapping { mapping: String, message: String },
    #[error("{0}")]
    Setup(String),
}

fn mapping_error(m: &MappingConfig, message: impl std::fmt::Display) -> AppError {
    AppError::Mapping { mapping: m.name.clone(), message: message.to_string() }
}

/// What validation without IO cannot see: parts this build cannot run yet. Builds nothing
/// (a Kafka producer would start connecting).
pub fn check(cfg: &Config) -> Result<(), AppError> {
    for m in &cfg.mappings {
        if let Some(d) = m.on_failure_destination() {
            let supported = match d {
                DestinationKind::File(_) | DestinationKind::Sqs { .. } | DestinationKind::Sns { .. } | DestinationKind::S3 { .. } => true,
                broker => connectors::destination(broker.kind()).is_some(),
            };
            if !supported {
                return Err(unsupported_destination(m, d));
            }
        }
    }
    Ok(())
}

fn unsupported_destination(m: &MappingConfig, d: &DestinationKind) -> AppError {
    mapping_error(m, format!("destination_config.on_failure.destination: {} destinations are not supported in this build yet", d.kind()))
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn destination(m: &MappingConfig) -> Result<Option<Arc<dyn Destination>>, AppError> {
    let Some(d) = m.on_failure_destination() else { return Ok(None) };
    let on_failure = m.params.destination_config.as_ref().and_then(|d| d.on_failure.as_ref());
    let endpoint_url = on_failure.and_then(|f| f.endpoint_url.as_deref());
    match d {
        DestinationKind::File(path) => Ok(Some(Arc::new(FileDestination::new(path)))),
        DestinationKind::Sqs { arn, region, account, queue } => {
            Ok(Some(Arc::new(SqsDestination::new(&sdk_config(Some(region), endpoint_url).await, arn, account, queue))))
        }
        DestinationKind::Sns { arn, region, .. } => Ok(Some(Arc::new(SnsDestination::new(&sdk_config(Some(region), endpoint_url).await, arn)))),
        DestinationKind::S3 { arn, bucket } => Ok(Some(Arc::new(S3Destination::new(&sdk_config(None, endpoint_url).await, arn, bucket, m.uuid)))),
        broker => {
            let connector = connectors::destination(broker.kind()).ok_or_else(|| unsupported_destination(m, broker))?;
            let ctx = DestinationContext { mapping: &m.name, destination: broker, connection: on_failure.and_then(|f| f.connection.as_ref()), source: m.source.spec() };
            let destination = connector.destination(ctx).await.map_err(|e| mapping_error(m, format!("destination_config.on_failure.destination: {e}")))?;
            Ok(Some(destination))
        }
    }
}

/// HTTP functions without a `function_arn` show one named after the mapping, in `[aws]`'s
/// region and account: stable across runs, unlike anything taken from the URL.
async fn invoker(cfg: &Config, m: &MappingConfig) -> Result<Arc<dyn Invoker>, AppError> {
    match &m.function {
        FunctionConfig::Http(h) => {
            let inv = HttpInvoker::new(HttpInvokerOptions {
                url: h.url.clone(),
                timeout: Duration::from_secs(h.timeout_seconds),
                max_concurrency: h.max_concurrency,
                headers: h.headers.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect(),
                function_arn: Some(h.function_arn.clone().unwrap_or_else(|| stand_in_arn(&cfg.aws.region, &cfg.aws.account, &m.name))),
            })
            .map_err(|e| mapping_error(m, format!("function: {e}")))?;
            Ok(Arc::new(inv))
        }
        FunctionConfig::Lambda(l) => {
            let inv = LambdaInvoker::new(LambdaInvokerOptions {
                function_name: l.function_name.clone(),
                qualifier: l.qualifier.clone(),
                region: l.region.clone(),
                endpoint_url: l.endpoint_url.clone(),
                timeout: Duration::from_secs(l.timeout_seconds),
                max_concurrency: l.max_concurrency,
                account: Some(cfg.aws.account.clone()),
            })
            .await
            .map_err(|e| mapping_error(m, format!("function: {e}")))?;
            Ok(Arc::new(inv))
        }
    }
}

/// The mapping's metrics as the source's counters. The metrics are labelled with the source's
/// kind, known once the source is open, so they are bound after `open`; nothing is counted
/// before the first read.
#[derive(Debug, Default)]
struct LateCounters(std::sync::OnceLock<MappingMetrics>);

impl esmd_api::SourceCounters for LateCounters {
    fn add(&self, what: esmd_api::SourceCount, n: u64) {
        if let Some(m) = self.0.get() {
            m.source_count(what, n);
        }
    }
}

/// Opens the mapping's source through its connector.
async fn source(cfg: &Config, m: &MappingConfig, counters: Arc<LateCounters>) -> Result<OpenedSource, AppError> {
    let (starting_position, batch_size, maximum_concurrency) = match m.family() {
        esmd_api::profile::Family::Stream => {
            let settings = m.stream_settings().map_err(|e| mapping_error(m, e))?;
            (settings.starting_position, settings.batch.batch_size, 1)
        }
        esmd_api::profile::Family::Queue => {
            let settings = m.queue_settings().map_err(|e| mapping_error(m, e))?;
            (StartFrom::TrimHorizon, settings.batch.batch_size, settings.maximum_concurrency)
        }
    };
    let ctx = OpenContext {
        mapping: m.name.clone(),
        region: cfg.aws.region.clone(),
        account: cfg.aws.account.clone(),
        starting_position,
        batch_size,
        maximum_concurrency,
        function_timeout: Duration::from_secs(m.function.timeout_seconds()),
        counters,
    };
    m.source.spec().open(&ctx).await.map_err(|e| mapping_error(m, e))
}

/// Where stream mappings keep their checkpoints.
enum Stores {
    /// One instance: the embedded store, shared by every mapping.
    Embedded(Arc<dyn CheckpointStore>),
    /// A fleet: each mapping's shards are leased from the table; checkpoints live in the leases.
    Leases { table: crate::lease::LeaseTable, instance: String, failover: Duration },
}

impl Stores {
    async fn open(cfg: &Config) -> Result<Stores, AppError> {
        let c = &cfg.checkpoint;
        match c.kind {
            CheckpointKind::Embedded => {
                let path = c.path.join("checkpoints.redb");
                let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&path))
                    .await
                    .map_err(|e| AppError::Setup(e.to_string()))?
                    .map_err(|e| AppError::Setup(e.to_string()))?;
                Ok(Stores::Embedded(Arc::new(store)))
            }
            CheckpointKind::Dynamodb => {
                // Validation requires the table.
                let name = c.table.as_deref().ok_or_else(|| AppError::Setup("checkpoint.table is required with type = \"dynamodb\"".into()))?;
                let client = esmd_aws::AwsClientConfig::new(c.region.clone(), c.endpoint_url.clone());
                let table = crate::lease::LeaseTable::connect(name, &client).await;
                if c.create_table {
                    table.create_if_missing().await.map_err(|e| AppError::Setup(format!("checkpoint.table: {e}")))?;
                }
                let instance = cfg.fleet.instance_id();
                tracing::info!(table = name, instance = %instance, failover_s = cfg.fleet.failover_time_seconds, "fleet: shard leases in DynamoDB");
                Ok(Stores::Leases { table, instance, failover: Duration::from_secs(cfg.fleet.failover_time_seconds) })
            }
        }
    }

    /// The source and store a stream mapping runs with. Sources that keep their own positions
    /// (Kafka's consumer group) share out their shards themselves.
    fn for_stream(&self, mapping: &str, source: Arc<dyn OrderedSource>, status: crate::status::MappingHandle) -> (Arc<dyn OrderedSource>, Arc<dyn CheckpointStore>) {
        match self {
            Stores::Embedded(store) => (source, store.clone()),
            Stores::Leases { table, instance, failover } => {
                let fleet = crate::lease::Fleet::new(table.clone(), mapping, instance, *failover, Some(status));
                let store: Arc<dyn CheckpointStore> = Arc::new(crate::lease::LeaseStore::new(fleet.clone()));
                if source.keeps_positions() {
                    (source, store)
                } else {
                    (Arc::new(crate::lease::LeasedSource::new(source, fleet)), store)
                }
            }
        }
    }
}

/// What [`start`] can change for a run that is not a service (`esmd drain`).
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Queue sources: how long one receive waits for a first message (default: SQS's 20 s long
    /// poll). A drain wants to notice an empty queue within a second.
    pub receive_wait: Option<Duration>,
    /// Serve the admin endpoint (`esmd run` does; a drain has its own view).
    pub admin: bool,
}

/// One started mapping: what a caller can watch.
pub struct StartedMapping {
    pub name: String,
    pub source: &'static str,
    pub metrics: MappingMetrics,
}

/// Every enabled mapping of a config, running.
pub struct Running {
    pub registry: StatusRegistry,
    pub mappings: Vec<StartedMapping>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
    admin: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    shutdown_timeout: Duration,
}

/// Builds and starts every enabled mapping of `cfg` (and the admin endpoint when asked).
pub async fn start(cfg: &Config, options: StartOptions) -> Result<Running, AppError> {
    let prometheus = crate::metrics::install_recorder().map_err(|e| AppError::Setup(format!("metrics: {e}")))?;
    let registry = StatusRegistry::default();
    let stop = CancellationToken::new();
    let stores = Stores::open(cfg).await?;

    let mut tasks = JoinSet::new();
    let mut started = Vec::new();
    for m in cfg.mappings.iter().filter(|m| m.enabled) {
        let invoker: Arc<dyn Invoker> = match m.params.max_invocations_per_second {
            Some(rate) => Arc::new(crate::invoke::paced::PacedInvoker::new(invoker(cfg, m).await?, rate)),
            None => invoker(cfg, m).await?,
        };
        let destination = destination(m).await?;
        let filter: Option<Arc<dyn RecordFilter>> = match m.filter_patterns() {
            patterns if patterns.is_empty() => None,
            patterns => Some(Arc::new(esmd_filter::FilterCriteria::compile(&patterns).map_err(|e| mapping_error(m, format!("filter_criteria: {e}")))?)),
        };
        let counters = Arc::new(LateCounters::default());
        let source = source(cfg, m, counters.clone()).await?;
        let (kind, encoder) = match &source {
            OpenedSource::Stream(s) => (s.kind(), s.encoder()),
            OpenedSource::Queue(q) => (q.kind(), q.encoder()),
        };
        let metrics = MappingMetrics::new(&m.name, kind);
        let _ = counters.0.set(metrics.clone());
        let ctx = Arc::new(MappingCtx {
            name: m.name.clone(),
            invoker,
            encoder,
            destination,
            filter,
            metrics: metrics.clone(),
            status: registry.mapping(&m.name, kind),
            shutdown: stop.child_token(),
        });
        match source {
            OpenedSource::Stream(source) => {
                let settings = m.stream_settings().map_err(|e| mapping_error(m, e))?;
                let (source, store) = stores.for_stream(&m.name, source, ctx.status.clone());
                tasks.spawn(StreamMapping { ctx, settings: Arc::new(settings), source, store }.run());
            }
            OpenedSource::Queue(source) => {
                let mut settings = m.queue_settings().map_err(|e| mapping_error(m, e))?;
                if let Some(wait) = options.receive_wait {
                    settings.receive_wait = wait;
                }
                tasks.spawn(QueueMapping { ctx, settings: Arc::new(settings), source }.run());
            }
        }
        started.push(StartedMapping { name: m.name.clone(), source: kind, metrics });
        tracing::info!(mapping = %m.name, source = kind, "mapping started");
    }

    let admin = if options.admin {
        if let Some(warning) = cfg.admin.remote_warning() {
            tracing::warn!(listen = %cfg.admin.listen, "{warning}");
        }
        let listener = tokio::net::TcpListener::bind(&cfg.admin.listen)
            .await
            .map_err(|e| AppError::Setup(format!("admin.listen = {}: {e}", cfg.admin.listen)))?;
        tracing::info!(listen = %cfg.admin.listen, "admin endpoint: /metrics /healthz /readyz /status");
        let admin_stop = stop.clone();
        let state = AdminState { registry: registry.clone(), prometheus };
        Some(tokio::spawn(admin::serve(listener, state, async move { admin_stop.cancelled().await })))
    } else {
        None
    };
    Ok(Running {
        registry,
        mappings: started,
        stop,
        tasks,
        admin,
        shutdown_timeout: Duration::from_secs(cfg.shutdown_timeout_seconds),
    })
}

impl Running {
    /// Stops polling, lets in-flight batches finish within the config's shutdown deadline, and
    /// writes checkpoints. Batches still running at the deadline are abandoned (and replayed
    /// on the next start).
    pub async fn stop(mut self) {
        tracing::info!(deadline_s = self.shutdown_timeout.as_secs(), "shutting down: no new batches; waiting for in-flight batches");
        self.stop.cancel();
        let tasks = &mut self.tasks;
        let drained = tokio::time::timeout(self.shutdown_timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("shutdown deadline passed; abandoning in-flight batches (they are replayed on restart)");
            self.tasks.abort_all();
        }
        if let Some(admin) = self.admin.take() {
            let _ = admin.await;
        }
    }
}

/// Runs every enabled mapping until `shutdown` resolves.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), AppError> {
    let running = start(&cfg, StartOptions { admin: true, ..Default::default() }).await?;
    shutdown.await;
    running.stop().await;
    Ok(())
}
