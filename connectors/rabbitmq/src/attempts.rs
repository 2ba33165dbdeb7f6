//! How many times a message failed, for queues that do not count deliveries themselves.
//!
//! Quorum queues stamp `x-delivery-count` on each redelivery; classic queues only say
//! `redelivered`. So that a poison message cannot loop forever on a classic queue, esmd counts
//! the failures it returned to the queue, keyed by the message's `messageId` or, without one,
//! its body. The count lives in memory: it starts again when esmd restarts, and identical
//! messages without a `messageId` share one count (they can only be exhausted sooner).

use esmd_api::{ItemId, Record};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Beyond this many tracked messages, new failures are not counted (and a warning says so);
/// each entry is 12 bytes, so the cap bounds memory at a few megabytes.
const MAX_TRACKED: usize = 250_000;

#[derive(Debug, Default)]
pub(crate) struct Attempts {
    failures: HashMap<u64, u32>,
    full_warned: bool,
}

/// The key a message is counted under.
pub(crate) fn fingerprint(message_id: &str, body: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    if message_id.is_empty() {
        (0u8, body).hash(&mut h);
    } else {
        (1u8, message_id).hash(&mut h);
    }
    h.finish()
}

pub(crate) fn record_fingerprint(r: &Record) -> u64 {
    match &r.item_id {
        ItemId::Str(id) => fingerprint(id, &r.data),
        ItemId::KafkaOffset { .. } => fingerprint("", &r.data),
    }
}

impl Attempts {
    /// Earlier deliveries of a message just received. A first delivery (`redelivered` false)
    /// clears what an older message with the same key left behind. `broker_count` is the
    /// quorum queue's `x-delivery-count`, when it counts.
    pub(crate) fn on_delivery(&mut self, key: u64, redelivered: bool, broker_count: Option<u32>) -> u32 {
        if !redelivered {
            self.failures.remove(&key);
            return 0;
        }
        let own = self.failures.get(&key).copied().unwrap_or(0);
        own.max(broker_count.unwrap_or(0))
    }

    /// The message failed and goes back to the queue.
    pub(crate) fn failed(&mut self, key: u64) {
        if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(&key) {
            if !self.full_warned {
                self.full_warned = true;
                tracing::warn!(tracked = MAX_TRACKED, "too many failing messages to count their retries; further ones are not counted");
            }
            return;
        }
        *self.failures.entry(key).or_insert(0) += 1;
    }

    /// The message left the queue (acked, dead-lettered): forget it.
    pub(crate) fn settled(&mut self, key: u64) {
        self.failures.remove(&key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.failures.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_failures_until_settled() {
        let mut a = Attempts::default();
        let k = fingerprint("m-1", b"x");
        assert_eq!(a.on_delivery(k, false, None), 0);
        a.failed(k);
        assert_eq!(a.on_delivery(k, true, None), 1);
        a.failed(k);
        assert_eq!(a.on_delivery(k, true, None), 2);
        a.settled(k);
        assert_eq!(a.on_delivery(k, true, None), 0);
        assert_eq!(a.len(), 0);
    }

    #[test]
    fn broker_count_and_fresh_deliveries() {
        let mut a = Attempts::default();
        let k = fingerprint("", b"body");
        // A redelivery esmd never saw fail (esmd restarted): the quorum queue's count holds.
        assert_eq!(a.on_delivery(k, true, Some(4)), 4);
        a.failed(k);
        assert_eq!(a.on_delivery(k, true, Some(0)), 1);
        // A new message with the same body starts from zero.
        assert_eq!(a.on_delivery(k, false, None), 0);
        assert_eq!(a.len(), 0);
    }

    #[test]
    fn keys_prefer_the_message_id() {
        assert_eq!(fingerprint("m", b"a"), fingerprint("m", b"b"));
        assert_ne!(fingerprint("", b"a"), fingerprint("", b"b"));
        assert_ne!(fingerprint("a", b""), fingerprint("", b"a"));
    }
}
