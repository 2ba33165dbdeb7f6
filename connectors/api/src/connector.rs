//! The factory a connector crate exports: one [`Connector`] per source type. The service keeps
//! one table of them (its wiring module) and asks the table for everything type-specific:
//! parsing and checking the `[mappings.source]` section, opening the source, the broker's own
//! failure destination, `esmd seed`'s writer and `esmd demo`'s embedded backlog.

use crate::config::{ConfigIssue, TableError};
use crate::destination::{Destination, DestinationKind};
use crate::profile::SourceProfile;
use crate::seed::Seeder;
use crate::{OrderedSource, QueueSource, StartFrom};
use async_trait::async_trait;
use serde_json::Value;
use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// One source type (`type = "kafka"`).
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// The `type` value.
    fn type_name(&self) -> &'static str;

    /// The profile of a section of this type, told from the raw table (without `type`) so that
    /// a section that does not parse still has the mapping's parameters checked against its
    /// type (an SQS queue URL ending in `.fifo` means batches of 10 at most).
    fn profile(&self, table: &Value) -> SourceProfile;

    /// Reads the section (without `type`).
    fn parse(&self, table: Value) -> Result<Arc<dyn SourceSpec>, TableError>;

    /// The on-failure destination kind ([`DestinationKind::kind`]) this connector delivers
    /// to, when its broker has one (`kafka`, `rabbitmq`).
    fn destination_kind(&self) -> Option<&'static str> {
        None
    }

    /// Rules of a destination of [`Connector::destination_kind`], without IO: its
    /// `destination_config.on_failure.connection` table, and loops back into the source.
    /// `source` is the mapping's source when it parsed. Paths relative to the mapping.
    fn check_destination(&self, _destination: &DestinationKind, _connection: Option<&Value>, _source: Option<&dyn SourceSpec>) -> Vec<ConfigIssue> {
        Vec::new()
    }

    /// Builds a destination of [`Connector::destination_kind`]. Connects lazily: nothing is
    /// sent until the first failure.
    async fn destination(&self, _ctx: DestinationContext<'_>) -> Result<Arc<dyn Destination>, String> {
        Err(format!("{} has no failure destination", self.type_name()))
    }

    /// `esmd demo`: an in-process instance of this source holding `records`, spread over
    /// `shards` shards. `None`: this source has no embedded form. The future need not be
    /// `Send`: an embedded broker (librdkafka's mock cluster) is tied to its thread.
    fn embedded_backlog<'a>(&'a self, _shards: usize, _records: &'a [BacklogRecord]) -> Option<LocalFuture<'a, Result<EmbeddedBacklog, String>>> {
        None
    }
}

/// A parsed `[mappings.source]` section: the connector's config struct.
#[async_trait]
pub trait SourceSpec: SpecAny + fmt::Debug + Send + Sync + 'static {
    fn profile(&self) -> SourceProfile;

    /// Rules serde cannot express, without IO. Paths relative to the mapping (`source.…`).
    fn validate(&self) -> Vec<ConfigIssue>;

    /// A queue read one batch at a time to keep publish order (RabbitMQ `ordered = true`).
    fn ordered(&self) -> bool {
        false
    }

    /// Builds the source. Sources that can tell (SQS) check here that the queue exists.
    async fn open(&self, ctx: &OpenContext) -> Result<OpenedSource, String>;

    /// `esmd seed`'s writer for this source.
    async fn seeder(&self, ctx: &SeedContext) -> Result<Box<dyn Seeder>, SeedSetupError>;
}

/// Downcasting and equality for [`SourceSpec`]s, for every `PartialEq` config struct.
pub trait SpecAny {
    fn as_any(&self) -> &dyn Any;
    /// The same type with the same values.
    fn same_as(&self, other: &dyn Any) -> bool;
}

impl<T: PartialEq + Any> SpecAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn same_as(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
}

/// What opening a source needs to know beyond its own section.
#[derive(Clone, Debug)]
pub struct OpenContext {
    pub mapping: String,
    /// `[aws] region` and `account`: stand-in ARNs of non-AWS sources, the default region.
    pub region: String,
    pub account: String,
    /// Streams: where a shard without a checkpoint starts.
    pub starting_position: StartFrom,
    /// Queues: records per batch and batches at once (prefetch, pollers).
    pub batch_size: usize,
    pub maximum_concurrency: usize,
    /// The function's timeout (SQS compares its visibility timeout with it).
    pub function_timeout: Duration,
    /// Where the source counts its own work for the mapping's metrics.
    pub counters: std::sync::Arc<dyn crate::SourceCounters>,
}

/// A built source of either family.
pub enum OpenedSource {
    Stream(Arc<dyn OrderedSource>),
    Queue(Arc<dyn QueueSource>),
}

/// What `esmd seed` tells a connector beyond its section.
#[derive(Clone, Debug)]
pub struct SeedContext {
    pub mapping: String,
    /// `[aws] region`: the default region of a stream named without an ARN.
    pub region: String,
    /// Distinct keys of the run (DynamoDB writes each key's item once per batch call).
    pub keys: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedSetupError {
    /// The source cannot be filled from outside; the message says what to do instead.
    #[error("{0}")]
    Unsupported(String),
    /// The target could not be reached or is missing.
    #[error("{0}")]
    Setup(String),
}

/// What [`Connector::destination`] needs.
pub struct DestinationContext<'a> {
    pub mapping: &'a str,
    pub destination: &'a DestinationKind,
    /// `destination_config.on_failure.connection`, as written.
    pub connection: Option<&'a Value>,
    pub source: &'a dyn SourceSpec,
}

/// A record of `esmd demo`'s backlog.
#[derive(Clone, Debug)]
pub struct BacklogRecord {
    pub key: String,
    pub data: Vec<u8>,
    /// Arrival time when not now (ms since the epoch): the demo's expired records.
    pub timestamp_ms: Option<i64>,
}

/// Where one backlog record landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BacklogPosition {
    pub shard: String,
    /// As the shard's checkpoint reads once the record is finished.
    pub position: String,
    /// As a person reads it (`topic-0@17`, or the sequence number).
    pub label: String,
}

/// An embedded, filled source for `esmd demo`.
pub struct EmbeddedBacklog {
    pub source: Arc<dyn OrderedSource>,
    /// One per record, in the order given.
    pub positions: Vec<BacklogPosition>,
    /// `an embedded Kafka topic`.
    pub description: &'static str,
    /// What must live as long as the source (an embedded broker).
    pub keep_alive: Box<dyn Any>,
}

/// A boxed future that may stay on its thread.
pub type LocalFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// Reads a connector's config struct as a [`SourceSpec`].
pub fn parse_spec<T>(table: Value) -> Result<Arc<dyn SourceSpec>, TableError>
where
    T: SourceSpec + serde::de::DeserializeOwned,
{
    crate::config::from_table::<T>(table).map(|t| Arc::new(t) as Arc<dyn SourceSpec>)
}
