//! Running a stream mapping's shards across a fleet: [`Fleet`] renews this instance's leases,
//! takes expired ones and balances, once per round; [`LeasedSource`] shows the supervisor only
//! the shards this instance holds (a lease lost is a shard no longer listed, which stops it
//! like a revoked Kafka partition); [`LeaseStore`] keeps checkpoints in the lease rows, each
//! write conditional on the lease still being ours.

use super::balance::{plan, LeaseView};
use super::row::{Lease, SHARD_END, TRIM_HORIZON};
use super::table::{LeaseError, LeaseTable};
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointStore};
use crate::status::MappingHandle;
use async_trait::async_trait;
use esmd_api::{ErrorKind, EventEncoder, OrderedSource, Position, ReadBatch, ShardId, ShardInfo, ShardReader, SourceError, StartFrom};
use std::collections::HashMap;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A lease this instance holds: its counter is the fencing token of every write. The async
/// mutex serialises our own writes to the row (a renewal and a checkpoint must not race each
/// other's counter).
struct Held {
    counter: Mutex<u64>,
}

/// One mapping's view of the lease table, shared by its source wrapper and its store.
pub struct Fleet {
    table: LeaseTable,
    mapping: String,
    me: String,
    failover: Duration,
    held: SyncMutex<HashMap<ShardId, Arc<Held>>>,
    /// When each lease's counter was last seen to move.
    seen: SyncMutex<HashMap<String, (u64, Instant)>>,
    epoch: Instant,
    /// Where /status shows each held shard's lease.
    status: Option<MappingHandle>,
    /// Readers still open per shard. A lease lost while its worker still runs is not taken
    /// back until that worker is gone: its in-flight batches would otherwise checkpoint
    /// through the new lease from where it stood when it lost the old one.
    readers: SyncMutex<HashMap<ShardId, usize>>,
}

impl Fleet {
    pub fn new(table: LeaseTable, mapping: &str, me: &str, failover: Duration, status: Option<MappingHandle>) -> Arc<Self> {
        Arc::new(Fleet {
            table,
            mapping: mapping.into(),
            me: me.into(),
            failover,
            held: SyncMutex::new(HashMap::new()),
            seen: SyncMutex::new(HashMap::new()),
            epoch: Instant::now(),
            status,
            readers: SyncMutex::new(HashMap::new()),
        })
    }

    /// Renewals happen three times per failover time, as KCL does.
    pub fn round_interval(&self) -> Duration {
        self.failover / 3
    }

    fn held(&self, shard: &ShardId) -> Option<Arc<Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).get(shard).cloned()
    }

    fn drop_lease(&self, shard: &ShardId, why: &str) {
        if self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(shard).is_some() {
            crate::metrics::lease_lost(&self.mapping);
            tracing::warn!(mapping = %self.mapping, shard = %shard, instance = %self.me, "{why}: the shard stops here; its new owner goes on from the checkpoint");
        }
    }

    /// The shards this instance holds now.
    pub fn held_shards(&self) -> Vec<ShardId> {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// One round: make sure every shard has a lease, renew ours, take what the balancing rule
    /// says. Returns the held shards among `shards`.
    pub async fn round(&self, shards: &[ShardInfo]) -> Result<Vec<ShardInfo>, LeaseError> {
        let mut rows = self.rows().await?;
        for s in shards.iter().filter(|s| !rows.contains_key(&s.id)) {
            let lease = Lease::new(&self.mapping, s.id.clone(), s.parents.clone());
            self.table.create(&lease).await?;
        }
        if shards.iter().any(|s| !rows.contains_key(&s.id)) {
            rows = self.rows().await?;
        }
        self.renew_held(&rows).await?;
        let now = Instant::now();
        let views: Vec<LeaseView> = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            rows.values()
                .map(|l| {
                    let key = l.key();
                    let entry = seen.entry(key.clone()).or_insert((l.counter, now));
                    if entry.0 != l.counter {
                        *entry = (l.counter, now);
                    }
                    LeaseView {
                        key,
                        shard: l.shard.to_string(),
                        owner: l.owner.clone(),
                        counter: l.counter,
                        counter_seen_ms: entry.1.duration_since(self.epoch).as_millis() as u64,
                        finished: l.is_finished(),
                        parents: l.parents.iter().map(|p| p.to_string()).collect(),
                    }
                })
                .collect()
        };
        let p = plan(&self.me, &views, now.duration_since(self.epoch).as_millis() as u64, self.failover.as_millis() as u64);
        for key in p.take.iter().chain(p.steal.iter()) {
            let Some(lease) = rows.values().find(|l| &l.key() == key) else { continue };
            if self.still_reading(&lease.shard) {
                continue;
            }
            if let Some(taken) = self.table.take(lease, &self.me).await? {
                tracing::info!(mapping = %self.mapping, shard = %taken.shard, instance = %self.me, previous = ?lease.owner, stolen = p.steal.as_ref() == Some(key), "lease taken");
                crate::metrics::lease_takeover(&self.mapping);
                self.held.lock().unwrap_or_else(|e| e.into_inner()).insert(taken.shard.clone(), Arc::new(Held { counter: Mutex::new(taken.counter) }));
                rows.insert(taken.shard.clone(), taken);
            }
        }
        let held = self.held_shards();
        crate::metrics::leases_held(&self.mapping, held.len());
        if let Some(status) = &self.status {
            for shard in &held {
                if let Some(l) = rows.get(shard) {
                    status.shard(shard.as_str()).update(|s| (s.lease_owner, s.lease_counter) = (l.owner.clone(), Some(l.counter)));
                }
            }
        }
        Ok(shards.iter().filter(|s| held.contains(&s.id)).cloned().collect())
    }

    /// The mapping's leases by shard, read consistently.
    async fn rows(&self) -> Result<HashMap<ShardId, Lease>, LeaseError> {
        Ok(self.table.list(&self.mapping).await?.into_iter().map(|l| (l.shard.clone(), l)).collect())
    }

    async fn renew_held(&self, rows: &HashMap<ShardId, Lease>) -> Result<(), LeaseError> {
        for shard in self.held_shards() {
            let Some(held) = self.held(&shard) else { continue };
            let mut counter = held.counter.lock().await;
            // Someone else moved the row since we last wrote it: it is not ours any more.
            let still_ours = rows.get(&shard).is_some_and(|r| r.owner.as_deref() == Some(&self.me) && r.counter == *counter && !r.is_finished());
            let renewed = if still_ours { self.table.renew(&self.mapping, shard.as_str(), &self.me, *counter).await? } else { None };
            match renewed {
                Some(c) => *counter = c,
                None => {
                    drop(counter);
                    let finished = rows.get(&shard).is_some_and(Lease::is_finished);
                    if finished {
                        self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&shard);
                    } else {
                        self.drop_lease(&shard, "lease lost");
                    }
                }
            }
        }
        Ok(())
    }

    /// Hands every held lease back so the others take them at once (graceful shutdown).
    pub async fn release_all(&self) {
        for shard in self.held_shards() {
            let Some(held) = self.held(&shard) else { continue };
            let counter = held.counter.lock().await;
            match self.table.release(&self.mapping, shard.as_str(), &self.me, *counter).await {
                Ok(true) => tracing::info!(mapping = %self.mapping, shard = %shard, instance = %self.me, "lease handed back"),
                Ok(false) => {}
                Err(e) => tracing::warn!(mapping = %self.mapping, shard = %shard, error = %e, "could not hand the lease back; the others take it after the failover time"),
            }
            drop(counter);
            self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&shard);
        }
        crate::metrics::leases_held(&self.mapping, 0);
    }

    fn still_reading(&self, shard: &ShardId) -> bool {
        self.readers.lock().unwrap_or_else(|e| e.into_inner()).get(shard).is_some_and(|n| *n > 0)
    }

    fn reader_opened(&self, shard: &ShardId) {
        *self.readers.lock().unwrap_or_else(|e| e.into_inner()).entry(shard.clone()).or_default() += 1;
    }

    fn reader_closed(&self, shard: &ShardId) {
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = readers.get_mut(shard) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                readers.remove(shard);
            }
        }
    }

}

/// The mapping's source as the supervisor sees it in a fleet: only the held shards, listed
/// every round.
pub struct LeasedSource {
    inner: Arc<dyn OrderedSource>,
    fleet: Arc<Fleet>,
}

impl LeasedSource {
    pub fn new(inner: Arc<dyn OrderedSource>, fleet: Arc<Fleet>) -> Self {
        LeasedSource { inner, fleet }
    }
}

fn lease_error(e: LeaseError) -> SourceError {
    SourceError::transient(e.to_string())
}

#[async_trait]
impl OrderedSource for LeasedSource {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn encoder(&self) -> Arc<dyn EventEncoder> {
        self.inner.encoder()
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        let shards = self.inner.list_shards().await?;
        let held = self.fleet.round(&shards).await.map_err(lease_error)?;
        // The supervisor waits for parents it sees listed: it sees only ours, and the balancing
        // rule takes a child only once its parents reached SHARD_END, wherever they ran.
        Ok(held)
    }

    async fn open(&self, shard: &ShardInfo, from: StartFrom) -> Result<Box<dyn ShardReader>, SourceError> {
        let inner = self.inner.open(shard, from).await?;
        self.fleet.reader_opened(&shard.id);
        Ok(Box::new(LeasedReader { inner, fleet: self.fleet.clone(), shard: shard.id.clone() }))
    }

    fn idle_poll_interval(&self) -> Duration {
        self.inner.idle_poll_interval()
    }

    /// Every round is a discovery, so renewals keep their pace.
    fn discovery_interval(&self) -> Duration {
        self.fleet.round_interval().min(self.inner.discovery_interval())
    }

    async fn close(&self) {
        self.fleet.release_all().await;
        self.inner.close().await;
    }
}

/// A held shard's reader: once the lease is lost (a refused checkpoint or renewal), the next
/// read says so and the worker stops at once, as for a revoked Kafka partition: in-flight
/// batches finish uncommitted, waiting records are left to the new owner.
struct LeasedReader {
    inner: Box<dyn ShardReader>,
    fleet: Arc<Fleet>,
    shard: ShardId,
}

#[async_trait]
impl ShardReader for LeasedReader {
    async fn read(&mut self, max_records: usize) -> Result<ReadBatch, SourceError> {
        if self.fleet.held(&self.shard).is_none() {
            return Err(SourceError::new(ErrorKind::Revoked, format!("shard {}: its lease moved to another instance", self.shard)));
        }
        self.inner.read(max_records).await
    }

    async fn commit(&mut self, position: &Position) -> Result<(), SourceError> {
        self.inner.commit(position).await
    }
}

impl Drop for LeasedReader {
    fn drop(&mut self) {
        self.fleet.reader_closed(&self.shard);
    }
}

/// Checkpoints in the lease rows: `checkpoint` is the sequence number (`TRIM_HORIZON` before
/// the first, `SHARD_END` once finished), `esmdWindowState` the window state.
pub struct LeaseStore {
    fleet: Arc<Fleet>,
}

impl LeaseStore {
    pub fn new(fleet: Arc<Fleet>) -> Self {
        LeaseStore { fleet }
    }
}

fn to_checkpoint(l: &Lease) -> Checkpoint {
    let finished = l.is_finished();
    let position = (l.checkpoint != TRIM_HORIZON && !finished).then(|| Position::new(l.checkpoint.as_str()));
    Checkpoint { position, shard_finished: finished, state: l.window_state.clone() }
}

fn store_error(e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError(e.to_string())
}

#[async_trait]
impl CheckpointStore for LeaseStore {
    async fn load(&self, mapping: &str, shard: &ShardId) -> Result<Option<Checkpoint>, CheckpointError> {
        let lease = self.fleet.table.get(mapping, shard.as_str()).await.map_err(store_error)?;
        Ok(lease.as_ref().map(to_checkpoint))
    }

    async fn save(&self, mapping: &str, shard: &ShardId, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let f = &self.fleet;
        let held = f.held(shard).ok_or_else(|| CheckpointError(format!("shard {shard}: the lease is not held by {}; checkpoint not written", f.me)))?;
        let counter = held.counter.lock().await;
        let value = match (&checkpoint.position, checkpoint.shard_finished) {
            (_, true) => SHARD_END.to_string(),
            (Some(p), false) => p.to_string(),
            (None, false) => TRIM_HORIZON.to_string(),
        };
        let written = f.table.checkpoint(mapping, shard.as_str(), &f.me, *counter, &value, checkpoint.state.as_ref()).await.map_err(store_error)?;
        drop(counter);
        if !written {
            f.drop_lease(shard, "checkpoint refused: the lease moved to another instance");
            return Err(CheckpointError(format!("shard {shard}: the lease moved to another instance; checkpoint not written")));
        }
        if checkpoint.shard_finished {
            f.held.lock().unwrap_or_else(|e| e.into_inner()).remove(shard);
        }
        Ok(())
    }

    async fn list(&self, mapping: &str) -> Result<Vec<(ShardId, Checkpoint)>, CheckpointError> {
        let leases = self.fleet.table.list(mapping).await.map_err(store_error)?;
        Ok(leases.iter().map(|l| (l.shard.clone(), to_checkpoint(l))).collect())
    }
}
