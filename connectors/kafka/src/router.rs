//! The router: the group thread's loop. It polls the consumer's queue, which serves the group's
//! events (joins, rebalance callbacks, errors) and every partition's messages, converts each
//! message into its record and puts it into the partition's inbox.
//!
//! While the inboxes hold their budget ([`Prefetch`]) it stops polling, and librdkafka stops
//! fetching once its own queue is full. An inbox its reader has not taken from for
//! [`PARK_AFTER`] meanwhile is parked: its partition is paused (librdkafka drops what it fetched
//! of it and fetches again from the record after the last one routed when resumed), and its
//! bytes leave the budget, so the other partitions go on. The router resumes it once its
//! reader has taken everything.
//!
//! The polling also keeps the consumer in its group (`max.poll.interval.ms`): it never stops
//! for longer than [`PARK_AFTER`] while something can be parked.

use crate::group::{KConsumer, Shared};
use crate::inbox::{Inbox, Item};
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::TopicPartitionList;
use std::sync::atomic::Ordering;
use futures_util::FutureExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long an inbox's reader may take nothing, while the budget is spent, before its
/// partition is parked. Long against a healthy drain (every reader takes within the engine's
/// round over its partitions), short against the group's poll interval.
pub(crate) const PARK_AFTER: Duration = Duration::from_secs(3);

/// Messages routed between two rounds of waking readers (and of looking at resumes and the
/// stop signal) while librdkafka has messages ready.
const WAKE_EVERY: usize = 64;

pub(crate) async fn run(consumer: &KConsumer, shared: &Shared, mut stopped: watch::Receiver<bool>) {
    let mut full_since: Option<tokio::time::Instant> = None;
    let started = tokio::time::Instant::now();
    let mut woken: Vec<Arc<Inbox>> = Vec::new();
    let mut routed = 0usize;
    loop {
        let room = shared.prefetch.has_room();
        // What librdkafka has ready is taken without the select's futures per message, and
        // the readers it fills are woken once per run rather than once per message.
        if room {
            if let Some(m) = consumer.recv().now_or_never() {
                received(shared, m, &mut woken);
                routed += 1;
                if routed % WAKE_EVERY == 0 {
                    wake(&mut woken);
                    if stopped.has_changed().unwrap_or(true) {
                        break;
                    }
                    if shared.wake_router.notified().now_or_never().is_some() {
                        resume_emptied(consumer, shared);
                    }
                }
                continue;
            }
        }
        wake(&mut woken);
        let park_at = if room {
            full_since = None;
            // Unused while there is room (and no clock read per message).
            started
        } else {
            *full_since.get_or_insert_with(tokio::time::Instant::now) + PARK_AFTER
        };
        tokio::select! {
            m = consumer.recv(), if room => received(shared, m, &mut woken),
            _ = shared.prefetch.freed(), if !room => {}
            _ = tokio::time::sleep_until(park_at), if !room => {
                park_stalled(consumer, shared);
                full_since = None;
            }
            _ = shared.wake_router.notified() => resume_emptied(consumer, shared),
            _ = stopped.changed() => break,
        }
    }
}

fn received(shared: &Shared, m: Result<BorrowedMessage<'_>, rdkafka::error::KafkaError>, woken: &mut Vec<Arc<Inbox>>) {
    match m {
        Ok(m) => {
            if let Some(inbox) = route(shared, &m) {
                woken.push(inbox);
            }
        }
        Err(e) => {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(mapping = %shared.mapping, error = %e, "kafka consumer error");
        }
    }
}

fn wake(woken: &mut Vec<Arc<Inbox>>) {
    for inbox in woken.drain(..) {
        inbox.wake();
    }
}

fn inbox_of(shared: &Shared, partition: i32) -> Option<(Arc<Inbox>, Arc<str>)> {
    let state = shared.lock();
    let slot = state.slots.get(&partition)?;
    slot.epoch?;
    Some((slot.inbox.clone()?, slot.name.clone()))
}

/// Puts the message into its partition's inbox; returns the inbox if its reader needs waking.
fn route(shared: &Shared, m: &BorrowedMessage<'_>) -> Option<Arc<Inbox>> {
    let Some((inbox, name)) = inbox_of(shared, m.partition()).filter(|_| m.topic() == shared.topic) else {
        // librdkafka drops what it fetched for an assignment once it ends, so this is not
        // expected; if it happens the next owner reads it from the committed offset.
        tracing::debug!(mapping = %shared.mapping, topic = m.topic(), partition = m.partition(), offset = m.offset(), "kafka: message of a partition not assigned here; dropped");
        return None;
    };
    let item = match shared.converter.convert(m, &name) {
        Ok(record) => Item::Record(record),
        // The reader fetches the schema; everything after it waits behind it in the inbox.
        Err(_) => Item::Raw(m.detach()),
    };
    inbox.push(item, &shared.prefetch).then_some(inbox)
}

/// Pauses the partitions whose readers stopped taking, so their records stop holding the
/// budget the others need.
fn park_stalled(consumer: &KConsumer, shared: &Shared) {
    let now = Instant::now();
    let stalled = assigned_inboxes(shared, |i| i.stalled(now, PARK_AFTER));
    // Parked before paused: a reader that empties the inbox in between asks for the resume,
    // which this thread handles after the pause. Nothing is routed in between (this thread).
    let stalled: Vec<(i32, Arc<Inbox>)> = stalled.into_iter().filter(|(_, i)| i.park(&shared.prefetch)).collect();
    if stalled.is_empty() {
        return;
    }
    let tpl = partition_list(shared, &stalled);
    // Synchronous: once it returns, librdkafka drops what it had fetched of these, and fetches
    // again from the record after the last one routed when they are resumed.
    if let Err(e) = consumer.pause(&tpl) {
        tracing::warn!(mapping = %shared.mapping, error = %e, "cannot pause partitions whose readers stopped taking");
        for (_, inbox) in &stalled {
            inbox.unpark(&shared.prefetch);
        }
        return;
    }
    let partitions: Vec<i32> = stalled.iter().map(|(p, _)| *p).collect();
    tracing::debug!(mapping = %shared.mapping, ?partitions, "kafka: readers stopped taking; their partitions are paused until they catch up");
}

/// Resumes the parked partitions whose readers took everything.
fn resume_emptied(consumer: &KConsumer, shared: &Shared) {
    let ready = assigned_inboxes(shared, Inbox::wants_resume);
    if ready.is_empty() {
        return;
    }
    match consumer.resume(&partition_list(shared, &ready)) {
        Ok(()) => {
            for (_, inbox) in &ready {
                inbox.unpark(&shared.prefetch);
            }
        }
        Err(e) => {
            // The readers ask again when they next find the inbox empty.
            tracing::warn!(mapping = %shared.mapping, error = %e, "cannot resume parked partitions");
            for (_, inbox) in &ready {
                inbox.ask_again();
            }
        }
    }
}

/// The assigned partitions whose inboxes satisfy `pick`.
fn assigned_inboxes(shared: &Shared, pick: impl Fn(&Inbox) -> bool) -> Vec<(i32, Arc<Inbox>)> {
    let state = shared.lock();
    state.slots.iter().filter_map(|(p, s)| s.inbox.as_ref().filter(|i| s.epoch.is_some() && pick(i)).map(|i| (*p, i.clone()))).collect()
}

fn partition_list(shared: &Shared, inboxes: &[(i32, Arc<Inbox>)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (p, _) in inboxes {
        tpl.add_partition(&shared.topic, *p);
    }
    tpl
}
