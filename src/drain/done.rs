//! When a drain is over: every shard of every mapping has caught up.

use crate::status::{MappingStatus, ShardState};

/// Caught up as far as status can tell: every shard read to its end or found nothing new on its
/// last read, with nothing read still unfinished and no batch in flight. A mapping with no
/// shards yet (still discovering) is not caught up.
pub fn caught_up(m: &MappingStatus) -> bool {
    m.started
        && m.in_flight_batches == 0
        && !m.shards.is_empty()
        && m.shards.values().all(|s| match s.state {
            ShardState::Finished => true,
            ShardState::Running => s.caught_up && s.pending_records == 0 && s.in_flight_batches == 0,
            // Children waiting for parents still have everything ahead of them; a blocked shard
            // holds a failing batch.
            _ => false,
        })
}

/// Records known to be left: what sources report as not yet read plus what is read and not
/// finished. `None` when no shard's source can tell (the live view then shows no total).
pub fn remaining(m: &MappingStatus) -> Option<u64> {
    let mut known = false;
    let mut left = 0u64;
    for s in m.shards.values() {
        if let Some(b) = s.backlog {
            known = true;
            left = left.saturating_add(b);
        }
        left = left.saturating_add(s.pending_records);
    }
    known.then_some(left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ShardStatus;

    fn mapping(shards: Vec<ShardStatus>) -> MappingStatus {
        MappingStatus {
            started: true,
            shards: shards.into_iter().enumerate().map(|(i, s)| (format!("shard-{i}"), s)).collect(),
            ..Default::default()
        }
    }

    fn running(caught_up: bool, pending: u64) -> ShardStatus {
        ShardStatus { state: ShardState::Running, caught_up, pending_records: pending, ..Default::default() }
    }

    #[test]
    fn every_shard_must_have_caught_up_with_nothing_pending() {
        assert!(caught_up(&mapping(vec![running(true, 0), ShardStatus { state: ShardState::Finished, ..Default::default() }])));
        assert!(!caught_up(&mapping(vec![running(true, 0), running(false, 0)])));
        assert!(!caught_up(&mapping(vec![running(true, 3)])), "records read but unfinished");
        assert!(!caught_up(&mapping(vec![running(true, 0), ShardStatus { state: ShardState::WaitingForParents, ..Default::default() }])));
        assert!(!caught_up(&mapping(vec![ShardStatus { state: ShardState::Blocked, caught_up: true, ..Default::default() }])));
        assert!(!caught_up(&mapping(vec![])), "no shard discovered yet");
        let mut busy = mapping(vec![running(true, 0)]);
        busy.in_flight_batches = 1;
        assert!(!caught_up(&busy), "a queue batch in flight");
        let mut not_started = mapping(vec![running(true, 0)]);
        not_started.started = false;
        assert!(!caught_up(&not_started));
    }

    #[test]
    fn remaining_counts_backlog_and_pending_when_known() {
        assert_eq!(remaining(&mapping(vec![running(false, 5)])), None);
        let mut a = running(false, 5);
        a.backlog = Some(100);
        assert_eq!(remaining(&mapping(vec![a, running(false, 2)])), Some(107));
    }
}
