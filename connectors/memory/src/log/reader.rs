//! Reads one shard in order, long-polling briefly when it is caught up.

use super::shard::Shard;
use crate::failpoint::FailNext;
use async_trait::async_trait;
use esmd_api::{ReadBatch, ShardReader, SourceError};
use std::sync::Arc;
use std::time::Duration;

/// How long a caught-up read waits for an append before returning empty. An append (or the
/// shard closing) wakes it at once, so this only bounds how often an idle shard's worker wakes
/// up: at 50 ms, 100 idle mappings cost a quarter of a core in wake-ups alone. The worker
/// writes checkpoints between reads, so an idle shard's last checkpoint can trail its last
/// finished batch by up to this long; shutdown does not wait for it.
pub const LONG_POLL: Duration = Duration::from_millis(500);

pub(crate) struct MemoryShardReader {
    shard: Arc<Shard>,
    /// Index of the next record to return.
    next: usize,
    fail: Arc<FailNext>,
}

impl MemoryShardReader {
    pub(crate) fn new(shard: Arc<Shard>, next: usize, fail: Arc<FailNext>) -> Self {
        MemoryShardReader { shard, next, fail }
    }
}

#[async_trait]
impl ShardReader for MemoryShardReader {
    /// Cancel-safe: the cursor moves only when a batch is returned.
    async fn read(&mut self, max_records: usize) -> Result<ReadBatch, SourceError> {
        if self.fail.take() {
            return Err(SourceError::transient(format!("{}: injected read failure", self.shard.id)));
        }
        let mut waited = false;
        loop {
            // Register for the wake-up before looking, so an append between the look and
            // the wait is not missed.
            let appended = self.shard.changed.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let (batch, next) = self.shard.read_from(self.next, max_records.max(1));
            if !batch.records.is_empty() || batch.end_of_shard || waited {
                self.next = next;
                return Ok(batch);
            }
            waited = true;
            let _ = tokio::time::timeout(LONG_POLL, appended).await;
        }
    }
}
