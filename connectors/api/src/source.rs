use crate::{EventEncoder, Position, Record, ShardId, SourceError};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// A shard as discovery sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: ShardId,
    /// Shards that must be finished to their end before this one starts (resharding lineage:
    /// one parent after a split, two after a merge, none for Kafka partitions).
    pub parents: Vec<ShardId>,
}

/// Where a reader starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest record still retained.
    TrimHorizon,
    /// Only records written after the reader opens.
    Latest,
    /// The first record that arrived at or after this time (ms since epoch).
    AtTimestamp(i64),
    /// Right after this record: resuming from a checkpoint.
    After(Position),
}

/// What one read of a shard returned.
#[derive(Debug, Default)]
pub struct ReadBatch {
    /// In shard order.
    pub records: Vec<Record>,
    /// The shard is closed and every record has been read: the worker drains and retires.
    pub end_of_shard: bool,
    /// How far the reader is behind the newest record, when the source says (MillisBehindLatest).
    pub behind_ms: Option<u64>,
    /// Records still waiting in the shard after this read, when the source can tell cheaply
    /// (Kafka high watermark − position, memory log length). Feeds the lag metrics.
    pub backlog: Option<u64>,
}

/// Reads one shard in order. Owned by exactly one worker.
#[async_trait]
pub trait ShardReader: Send {
    /// Reads up to `max_records`. May wait briefly for new records (a long poll); returns an
    /// empty batch when there is nothing to read yet.
    async fn read(&mut self, max_records: usize) -> Result<ReadBatch, SourceError>;

    /// Everything up to and including `position` is finished. Sources that keep their own
    /// cursor (Kafka consumer groups) commit it here; others rely on the checkpoint store.
    async fn commit(&mut self, _position: &Position) -> Result<(), SourceError> {
        Ok(())
    }
}

/// An ordered log: Kinesis, DynamoDB Streams, Kafka, the in-memory log.
#[async_trait]
pub trait OrderedSource: Send + Sync + 'static {
    /// Short source type name for logs and metric labels (`kinesis`, `kafka`, `memory`).
    fn kind(&self) -> &'static str;

    fn encoder(&self) -> Arc<dyn EventEncoder>;

    /// The shards that exist now (open and closed but still retained), with their parents.
    /// Called at start and periodically; a shard that disappears is stopped.
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError>;

    async fn open(&self, shard: &ShardInfo, from: StartFrom) -> Result<Box<dyn ShardReader>, SourceError>;

    /// How long to wait before reading again when a read returned nothing
    /// (Kinesis about 1 s, DynamoDB 250 ms, sources that long-poll: zero).
    fn idle_poll_interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// How often to look for new or vanished shards.
    fn discovery_interval(&self) -> Duration {
        Duration::from_secs(30)
    }

    /// The source keeps each shard's position itself (Kafka: the consumer group's committed
    /// offsets) and resolves where reading starts in [`OrderedSource::open`]. The engine then
    /// neither reads nor writes its checkpoint store for this source: a local copy could only
    /// be stale after another consumer moved the group on.
    fn keeps_positions(&self) -> bool {
        false
    }

    /// Called once every shard worker has stopped: release connections, leave consumer groups.
    async fn close(&self) {}
}

/// A queue: SQS, RabbitMQ, the in-memory queue. Messages are independent unless
/// [`QueueSource::ordered_groups`] says messages with one `partition_key` keep their order.
#[async_trait]
pub trait QueueSource: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    fn encoder(&self) -> Arc<dyn EventEncoder>;

    /// The queue's name as failure records and metrics show it.
    fn queue_id(&self) -> ShardId;

    /// Receives up to `max` messages, waiting at most `wait` for the first one.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Record>, SourceError>;

    /// The messages are done: delete (SQS) or ack (RabbitMQ).
    async fn ack(&self, records: &[Record]) -> Result<(), SourceError>;

    /// The messages failed: make them available again, after `delay` where the source can.
    async fn release(&self, records: &[Record], delay: Option<Duration>) -> Result<(), SourceError>;

    /// Hand the messages to the queue's own dead-letter mechanism (RabbitMQ reject without
    /// requeue). Sources without one release them.
    async fn dead_letter(&self, records: &[Record]) -> Result<(), SourceError> {
        self.release(records, None).await
    }

    /// Keep in-flight messages invisible for `by` longer (SQS visibility). Default: nothing to do.
    async fn extend(&self, _records: &[Record], _by: Duration) -> Result<(), SourceError> {
        Ok(())
    }

    /// How long a received message stays invisible to other consumers, when the source has
    /// such a timeout (SQS). The engine extends it while a batch runs long.
    fn visibility_timeout(&self) -> Option<Duration> {
        None
    }

    /// Messages with the same `partition_key` must be processed one batch at a time, in order
    /// (SQS FIFO message groups, RabbitMQ single active consumer). Such a source never hands
    /// out a message of a group that still has messages in flight.
    fn ordered_groups(&self) -> bool {
        false
    }

    /// Messages waiting to be received, when the source can tell (SQS
    /// ApproximateNumberOfMessages). Asked every few seconds for the backlog gauge.
    async fn backlog(&self) -> Option<u64> {
        None
    }

    /// Called once the queue worker has stopped and every batch is settled: release the
    /// connection.
    async fn close(&self) {}
}
