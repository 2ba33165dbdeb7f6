//! One shard's records, and the signal that wakes its long-polling reader.
//!
//! Records are never trimmed, so an index into the shard stays valid forever: readers keep
//! an index, not a sequence number.

use crate::hash::HashRange;
use crate::sync::{read, write};
use esmd_api::time::now_ms;
use esmd_api::{ReadBatch, Record, ShardId};
use std::sync::RwLock;
use tokio::sync::Notify;

pub(crate) struct Shard {
    pub id: ShardId,
    pub parents: Vec<ShardId>,
    pub range: HashRange,
    data: RwLock<ShardData>,
    /// Fires on every append and when the shard closes.
    pub changed: Notify,
}

#[derive(Default)]
struct ShardData {
    /// Numeric sequence numbers, parallel to `records`, for binary search.
    seqs: Vec<u64>,
    records: Vec<Record>,
    closed: bool,
}

impl Shard {
    pub(crate) fn new(id: ShardId, parents: Vec<ShardId>, range: HashRange) -> Self {
        Shard { id, parents, range, data: RwLock::default(), changed: Notify::new() }
    }

    /// Adds a record. The caller ensures the shard is open (closing happens under the
    /// topology's write lock, which the caller's read lock excludes). `make` receives the
    /// next stream-wide sequence number, drawn here under the shard lock so that sequence
    /// numbers increase along the shard.
    pub(crate) fn push(&self, next_seq: impl FnOnce() -> u64, make: impl FnOnce(u64) -> Record) -> Record {
        let record = {
            let mut data = write(&self.data);
            let seq = next_seq();
            let record = make(seq);
            data.seqs.push(seq);
            data.records.push(record.clone());
            record
        };
        self.changed.notify_waiters();
        record
    }

    pub(crate) fn close(&self) {
        write(&self.data).closed = true;
        self.changed.notify_waiters();
    }

    pub(crate) fn len(&self) -> usize {
        read(&self.data).records.len()
    }

    pub(crate) fn records(&self) -> Vec<Record> {
        read(&self.data).records.clone()
    }

    /// Index of the first record after sequence number `seq`.
    pub(crate) fn index_after(&self, seq: u64) -> usize {
        read(&self.data).seqs.partition_point(|&s| s <= seq)
    }

    /// Index of the first record (in shard order) that arrived at or after `ms`. A scan, not a
    /// search: `append_to` may write arrival times out of order.
    pub(crate) fn index_at_time(&self, ms: i64) -> usize {
        let data = read(&self.data);
        data.records.iter().position(|r| r.arrival_ms >= ms).unwrap_or(data.records.len())
    }

    /// Up to `max` records from index `from`, and what is left behind them.
    pub(crate) fn read_from(&self, from: usize, max: usize) -> (ReadBatch, usize) {
        let data = read(&self.data);
        let len = data.records.len();
        let from = from.min(len);
        let to = from.saturating_add(max).min(len);
        let records = data.records[from..to].to_vec();
        let backlog = len - to;
        let behind_ms = match records.last() {
            // How far the reader trails the stream: the age of what it just read, or nothing
            // when it has caught up (as MillisBehindLatest).
            Some(last) if backlog > 0 => (now_ms() - last.arrival_ms).max(0) as u64,
            _ => 0,
        };
        let batch = ReadBatch { records, end_of_shard: data.closed && to == len, behind_ms: Some(behind_ms), backlog: Some(backlog as u64) };
        (batch, to)
    }
}
