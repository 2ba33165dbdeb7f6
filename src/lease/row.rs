//! One lease: a row of the lease table, in KCL 2.x's attribute names and types.
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `leaseKey` | S (hash key) | `<mapping>:<shardId>`, so several mappings share one table |
//! | `leaseOwner` | S | the instance id holding it; absent when nobody does |
//! | `leaseCounter` | N | bumped by every take and renewal: the fencing token |
//! | `checkpoint` | S | the last finished sequence number, `TRIM_HORIZON` before the first, `SHARD_END` once the shard is done |
//! | `checkpointSubSequenceNumber` | N | always 0 (esmd does not split aggregated records) |
//! | `ownerSwitchesSinceCheckpoint` | N | owner changes since the checkpoint last moved |
//! | `parentShardId` | SS | the shard's parents (absent for none) |
//! | `esmdWindowState` | S | esmd's own: tumbling-window state as of the checkpoint (JSON) |

use aws_sdk_dynamodb::types::AttributeValue;
use esmd_api::ShardId;
use std::collections::HashMap;

/// KCL's checkpoint before any record was finished.
pub const TRIM_HORIZON: &str = "TRIM_HORIZON";
/// KCL's checkpoint of a shard read to its end with every record finished.
pub const SHARD_END: &str = "SHARD_END";

pub(crate) const KEY: &str = "leaseKey";
pub(crate) const OWNER: &str = "leaseOwner";
pub(crate) const COUNTER: &str = "leaseCounter";
pub(crate) const CHECKPOINT: &str = "checkpoint";
pub(crate) const SUB_SEQUENCE: &str = "checkpointSubSequenceNumber";
pub(crate) const OWNER_SWITCHES: &str = "ownerSwitchesSinceCheckpoint";
pub(crate) const PARENTS: &str = "parentShardId";
pub(crate) const STATE: &str = "esmdWindowState";

#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    pub mapping: String,
    pub shard: ShardId,
    pub owner: Option<String>,
    pub counter: u64,
    /// A sequence number, [`TRIM_HORIZON`] or [`SHARD_END`].
    pub checkpoint: String,
    pub owner_switches_since_checkpoint: u64,
    pub parents: Vec<ShardId>,
    pub window_state: Option<serde_json::Value>,
}

/// `<mapping>:<shardId>`. Mapping names are `[A-Za-z0-9_-]`, so the first colon splits them.
pub fn lease_key(mapping: &str, shard: &str) -> String {
    format!("{mapping}:{shard}")
}

impl Lease {
    /// A new, unowned lease at the start of its shard.
    pub fn new(mapping: &str, shard: ShardId, parents: Vec<ShardId>) -> Self {
        Lease { mapping: mapping.into(), shard, owner: None, counter: 0, checkpoint: TRIM_HORIZON.into(), owner_switches_since_checkpoint: 0, parents, window_state: None }
    }

    pub fn key(&self) -> String {
        lease_key(&self.mapping, self.shard.as_str())
    }

    pub fn is_finished(&self) -> bool {
        self.checkpoint == SHARD_END
    }

    /// The row, as PutItem writes it.
    pub fn to_item(&self) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            (KEY.to_string(), AttributeValue::S(self.key())),
            (COUNTER.to_string(), AttributeValue::N(self.counter.to_string())),
            (CHECKPOINT.to_string(), AttributeValue::S(self.checkpoint.clone())),
            (SUB_SEQUENCE.to_string(), AttributeValue::N("0".into())),
            (OWNER_SWITCHES.to_string(), AttributeValue::N(self.owner_switches_since_checkpoint.to_string())),
        ]);
        if let Some(owner) = &self.owner {
            item.insert(OWNER.into(), AttributeValue::S(owner.clone()));
        }
        if !self.parents.is_empty() {
            item.insert(PARENTS.into(), AttributeValue::Ss(self.parents.iter().map(|p| p.to_string()).collect()));
        }
        if let Some(state) = &self.window_state {
            item.insert(STATE.into(), AttributeValue::S(state.to_string()));
        }
        item
    }

    /// A row as GetItem, Scan or UpdateItem return it. `Err` names what is wrong with it (a
    /// row another tool wrote, or a KCL application's row in the same table).
    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Lease, String> {
        let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let n = |name: &str| -> Result<u64, String> {
            match item.get(name) {
                None => Ok(0),
                Some(v) => v.as_n().ok().and_then(|n| n.parse().ok()).ok_or_else(|| format!("{name} is not a whole number")),
            }
        };
        let key = s(KEY).ok_or("no leaseKey")?;
        let (mapping, shard) = key.split_once(':').ok_or_else(|| format!("leaseKey {key:?} is not <mapping>:<shardId>"))?;
        let parents = match item.get(PARENTS) {
            None => Vec::new(),
            Some(v) => v.as_ss().map_err(|_| "parentShardId is not a string set".to_string())?.iter().map(|p| ShardId::new(p.as_str())).collect(),
        };
        let window_state = match s(STATE) {
            None => None,
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| format!("esmdWindowState is not JSON: {e}"))?),
        };
        Ok(Lease {
            mapping: mapping.into(),
            shard: ShardId::new(shard),
            owner: s(OWNER),
            counter: n(COUNTER)?,
            checkpoint: s(CHECKPOINT).unwrap_or_else(|| TRIM_HORIZON.into()),
            owner_switches_since_checkpoint: n(OWNER_SWITCHES)?,
            parents,
            window_state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_round_trip_in_kcl_names() {
        let mut lease = Lease::new("orders", ShardId::new("shardId-000000000002"), vec![ShardId::new("shardId-000000000000"), ShardId::new("shardId-000000000001")]);
        lease.owner = Some("esmd-a".into());
        lease.counter = 7;
        lease.checkpoint = "49590338271490256608559692538361571095921575989136588898".into();
        lease.window_state = Some(json!({"sum": 3}));
        let item = lease.to_item();
        assert_eq!(item[KEY].as_s().unwrap(), "orders:shardId-000000000002");
        assert_eq!(item[COUNTER].as_n().unwrap(), "7");
        assert_eq!(item[SUB_SEQUENCE].as_n().unwrap(), "0");
        assert_eq!(item[PARENTS].as_ss().unwrap().len(), 2);
        assert_eq!(Lease::from_item(&item).unwrap(), lease);
        let fresh = Lease::new("m", ShardId::new("s"), vec![]);
        let item = fresh.to_item();
        assert!(!item.contains_key(OWNER) && !item.contains_key(PARENTS) && !item.contains_key(STATE));
        assert_eq!(Lease::from_item(&item).unwrap(), fresh);
    }

    #[test]
    fn foreign_rows_are_refused_with_a_reason() {
        let kcl = HashMap::from([(KEY.to_string(), AttributeValue::S("shardId-000000000000".into()))]);
        assert!(Lease::from_item(&kcl).unwrap_err().contains("<mapping>:<shardId>"));
        let bad = HashMap::from([(KEY.to_string(), AttributeValue::S("m:s".into())), (COUNTER.to_string(), AttributeValue::S("x".into()))]);
        assert!(Lease::from_item(&bad).unwrap_err().contains("leaseCounter"));
    }
}
