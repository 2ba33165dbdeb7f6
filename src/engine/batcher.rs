//! Closing batches: at `batch_size` records, at the payload limit, or when the batching
//! window (counted from the batch's first record) runs out.

use super::settings::BatchSettings;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Something that takes room in an event.
pub trait EventSized {
    /// Bytes it adds to the encoded event.
    fn event_size(&self) -> usize;
}

impl EventSized for esmd_api::Record {
    fn event_size(&self) -> usize {
        esmd_api::Record::event_size(self)
    }
}

/// What happened to a pushed item.
#[derive(Debug)]
pub enum Push<T> {
    Added,
    /// The batch reached `batch_size` or the payload limit with this item: close it.
    Full,
    /// The item does not fit beside what the batch holds: close the batch, then push it again.
    Overflow(T),
    /// The item alone exceeds the payload limit: it can never be invoked
    /// (`MaximumPayloadSizeExceeded`).
    Oversized(T),
}

/// Accumulates one batch. Pure: the window is enforced by [`gather`].
pub struct Batcher<T> {
    limits: BatchSettings,
    envelope: usize,
    items: Vec<T>,
    bytes: usize,
}

impl<T: EventSized> Batcher<T> {
    /// `envelope` is what the event adds around its records (see `EventEncoder::envelope_size`).
    pub fn new(limits: BatchSettings, envelope: usize) -> Self {
        Batcher { items: Vec::with_capacity(limits.batch_size.min(1024)), limits, envelope, bytes: 0 }
    }

    pub fn push(&mut self, item: T) -> Push<T> {
        let size = item.event_size();
        if self.envelope + size > self.limits.max_payload_bytes {
            return Push::Oversized(item);
        }
        if !self.items.is_empty() && self.envelope + self.bytes + size > self.limits.max_payload_bytes {
            return Push::Overflow(item);
        }
        self.bytes += size;
        self.items.push(item);
        if self.is_full() {
            Push::Full
        } else {
            Push::Added
        }
    }

    pub fn is_full(&self) -> bool {
        self.items.len() >= self.limits.batch_size || self.envelope + self.bytes >= self.limits.max_payload_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Encoded size of the event the batch would make.
    pub fn payload_bytes(&self) -> usize {
        self.envelope + self.bytes
    }

    pub fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        std::mem::take(&mut self.items)
    }

    pub fn window(&self) -> Duration {
        self.limits.window
    }
}

/// Why [`gather`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    Size,
    Window,
    /// The channel ran dry, the window is zero and no more is on its way: send what there is.
    Drained,
    /// The sender is gone: no more items will come.
    Disconnected,
}

/// Fills `batcher` from `rx` until the batch closes. `carry` holds an item that overflowed the
/// previous batch; it becomes this batch's first. Items that can never fit are handed to
/// `oversized`. Returns with an empty batcher only when the channel is closed.
pub async fn gather<T: EventSized>(
    rx: &mut mpsc::Receiver<T>,
    batcher: &mut Batcher<T>,
    carry: &mut Option<T>,
    oversized: &mut Vec<T>,
) -> Closed {
    gather_split(rx, batcher, carry, oversized, None, |_, _| false).await
}

/// [`gather`], and the batch also closes before an item for which `splits(first, item)` is
/// true (tumbling windows: a record of another window starts the next batch).
///
/// `coming` is the sender's word that more items are on their way at once (a read being
/// handed over, or the next read of a shard that is behind). With a zero window an empty
/// channel then does not close the batch: it waits for the items or for the word to turn
/// false. Without it, a lane woken by a read's first record would invoke with the few records
/// that had reached it while the rest of the read was still being handed over.
pub async fn gather_split<T: EventSized>(
    rx: &mut mpsc::Receiver<T>,
    batcher: &mut Batcher<T>,
    carry: &mut Option<T>,
    oversized: &mut Vec<T>,
    mut coming: Option<&mut watch::Receiver<bool>>,
    splits: impl Fn(&T, &T) -> bool,
) -> Closed {
    let window = batcher.window();
    let mut deadline: Option<Instant> = None;
    loop {
        let next = if let Some(item) = carry.take() {
            Some(item)
        } else if batcher.is_empty() && oversized.is_empty() {
            // Nothing yet: wait as long as it takes for the first record.
            rx.recv().await
        } else if window.is_zero() {
            match rx.try_recv() {
                Ok(item) => Some(item),
                Err(mpsc::error::TryRecvError::Empty) => match coming.as_deref_mut() {
                    Some(more) if *more.borrow() => {
                        tokio::select! {
                            biased;
                            item = rx.recv() => item,
                            // Look at the channel once more: items sent before the word
                            // turned are this batch's.
                            done = more.wait_for(|m| !*m) => if done.is_ok() { continue } else { return Closed::Drained },
                        }
                    }
                    _ => return Closed::Drained,
                },
                Err(mpsc::error::TryRecvError::Disconnected) => return Closed::Disconnected,
            }
        } else {
            let until = *deadline.get_or_insert_with(|| Instant::now() + window);
            tokio::select! {
                biased;
                item = rx.recv() => item,
                _ = tokio::time::sleep_until(until) => return Closed::Window,
            }
        };
        let Some(item) = next else { return Closed::Disconnected };
        if batcher.items.first().is_some_and(|first| splits(first, &item)) {
            *carry = Some(item);
            return Closed::Size;
        }
        match batcher.push(item) {
            Push::Added => {
                if deadline.is_none() && !window.is_zero() {
                    deadline = Some(Instant::now() + window);
                }
            }
            Push::Full => return Closed::Size,
            Push::Overflow(item) => {
                *carry = Some(item);
                return Closed::Size;
            }
            Push::Oversized(item) => {
                oversized.push(item);
                if batcher.is_empty() {
                    // Let the caller fail it now rather than hold it behind a window.
                    return Closed::Drained;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Item(usize);
    impl EventSized for Item {
        fn event_size(&self) -> usize {
            self.0
        }
    }

    fn limits(batch_size: usize, window_ms: u64, max: usize) -> BatchSettings {
        BatchSettings { batch_size, window: Duration::from_millis(window_ms), max_payload_bytes: max }
    }

    #[test]
    fn closes_on_size() {
        let mut b = Batcher::new(limits(3, 0, 1000), 10);
        assert!(matches!(b.push(Item(1)), Push::Added));
        assert!(matches!(b.push(Item(1)), Push::Added));
        assert!(matches!(b.push(Item(1)), Push::Full));
        assert_eq!(b.take().len(), 3);
        assert!(b.is_empty());
    }

    #[test]
    fn closes_on_bytes() {
        let mut b = Batcher::new(limits(100, 0, 100), 10);
        assert!(matches!(b.push(Item(40)), Push::Added));
        assert!(matches!(b.push(Item(40)), Push::Added));
        // 10 + 80 + 40 > 100: this one starts the next batch.
        assert!(matches!(b.push(Item(40)), Push::Overflow(Item(40))));
        assert_eq!(b.payload_bytes(), 90);
        // Exactly at the limit closes the batch.
        let mut b = Batcher::new(limits(100, 0, 100), 10);
        assert!(matches!(b.push(Item(90)), Push::Full));
    }

    #[test]
    fn oversized_record_is_singled_out() {
        let mut b = Batcher::new(limits(100, 0, 100), 10);
        assert!(matches!(b.push(Item(91)), Push::Oversized(Item(91))));
        assert!(b.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn window_starts_at_first_record() {
        let (tx, mut rx) = mpsc::channel(10);
        let mut b = Batcher::new(limits(10, 1000, 1 << 20), 0);
        let (mut carry, mut over) = (None, Vec::new());
        let producer = tokio::spawn(async move {
            // Idle for 5 s before the first record: the window must not have started yet.
            tokio::time::sleep(Duration::from_secs(5)).await;
            tx.send(Item(1)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(600)).await;
            tx.send(Item(1)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(600)).await;
            tx.send(Item(1)).await.unwrap();
            tx
        });
        let start = Instant::now();
        assert_eq!(gather(&mut rx, &mut b, &mut carry, &mut over).await, Closed::Window);
        // First record at 5 s, window 1 s: closes at 6 s with the two records seen by then.
        assert_eq!(start.elapsed(), Duration::from_secs(6));
        assert_eq!(b.take(), vec![Item(1), Item(1)]);
        let _tx = producer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn zero_window_sends_what_is_there() {
        let (tx, mut rx) = mpsc::channel(10);
        for _ in 0..4 {
            tx.send(Item(1)).await.unwrap();
        }
        let mut b = Batcher::new(limits(3, 0, 1 << 20), 0);
        let (mut carry, mut over) = (None, Vec::new());
        assert_eq!(gather(&mut rx, &mut b, &mut carry, &mut over).await, Closed::Size);
        assert_eq!(b.take().len(), 3);
        assert_eq!(gather(&mut rx, &mut b, &mut carry, &mut over).await, Closed::Drained);
        assert_eq!(b.take().len(), 1);
        drop(tx);
        assert_eq!(gather(&mut rx, &mut b, &mut carry, &mut over).await, Closed::Disconnected);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_window_waits_while_more_is_coming() {
        let (tx, mut rx) = mpsc::channel(10);
        let (coming_tx, mut coming) = watch::channel(true);
        tx.send(Item(1)).await.unwrap();
        let mut b = Batcher::new(limits(5, 0, 1 << 20), 0);
        let (mut carry, mut over) = (None, Vec::new());
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tx.send(Item(1)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
            tx.send(Item(1)).await.unwrap();
            // Sent before the word turns: still this batch's.
            coming_tx.send_replace(false);
            (tx, coming_tx)
        });
        let start = Instant::now();
        let closed = gather_split(&mut rx, &mut b, &mut carry, &mut over, Some(&mut coming), |_, _| false).await;
        assert_eq!(closed, Closed::Drained);
        assert_eq!(start.elapsed(), Duration::from_millis(60));
        assert_eq!(b.take().len(), 3);
        let (tx, coming_tx) = sender.await.unwrap();
        // With nothing coming, a zero window sends at once what is there.
        tx.send(Item(1)).await.unwrap();
        let closed = gather_split(&mut rx, &mut b, &mut carry, &mut over, Some(&mut coming), |_, _| false).await;
        assert_eq!(closed, Closed::Drained);
        assert_eq!(b.take().len(), 1);
        // Coming again, and the batch fills: it closes on size without waiting for the word.
        coming_tx.send_replace(true);
        for _ in 0..5 {
            tx.send(Item(1)).await.unwrap();
        }
        let closed = gather_split(&mut rx, &mut b, &mut carry, &mut over, Some(&mut coming), |_, _| false).await;
        assert_eq!(closed, Closed::Size);
        assert_eq!(b.take().len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn split_starts_the_next_batch() {
        let (tx, mut rx) = mpsc::channel(10);
        for n in [1, 1, 2, 2, 2] {
            tx.send(Item(n)).await.unwrap();
        }
        drop(tx);
        let mut b = Batcher::new(limits(100, 1000, 1 << 20), 0);
        let (mut carry, mut over) = (None, Vec::new());
        let different = |a: &Item, b: &Item| a.0 != b.0;
        assert_eq!(gather_split(&mut rx, &mut b, &mut carry, &mut over, None, different).await, Closed::Size);
        assert_eq!(b.take(), vec![Item(1), Item(1)]);
        assert_eq!(gather_split(&mut rx, &mut b, &mut carry, &mut over, None, different).await, Closed::Disconnected);
        assert_eq!(b.take(), vec![Item(2), Item(2), Item(2)]);
    }

    #[tokio::test(start_paused = true)]
    async fn overflow_carries_to_next_batch() {
        let (tx, mut rx) = mpsc::channel(10);
        for n in [40, 40, 40] {
            tx.send(Item(n)).await.unwrap();
        }
        drop(tx);
        let mut b = Batcher::new(limits(100, 0, 100), 10);
        let (mut carry, mut over) = (None, Vec::new());
        assert_eq!(gather(&mut rx, &mut b, &mut carry, &mut over).await, Closed::Size);
        assert_eq!(b.take().len(), 2);
        assert_eq!(gather(&mut rx, &mut b, &mut carry, &mut over).await, Closed::Disconnected);
        assert_eq!(b.take(), vec![Item(40)]);
    }
}
