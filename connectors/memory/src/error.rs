//! Errors of the producer-side API (appending, resharding). Reads and receives report
//! [`esmd_api::SourceError`] instead, because the engine decides on those.

use esmd_api::ShardId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    #[error("shard {0} does not exist")]
    UnknownShard(ShardId),
    #[error("shard {0} is closed: it was split or merged")]
    ShardClosed(ShardId),
    #[error("shard {0} covers a single hash key and cannot be split")]
    CannotSplit(ShardId),
    #[error("shards {0} and {1} are not adjacent and cannot be merged")]
    NotAdjacent(ShardId, ShardId),
}
