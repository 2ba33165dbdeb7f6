//! A partition's inbox: the records the router took from the consumer's queue for one
//! assignment of the partition, in offset order, until its reader takes them.
//!
//! Every assignment gets a new inbox and the revoke closes the old one, so a reader of an
//! earlier assignment can never take a record of a later one.
//!
//! All inboxes of a consumer share one byte budget ([`Prefetch`]): the router stops taking from
//! the consumer's queue while it is spent, and librdkafka then stops fetching once its own
//! queue is full, so a backlog is read ahead by a bounded amount, not into memory whole. An
//! inbox whose reader stopped taking (a function failing its batches, a lane that is full) is
//! *parked*: the router pauses its partition and its bytes leave the shared budget, so one
//! stuck partition never holds up the others.

use esmd_api::Record;
use rdkafka::message::{Message, OwnedMessage};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::Notify;

/// What the router hands a reader.
pub(crate) enum Item {
    Record(Record),
    /// A message naming a schema that is not fetched yet: the reader fetches it and converts.
    Raw(OwnedMessage),
}

impl Item {
    fn size(&self) -> usize {
        match self {
            Item::Record(r) => r.encoded.len() + r.data.len(),
            Item::Raw(m) => m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len),
        }
    }
}

/// The byte budget all inboxes of one consumer share.
pub(crate) struct Prefetch {
    limit: usize,
    used: AtomicUsize,
    /// Wakes the router when a reader made room.
    room: Notify,
}

impl Prefetch {
    pub fn new(limit: usize) -> Self {
        Prefetch { limit, used: AtomicUsize::new(0), room: Notify::new() }
    }

    pub fn has_room(&self) -> bool {
        self.used.load(Ordering::Acquire) < self.limit
    }

    /// Completes once a reader took records after the budget was spent (or at once if one did
    /// since the last call): the router checks [`Self::has_room`] again.
    pub async fn freed(&self) {
        self.room.notified().await
    }

    fn add(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let before = self.used.fetch_sub(n, Ordering::AcqRel);
        if before >= self.limit && before - n < self.limit {
            self.room.notify_one();
        }
    }

    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

struct State {
    items: VecDeque<Item>,
    bytes: usize,
    /// The assignment ended: nothing more is pushed and a reader's next take says so.
    closed: bool,
    /// Paused by the router; `bytes` are then outside the shared budget.
    parked: bool,
    /// The reader emptied a parked inbox and asked the router to resume the partition.
    resume_asked: bool,
    /// When a reader last took from it (or it was created).
    last_take: Instant,
}

pub(crate) struct Inbox {
    state: Mutex<State>,
    /// Wakes the partition's reader when records arrive or the inbox closes.
    ready: Notify,
    /// A reader has it (see [`Self::hold`]).
    held: std::sync::atomic::AtomicBool,
}

/// What a take found.
pub(crate) enum Taken {
    /// Items (possibly none), and whether the reader should ask for the partition to be resumed.
    Items { resume: bool },
    Closed,
}

impl Inbox {
    pub fn new() -> Self {
        let state = State { items: VecDeque::new(), bytes: 0, closed: false, parked: false, resume_asked: false, last_take: Instant::now() };
        Inbox { state: Mutex::new(state), ready: Notify::new(), held: Default::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The router's push. Returns whether the reader needs a [`Self::wake`] (the inbox was
    /// empty); the router wakes readers once per run of messages, not per message. A closed
    /// inbox drops the item (false).
    pub fn push(&self, item: Item, prefetch: &Prefetch) -> bool {
        let size = item.size();
        let mut s = self.lock();
        if s.closed {
            return false;
        }
        let was_empty = s.items.is_empty();
        s.items.push_back(item);
        s.bytes += size;
        if !s.parked {
            prefetch.add(size);
        }
        was_empty
    }

    /// Wakes the reader waiting in [`Self::ready`].
    pub fn wake(&self) {
        self.ready.notify_one();
    }

    /// Moves up to `max` items into `out`.
    pub fn take(&self, max: usize, out: &mut Vec<Item>, prefetch: &Prefetch) -> Taken {
        let mut s = self.lock();
        if s.closed {
            return Taken::Closed;
        }
        let mut freed = 0;
        for _ in 0..max {
            let Some(item) = s.items.pop_front() else { break };
            freed += item.size();
            out.push(item);
        }
        s.bytes -= freed;
        s.last_take = Instant::now();
        if !s.parked {
            prefetch.release(freed);
        }
        let resume = s.parked && s.items.is_empty() && !std::mem::replace(&mut s.resume_asked, true);
        Taken::Items { resume }
    }

    /// Puts items a reader took but could not hand over (a message whose schema is not
    /// fetched yet, and what follows it) back at the head, in their order.
    pub fn put_back(&self, items: Vec<Item>, prefetch: &Prefetch) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        let size: usize = items.iter().map(Item::size).sum();
        for item in items.into_iter().rev() {
            s.items.push_front(item);
        }
        s.bytes += size;
        if !s.parked {
            prefetch.add(size);
        }
    }

    /// A reader takes the inbox for itself: two readers of one partition would split its order.
    pub fn hold(&self) -> bool {
        !self.held.swap(true, Ordering::AcqRel)
    }

    pub fn release(&self) {
        self.held.store(false, Ordering::Release);
    }

    /// Whether the router should resume the partition: parked, and its reader took everything.
    pub fn wants_resume(&self) -> bool {
        let s = self.lock();
        s.parked && !s.closed && s.items.is_empty()
    }

    /// Waits until something is pushed or the inbox closes (or returns at once if that happened
    /// since the last wait).
    pub async fn ready(&self) {
        self.ready.notified().await
    }

    /// Ends the assignment: what is left is dropped (the next owner fetches it from the
    /// committed offset). Returns whether the partition was parked (paused), so the revoke
    /// resumes it before the partition can come back.
    pub fn close(&self, prefetch: &Prefetch) -> bool {
        let parked = {
            let mut s = self.lock();
            s.closed = true;
            s.items.clear();
            if !s.parked {
                prefetch.release(s.bytes);
            }
            s.bytes = 0;
            std::mem::replace(&mut s.parked, false)
        };
        self.ready.notify_one();
        parked
    }

    /// Whether the router should park it: it holds records and its reader took none for
    /// `stalled_for`.
    pub fn stalled(&self, now: Instant, stalled_for: std::time::Duration) -> bool {
        let s = self.lock();
        !s.closed && !s.parked && !s.items.is_empty() && now.saturating_duration_since(s.last_take) >= stalled_for
    }

    /// The router is pausing the partition: its bytes leave the shared budget. False (and
    /// nothing changes) if it is closed, parked already or empty by now.
    pub fn park(&self, prefetch: &Prefetch) -> bool {
        let mut s = self.lock();
        if s.closed || s.parked || s.items.is_empty() {
            return false;
        }
        s.parked = true;
        s.resume_asked = false;
        prefetch.release(s.bytes);
        true
    }

    /// A resume failed: the reader's next take of the empty inbox asks again.
    pub fn ask_again(&self) {
        self.lock().resume_asked = false;
    }

    /// The router resumed the partition: what is left (if anything) counts again.
    pub fn unpark(&self, prefetch: &Prefetch) -> bool {
        let mut s = self.lock();
        if s.closed || !s.parked {
            return false;
        }
        s.parked = false;
        s.resume_asked = false;
        prefetch.add(s.bytes);
        true
    }

    #[cfg(test)]
    pub fn is_parked(&self) -> bool {
        self.lock().parked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esmd_api::Position;
    use std::time::Duration;

    fn item(n: usize) -> Item {
        Item::Record(Record {
            position: Position::new(n.to_string()),
            partition_key: bytes::Bytes::new(),
            arrival_ms: 0,
            data: bytes::Bytes::new(),
            encoded: bytes::Bytes::from(vec![b'e'; 100]),
            item_id: esmd_api::ItemId::Str(n.to_string().into()),
            receive_count: 0,
            invalid: None,
        })
    }

    fn positions(items: &[Item]) -> Vec<String> {
        items.iter().map(|i| if let Item::Record(r) = i { r.position.to_string() } else { "raw".into() }).collect()
    }

    #[test]
    fn takes_in_order_and_returns_the_bytes_to_the_budget() {
        let p = Prefetch::new(250);
        let inbox = Inbox::new();
        assert!(inbox.push(item(0), &p), "the first wakes the reader");
        assert!(!inbox.push(item(1), &p));
        assert!(!inbox.push(item(2), &p));
        assert!(!p.has_room(), "three records spend the budget");
        let mut out = Vec::new();
        assert!(matches!(inbox.take(2, &mut out, &p), Taken::Items { resume: false }));
        assert_eq!(positions(&out), ["0", "1"]);
        assert!(p.has_room());
        out.clear();
        inbox.take(10, &mut out, &p);
        assert_eq!(positions(&out), ["2"]);
        assert_eq!(p.used(), 0);
    }

    #[test]
    fn a_closed_inbox_drops_what_it_held_and_takes_nothing_more() {
        let p = Prefetch::new(1 << 20);
        let inbox = Inbox::new();
        inbox.push(item(0), &p);
        assert!(!inbox.close(&p), "was not parked");
        assert_eq!(p.used(), 0);
        assert!(!inbox.push(item(1), &p));
        assert!(matches!(inbox.take(10, &mut Vec::new(), &p), Taken::Closed));
    }

    #[test]
    fn a_parked_inbox_is_outside_the_budget_and_asks_once_to_be_resumed_when_emptied() {
        let p = Prefetch::new(1 << 20);
        let inbox = Inbox::new();
        inbox.push(item(0), &p);
        inbox.push(item(1), &p);
        let then = Instant::now() + Duration::from_secs(2);
        assert!(inbox.stalled(then, Duration::from_secs(1)));
        assert!(inbox.park(&p));
        assert_eq!(p.used(), 0);
        assert!(!inbox.stalled(then, Duration::from_secs(1)), "parked once");
        let mut out = Vec::new();
        assert!(matches!(inbox.take(1, &mut out, &p), Taken::Items { resume: false }), "not empty yet");
        assert!(matches!(inbox.take(1, &mut out, &p), Taken::Items { resume: true }));
        assert!(matches!(inbox.take(1, &mut out, &p), Taken::Items { resume: false }), "asked once");
        assert!(inbox.unpark(&p));
        assert!(!inbox.is_parked());
        assert_eq!(p.used(), 0);
    }

    #[test]
    fn items_put_back_are_taken_first_in_their_order() {
        let p = Prefetch::new(1 << 20);
        let inbox = Inbox::new();
        inbox.push(item(2), &p);
        inbox.put_back(vec![item(0), item(1)], &p);
        let mut out = Vec::new();
        inbox.take(10, &mut out, &p);
        assert_eq!(positions(&out), ["0", "1", "2"]);
        assert_eq!(p.used(), 0);
    }

    #[test]
    fn one_reader_holds_an_inbox_at_a_time() {
        let inbox = Inbox::new();
        assert!(inbox.hold());
        assert!(!inbox.hold());
        inbox.release();
        assert!(inbox.hold());
    }

    #[tokio::test]
    async fn the_router_is_woken_when_room_comes_back() {
        let p = Prefetch::new(100);
        let inbox = Inbox::new();
        inbox.push(item(0), &p);
        assert!(!p.has_room());
        inbox.take(1, &mut Vec::new(), &p);
        tokio::time::timeout(Duration::from_secs(1), p.freed()).await.expect("woken");
    }
}
