//! The low watermark of a shard: the last record below which every record is finished.
//!
//! Records are registered in shard order and may finish in any order (lanes run
//! concurrently). The checkpoint may only name the watermark, never a record past an
//! unfinished one.
//!
//! A lane may also attach a state to a record (tumbling windows: the function's state after
//! that record). The checkpoint carries the state that holds at the watermark, so a restart
//! never replays records into a state that already counts them.

use esmd_api::Position;
use serde_json::Value;
use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct Watermark {
    /// Sequence number of the first entry in `window`.
    base: u64,
    /// Registered records not yet below the watermark: (position, finished).
    window: VecDeque<(Position, bool)>,
    low: Option<Position>,
    finished_total: u64,
    /// States waiting for the watermark to reach their record, in record order.
    attached: VecDeque<(u64, Option<Value>)>,
    /// The state that holds at the watermark.
    low_state: Option<Value>,
    /// Bumped whenever `low_state` changes, so a writer can tell it needs saving.
    state_version: u64,
}

impl Watermark {
    /// Starts after `checkpoint` (the position restored from the store, if any) with the state
    /// saved beside it.
    pub fn new(checkpoint: Option<Position>, state: Option<Value>) -> Self {
        Watermark { low: checkpoint, low_state: state, ..Default::default() }
    }

    /// `state` holds once every record up to and including `seq` is finished (`None` as `seq`:
    /// no record needed, it holds now). Returns true when it took effect at once.
    pub fn attach(&mut self, seq: Option<u64>, state: Option<Value>) -> bool {
        match seq {
            Some(seq) if seq >= self.base => {
                self.attached.push_back((seq, state));
                false
            }
            _ => {
                // Anything attached to later records is newer; this one only holds if none is.
                if self.attached.is_empty() {
                    self.low_state = state;
                    self.state_version += 1;
                    return true;
                }
                false
            }
        }
    }

    /// The state that holds at the watermark, and its version.
    pub fn low_state(&self) -> (Option<&Value>, u64) {
        (self.low_state.as_ref(), self.state_version)
    }

    /// Registers the next record of the shard; returns its sequence number.
    pub fn register(&mut self, position: Position) -> u64 {
        self.window.push_back((position, false));
        self.base + self.window.len() as u64 - 1
    }

    /// Marks a record finished. Returns true when the watermark moved.
    pub fn finish(&mut self, seq: u64) -> bool {
        let Some(idx) = seq.checked_sub(self.base) else { return false };
        match self.window.get_mut(idx as usize) {
            Some(entry) if !entry.1 => {
                entry.1 = true;
                self.finished_total += 1;
            }
            _ => return false,
        }
        let mut moved = false;
        while self.window.front().is_some_and(|e| e.1) {
            if let Some((pos, _)) = self.window.pop_front() {
                self.low = Some(pos);
                self.base += 1;
                moved = true;
            }
        }
        while self.attached.front().is_some_and(|(seq, _)| *seq < self.base) {
            if let Some((_, state)) = self.attached.pop_front() {
                self.low_state = state;
                self.state_version += 1;
            }
        }
        moved
    }

    /// The checkpoint: every record up to and including it is finished.
    pub fn low(&self) -> Option<&Position> {
        self.low.as_ref()
    }

    /// Records registered and not yet below the watermark.
    pub fn pending(&self) -> usize {
        self.window.len()
    }

    pub fn finished_total(&self) -> u64 {
        self.finished_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(i: u64) -> Position {
        Position::new(format!("{i:020}"))
    }

    #[test]
    fn waits_for_the_oldest() {
        let mut w = Watermark::new(Some(p(0)), None);
        let s: Vec<u64> = (1..=3).map(|i| w.register(p(i))).collect();
        assert!(!w.finish(s[2]));
        assert!(!w.finish(s[1]));
        assert_eq!(w.low(), Some(&p(0)));
        assert!(w.finish(s[0]));
        assert_eq!(w.low(), Some(&p(3)));
        assert_eq!(w.pending(), 0);
        // Finishing twice, or something unknown, changes nothing.
        assert!(!w.finish(s[0]));
        assert!(!w.finish(99));
    }

    #[test]
    fn attached_state_holds_only_at_the_watermark() {
        let mut w = Watermark::new(None, Some(serde_json::json!(0)));
        let s: Vec<u64> = (1..=4).map(|i| w.register(p(i))).collect();
        // A lane finished records 2–3 with state 3 while record 1 (say, filtered) is not yet.
        assert!(!w.attach(Some(s[2]), Some(serde_json::json!(3))));
        w.finish(s[1]);
        w.finish(s[2]);
        assert_eq!(w.low_state(), (Some(&serde_json::json!(0)), 0), "record 1 unfinished: the old state holds");
        w.finish(s[0]);
        assert_eq!(w.low(), Some(&p(3)));
        assert_eq!(w.low_state(), (Some(&serde_json::json!(3)), 1));
        // A state that needs no more records (a window closed after its last record) holds now.
        assert!(w.attach(Some(s[2]), None));
        assert_eq!(w.low_state(), (None, 2));
    }

    proptest! {
        /// Under any finishing order, the watermark never passes an unfinished record and
        /// reaches the last record once all are finished.
        #[test]
        fn never_passes_unfinished(order in Just((0u64..200).collect::<Vec<_>>()).prop_shuffle()) {
            let mut w = Watermark::new(None, None);
            for i in 0..200 { w.register(p(i)); }
            let mut done = [false; 200];
            for seq in order {
                w.finish(seq);
                done[seq as usize] = true;
                let expected = done.iter().position(|d| !d).map(|first| first as u64);
                match (expected, w.low()) {
                    (Some(0), low) => prop_assert!(low.is_none()),
                    (Some(first), low) => prop_assert_eq!(low, Some(&p(first - 1))),
                    (None, low) => prop_assert_eq!(low, Some(&p(199))),
                }
            }
        }
    }
}
