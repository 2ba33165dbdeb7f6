//! Live state of every mapping and shard, for `/status`, `/readyz` and the demo's report.
//!
//! Workers write here as they go; readers take snapshots. Everything is behind short-lived
//! locks that are never held across an await.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ShardState {
    #[default]
    Starting,
    /// Waiting for parent shards to finish.
    WaitingForParents,
    Running,
    /// A batch is failing and holds the shard (retries, destination down).
    Blocked,
    /// Read to its end and finished.
    Finished,
    Stopped,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ShardStatus {
    pub state: ShardState,
    /// Resharding lineage: shards finished before this one starts (Kinesis, DynamoDB Streams).
    pub parents: Vec<String>,
    /// Position of the last record read.
    pub position: Option<String>,
    /// The low watermark saved to the checkpoint store.
    pub checkpoint: Option<String>,
    pub iterator_age_ms: u64,
    /// What the source said at the last read (Kinesis MillisBehindLatest).
    pub millis_behind_latest: Option<u64>,
    pub in_flight_batches: u64,
    /// Records read and not yet finished.
    pub pending_records: u64,
    pub records_finished: u64,
    pub backlog: Option<u64>,
    /// The last read found nothing new and nothing read is unfinished (`esmd drain` stops when
    /// every shard is here).
    pub caught_up: bool,
    pub last_error: Option<String>,
    /// Fleets: the instance holding the shard's lease and the lease's counter, as this
    /// instance last read them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_counter: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct MappingStatus {
    pub source: String,
    pub started: bool,
    pub in_flight_batches: u64,
    pub last_error: Option<String>,
    pub shards: BTreeMap<String, ShardStatus>,
}

/// Shared, cheap to clone.
#[derive(Clone, Default)]
pub struct StatusRegistry {
    inner: Arc<Mutex<BTreeMap<String, MappingStatus>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take status reporting down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StatusRegistry {
    pub fn mapping(&self, name: &str, source: &str) -> MappingHandle {
        lock(&self.inner)
            .entry(name.to_string())
            .or_insert_with(|| MappingStatus { source: source.to_string(), ..Default::default() });
        MappingHandle { registry: self.clone(), mapping: name.to_string() }
    }

    pub fn snapshot(&self) -> BTreeMap<String, MappingStatus> {
        lock(&self.inner).clone()
    }

    /// Every mapping has started its workers.
    pub fn ready(&self) -> bool {
        lock(&self.inner).values().all(|m| m.started)
    }

    fn update_mapping(&self, mapping: &str, f: impl FnOnce(&mut MappingStatus)) {
        if let Some(m) = lock(&self.inner).get_mut(mapping) {
            f(m)
        }
    }
}

/// One mapping's corner of the registry.
#[derive(Clone)]
pub struct MappingHandle {
    registry: StatusRegistry,
    mapping: String,
}

impl MappingHandle {
    pub fn name(&self) -> &str {
        &self.mapping
    }
    pub fn set_started(&self, started: bool) {
        self.registry.update_mapping(&self.mapping, |m| m.started = started);
    }
    pub fn set_error(&self, error: Option<String>) {
        self.registry.update_mapping(&self.mapping, |m| m.last_error = error);
    }
    pub fn add_in_flight(&self, delta: i64) {
        self.registry.update_mapping(&self.mapping, |m| {
            m.in_flight_batches = m.in_flight_batches.saturating_add_signed(delta)
        });
    }
    pub fn shard(&self, shard: &str) -> ShardHandle {
        self.registry.update_mapping(&self.mapping, |m| {
            m.shards.entry(shard.to_string()).or_default();
        });
        ShardHandle { mapping: self.clone(), shard: shard.to_string() }
    }
}

/// One shard's status, updated by its worker.
#[derive(Clone)]
pub struct ShardHandle {
    mapping: MappingHandle,
    shard: String,
}

impl ShardHandle {
    pub fn update(&self, f: impl FnOnce(&mut ShardStatus)) {
        self.mapping.registry.update_mapping(&self.mapping.mapping, |m| {
            if let Some(s) = m.shards.get_mut(&self.shard) {
                f(s)
            }
        });
    }
    pub fn mapping(&self) -> &MappingHandle {
        &self.mapping
    }
}
