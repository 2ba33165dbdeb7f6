//! Parallelization factor: a shard's records are spread over N ordered lanes by partition key.
//! Equal keys always land in the same lane, and a lane runs one batch at a time, so a key's
//! records are never invoked concurrently or out of order.

/// The lane of a partition key. FNV-1a: stable across runs and platforms (a restart must not
/// reshuffle keys while older batches of theirs may still be replayed), and cheap.
pub fn lane_of(partition_key: &[u8], lanes: usize) -> usize {
    if lanes <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in partition_key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % lanes as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lane_takes_everything() {
        assert_eq!(lane_of(b"anything", 1), 0);
        assert_eq!(lane_of(b"", 0), 0);
    }

    #[test]
    fn keys_spread_and_stay_put() {
        let mut seen = [0usize; 10];
        for i in 0..10_000 {
            let key = format!("key-{i}");
            let lane = lane_of(key.as_bytes(), 10);
            assert_eq!(lane, lane_of(key.as_bytes(), 10));
            seen[lane] += 1;
        }
        // Roughly even: no lane is starved or hot.
        assert!(seen.iter().all(|&n| (700..1300).contains(&n)), "{seen:?}");
    }
}
