//! `esmd run`: builds every mapping of a config, serves the admin endpoint, runs until a
//! shutdown signal, then stops polling, lets in-flight batches finish within the deadline and
//! writes checkpoints.

use crate::admin::{self, AdminState};
use crate::checkpoint::embedded::EmbeddedStore;
use crate::checkpoint::CheckpointStore;
use crate::config::{Config, DestinationKind, FunctionConfig, MappingConfig, SourceConfig};
use crate::destination::aws::AwsTarget;
use crate::destination::file::FileDestination;
use crate::destination::s3::S3Destination;
use crate::destination::sns::SnsDestination;
use crate::destination::sqs::SqsDestination;
use crate::destination::Destination;
use crate::engine::context::{MappingCtx, RecordFilter};
use crate::invoke::http::{HttpInvoker, HttpInvokerOptions};
use crate::invoke::lambda::{LambdaInvoker, LambdaInvokerOptions};
use crate::invoke::Invoker;
use crate::metrics::MappingMetrics;
use crate::status::StatusRegistry;
use crate::supervisor::{QueueMapping, StreamMapping};
use esmd_api::{OrderedSource, QueueSource};
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
                #[cfg(feature = "kafka")]
                DestinationKind::Kafka { .. } => true,
                #[cfg(feature = "rabbitmq")]
                DestinationKind::RabbitMq { .. } => true,
                #[allow(unreachable_patterns)]
                _ => false,
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
    let endpoint_url = m.params.destination_config.as_ref().and_then(|d| d.on_failure.as_ref()).and_then(|f| f.endpoint_url.clone());
    match d {
        DestinationKind::File(path) => Ok(Some(Arc::new(FileDestination::new(path)))),
        DestinationKind::Sqs { arn, region, account, queue } => {
            let target = AwsTarget { region: Some(region.clone()), endpoint_url };
            Ok(Some(Arc::new(SqsDestination::connect(&target, arn, account, queue).await)))
        }
        DestinationKind::Sns { arn, region, .. } => {
            let target = AwsTarget { region: Some(region.clone()), endpoint_url };
            Ok(Some(Arc::new(SnsDestination::connect(&target, arn).await)))
        }
        DestinationKind::S3 { arn, bucket } => {
            let target = AwsTarget { region: None, endpoint_url };
            Ok(Some(Arc::new(S3Destination::connect(&target, arn, bucket, m.uuid).await)))
        }
        // Validation made sure the source is Kafka: the topic is on the source's cluster.
        #[cfg(feature = "kafka")]
        DestinationKind::Kafka { topic } => match &m.source {
            SourceConfig::Kafka(k) => {
                let producer = esmd_kafka::FailureProducer::for_source(k).map_err(|e| mapping_error(m, format!("destination_config.on_failure.destination: {e}")))?;
                Ok(Some(Arc::new(crate::destination::kafka::KafkaDestination::new(producer, topic.clone()))))
            }
            _ => Err(mapping_error(m, "destination_config.on_failure.destination: kafka destinations need a kafka source")),
        },
        #[cfg(feature = "rabbitmq")]
        DestinationKind::RabbitMq { exchange, routing_key } => {
            // Validation made sure there is a broker: the destination's own or the source's.
            let own = m.params.destination_config.as_ref().and_then(|d| d.on_failure.as_ref()).and_then(|f| f.connection.clone());
            let connection = match (own, &m.source) {
                (Some(c), _) => c,
                (None, SourceConfig::RabbitMq(r)) => r.connection(),
                (None, _) => return Err(mapping_error(m, "destination_config.on_failure.connection: a rabbitmq destination needs a broker")),
            };
            let publisher = esmd_rabbitmq::Publisher::new(connection, format!("esmd:{}:on-failure", m.name));
            Ok(Some(Arc::new(crate::destination::rabbitmq::RabbitMqDestination::new(publisher, exchange.clone(), routing_key.clone()))))
        }
        // Reached only in builds without the kafka or rabbitmq feature.
        #[allow(unreachable_patterns)]
        other => Err(unsupported_destination(m, other)),
    }
}

async fn invoker(m: &MappingConfig) -> Result<Arc<dyn Invoker>, AppError> {
    match &m.function {
        FunctionConfig::Http(h) => {
            let inv = HttpInvoker::new(HttpInvokerOptions {
                url: h.url.clone(),
                timeout: Duration::from_secs(h.timeout_seconds),
                max_concurrency: h.max_concurrency,
                headers: h.headers.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect(),
                function_arn: h.function_arn.clone(),
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
            })
            .await
            .map_err(|e| mapping_error(m, format!("function: {e}")))?;
            Ok(Arc::new(inv))
        }
    }
}

enum Source {
    Stream(Arc<dyn OrderedSource>),
    Queue(Arc<dyn QueueSource>),
}

async fn source(cfg: &Config, m: &MappingConfig) -> Result<Source, AppError> {
    Ok(match &m.source {
        SourceConfig::Memory(s) => {
            let log = esmd_memory::MemoryLog::new(esmd_memory::MemoryLogOptions {
                stream_name: s.stream_name.clone(),
                shards: s.shards,
                region: cfg.aws.region.clone(),
                account: cfg.aws.account.clone(),
            });
            if let Some(seed) = &s.seed {
                for i in 0..seed.records {
                    let key = format!("key-{}", i % seed.keys.max(1));
                    let poison = seed.poison_every > 0 && i % seed.poison_every == seed.poison_every - 1;
                    let mut data = if poison { b"poison".to_vec() } else { format!("{{\"n\":{i}}}").into_bytes() };
                    data.resize(seed.record_bytes.max(data.len()), b' ');
                    log.append(key.as_bytes(), data);
                }
            }
            Source::Stream(Arc::new(log))
        }
        SourceConfig::MemoryQueue(q) => Source::Queue(Arc::new(esmd_memory::MemoryQueue::new(esmd_memory::MemoryQueueOptions {
            name: q.queue_name.clone(),
            visibility_timeout: Duration::from_secs(q.visibility_timeout_seconds),
            fifo: q.fifo,
            region: cfg.aws.region.clone(),
            account: cfg.aws.account.clone(),
        }))),
        #[cfg(feature = "kafka")]
        SourceConfig::Kafka(k) => {
            let settings = m.stream_settings().map_err(|e| mapping_error(m, e))?;
            let source = esmd_kafka::KafkaSource::new(esmd_kafka::KafkaOptions {
                mapping: m.name.clone(),
                config: (**k).clone(),
                starting_position: settings.starting_position,
            })
            .map_err(|e| mapping_error(m, format!("source: {e}")))?;
            Source::Stream(Arc::new(source))
        }
        #[cfg(feature = "kinesis")]
        SourceConfig::Kinesis(k) => {
            let options = esmd_kinesis::KinesisOptions::new((**k).clone(), &cfg.aws.region, &cfg.aws.account);
            Source::Stream(Arc::new(esmd_kinesis::kinesis_source(options).map_err(|e| mapping_error(m, e))?))
        }
        #[cfg(feature = "dynamodb-streams")]
        SourceConfig::DynamoDbStreams(d) => {
            let options = esmd_dynamodb_streams::DynamoDbStreamsOptions::new((**d).clone(), &cfg.aws.region);
            Source::Stream(Arc::new(esmd_dynamodb_streams::dynamodb_streams_source(options).map_err(|e| mapping_error(m, e))?))
        }
        #[cfg(feature = "rabbitmq")]
        SourceConfig::RabbitMq(r) => {
            let settings = m.queue_settings().map_err(|e| mapping_error(m, e))?;
            let source = esmd_rabbitmq::RabbitMqSource::new(esmd_rabbitmq::RabbitMqOptions {
                mapping: m.name.clone(),
                config: (**r).clone(),
                prefetch: rabbitmq_prefetch(&settings),
                region: cfg.aws.region.clone(),
                account: cfg.aws.account.clone(),
            })
            .map_err(|e| mapping_error(m, e))?;
            Source::Queue(Arc::new(source))
        }
        #[cfg(feature = "sqs")]
        SourceConfig::Sqs(q) => {
            let settings = m.queue_settings().map_err(|e| mapping_error(m, e))?;
            let source = esmd_sqs::SqsSource::connect(esmd_sqs::SqsOptions { config: (**q).clone(), maximum_concurrency: settings.maximum_concurrency })
                .await
                .map_err(|e| mapping_error(m, e))?;
            warn_short_visibility(m, source.visibility_timeout());
            Source::Queue(Arc::new(source))
        }
    })
}

/// A queue whose visibility timeout is shorter than the function's timeout hands a message to
/// another consumer while the function may still run (AWS refuses such mappings; esmd extends
/// the visibility of running batches, so it only warns).
#[cfg(feature = "sqs")]
fn warn_short_visibility(m: &MappingConfig, visibility: Option<Duration>) {
    let function_timeout = Duration::from_secs(m.function.timeout_seconds());
    if let Some(v) = visibility.filter(|v| *v < function_timeout) {
        tracing::warn!(
            mapping = %m.name,
            visibility_timeout_s = v.as_secs(),
            function_timeout_s = function_timeout.as_secs(),
            "the queue's visibility timeout is shorter than the function timeout: esmd extends it while batches run, but other consumers of the queue may see duplicates; AWS recommends 6 × the function timeout"
        );
    }
}

/// Enough unacked messages for every batch that may run at once plus one being gathered, and
/// no more: the broker keeps the rest for other consumers (AMQP caps prefetch at 65535).
/// The extra batch is room for acks that wait for an earlier batch (the RabbitMQ source sends
/// them together, as one frame) and lets the next batch gather while every slot runs.
#[cfg(feature = "rabbitmq")]
pub fn rabbitmq_prefetch(settings: &crate::engine::settings::QueueSettings) -> u16 {
    let wanted = settings.batch.batch_size.saturating_mul(settings.maximum_concurrency.max(1).saturating_add(1));
    u16::try_from(wanted).unwrap_or(u16::MAX)
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
    let store_path = cfg.checkpoint.path.join("checkpoints.redb");
    let store: Arc<dyn CheckpointStore> = Arc::new(
        tokio::task::spawn_blocking(move || EmbeddedStore::open(&store_path))
            .await
            .map_err(|e| AppError::Setup(e.to_string()))?
            .map_err(|e| AppError::Setup(e.to_string()))?,
    );

    let mut tasks = JoinSet::new();
    let mut started = Vec::new();
    for m in cfg.mappings.iter().filter(|m| m.enabled) {
        let invoker: Arc<dyn Invoker> = match m.params.max_invocations_per_second {
            Some(rate) => Arc::new(crate::invoke::paced::PacedInvoker::new(invoker(m).await?, rate)),
            None => invoker(m).await?,
        };
        let destination = destination(m).await?;
        let filter: Option<Arc<dyn RecordFilter>> = match m.filter_patterns() {
            patterns if patterns.is_empty() => None,
            patterns => Some(Arc::new(esmd_filter::FilterCriteria::compile(&patterns).map_err(|e| mapping_error(m, format!("filter_criteria: {e}")))?)),
        };
        let source = source(cfg, m).await?;
        let kind = match &source {
            Source::Stream(s) => s.kind(),
            Source::Queue(q) => q.kind(),
        };
        let encoder = match &source {
            Source::Stream(s) => s.encoder(),
            Source::Queue(q) => q.encoder(),
        };
        let metrics = MappingMetrics::new(&m.name, kind);
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
            Source::Stream(source) => {
                let settings = m.stream_settings().map_err(|e| mapping_error(m, e))?;
                tasks.spawn(StreamMapping { ctx, settings: Arc::new(settings), source, store: store.clone() }.run());
            }
            Source::Queue(source) => {
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
