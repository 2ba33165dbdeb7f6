//! Source configurations, selected by `type`. Each connector crate adds its own variant here
//! behind its cargo feature (kafka, rabbitmq, sqs, kinesis, dynamodb_streams).

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// An in-memory stream (Kinesis-shaped events): demos, tests, benchmarks.
    Memory(MemorySource),
    /// An in-memory queue (SQS-shaped events).
    MemoryQueue(MemoryQueueSource),
}

/// Which part of the engine runs a source, and so which parameters apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Stream,
    Queue,
}

impl SourceConfig {
    pub fn family(&self) -> Family {
        match self {
            SourceConfig::Memory(_) => Family::Stream,
            SourceConfig::MemoryQueue(_) => Family::Queue,
        }
    }
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceConfig::Memory(_) => "memory",
            SourceConfig::MemoryQueue(_) => "memory_queue",
        }
    }
    /// AWS's default batch size for this source (SQS 10; streams, Kafka and MQ 100).
    pub fn default_batch_size(&self) -> usize {
        match self {
            SourceConfig::MemoryQueue(_) => 10,
            SourceConfig::Memory(_) => 100,
        }
    }
    /// SQS-shaped sources follow SQS's rule: a batch size over 10 needs a window of ≥ 1 s.
    pub fn sqs_like(&self) -> bool {
        matches!(self, SourceConfig::MemoryQueue(_))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySource {
    pub stream_name: String,
    #[serde(default = "one")]
    pub shards: usize,
    /// A synthetic backlog written at start.
    pub seed: Option<Seed>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    pub records: usize,
    #[serde(default = "default_record_bytes")]
    pub record_bytes: usize,
    #[serde(default = "default_keys")]
    pub keys: usize,
    /// Every Nth record is poison (data starting with `poison`); 0 = none.
    #[serde(default)]
    pub poison_every: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryQueueSource {
    pub queue_name: String,
    #[serde(default)]
    pub fifo: bool,
    #[serde(default = "default_visibility")]
    pub visibility_timeout_seconds: u64,
}

fn one() -> usize {
    1
}
fn default_record_bytes() -> usize {
    100
}
fn default_keys() -> usize {
    100
}
fn default_visibility() -> u64 {
    30
}
