//! The stream's shards: which exist, which are open, which one a hash key routes to, and
//! resharding (split, merge) with Kinesis' lineage rules.

use super::shard::Shard;
use crate::error::MemoryError;
use crate::hash::HashRange;
use esmd_api::ShardId;
use std::sync::Arc;

pub(crate) struct Topology {
    /// Every shard ever created, in creation order (closed ones stay: no retention limit).
    all: Vec<Arc<Shard>>,
    /// Open shards sorted by range start; together they cover every hash key exactly once.
    open: Vec<Arc<Shard>>,
}

fn shard_id(index: usize) -> ShardId {
    ShardId::new(format!("shardId-{index:012}"))
}

impl Topology {
    pub(crate) fn new(shards: usize) -> Self {
        let all: Vec<Arc<Shard>> =
            HashRange::even(shards).into_iter().enumerate().map(|(i, range)| Arc::new(Shard::new(shard_id(i), vec![], range))).collect();
        Topology { open: all.clone(), all }
    }

    pub(crate) fn all(&self) -> &[Arc<Shard>] {
        &self.all
    }

    pub(crate) fn open(&self) -> &[Arc<Shard>] {
        &self.open
    }

    pub(crate) fn get(&self, id: &ShardId) -> Option<&Arc<Shard>> {
        self.all.iter().find(|s| s.id == *id)
    }

    /// The open shard whose range holds `key`.
    pub(crate) fn route(&self, key: u128) -> &Arc<Shard> {
        // Ranges are contiguous from 0, so the last one starting at or below `key` holds it;
        // `open` is never empty (resharding replaces shards, never removes coverage).
        let i = self.open.partition_point(|s| s.range.start <= key).saturating_sub(1);
        &self.open[i]
    }

    /// An open shard by id, for appends that name their shard.
    pub(crate) fn open_shard(&self, id: &ShardId) -> Result<&Arc<Shard>, MemoryError> {
        match self.open.iter().find(|s| s.id == *id) {
            Some(s) => Ok(s),
            None if self.get(id).is_some() => Err(MemoryError::ShardClosed(id.clone())),
            None => Err(MemoryError::UnknownShard(id.clone())),
        }
    }

    /// Closes `id` and opens two children that split its range at the midpoint.
    pub(crate) fn split(&mut self, id: &ShardId) -> Result<[ShardId; 2], MemoryError> {
        let parent = self.open_shard(id)?.clone();
        let (low, high) = parent.range.halves().ok_or_else(|| MemoryError::CannotSplit(id.clone()))?;
        let a = self.create(vec![id.clone()], low);
        let b = self.create(vec![id.clone()], high);
        self.retire(&[&parent]);
        Ok([a, b])
    }

    /// Closes two adjacent open shards and opens one child covering both ranges.
    pub(crate) fn merge(&mut self, a: &ShardId, b: &ShardId) -> Result<ShardId, MemoryError> {
        let first = self.open_shard(a)?.clone();
        let second = self.open_shard(b)?.clone();
        let range = first.range.merge(&second.range).filter(|_| a != b).ok_or_else(|| MemoryError::NotAdjacent(a.clone(), b.clone()))?;
        let child = self.create(vec![a.clone(), b.clone()], range);
        self.retire(&[&first, &second]);
        Ok(child)
    }

    fn create(&mut self, parents: Vec<ShardId>, range: HashRange) -> ShardId {
        let id = shard_id(self.all.len());
        let shard = Arc::new(Shard::new(id.clone(), parents, range));
        self.all.push(shard.clone());
        self.open.push(shard);
        id
    }

    fn retire(&mut self, shards: &[&Arc<Shard>]) {
        for shard in shards {
            shard.close();
        }
        self.open.retain(|s| !shards.iter().any(|r| Arc::ptr_eq(r, s)));
        self.open.sort_by_key(|s| s.range.start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(shards: &[Arc<Shard>]) -> Vec<&str> {
        shards.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn split_then_merge_keeps_full_coverage() {
        let mut t = Topology::new(2);
        let [a, b] = t.split(&ShardId::new("shardId-000000000000")).unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("shardId-000000000002", "shardId-000000000003"));
        assert_eq!(ids(t.open()), ["shardId-000000000002", "shardId-000000000003", "shardId-000000000001"]);
        for key in [0, u128::MAX / 4, u128::MAX / 2, u128::MAX] {
            assert!(t.route(key).range.contains(key));
        }
        let c = t.merge(&b, &ShardId::new("shardId-000000000001")).unwrap();
        assert_eq!(ids(t.open()), ["shardId-000000000002", "shardId-000000000004"]);
        assert_eq!(t.get(&c).unwrap().parents, vec![b.clone(), ShardId::new("shardId-000000000001")]);
        assert_eq!(t.open()[1].range.end, u128::MAX);
    }

    #[test]
    fn resharding_errors() {
        let mut t = Topology::new(3);
        let s0 = ShardId::new("shardId-000000000000");
        let s2 = ShardId::new("shardId-000000000002");
        assert_eq!(t.merge(&s0, &s2), Err(MemoryError::NotAdjacent(s0.clone(), s2.clone())));
        assert_eq!(t.merge(&s0, &s0), Err(MemoryError::NotAdjacent(s0.clone(), s0.clone())));
        t.split(&s0).unwrap();
        assert_eq!(t.split(&s0), Err(MemoryError::ShardClosed(s0.clone())));
        let nope = ShardId::new("nope");
        assert_eq!(t.split(&nope), Err(MemoryError::UnknownShard(nope)));
    }
}
