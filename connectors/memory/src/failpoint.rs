//! Failure injection for tests: "the next n calls fail".

use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, Default)]
pub(crate) struct FailNext(AtomicU32);

impl FailNext {
    pub(crate) fn set(&self, n: u32) {
        self.0.store(n, Ordering::SeqCst);
    }

    /// Whether this call should fail; consumes one pending failure if so.
    pub(crate) fn take(&self) -> bool {
        // A plain load keeps the common path (nothing injected) free of read-modify-write.
        if self.0.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_exactly_n_times() {
        let f = FailNext::default();
        assert!(!f.take());
        f.set(2);
        assert!(f.take());
        assert!(f.take());
        assert!(!f.take());
    }
}
