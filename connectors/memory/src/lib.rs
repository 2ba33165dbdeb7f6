//! In-memory sources for esmd: [`MemoryLog`], a Kinesis-like ordered log, and
//! [`MemoryQueue`], an SQS-like queue. Both produce records shaped exactly like AWS's events
//! (Kinesis and SQS), so the engine's tests, `esmd demo` and the benchmarks exercise the same
//! paths as real sources, without servers and deterministically (sequence numbers, message
//! ids and receipt handles come from counters, not randomness).

#![forbid(unsafe_code)]

pub mod config;
mod connector;
mod error;
mod failpoint;
mod hash;
// The JSON helpers and the Kinesis shape live in esmd-api, shared with the AWS connectors.
use esmd_api::json;
use esmd_api::kinesis;
mod log;
mod queue;
mod sync;

pub use config::{MemoryQueueSource, MemorySource, Seed};
pub use connector::{MemoryQueueConnector, MemoryStreamConnector};
pub use error::MemoryError;
pub use kinesis::KinesisEncoding;
pub use log::{MemoryLog, MemoryLogOptions, READ_LONG_POLL};
pub use queue::{MemoryQueue, MemoryQueueOptions, DEFAULT_FIFO_GROUP};

/// A JSON string literal, escaped as serde_json does: for pre-encoding parts of records.
pub fn json_string(s: &str) -> String {
    json::quoted(s)
}
