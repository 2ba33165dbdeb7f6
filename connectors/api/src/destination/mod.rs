//! On-failure destinations: where a batch goes when esmd gives up on it. The service delivers
//! to files and AWS (SQS, SNS, S3); a connector with a broker of its own (Kafka, RabbitMQ)
//! brings the destination that publishes there.

mod kind;

pub use kind::DestinationKind;

use crate::{Record, ShardId};
use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;

/// A batch that esmd gave up on, ready to be delivered.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The failure record in AWS's shape (`requestContext`, `responseContext`, `version`,
    /// `timestamp`, `<Source>BatchInfo`).
    pub record: Value,
    /// The event the function was (or would have been) invoked with; S3 destinations add it as
    /// `payload`.
    pub payload: Bytes,
    pub shard: ShardId,
    /// The records themselves, for destinations that forward them one by one (Kafka).
    pub records: Vec<Record>,
}

#[derive(Debug, thiserror::Error)]
#[error("{destination}: {message}")]
pub struct DestinationError {
    pub destination: String,
    pub message: String,
}

#[async_trait]
pub trait Destination: Send + Sync {
    /// Delivers one failure. An error means nothing was delivered and the caller must retry:
    /// a failure is never dropped.
    async fn deliver(&self, failure: &Failure) -> Result<(), DestinationError>;

    /// The destination as configured (ARN or URL), for logs and metrics.
    fn describe(&self) -> &str;
}
