//! What a run's function log says against what was seeded.

use super::function::Delivery;
use std::collections::{HashMap, HashSet};

/// The seeded records: id `i` has key `keys[i]` and is the `n[i]`-th record of that key.
pub struct Seeded {
    pub keys: Vec<String>,
    pub n: Vec<u64>,
}

impl Seeded {
    /// `count` records over `key_count` keys, a few hot keys and a long tail.
    pub fn new(count: u64, key_count: u64) -> Self {
        let mut per_key = vec![0u64; key_count as usize];
        let mut keys = Vec::with_capacity(count as usize);
        let mut n = Vec::with_capacity(count as usize);
        for id in 0..count {
            let k = ((id * 7 + id / 13) % key_count) as usize;
            per_key[k] += 1;
            keys.push(format!("key-{k}"));
            n.push(per_key[k]);
        }
        Seeded { keys, n }
    }

    pub fn len(&self) -> u64 {
        self.keys.len() as u64
    }

    /// The payload of record `id`: what the function reads back.
    pub fn payload(&self, id: u64) -> String {
        format!(r#"{{"id":{id},"k":"{}","n":{}}}"#, self.keys[id as usize], self.n[id as usize])
    }
}

#[derive(Debug, Default)]
pub struct Verdict {
    pub lost: usize,
    pub duplicates: usize,
    pub order_violations: Vec<String>,
    /// Deliveries that match no seeded record (a garbled payload).
    pub unknown: usize,
}

pub fn verdict(seeded: &Seeded, deliveries: &[Delivery], ordered: bool) -> Verdict {
    let mut seen: HashSet<u64> = HashSet::new();
    let mut last: HashMap<&str, (u64, &str)> = HashMap::new();
    let mut v = Verdict::default();
    for d in deliveries {
        if d.id >= seeded.len() || seeded.keys[d.id as usize] != d.key || seeded.n[d.id as usize] != d.n {
            v.unknown += 1;
            continue;
        }
        if !seen.insert(d.id) {
            v.duplicates += 1;
            continue;
        }
        // Per key, each first delivery comes after the first deliveries of the key's earlier
        // records.
        if ordered {
            if let Some((prev, by)) = last.insert(&d.key, (d.n, &d.instance)) {
                if d.n < prev {
                    v.order_violations.push(format!("{}: n {} (by {}) first delivered after n {prev} (by {by})", d.key, d.n, d.instance));
                }
            }
        }
    }
    v.lost = (0..seeded.len()).filter(|id| !seen.contains(id)).count();
    v
}

/// Checks the checker on a hand-made log, before any fault is trusted to it.
pub fn self_check() {
    let seeded = Seeded::new(6, 2);
    let d = |id: u64| Delivery { id, key: seeded.keys[id as usize].clone(), n: seeded.n[id as usize], instance: "a".into() };
    let all: Vec<Delivery> = (0..6).map(d).collect();
    let ok = verdict(&seeded, &all, true);
    assert_eq!((ok.lost, ok.duplicates, ok.order_violations.len(), ok.unknown), (0, 0, 0, 0));
    // 0 and 2 share a key (key-0: n 1, 2): 2 first, then 0 breaks its order; 5 lost; 1 twice.
    let keyed: Vec<u64> = (0..6).filter(|&i| seeded.keys[i as usize] == seeded.keys[0]).collect();
    assert!(keyed.len() >= 2, "the self-check needs two records of one key");
    let mut log = vec![d(keyed[1]), d(keyed[0])];
    log.extend((0..5).filter(|i| !keyed[..2].contains(i)).map(d));
    log.push(d(log[2].id));
    let bad = verdict(&seeded, &log, true);
    assert_eq!(bad.order_violations.len(), 1, "{bad:?}");
    assert_eq!(bad.duplicates, 1, "{bad:?}");
    assert_eq!(bad.lost, usize::from(!keyed[..2].contains(&5)), "{bad:?}");
    let garbled = Delivery { id: 1, key: "key-x".into(), n: 9, instance: "a".into() };
    assert_eq!(verdict(&seeded, &[garbled], true).unknown, 1);
}
