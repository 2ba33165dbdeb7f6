//! `--rate`: records leave on a fixed schedule (record k at start + k/R) rather than with a
//! sleep after each record, so the time the writes themselves take does not lower the rate.
//! A chunk of records waits for the slot of its first record; after a slow write the
//! following chunks go at once until the schedule is met again, so the average holds.

use tokio::time::{Duration, Instant};

pub struct Pacer {
    rate: Option<f64>,
    start: Instant,
    admitted: u64,
}

impl Pacer {
    /// `rate`: records per second; `None` = as fast as the target takes them.
    pub fn new(rate: Option<f64>) -> Self {
        Pacer { rate, start: Instant::now(), admitted: 0 }
    }

    /// How many records to hand the target at once: its own batch size, but small enough
    /// that a low rate is not sent as one burst every few seconds (about ten chunks a second).
    pub fn chunk(&self, target_chunk: usize) -> usize {
        match self.rate {
            Some(r) => target_chunk.min((r / 10.0).floor().max(1.0) as usize).max(1),
            None => target_chunk.max(1),
        }
    }

    /// Waits until the next `n` records may go.
    pub async fn admit(&mut self, n: u64) {
        if let Some(rate) = self.rate {
            let due = self.start + Duration::from_secs_f64(self.admitted as f64 / rate);
            tokio::time::sleep_until(due).await;
        }
        self.admitted += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn records_follow_the_schedule_whatever_the_chunks() {
        let start = Instant::now();
        let mut p = Pacer::new(Some(100.0));
        assert_eq!(p.chunk(500), 10);
        for _ in 0..50 {
            p.admit(10).await;
        }
        // 500 records at 100/s: the last chunk (records 490–499) leaves at 4.9 s.
        assert_eq!(start.elapsed(), Duration::from_millis(4900));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_write_is_caught_up_not_added() {
        let start = Instant::now();
        let mut p = Pacer::new(Some(10.0));
        assert_eq!(p.chunk(500), 1);
        p.admit(1).await;
        // The target stalls for 1 s: the next ten records are already due and go at once.
        tokio::time::sleep(Duration::from_secs(1)).await;
        for _ in 0..10 {
            p.admit(1).await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        p.admit(1).await;
        assert_eq!(start.elapsed(), Duration::from_millis(1100));
    }

    #[tokio::test(start_paused = true)]
    async fn no_rate_never_waits() {
        let start = Instant::now();
        let mut p = Pacer::new(None);
        assert_eq!(p.chunk(500), 500);
        for _ in 0..1000 {
            p.admit(500).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
