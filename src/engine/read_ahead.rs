//! A mapping's read-ahead budget: bytes of records read but not finished yet, across all of
//! its shards. A shard's poll loop takes room for each record before handing it to a lane, and
//! the room comes back when the record's batch is done with. A mapping hundreds of partitions
//! behind then holds a bounded amount of memory, shared by the shards that can use it, rather
//! than two batches per lane per partition.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget counts in KiB: the semaphore's permits are `u32` per request.
const UNIT: usize = 1024;

pub struct ReadAhead {
    room: Arc<Semaphore>,
    units: u32,
}

/// Room held by one record until it is dropped.
pub struct Held(#[allow(dead_code)] OwnedSemaphorePermit);

impl ReadAhead {
    pub fn new(bytes: usize) -> Arc<ReadAhead> {
        let units = u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX).min(Semaphore::MAX_PERMITS as u32);
        Arc::new(ReadAhead { room: Arc::new(Semaphore::new(units as usize)), units })
    }

    /// A record takes at least one unit and at most the whole budget, so even one larger
    /// than the budget gets in once everything else is done.
    fn units_for(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).clamp(1, self.units)
    }

    pub fn try_reserve(&self, bytes: usize) -> Option<Held> {
        self.room.clone().try_acquire_many_owned(self.units_for(bytes)).ok().map(Held)
    }

    /// Waits for room. Cancellation safe: a dropped wait holds nothing. `None` only if the
    /// semaphore were closed, which nothing does.
    pub async fn reserve(&self, bytes: usize) -> Option<Held> {
        self.room.clone().acquire_many_owned(self.units_for(bytes)).await.ok().map(Held)
    }

    /// Bytes free now (for status and tests).
    pub fn available_bytes(&self) -> usize {
        self.room.available_permits() * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn readers_wait_for_room_and_get_it_back_as_records_finish() {
        let budget = ReadAhead::new(10 * UNIT);
        let a = budget.try_reserve(6 * UNIT).expect("room");
        assert!(budget.try_reserve(5 * UNIT).is_none(), "6 + 5 KiB is past 10");
        let b = budget.try_reserve(4 * UNIT - 100).expect("rounded up to 4");
        assert_eq!(budget.available_bytes(), 0);
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(3 * UNIT).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        drop(a);
        let c = waiting.await.unwrap().expect("room");
        assert_eq!(budget.available_bytes(), 3 * UNIT);
        drop((b, c));
        assert_eq!(budget.available_bytes(), 10 * UNIT);
        // A record larger than the whole budget takes all of it, and still gets in.
        let big = budget.try_reserve(100 * UNIT).expect("the whole budget");
        assert_eq!(budget.available_bytes(), 0);
        drop(big);
        assert!(budget.try_reserve(0).is_some(), "an empty record takes one unit");
    }
}
