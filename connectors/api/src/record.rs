use bytes::Bytes;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// A shard of an ordered log (Kinesis shard, DynamoDB stream shard, Kafka partition) or the queue
/// a queue message came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ShardId(pub Arc<str>);

impl ShardId {
    pub fn new(s: impl Into<Arc<str>>) -> Self {
        ShardId(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a record sits in its shard, as the source spells it: a sequence number (Kinesis,
/// DynamoDB), an offset (Kafka), or for queues the handle that acknowledges the message
/// (receipt handle, delivery tag). Opaque to the engine: it orders records by the order the
/// source delivered them, never by comparing positions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Position(pub Arc<str>);

impl Position {
    pub fn new(s: impl Into<Arc<str>>) -> Self {
        Position(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a function names in `batchItemFailures[].itemIdentifier` to point at a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemId {
    /// Sequence number (Kinesis, DynamoDB) or messageId (SQS, RabbitMQ).
    Str(Arc<str>),
    /// Kafka: `{"partition":"topic-N","offset":N}`.
    KafkaOffset { partition: Arc<str>, offset: i64 },
}

impl ItemId {
    /// Whether a function's `itemIdentifier` names this record. AWS accepts only the exact type:
    /// a number where a string is expected names nothing.
    pub fn matches(&self, id: &Value) -> bool {
        match (self, id) {
            (ItemId::Str(s), Value::String(v)) => **s == *v,
            (ItemId::KafkaOffset { partition, offset }, Value::Object(o)) => {
                o.get("partition").and_then(Value::as_str) == Some(&**partition)
                    && o.get("offset").and_then(Value::as_i64) == Some(*offset)
            }
            _ => false,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            ItemId::Str(s) => Value::String(s.to_string()),
            ItemId::KafkaOffset { partition, offset } => {
                serde_json::json!({"partition": &**partition, "offset": offset})
            }
        }
    }
}

/// One record or message, source-agnostic. Cloning is cheap (reference-counted buffers).
#[derive(Clone, Debug)]
pub struct Record {
    /// See [`Position`].
    pub position: Position,
    /// Ordering key: Kinesis partition key, DynamoDB item keys, Kafka message key, SQS FIFO
    /// message group. Records with equal keys keep their order. Empty means "no key".
    pub partition_key: Bytes,
    /// When the record reached the source, in milliseconds since the Unix epoch
    /// (Kinesis approximate arrival, DynamoDB creation time, Kafka timestamp, SQS sent time).
    pub arrival_ms: i64,
    /// The payload as the producer wrote it (what filters look at, what `seed` generates).
    pub data: Bytes,
    /// This record's JSON exactly as it appears inside the function's event, encoded once at
    /// poll time so retries and bisection never re-encode it.
    pub encoded: Bytes,
    /// What the function names in a partial batch response.
    pub item_id: ItemId,
    /// How many times the source has delivered this message before (queues; 0 for logs).
    pub receive_count: u32,
    /// Why the source could not make this record readable for the function (a schema
    /// registry could not decode or validate it). Such a record is never invoked: it goes to the
    /// on-failure destination, since retrying cannot help, and the shard goes on.
    pub invalid: Option<std::sync::Arc<Invalid>>,
}

/// Why a source could not make a record readable for the function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub reason: InvalidReason,
    /// For logs: what exactly failed (the schema id, the decoder's error).
    pub message: String,
}

/// AWS's reasons for sending a Kafka record to the on-failure destination before invoking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidReason {
    /// The schema the record names is not in the registry.
    SchemaNotFound,
    /// The record cannot be read or validated with its schema.
    DeserializationError,
}

impl Record {
    /// Bytes this record adds to an event: its fragment plus a separator.
    pub fn event_size(&self) -> usize {
        self.encoded.len() + 1
    }
}
