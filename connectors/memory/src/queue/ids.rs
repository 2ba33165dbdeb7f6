//! Message ids and receipt handles, derived from counters so runs are reproducible.
//!
//! A receipt handle names one delivery of one message of one queue; a handle from an earlier
//! delivery (or another queue) acts on nothing.

use crate::hash::md5_bytes;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub(crate) struct Ids {
    /// Eight hex digits from the queue name, so two queues' ids differ.
    tag: String,
    handle_prefix: String,
}

/// Which delivery a receipt handle names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Receipt {
    pub seq: u64,
    pub delivery: u64,
}

impl Ids {
    pub(crate) fn new(queue_name: &str) -> Self {
        let digest = md5_bytes(queue_name.as_bytes());
        let tag = format!("{:02x}{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2], digest[3]);
        Ids { handle_prefix: format!("rh-{tag}-"), tag }
    }

    /// UUID-shaped (version 4 layout), unique per queue.
    pub(crate) fn message_id(&self, seq: u64) -> Arc<str> {
        format!("{}-0000-4000-8000-{:012x}", self.tag, seq).into()
    }

    pub(crate) fn receipt_handle(&self, r: Receipt) -> Arc<str> {
        format!("{}{}-{}", self.handle_prefix, r.seq, r.delivery).into()
    }

    /// `None` for a handle this queue did not issue.
    pub(crate) fn parse(&self, handle: &str) -> Option<Receipt> {
        let (seq, delivery) = handle.strip_prefix(&self.handle_prefix)?.split_once('-')?;
        Some(Receipt { seq: seq.parse().ok()?, delivery: delivery.parse().ok()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_stay_in_their_queue() {
        let a = Ids::new("a");
        let r = Receipt { seq: 7, delivery: 42 };
        let h = a.receipt_handle(r);
        assert_eq!(a.parse(&h), Some(r));
        assert_eq!(Ids::new("b").parse(&h), None);
        assert_eq!(a.parse("rh-garbage"), None);
        assert_eq!(a.parse(&format!("{}x-1", a.handle_prefix)), None);
    }

    #[test]
    fn message_ids_are_uuid_shaped_and_distinct() {
        let a = Ids::new("a");
        let id = a.message_id(1);
        assert_eq!(id.len(), 36);
        assert_eq!(id.split('-').map(str::len).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert_ne!(a.message_id(1), a.message_id(2));
        assert_ne!(a.message_id(1), Ids::new("b").message_id(1));
    }
}
