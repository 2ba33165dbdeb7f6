//! In-process totals of one mapping, for `esmd drain`'s live view and report.
//!
//! Prometheus series live in a process-wide recorder and are built for scraping; a load test
//! wants exact totals, percentiles and peaks of this run. [`MappingMetrics`](super::MappingMetrics)
//! feeds both. Everything here is atomics: the cost per batch is a few uncontended adds.

use serde::Serialize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Log-linear latency histogram: 16 linear sub-buckets per power of two of microseconds, so a
/// reported percentile is within 1/16 (6%) of the true value; the maximum is exact.
const SUB_BUCKETS: usize = 16;
const OCTAVES: usize = 40; // 2^40 µs ≈ 12 days: beyond any invocation
const BUCKETS: usize = SUB_BUCKETS * OCTAVES;

pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max_us: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(), count: AtomicU64::new(0), max_us: AtomicU64::new(0) }
    }
}

fn bucket_of(us: u64) -> usize {
    if us < SUB_BUCKETS as u64 {
        return us as usize;
    }
    let octave = (63 - us.leading_zeros()) as usize; // 2^octave <= us
    let shift = octave - SUB_BUCKETS.trailing_zeros() as usize;
    let sub = ((us >> shift) as usize) - SUB_BUCKETS; // 0..16 within the octave
    ((octave - 3) * SUB_BUCKETS + sub).min(BUCKETS - 1)
}

/// The largest value a bucket holds (what a percentile reports: never an underestimate).
fn bucket_top(index: usize) -> u64 {
    if index < SUB_BUCKETS {
        return index as u64;
    }
    let octave = index / SUB_BUCKETS + 3;
    let sub = (index % SUB_BUCKETS) as u64;
    let shift = octave - SUB_BUCKETS.trailing_zeros() as usize;
    ((SUB_BUCKETS as u64 + sub + 1) << shift) - 1
}

impl LatencyHistogram {
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(us)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
    }

    /// The value below which `q` (0–1) of the samples fall; `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let count = self.count.load(Relaxed);
        if count == 0 {
            return None;
        }
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Relaxed);
            if seen >= rank {
                let max = self.max_us.load(Relaxed);
                return Some(Duration::from_micros(bucket_top(i).min(max)));
            }
        }
        Some(Duration::from_micros(self.max_us.load(Relaxed)))
    }

    pub fn max(&self) -> Option<Duration> {
        (self.count.load(Relaxed) > 0).then(|| Duration::from_micros(self.max_us.load(Relaxed)))
    }
}

/// Running totals of one mapping since it started.
#[derive(Default)]
pub struct Tally {
    pub polled: AtomicU64,
    pub filtered_out: AtomicU64,
    pub batches: AtomicU64,
    pub invocations: AtomicU64,
    pub invoked_events: AtomicU64,
    pub function_errors: AtomicU64,
    pub throttles: AtomicU64,
    pub invoke_unavailable: AtomicU64,
    pub bisections: AtomicU64,
    pub destination_records: AtomicU64,
    pub dropped: AtomicU64,
    pub finished: AtomicU64,
    pub latency: LatencyHistogram,
    pub peak_iterator_age_ms: AtomicU64,
    concurrency: AtomicI64,
    peak_concurrency: AtomicI64,
}

impl Tally {
    pub(super) fn concurrency(&self, delta: i64) {
        let now = self.concurrency.fetch_add(delta, Relaxed) + delta;
        self.peak_concurrency.fetch_max(now, Relaxed);
    }

    pub fn snapshot(&self) -> TallySnapshot {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        TallySnapshot {
            polled: self.polled.load(Relaxed),
            filtered_out: self.filtered_out.load(Relaxed),
            finished: self.finished.load(Relaxed),
            batches: self.batches.load(Relaxed),
            invocations: self.invocations.load(Relaxed),
            invoked_events: self.invoked_events.load(Relaxed),
            function_errors: self.function_errors.load(Relaxed),
            throttles: self.throttles.load(Relaxed),
            invoke_unavailable: self.invoke_unavailable.load(Relaxed),
            bisections: self.bisections.load(Relaxed),
            destination_records: self.destination_records.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            latency_p50_ms: ms(self.latency.quantile(0.50)),
            latency_p95_ms: ms(self.latency.quantile(0.95)),
            latency_p99_ms: ms(self.latency.quantile(0.99)),
            latency_max_ms: ms(self.latency.max()),
            peak_iterator_age_ms: self.peak_iterator_age_ms.load(Relaxed),
            concurrency: self.concurrency.load(Relaxed).max(0) as u64,
            peak_concurrency: self.peak_concurrency.load(Relaxed).max(0) as u64,
        }
    }
}

/// A copy of a [`Tally`] at one moment.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TallySnapshot {
    /// Records read from the source (queues: received, so redeliveries count again).
    pub polled: u64,
    pub filtered_out: u64,
    /// Records done with: the function took them, they were filtered out, or given up on.
    pub finished: u64,
    /// Batches formed (a bisected batch counts once; its halves are invocations).
    pub batches: u64,
    /// Invocations the function answered, including function errors and retries.
    pub invocations: u64,
    pub invoked_events: u64,
    pub function_errors: u64,
    pub throttles: u64,
    /// Invocations that never reached the function (unreachable, timed out, 5xx).
    pub invoke_unavailable: u64,
    pub bisections: u64,
    /// Records sent to the on-failure destination.
    pub destination_records: u64,
    /// Records given up on (retries or age exhausted), with or without a destination.
    pub dropped: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    pub peak_iterator_age_ms: u64,
    pub concurrency: u64,
    pub peak_concurrency: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_and_within_a_sixteenth() {
        let mut last = 0;
        for us in (0..100_000u64).chain([1 << 20, (1 << 33) + 5, u64::MAX / 2]) {
            let b = bucket_of(us);
            assert!(b >= last || us > 100_000, "buckets ascend");
            last = b;
            let top = bucket_top(b);
            assert!(top >= us || b == BUCKETS - 1, "{us} µs in bucket {b} whose top is {top}");
            assert!(b == BUCKETS - 1 || (top - us) as f64 <= us as f64 / 16.0 + 1.0, "{us} µs: top {top} too far");
        }
    }

    #[test]
    fn quantiles_and_max() {
        let h = LatencyHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p = |q: f64| h.quantile(q).unwrap().as_secs_f64() * 1000.0;
        assert!((50.0..=50.0 * 17.0 / 16.0).contains(&p(0.5)), "p50 {}", p(0.5));
        assert!((99.0..=100.0).contains(&p(0.99)), "p99 {}", p(0.99));
        assert_eq!(h.max(), Some(Duration::from_millis(100)));
        assert_eq!(p(1.0), 100.0, "never above the true maximum");
    }

    #[test]
    fn peak_concurrency_is_the_highest_level_reached() {
        let t = Tally::default();
        for d in [1, 1, 1, -1, 1, -1, -1, -1] {
            t.concurrency(d);
        }
        let s = t.snapshot();
        assert_eq!((s.concurrency, s.peak_concurrency), (0, 3));
    }
}
