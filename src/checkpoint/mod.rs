//! Checkpoint stores: where a shard's low watermark lives between runs.

use async_trait::async_trait;
use esmd_api::{Position, ShardId};
use serde::{Deserialize, Serialize};

pub mod embedded;

/// What is kept per shard.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last record below which every record is finished; `None` before the first one.
    pub position: Option<Position>,
    /// The shard was read to its end and every record finished: children may start.
    pub shard_finished: bool,
    /// Tumbling-window state carried between invocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
#[error("checkpoint store: {0}")]
pub struct CheckpointError(pub String);

#[async_trait]
pub trait CheckpointStore: Send + Sync {
    async fn load(&self, mapping: &str, shard: &ShardId) -> Result<Option<Checkpoint>, CheckpointError>;
    /// Durable when it returns: a crash right after loses nothing that was saved.
    async fn save(&self, mapping: &str, shard: &ShardId, checkpoint: &Checkpoint) -> Result<(), CheckpointError>;
    async fn list(&self, mapping: &str) -> Result<Vec<(ShardId, Checkpoint)>, CheckpointError>;
}
