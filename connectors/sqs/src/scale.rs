//! How many receives run at once. One long poll when the queue is idle (cheap: one request per
//! 20 s); while receives come back full, messages are waiting, so more run in parallel, up to
//! the mapping's maximum concurrency; a receive that comes back short halves the count again.

use std::sync::atomic::{AtomicUsize, Ordering};

/// AWS starts an SQS mapping with five concurrent pollers.
pub const INITIAL_POLLERS: usize = 5;

#[derive(Debug)]
pub struct Pollers {
    current: AtomicUsize,
    max: usize,
}

impl Pollers {
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Pollers { current: AtomicUsize::new(INITIAL_POLLERS.min(max)), max }
    }

    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// Every receive of a round came back full: more messages are waiting.
    pub fn busy(&self) {
        let _ = self.current.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some((n * 2).min(self.max)));
    }

    /// Some receive came back short: the backlog is (nearly) gone.
    pub fn idle(&self) {
        let floor = INITIAL_POLLERS.min(self.max);
        let _ = self.current.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some((n / 2).max(floor)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_maximum_and_shrinks_to_the_start() {
        let p = Pollers::new(40);
        assert_eq!(p.current(), 5);
        for _ in 0..10 {
            p.busy();
        }
        assert_eq!(p.current(), 40);
        p.idle();
        assert_eq!(p.current(), 20);
        for _ in 0..10 {
            p.idle();
        }
        assert_eq!(p.current(), 5);
    }

    #[test]
    fn never_above_a_small_maximum() {
        let p = Pollers::new(2);
        assert_eq!(p.current(), 2);
        p.busy();
        assert_eq!(p.current(), 2);
        p.idle();
        assert_eq!(p.current(), 2);
    }
}
