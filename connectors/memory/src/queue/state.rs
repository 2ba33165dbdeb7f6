//! The queue's messages and their visibility: what is visible, what is in flight until when,
//! what waits out a release delay. Pure bookkeeping under one lock; no waiting here.

use super::ids::{Ids, Receipt};
use super::ready::Ready;
use crate::hash::md5_hex;
use crate::json::quoted;
use esmd_api::sqs::{Delivery, SqsEncoding};
use bytes::Bytes;
use esmd_api::{ItemId, Position, Record};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The group FIFO messages sent without one share.
pub const DEFAULT_GROUP: &str = "default";

struct Message {
    id: Arc<str>,
    /// FIFO: the message group; standard queues: empty (unused).
    group: Arc<str>,
    key: Bytes,
    body: Bytes,
    quoted_body: Box<str>,
    md5: Box<str>,
    sent_ms: i64,
    first_receive_ms: Option<i64>,
    deliveries: u32,
    state: Visibility,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visibility {
    Visible,
    InFlight { delivery: u64, until: Instant },
    Delayed { until: Instant },
}

/// What to do with one delivery.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Settle {
    Delete,
    /// Removed like a delete, but not counted as one.
    DeadLetter,
    /// Visible again after the delay (zero: at once).
    Release(Duration),
    /// Invisible for this long from now.
    Extend(Duration),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Applied,
    /// The delivery is over (visibility expired, redelivered, already settled): the message
    /// was left alone, as SQS ignores an outdated receipt handle.
    Stale,
    /// Not a receipt handle this queue issued.
    Foreign,
}

pub(crate) struct QueueState {
    ids: Ids,
    fifo: bool,
    visibility_timeout: Duration,
    messages: HashMap<u64, Message>,
    ready: Ready,
    /// Invisible messages by the time they become visible again.
    timers: BTreeSet<(Instant, u64)>,
    in_flight: usize,
    delayed: usize,
    last_seq: u64,
    last_delivery: u64,
    pub(crate) deleted: u64,
    pub(crate) stale: u64,
}

/// `now + d`, saturating far in the future instead of overflowing.
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

impl QueueState {
    pub(crate) fn new(ids: Ids, fifo: bool, visibility_timeout: Duration) -> Self {
        QueueState {
            ids,
            fifo,
            visibility_timeout,
            messages: HashMap::new(),
            ready: Ready::new(fifo),
            timers: BTreeSet::new(),
            in_flight: 0,
            delayed: 0,
            last_seq: 0,
            last_delivery: 0,
            deleted: 0,
            stale: 0,
        }
    }

    pub(crate) fn send(&mut self, body: Bytes, group: Option<&str>, sent_ms: i64) -> Arc<str> {
        self.last_seq += 1;
        let seq = self.last_seq;
        let id = self.ids.message_id(seq);
        let (group, key): (Arc<str>, Bytes) = match (self.fifo, group) {
            (true, g) => {
                let g = g.unwrap_or(DEFAULT_GROUP);
                (g.into(), Bytes::copy_from_slice(g.as_bytes()))
            }
            // Standard queues ignore groups for delivery; the key still tells the engine.
            (false, g) => ("".into(), g.map_or_else(Bytes::new, |g| Bytes::copy_from_slice(g.as_bytes()))),
        };
        let text = String::from_utf8_lossy(&body);
        let message = Message {
            id: id.clone(),
            group: group.clone(),
            key,
            quoted_body: quoted(&text).into(),
            md5: md5_hex(&body).into(),
            body,
            sent_ms,
            first_receive_ms: None,
            deliveries: 0,
            state: Visibility::Visible,
        };
        self.messages.insert(seq, message);
        self.ready.added(seq, &group);
        id
    }

    /// Makes messages whose invisibility ended visible again.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(&(until, seq)) = self.timers.first() {
            if until > now {
                break;
            }
            self.timers.pop_first();
            let Some(m) = self.messages.get_mut(&seq) else { continue };
            match m.state {
                Visibility::InFlight { .. } => self.in_flight -= 1,
                Visibility::Delayed { .. } => self.delayed -= 1,
                Visibility::Visible => continue,
            }
            m.state = Visibility::Visible;
            self.ready.shown(seq, &m.group);
        }
    }

    /// When the next invisible message becomes visible by itself.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.timers.first().map(|&(until, _)| until)
    }

    /// Delivers up to `max` visible messages, hiding them for the visibility timeout.
    pub(crate) fn receive(&mut self, max: usize, now: Instant, now_ms: i64, encoding: &SqsEncoding) -> Vec<Record> {
        self.expire(now);
        let seqs = self.ready.take(max);
        let until = after(now, self.visibility_timeout);
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let Some(m) = self.messages.get_mut(&seq) else { continue };
            self.last_delivery += 1;
            let receipt = Receipt { seq, delivery: self.last_delivery };
            m.state = Visibility::InFlight { delivery: receipt.delivery, until };
            self.timers.insert((until, seq));
            self.in_flight += 1;
            let before = m.deliveries;
            m.deliveries = m.deliveries.saturating_add(1);
            let first_receive_ms = *m.first_receive_ms.get_or_insert(now_ms);
            let handle = self.ids.receipt_handle(receipt);
            let sequence_number = if self.fifo { format!("{seq:020}") } else { String::new() };
            let delivery = Delivery {
                message_id: &m.id,
                receipt_handle: &handle,
                quoted_body: &m.quoted_body,
                md5_of_body: &m.md5,
                receive_count: m.deliveries,
                sent_ms: m.sent_ms,
                first_receive_ms,
                // No deduplication happens here, so the message id stands in for the
                // deduplication id.
                fifo: self.fifo.then_some((sequence_number.as_str(), &*m.group, &*m.id)),
                sender_id: None,
                message_attributes: None,
            };
            let encoded = encoding.fragment(&delivery);
            out.push(Record {
                position: Position(handle),
                partition_key: m.key.clone(),
                arrival_ms: m.sent_ms,
                data: m.body.clone(),
                encoded,
                item_id: ItemId::Str(m.id.clone()),
                receive_count: before,
                invalid: None,
            });
        }
        out
    }

    /// Applies `action` to the delivery `handle` names, unless that delivery is over.
    pub(crate) fn settle(&mut self, handle: &str, action: Settle, now: Instant) -> Outcome {
        let Some(receipt) = self.ids.parse(handle) else { return Outcome::Foreign };
        // An expired delivery must not be acted on even if its timer has not been seen yet.
        self.expire(now);
        let current = match self.messages.get(&receipt.seq).map(|m| m.state) {
            Some(Visibility::InFlight { delivery, until }) if delivery == receipt.delivery => until,
            _ => {
                self.stale += 1;
                return Outcome::Stale;
            }
        };
        let seq = receipt.seq;
        match action {
            Settle::Delete | Settle::DeadLetter => {
                self.timers.remove(&(current, seq));
                self.in_flight -= 1;
                if let Some(m) = self.messages.remove(&seq) {
                    self.ready.removed(seq, &m.group);
                }
                if matches!(action, Settle::Delete) {
                    self.deleted += 1;
                }
            }
            Settle::Release(delay) => {
                self.timers.remove(&(current, seq));
                self.in_flight -= 1;
                let Some(m) = self.messages.get_mut(&seq) else { return Outcome::Stale };
                if delay.is_zero() {
                    m.state = Visibility::Visible;
                    self.ready.shown(seq, &m.group);
                } else {
                    // Still invisible: a FIFO group stays blocked until it is back.
                    let until = after(now, delay);
                    m.state = Visibility::Delayed { until };
                    self.timers.insert((until, seq));
                    self.delayed += 1;
                }
            }
            Settle::Extend(by) => {
                self.timers.remove(&(current, seq));
                let until = after(now, by);
                if let Some(m) = self.messages.get_mut(&seq) {
                    m.state = Visibility::InFlight { delivery: receipt.delivery, until };
                }
                self.timers.insert((until, seq));
            }
        }
        Outcome::Applied
    }

    pub(crate) fn visible_len(&self) -> usize {
        self.messages.len() - self.in_flight - self.delayed
    }

    pub(crate) fn in_flight_len(&self) -> usize {
        self.in_flight
    }

    pub(crate) fn delayed_len(&self) -> usize {
        self.delayed
    }
}
