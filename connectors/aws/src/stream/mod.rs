//! Shard polling shared by the Kinesis and DynamoDB Streams connectors.
//!
//! Both services have the same shape: shards with parent lineage, a shard iterator obtained
//! for a starting position, and GetRecords pages that hand out the next iterator (none once a
//! closed shard is read to its end). A connector implements [`ShardApi`] over its SDK;
//! [`PollingReader`] turns that into the engine's [`ShardReader`].

mod errors;
mod reader;
mod source;

pub use errors::{classify, source_error, Call};
pub use reader::{PollingReader, ReaderOptions};
pub use source::{StreamSource, StreamSourceOptions};

use async_trait::async_trait;
use esmd_api::{Record, ShardId, ShardInfo, SourceError, StartFrom};

/// What one GetRecords call returned.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<Record>,
    /// `NextShardIterator`; `None` when the shard is closed and read to its end.
    pub next_iterator: Option<String>,
    /// `MillisBehindLatest` (Kinesis only).
    pub behind_ms: Option<u64>,
}

/// One service's shard API, with every SDK error already classified into a
/// [`SourceError`] kind (expired iterator, trimmed data, throttling, ...).
#[async_trait]
pub trait ShardApi: Send + Sync + 'static {
    /// Every shard of the stream, all pages, with `parents` set from `ParentShardId` and
    /// `AdjacentParentShardId`.
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError>;

    /// A shard iterator at `from`.
    async fn shard_iterator(&self, shard: &ShardId, from: &StartFrom) -> Result<String, SourceError>;

    /// One GetRecords call of at most `limit` records.
    async fn get_records(&self, shard: &ShardId, iterator: &str, limit: usize) -> Result<Page, SourceError>;
}

/// GetRecords' own maximum (both services; DynamoDB Streams stops at 1000 by itself).
pub const GET_RECORDS_LIMIT: usize = 10_000;

/// Sequence numbers are decimal strings of up to 56 digits (Kinesis) or 21–40 (DynamoDB);
/// comparing them numerically means comparing length first, then digits. Lets tests and the
/// resharding logic order positions without parsing into a 128-bit integer.
pub fn sequence_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert_eq!(sequence_cmp("9", "10"), Ordering::Less);
        assert_eq!(sequence_cmp("0010", "10"), Ordering::Equal);
        assert_eq!(
            sequence_cmp("49590338271490256608559692538361571095921575989136588898", "49590338271490256608559692540925702759324208523137515618"),
            Ordering::Less
        );
    }
}
