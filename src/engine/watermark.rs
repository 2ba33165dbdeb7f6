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

    /// What happens to a shard's records in `in_flight_records_finishing_failing_and_retried`.
    #[derive(Debug, Clone)]
    enum Op {
        /// A poll: this many more records are registered, and go in flight.
        Read(usize),
        /// An in-flight record's invocation succeeded (or a filter dropped it).
        Succeed(prop::sample::Index),
        /// A batch of in-flight records (consecutive in shard order from the picked one)
        /// succeeded: finished one after another, as `Progress::finish` does.
        SucceedBatch(prop::sample::Index, usize),
        /// An in-flight record's invocation failed: it waits for a retry, or past the retry
        /// limit is given up (sent to the on-failure destination), which finishes it.
        Fail(prop::sample::Index),
        /// A failed record is re-added to a batch and goes in flight again.
        Retry(prop::sample::Index),
        /// A late, duplicate answer for a record already finished.
        Stale(prop::sample::Index),
        /// A sequence number never handed out.
        Unknown(u64),
        /// A tumbling window's state after the latest record read.
        Attach,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1usize..8).prop_map(Op::Read),
            4 => any::<prop::sample::Index>().prop_map(Op::Succeed),
            2 => (any::<prop::sample::Index>(), 1usize..6).prop_map(|(i, n)| Op::SucceedBatch(i, n)),
            3 => any::<prop::sample::Index>().prop_map(Op::Fail),
            2 => any::<prop::sample::Index>().prop_map(Op::Retry),
            1 => any::<prop::sample::Index>().prop_map(Op::Stale),
            1 => any::<u64>().prop_map(Op::Unknown),
            1 => Just(Op::Attach),
        ]
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Status {
        /// In a batch being invoked; the attempts it failed before.
        InFlight(u32),
        /// Failed this many times, waiting for its retry.
        Waiting(u32),
        Finished,
    }

    /// Attempts after which a failing record is given up (`maximum_retry_attempts` + 1).
    const GIVE_UP_AFTER: u32 = 3;

    /// The watermark's contract, kept naively: the records in shard order and what became of them.
    struct Model {
        checkpoint: Option<u64>,
        restored_state: Option<Value>,
        status: Vec<Status>,
        /// (seq, state) in the order attached.
        attached: Vec<(u64, Value)>,
    }

    impl Model {
        /// The position of record `seq`: positions go on after the restored checkpoint.
        fn position(&self, seq: usize) -> Position {
            p(self.checkpoint.map_or(0, |c| c + 1) + seq as u64)
        }
        /// How many records, from the first, are all finished.
        fn below(&self) -> usize {
            self.status.iter().position(|s| *s != Status::Finished).unwrap_or(self.status.len())
        }
        fn low(&self) -> Option<Position> {
            match self.below() {
                0 => self.checkpoint.map(p),
                n => Some(self.position(n - 1)),
            }
        }
        /// The state attached to the last record below the watermark, else the restored one.
        fn low_state(&self) -> Option<&Value> {
            let below = self.below() as u64;
            self.attached.iter().rev().find(|(seq, _)| *seq < below).map(|(_, s)| s).or(self.restored_state.as_ref())
        }
        fn seqs(&self, pick: impl Fn(Status) -> bool) -> Vec<usize> {
            (0..self.status.len()).filter(|&i| pick(self.status[i])).collect()
        }
    }

    fn finish(w: &mut Watermark, m: &mut Model, seq: usize) -> Result<(), TestCaseError> {
        let before = w.low().cloned();
        let moved = w.finish(seq as u64);
        m.status[seq] = Status::Finished;
        prop_assert_eq!(moved, w.low() != before.as_ref(), "finish({}) said moved = {}", seq, moved);
        Ok(())
    }

    fn check(w: &Watermark, m: &Model) -> Result<(), TestCaseError> {
        if let Some(first) = m.status.iter().position(|s| *s != Status::Finished) {
            // Positions are zero-padded, so their text order is the shard order.
            let unfinished = m.position(first);
            prop_assert!(
                w.low().is_none_or(|low| low.as_str() < unfinished.as_str()),
                "the watermark {:?} passed the unfinished record {:?}", w.low(), unfinished
            );
        }
        let low = m.low();
        prop_assert_eq!(w.low(), low.as_ref());
        prop_assert_eq!(w.pending(), m.status.len() - m.below());
        prop_assert_eq!(w.finished_total() as usize, m.seqs(|s| s == Status::Finished).len());
        prop_assert_eq!(w.low_state().0, m.low_state());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Records read in polls while others are in flight, finished in any order, failing,
        /// retried and given up, with late duplicate answers and window states: at every step
        /// the watermark is the last record below which all are finished (so never at or past
        /// an unfinished one), and once every record finished it is the last one.
        #[test]
        fn in_flight_records_finishing_failing_and_retried(
            checkpoint in proptest::option::of(0u64..1_000_000_000),
            ops in prop::collection::vec(op(), 1..300),
            finale in prop::collection::vec(any::<prop::sample::Index>(), 0..64),
        ) {
            let restored_state = checkpoint.map(|c| serde_json::json!({"restored": c}));
            let mut m = Model { checkpoint, restored_state: restored_state.clone(), status: Vec::new(), attached: Vec::new() };
            let mut w = Watermark::new(checkpoint.map(p), restored_state);
            check(&w, &m)?;
            for op in ops {
                match op {
                    Op::Read(n) => {
                        for _ in 0..n {
                            let seq = w.register(m.position(m.status.len()));
                            prop_assert_eq!(seq, m.status.len() as u64);
                            m.status.push(Status::InFlight(0));
                        }
                    }
                    Op::Succeed(i) => {
                        let in_flight = m.seqs(|s| matches!(s, Status::InFlight(_)));
                        if !in_flight.is_empty() {
                            finish(&mut w, &mut m, in_flight[i.index(in_flight.len())])?;
                        }
                    }
                    Op::SucceedBatch(i, n) => {
                        let in_flight = m.seqs(|s| matches!(s, Status::InFlight(_)));
                        if !in_flight.is_empty() {
                            for &seq in in_flight.iter().skip(i.index(in_flight.len())).take(n) {
                                finish(&mut w, &mut m, seq)?;
                            }
                        }
                    }
                    Op::Fail(i) => {
                        let in_flight = m.seqs(|s| matches!(s, Status::InFlight(_)));
                        if !in_flight.is_empty() {
                            let seq = in_flight[i.index(in_flight.len())];
                            let Status::InFlight(failed) = m.status[seq] else { unreachable!() };
                            if failed + 1 >= GIVE_UP_AFTER {
                                finish(&mut w, &mut m, seq)?;
                            } else {
                                m.status[seq] = Status::Waiting(failed + 1);
                            }
                        }
                    }
                    Op::Retry(i) => {
                        let waiting = m.seqs(|s| matches!(s, Status::Waiting(_)));
                        if !waiting.is_empty() {
                            let seq = waiting[i.index(waiting.len())];
                            let Status::Waiting(failed) = m.status[seq] else { unreachable!() };
                            m.status[seq] = Status::InFlight(failed);
                        }
                    }
                    Op::Stale(i) => {
                        let finished = m.seqs(|s| s == Status::Finished);
                        if !finished.is_empty() {
                            prop_assert!(!w.finish(finished[i.index(finished.len())] as u64), "a second finish moved the watermark");
                        }
                    }
                    Op::Unknown(x) => {
                        let registered = m.status.len() as u64;
                        let seq = if x >= registered { x } else { registered + x };
                        prop_assert!(!w.finish(seq), "finishing unregistered {} moved the watermark", seq);
                    }
                    Op::Attach => {
                        if let Some(latest) = m.status.len().checked_sub(1) {
                            let state = serde_json::json!({"after": latest});
                            let at_once = w.attach(Some(latest as u64), Some(state.clone()));
                            prop_assert_eq!(at_once, latest < m.below(), "attach to {} took effect at once = {}", latest, at_once);
                            m.attached.push((latest as u64, state));
                        }
                    }
                }
                check(&w, &m)?;
            }
            // Everything still unfinished finishes (retried until it succeeds), in random order.
            let mut picks = finale.into_iter();
            loop {
                let unfinished = m.seqs(|s| s != Status::Finished);
                if unfinished.is_empty() {
                    break;
                }
                let k = picks.next().map_or(unfinished.len() - 1, |i| i.index(unfinished.len()));
                finish(&mut w, &mut m, unfinished[k])?;
                check(&w, &m)?;
            }
            let end = m.status.len().checked_sub(1).map(|last| m.position(last)).or(checkpoint.map(p));
            prop_assert_eq!(w.low(), end.as_ref(), "all {} finished: the watermark is the last record", m.status.len());
            prop_assert_eq!(w.pending(), 0);
        }
    }
}
