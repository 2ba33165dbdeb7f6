//! Which records of a failing batch to invoke next: retries, bisect-on-error and partial batch
//! responses as one pure state machine over index ranges of the batch.
//!
//! Sub-batches are worked front to back, so the records that are finished always form a prefix
//! of the batch: order is kept and the checkpoint can follow.
//!
//! Accounting, as AWS does it: every invocation of a sub-batch counts toward its
//! `maximum_retry_attempts` (`approximateInvokeCount` = 1 + retries). A partial response
//! finishes the records before the lowest failed item and retries from it, keeping the count.
//! Splitting on a function error does not use an attempt: each half starts afresh, so bisection
//! works even with `maximum_retry_attempts = 0`.

use std::collections::VecDeque;
use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    /// Invocations of this span so far.
    pub invocations: u32,
}

impl Span {
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

/// How one invocation of the current span went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Partial batch response: index (within the span) of the lowest failed record.
    Partial { first_failed: usize },
    /// The function failed, or its response was malformed.
    Error,
}

/// Records given up on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GiveUp {
    pub range: Range<usize>,
    pub invocations: u32,
    /// Given up after a partial response (the failure record's functionError is null then).
    pub after_partial: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Succeeded records to finish.
    pub finished: Option<Range<usize>>,
    /// Records to send to the failure destination and finish.
    pub give_up: Option<GiveUp>,
    /// The span was split in two.
    pub split: bool,
}

#[derive(Debug)]
pub struct Bisector {
    spans: VecDeque<Span>,
    max_retries: Option<u32>,
    bisect: bool,
}

impl Bisector {
    pub fn new(len: usize, max_retries: Option<u32>, bisect: bool) -> Self {
        let mut spans = VecDeque::new();
        if len > 0 {
            spans.push_back(Span { start: 0, end: len, invocations: 0 });
        }
        Bisector { spans, max_retries, bisect }
    }

    /// The span to invoke next; `None` when the batch is done.
    pub fn current(&self) -> Option<&Span> {
        self.spans.front()
    }

    pub fn is_done(&self) -> bool {
        self.spans.is_empty()
    }

    /// Removes the first `n` records of the current span (they expired) and returns them
    /// with the span's invocation count, for a `RecordAgeExceeded` failure record.
    pub fn cut_front(&mut self, n: usize) -> Option<GiveUp> {
        let span = self.spans.front_mut()?;
        let n = n.min(span.len());
        if n == 0 {
            return None;
        }
        let cut = GiveUp { range: span.start..span.start + n, invocations: span.invocations, after_partial: false };
        span.start += n;
        if span.is_empty() {
            self.spans.pop_front();
        }
        Some(cut)
    }

    fn exhausted(&self, invocations: u32) -> bool {
        self.max_retries.is_some_and(|max| invocations > max)
    }

    /// Applies the outcome of invoking the current span.
    pub fn record(&mut self, outcome: Outcome) -> Step {
        let Some(mut span) = self.spans.pop_front() else { return Step::default() };
        span.invocations += 1;
        let mut step = Step::default();
        match outcome {
            Outcome::Success => {
                step.finished = Some(span.range());
            }
            Outcome::Partial { first_failed } => {
                let first_failed = first_failed.min(span.len());
                if first_failed > 0 {
                    step.finished = Some(span.start..span.start + first_failed);
                    span.start += first_failed;
                }
                if span.is_empty() {
                    // Nothing failed after all.
                } else if self.exhausted(span.invocations) {
                    step.give_up =
                        Some(GiveUp { range: span.range(), invocations: span.invocations, after_partial: true });
                } else {
                    self.spans.push_front(span);
                }
            }
            Outcome::Error => {
                if self.bisect && span.len() > 1 {
                    let mid = span.start + span.len() / 2;
                    self.spans.push_front(Span { start: mid, end: span.end, invocations: 0 });
                    self.spans.push_front(Span { start: span.start, end: mid, invocations: 0 });
                    step.split = true;
                } else if self.exhausted(span.invocations) {
                    step.give_up =
                        Some(GiveUp { range: span.range(), invocations: span.invocations, after_partial: false });
                } else {
                    self.spans.push_front(span);
                }
            }
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a bisector against a function that fails any span containing a poison index.
    fn run(len: usize, poison: &[usize], max_retries: Option<u32>, bisect: bool) -> (u32, Vec<GiveUp>, Vec<Range<usize>>) {
        let mut b = Bisector::new(len, max_retries, bisect);
        let (mut invocations, mut given_up, mut finished) = (0, vec![], vec![]);
        while let Some(span) = b.current().cloned() {
            invocations += 1;
            let bad = span.range().any(|i| poison.contains(&i));
            let step = b.record(if bad { Outcome::Error } else { Outcome::Success });
            finished.extend(step.finished);
            given_up.extend(step.give_up);
            assert!(invocations < 10_000, "does not terminate");
        }
        (invocations, given_up, finished)
    }

    #[test]
    fn retries_then_gives_up() {
        let (n, given_up, _) = run(5, &[2], Some(1), false);
        assert_eq!(n, 2);
        assert_eq!(given_up, vec![GiveUp { range: 0..5, invocations: 2, after_partial: false }]);
    }

    #[test]
    fn zero_retries_invokes_once() {
        let (n, given_up, _) = run(5, &[2], Some(0), false);
        assert_eq!(n, 1);
        assert_eq!(given_up[0].invocations, 1);
    }

    #[test]
    fn bisect_isolates_one_poison_record_in_a_thousand() {
        let (n, given_up, finished) = run(1000, &[637], Some(0), true);
        assert_eq!(given_up, vec![GiveUp { range: 637..638, invocations: 1, after_partial: false }]);
        // Two invocations per level of a binary split: ≈ 2·log2(1000).
        assert!(n <= 2 * 10 + 1, "{n} invocations");
        // Finished ranges are in order and cover everything else.
        let mut next = 0;
        let mut all: Vec<Range<usize>> = finished.clone();
        all.push(637..638);
        all.sort_by_key(|r| r.start);
        for r in all {
            assert_eq!(r.start, next);
            next = r.end;
        }
        assert_eq!(next, 1000);
    }

    #[test]
    fn finished_ranges_come_in_order() {
        let (_, _, finished) = run(64, &[5, 40], Some(2), true);
        let starts: Vec<usize> = finished.iter().map(|r| r.start).collect();
        let mut sorted = starts.clone();
        sorted.sort();
        assert_eq!(starts, sorted);
    }

    #[test]
    fn partial_response_retries_from_the_failed_item_keeping_the_count() {
        // AWS: batch [3,4,5] with record 5 failing, MaximumRetryAttempts 3 →
        // [3,4] finished, [5] invoked 3 more times, failure record with count 4, batchSize 1.
        let mut b = Bisector::new(3, Some(3), false);
        let step = b.record(Outcome::Partial { first_failed: 2 });
        assert_eq!(step.finished, Some(0..2));
        assert_eq!(b.current(), Some(&Span { start: 2, end: 3, invocations: 1 }));
        for _ in 0..2 {
            assert_eq!(b.record(Outcome::Partial { first_failed: 0 }), Step::default());
        }
        let step = b.record(Outcome::Partial { first_failed: 0 });
        assert_eq!(step.give_up, Some(GiveUp { range: 2..3, invocations: 4, after_partial: true }));
        assert!(b.is_done());
    }

    #[test]
    fn age_cut_removes_the_front() {
        let mut b = Bisector::new(4, None, false);
        b.record(Outcome::Error);
        let cut = b.cut_front(1).unwrap();
        assert_eq!(cut, GiveUp { range: 0..1, invocations: 1, after_partial: false });
        assert_eq!(b.current().unwrap().range(), 1..4);
        assert!(b.cut_front(0).is_none());
        b.cut_front(10);
        assert!(b.is_done());
    }
}
