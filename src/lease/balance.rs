//! Which leases one instance takes in a renewal round. Pure: the coordinator feeds it what it
//! observed of the table and when each lease's counter last moved.
//!
//! The rules (KCL's, with its defaults):
//! - A lease is expired when nobody owns it, or its counter has not moved for the failover
//!   time (its owner stopped renewing: dead, paused, partitioned).
//! - Instances alive = owners of unexpired leases, plus this one.
//! - A lease is eligible when its shard is not finished and every parent that has a lease is
//!   finished (`SHARD_END`): a child never runs beside its parents, on any instance.
//! - Target = ceil(eligible / instances alive). Below target, take expired eligible leases;
//!   when there are none, steal one from the most loaded instance if it holds more than the
//!   target, or exactly the target while this one is two or more short (16 shards on 3
//!   instances settle at 6/5/5, not 6/6/4). At most one steal per round, so leases move one
//!   at a time and the fleet settles.

use std::collections::{BTreeMap, HashSet};

/// One lease as the coordinator last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseView {
    pub key: String,
    pub shard: String,
    pub owner: Option<String>,
    pub counter: u64,
    /// When this instance first saw `counter` (ms, any monotonic clock).
    pub counter_seen_ms: u64,
    pub finished: bool,
    pub parents: Vec<String>,
}

/// What to do this round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Expired leases to take (by key), oldest shard first.
    pub take: Vec<String>,
    /// A live lease to take from the most loaded instance.
    pub steal: Option<String>,
    /// The target this instance balances to.
    pub target: usize,
}

/// The round's plan for instance `me` at `now_ms`.
pub fn plan(me: &str, leases: &[LeaseView], now_ms: u64, failover_ms: u64) -> Plan {
    let expired = |l: &LeaseView| l.owner.is_none() || now_ms.saturating_sub(l.counter_seen_ms) >= failover_ms;
    let finished: HashSet<&str> = leases.iter().filter(|l| l.finished).map(|l| l.shard.as_str()).collect();
    let leased: HashSet<&str> = leases.iter().map(|l| l.shard.as_str()).collect();
    let eligible: Vec<&LeaseView> = leases
        .iter()
        .filter(|l| !l.finished && l.parents.iter().all(|p| !leased.contains(p.as_str()) || finished.contains(p.as_str())))
        .collect();

    let mut held: BTreeMap<&str, Vec<&LeaseView>> = BTreeMap::new();
    held.entry(me).or_default();
    for l in eligible.iter().filter(|l| !expired(l)) {
        if let Some(owner) = &l.owner {
            held.entry(owner.as_str()).or_default().push(l);
        }
    }
    let target = eligible.len().div_ceil(held.len());
    let mine = held.get(me).map_or(0, Vec::len);
    let mut plan = Plan { target, ..Plan::default() };
    if mine >= target {
        return plan;
    }
    let mut free: Vec<&LeaseView> = eligible.iter().copied().filter(|l| expired(l)).collect();
    free.sort_by(|a, b| a.shard.cmp(&b.shard));
    plan.take = free.iter().take(target - mine).map(|l| l.key.clone()).collect();
    if plan.take.is_empty() {
        // The most loaded other instance, ties broken by name so every instance agrees.
        let busiest = held.iter().filter(|(owner, _)| **owner != me).max_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| b.0.cmp(a.0)));
        let worth_it = |n: usize| n > target || (n == target && mine + 1 < target);
        if let Some((_, leases)) = busiest.filter(|(_, leases)| worth_it(leases.len())) {
            plan.steal = leases.iter().map(|l| (&l.shard, &l.key)).min().map(|(_, key)| key.clone());
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILOVER: u64 = 10_000;

    fn lease(shard: &str, owner: Option<&str>, seen: u64) -> LeaseView {
        LeaseView { key: format!("m:{shard}"), shard: shard.into(), owner: owner.map(str::to_owned), counter: 1, counter_seen_ms: seen, finished: false, parents: vec![] }
    }

    fn shards(n: usize, owner: impl Fn(usize) -> Option<&'static str>) -> Vec<LeaseView> {
        (0..n).map(|i| lease(&format!("s{i:02}"), owner(i), 0)).collect()
    }

    /// Runs rounds for `instances` in turn, applying each plan, until nothing changes.
    fn settle(mut leases: Vec<LeaseView>, instances: &[&str], now: u64) -> Vec<LeaseView> {
        for _ in 0..100 {
            let mut changed = false;
            for me in instances {
                let p = plan(me, &leases, now, FAILOVER);
                for key in p.take.iter().chain(p.steal.iter()) {
                    let l = leases.iter_mut().find(|l| &l.key == key).unwrap();
                    l.owner = Some(me.to_string());
                    l.counter += 1;
                    l.counter_seen_ms = now;
                    changed = true;
                }
            }
            if !changed {
                return leases;
            }
        }
        panic!("no steady state")
    }

    fn counts(leases: &[LeaseView], instances: &[&str]) -> Vec<usize> {
        instances.iter().map(|i| leases.iter().filter(|l| l.owner.as_deref() == Some(i)).count()).collect()
    }

    #[test]
    fn a_fresh_table_is_shared_out_evenly() {
        let all = ["a", "b", "c"];
        // "a" alone first: it sees nobody else and takes everything.
        let leases = settle(shards(16, |_| None), &["a"], 0);
        assert_eq!(counts(&leases, &all), [16, 0, 0]);
        // b and c join; a keeps renewing. One steal per round each until balanced.
        let leases = settle(leases, &all, 1);
        let c = counts(&leases, &all);
        assert_eq!(c.iter().sum::<usize>(), 16);
        assert!(c.iter().max().unwrap() - c.iter().min().unwrap() <= 1, "{c:?}");
    }

    #[test]
    fn at_most_one_lease_is_stolen_per_round() {
        let leases = shards(16, |_| Some("a"));
        let p = plan("b", &leases, 1, FAILOVER);
        assert_eq!((p.take.len(), p.steal.as_deref(), p.target), (0, Some("m:s00"), 8));
    }

    #[test]
    fn a_dead_instances_leases_are_taken_after_the_failover_time() {
        let mut leases = shards(6, |i| Some(["a", "b", "c"][i % 3]));
        // c stopped renewing at 0; a and b renewed at 9_000.
        for l in leases.iter_mut().filter(|l| l.owner.as_deref() != Some("c")) {
            l.counter_seen_ms = 9_000;
        }
        assert_eq!(plan("a", &leases, 9_999, FAILOVER), Plan { take: vec![], steal: None, target: 2 });
        let p = plan("a", &leases, 10_000, FAILOVER);
        assert_eq!(p.target, 3);
        assert_eq!(p.take, ["m:s02"]);
    }

    #[test]
    fn children_wait_for_every_parent_to_finish() {
        let mut leases = shards(2, |_| Some("a"));
        let mut child = lease("s02", None, 0);
        child.parents = vec!["s00".into(), "s01".into()];
        leases.push(child);
        assert!(plan("b", &leases, 1, FAILOVER).take.is_empty());
        leases[0].finished = true;
        assert!(plan("b", &leases, 1, FAILOVER).take.is_empty(), "one parent still runs");
        leases[1].finished = true;
        assert_eq!(plan("b", &leases, 1, FAILOVER).take, ["m:s02"]);
        // A parent without a lease (trimmed away) does not hold its child back.
        let mut orphan = lease("s03", None, 0);
        orphan.parents = vec!["gone".into()];
        assert_eq!(plan("b", &[orphan], 1, FAILOVER).take, ["m:s03"]);
    }

    #[test]
    fn a_full_instance_gives_one_up_to_one_two_short() {
        // 16 over 3: b and c at the target of 6, d at 4 → d takes one, then all stop.
        let leases = settle(shards(16, |i| Some(if i < 6 { "b" } else if i < 12 { "c" } else { "d" })), &["b", "c", "d"], 1);
        let mut c = counts(&leases, &["b", "c", "d"]);
        c.sort();
        assert_eq!(c, [5, 5, 6]);
    }

    #[test]
    fn nobody_steals_from_a_balanced_fleet() {
        let leases = shards(7, |i| Some(["a", "b", "c"][i % 3]));
        for me in ["a", "b", "c"] {
            assert_eq!(plan(me, &leases, 1, FAILOVER), Plan { take: vec![], steal: None, target: 3 });
        }
    }
}
