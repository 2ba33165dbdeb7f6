//! [`MemoryLog`]: an in-memory, Kinesis-like ordered log.

mod reader;
mod sequence;
mod shard;
mod topology;

use crate::error::MemoryError;
use crate::failpoint::FailNext;
use crate::hash::hash_key;
use crate::kinesis::KinesisEncoding;
use crate::sync::{read, write};
use async_trait::async_trait;
use bytes::Bytes;
use esmd_api::time::now_ms;
use esmd_api::{EventEncoder, ErrorKind, OrderedSource, Position, Record, ShardId, ShardInfo, ShardReader, SourceError, StartFrom};
use reader::MemoryShardReader;
use shard::Shard;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use topology::Topology;

pub use reader::LONG_POLL as READ_LONG_POLL;

/// How a [`MemoryLog`] is set up. Region and account only appear in ARNs.
#[derive(Clone, Debug)]
pub struct MemoryLogOptions {
    pub stream_name: String,
    /// Initial shard count (at least one).
    pub shards: usize,
    pub region: String,
    pub account: String,
}

impl Default for MemoryLogOptions {
    fn default() -> Self {
        MemoryLogOptions { stream_name: "esmd-stream".into(), shards: 1, region: "us-east-1".into(), account: "000000000000".into() }
    }
}

/// An in-memory ordered log with Kinesis' shape: partition keys route by MD5 hash ranges,
/// sequence numbers grow along each shard, shards split and merge with lineage, and records
/// are Kinesis event records. Nothing is ever trimmed. Cheap to clone: clones share the log.
#[derive(Clone)]
pub struct MemoryLog {
    inner: Arc<LogInner>,
}

struct LogInner {
    encoding: Arc<KinesisEncoding>,
    /// Lock order: topology, then a shard's data.
    topology: RwLock<Topology>,
    /// Last sequence number handed out, stream-wide.
    last_seq: AtomicU64,
    fail_reads: Arc<FailNext>,
}

impl MemoryLog {
    pub fn new(options: MemoryLogOptions) -> Self {
        let encoding = KinesisEncoding::new(&options.region, &options.account, &options.stream_name);
        MemoryLog {
            inner: Arc::new(LogInner {
                encoding: Arc::new(encoding),
                topology: RwLock::new(Topology::new(options.shards.max(1))),
                last_seq: AtomicU64::new(0),
                fail_reads: Arc::default(),
            }),
        }
    }

    /// Appends to the open shard the key's hash routes to, arriving now.
    pub fn append(&self, partition_key: &[u8], data: impl Into<Bytes>) -> (ShardId, Position) {
        let topology = read(&self.inner.topology);
        let shard = topology.route(hash_key(partition_key));
        let record = self.push(shard, partition_key, data.into(), now_ms());
        (shard.id.clone(), record.position)
    }

    /// Appends to a chosen open shard, arriving at `arrival_ms` (default: now). Arrival times
    /// in the past make records that exceed a maximum record age.
    pub fn append_to(&self, shard: &ShardId, partition_key: &[u8], data: impl Into<Bytes>, arrival_ms: Option<i64>) -> Result<Position, MemoryError> {
        let topology = read(&self.inner.topology);
        let shard = topology.open_shard(shard)?;
        Ok(self.push(shard, partition_key, data.into(), arrival_ms.unwrap_or_else(now_ms)).position)
    }

    fn push(&self, shard: &Shard, partition_key: &[u8], data: Bytes, arrival_ms: i64) -> Record {
        let key = Bytes::copy_from_slice(partition_key);
        shard.push(
            || self.inner.last_seq.fetch_add(1, Ordering::Relaxed) + 1,
            |seq| self.inner.encoding.record(&shard.id, sequence::format(seq), key, data, arrival_ms),
        )
    }

    /// Splits an open shard in two at the middle of its hash range. The parent closes (its
    /// readers reach the end of the shard) and new records route to the children.
    pub fn split_shard(&self, shard: &ShardId) -> Result<[ShardId; 2], MemoryError> {
        write(&self.inner.topology).split(shard)
    }

    /// Merges two open shards with adjacent hash ranges into one child listing both parents.
    pub fn merge_shards(&self, a: &ShardId, b: &ShardId) -> Result<ShardId, MemoryError> {
        write(&self.inner.topology).merge(a, b)
    }

    /// Records in the shard (0 for an unknown shard).
    pub fn len(&self, shard: &ShardId) -> usize {
        read(&self.inner.topology).get(shard).map_or(0, |s| s.len())
    }

    /// Every shard, open or closed, in creation order: the initial shards first.
    pub fn shards(&self) -> Vec<ShardId> {
        read(&self.inner.topology).all().iter().map(|s| s.id.clone()).collect()
    }

    /// The shards new records go to, in hash-range order.
    pub fn open_shards(&self) -> Vec<ShardId> {
        read(&self.inner.topology).open().iter().map(|s| s.id.clone()).collect()
    }

    /// The open shard `append` would put this key in.
    pub fn route(&self, partition_key: &[u8]) -> ShardId {
        read(&self.inner.topology).route(hash_key(partition_key)).id.clone()
    }

    /// A copy of the shard's records, for inspection (empty for an unknown shard).
    pub fn records(&self, shard: &ShardId) -> Vec<Record> {
        read(&self.inner.topology).get(shard).map_or_else(Vec::new, |s| s.records())
    }

    /// The next `n` reads, on any shard, fail with a transient error.
    pub fn fail_next_reads(&self, n: u32) {
        self.inner.fail_reads.set(n);
    }

    pub fn stream_arn(&self) -> &str {
        self.inner.encoding.stream_arn()
    }

    pub fn encoding(&self) -> Arc<KinesisEncoding> {
        self.inner.encoding.clone()
    }

    fn shard(&self, id: &ShardId) -> Result<Arc<Shard>, SourceError> {
        read(&self.inner.topology).get(id).cloned().ok_or_else(|| SourceError::new(ErrorKind::NotFound, format!("shard {id} does not exist")))
    }
}

#[async_trait]
impl OrderedSource for MemoryLog {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn encoder(&self) -> Arc<dyn EventEncoder> {
        self.inner.encoding.clone()
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        Ok(read(&self.inner.topology).all().iter().map(|s| ShardInfo { id: s.id.clone(), parents: s.parents.clone() }).collect())
    }

    async fn open(&self, shard: &ShardInfo, from: StartFrom) -> Result<Box<dyn ShardReader>, SourceError> {
        let shard = self.shard(&shard.id)?;
        let next = match from {
            StartFrom::TrimHorizon => 0,
            StartFrom::Latest => shard.len(),
            StartFrom::AtTimestamp(ms) => shard.index_at_time(ms),
            StartFrom::After(position) => {
                let seq = sequence::parse(position.as_str()).ok_or_else(|| {
                    SourceError::fatal(format!("{position} is not a sequence number of stream {}", self.stream_arn()))
                })?;
                shard.index_after(seq)
            }
        };
        Ok(Box::new(MemoryShardReader::new(shard, next, self.inner.fail_reads.clone())))
    }

    /// Reads long-poll, so an idle shard needs no pause between them.
    fn idle_poll_interval(&self) -> Duration {
        Duration::ZERO
    }

    /// Listing is a lock and a copy. A reshard's children are found at once anyway (a parent
    /// that finishes triggers a discovery); this only paces the look for shards that appear
    /// otherwise, and what 100 idle mappings cost.
    fn discovery_interval(&self) -> Duration {
        Duration::from_secs(1)
    }
}

#[cfg(test)]
mod tests;
