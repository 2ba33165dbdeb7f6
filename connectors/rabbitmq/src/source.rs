//! [`RabbitMqSource`]: one queue consumed with manual acks, settled only by the engine.
//!
//! A background task owns the connection. It consumes with the prefetch the mapping asks for
//! (`esmd::app::rabbitmq_prefetch`: every batch that may run, plus one being gathered), so the
//! broker never hands out more than the engine can work on, and puts each delivery, encoded
//! once, into a buffer that [`QueueSource::receive`] drains.
//!
//! Delivery tags belong to a channel. Every channel the task opens is a new *generation*, and a
//! record's position says which generation delivered it (`"<generation>:<tag>"`). When a
//! channel or connection dies the broker requeues everything unacked on it by its own rules;
//! settling a record of an earlier generation is then skipped, so a message is never acked
//! twice or acked on the wrong channel, and nothing is lost (it comes back, redelivered).

use crate::attempts::{fingerprint, record_fingerprint, Attempts};
use crate::config::{RabbitMqConnection, RabbitMqSourceConfig};
use crate::connect::connect;
use crate::uri::parse_uri;
use crate::encode::{RawDelivery, RmqEncoding};
use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use esmd_api::{EventEncoder, Position, QueueSource, Record, ShardId, SourceError};
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, Consumer};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub struct RabbitMqOptions {
    /// The mapping's name: the connection shows as `esmd:<mapping>` on the broker.
    pub mapping: String,
    pub config: RabbitMqSourceConfig,
    /// Unacked messages the broker may hand out at once.
    pub prefetch: u16,
    /// For the stand-in broker ARN when `broker_arn` is not set.
    pub region: String,
    pub account: String,
}

#[derive(Debug, thiserror::Error)]
#[error("source.uri = {uri:?}: {reason}")]
pub struct SourceSetupError {
    uri: String,
    reason: String,
}

pub struct RabbitMqSource {
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    connection: RabbitMqConnection,
    client_name: String,
    queue: String,
    ordered: bool,
    prefetch: u16,
    encoding: Arc<RmqEncoding>,
    queue_id: ShardId,
    state: Mutex<State>,
    /// Woken when deliveries land in the buffer.
    arrived: Notify,
    attempts: Mutex<Attempts>,
    /// Held from choosing the frames of a settlement until they are sent: a `multiple` ack
    /// overtaken by a later one (or by a nack it assumed sent) would name a settled tag, and
    /// the broker closes the channel for that.
    settling: tokio::sync::Mutex<()>,
    /// Settlements skipped because their channel had died (the broker requeued the messages).
    stale: AtomicU64,
}

#[derive(Default)]
struct State {
    generation: u64,
    /// The channel of the current generation, while it consumes.
    channel: Option<Channel>,
    /// Received, not yet handed to the engine.
    buffer: VecDeque<Record>,
    /// Tags of this generation delivered and not yet acked, nacked or rejected. A `multiple`
    /// ack is only safe when no tag below it is still unsettled.
    unsettled: BTreeSet<u64>,
    /// Tags the engine acked while a lower tag was still unsettled (batches finish out of
    /// order). They wait, unsent, until nothing below them is unsettled, and then go out with
    /// the tags that unblocked them as one `multiple` ack: a batch finishing early would
    /// otherwise cost a frame per message, to esmd and to the broker.
    acked: BTreeSet<u64>,
    last_error: Option<String>,
    /// Ordered mode: a batch failed; before anything else is received the channel is closed so
    /// the broker puts every unacked message (the failed batch and whatever was prefetched
    /// after it) back in queue order.
    reset: bool,
}

/// Records of one generation, split from the rest, for one settle call.
struct Split {
    channel: Option<Channel>,
    tags: Vec<u64>,
    /// All tags below the highest one are settled by this call: one `multiple` frame does it.
    contiguous: bool,
}

impl RabbitMqSource {
    /// Starts consuming in the background (needs a Tokio runtime). Connection problems are
    /// retried with backoff and reported by [`QueueSource::receive`]; only a URI that cannot
    /// work fails here.
    pub fn new(options: RabbitMqOptions) -> Result<Self, SourceSetupError> {
        let c = &options.config;
        let uri = parse_uri(&c.uri).map_err(|reason| SourceSetupError { uri: c.uri.clone(), reason })?;
        let arn = c
            .broker_arn
            .clone()
            .unwrap_or_else(|| RmqEncoding::stand_in_arn(&options.region, &options.account, &uri.authority.host, uri.authority.port));
        let encoding = Arc::new(RmqEncoding::new(&arn, &c.queue, &c.virtual_host));
        let shared = Arc::new(Shared {
            connection: c.connection(),
            client_name: format!("esmd:{}", options.mapping),
            queue: c.queue.clone(),
            ordered: c.ordered,
            prefetch: options.prefetch.max(1),
            queue_id: ShardId::new(encoding.queue_key()),
            encoding,
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
            attempts: Mutex::new(Attempts::default()),
            settling: tokio::sync::Mutex::new(()),
            stale: AtomicU64::new(0),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(consume(shared.clone(), stop.clone()));
        Ok(RabbitMqSource { shared, stop, task: Mutex::new(Some(task)) })
    }

    pub fn encoding(&self) -> Arc<RmqEncoding> {
        self.shared.encoding.clone()
    }

    /// Whether a channel is consuming now.
    pub fn is_connected(&self) -> bool {
        self.shared.state().channel.is_some()
    }

    /// Settlements skipped because the channel that delivered the messages had closed (the
    /// broker requeued them instead).
    pub fn stale_settlements(&self) -> u64 {
        self.shared.stale.load(Ordering::Relaxed)
    }

    /// Sends the acks nothing unsettled holds back any more. Call with `settling` held.
    async fn send_ackable(&self) -> Result<(), SourceError> {
        let (ready, overdue) = self.shared.take_ackable();
        for split in [ready, overdue] {
            settle(split, "ack", |ch, tag, multiple| Box::pin(async move { ch.basic_ack(tag, BasicAckOptions { multiple }).await })).await?;
        }
        Ok(())
    }
}

impl Drop for RabbitMqSource {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn attempts(&self) -> MutexGuard<'_, Attempts> {
        self.attempts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Acked tags that nothing unsettled precedes any more, taken out of waiting: one
    /// `multiple` ack at the highest settles them all. The second split holds the tags that
    /// cannot wait any longer, to be acked one frame each: waiting acks hold prefetch, and a
    /// slow batch below them must not starve the other slots of deliveries, so no more than
    /// half the prefetch waits.
    fn take_ackable(&self) -> (Split, Split) {
        let mut st = self.state();
        let ready: Vec<u64> = match st.unsettled.first().copied() {
            Some(lowest) => st.acked.range(..lowest).copied().collect(),
            None => st.acked.iter().copied().collect(),
        };
        for t in &ready {
            st.acked.remove(t);
        }
        let overdue: Vec<u64> = if st.acked.len() * 2 > usize::from(self.prefetch) { std::mem::take(&mut st.acked).into_iter().collect() } else { Vec::new() };
        let channel = st.channel.clone();
        (Split { channel: channel.clone(), tags: ready, contiguous: true }, Split { channel, tags: overdue, contiguous: false })
    }

    /// Takes the records' tags of the current generation out of the unsettled set.
    fn split(&self, records: &[Record]) -> Split {
        let mut st = self.state();
        let tags = self.take_unsettled(&mut st, records);
        let contiguous = tags.iter().max().is_some_and(|&max| st.unsettled.range(..max).next().is_none());
        Split { channel: st.channel.clone(), tags, contiguous }
    }

    /// Moves the records' tags of the current generation to the acked ones waiting to be sent.
    /// Under the same lock as the generation check: a channel replaced in between must never
    /// be sent the old channel's tags (they would name other messages there).
    fn mark_acked(&self, records: &[Record]) {
        let mut st = self.state();
        let tags = self.take_unsettled(&mut st, records);
        st.acked.extend(tags);
    }

    fn take_unsettled(&self, st: &mut State, records: &[Record]) -> Vec<u64> {
        let generation = st.generation;
        let mut tags = Vec::with_capacity(records.len());
        let mut stale = 0;
        for r in records {
            match parse_position(&r.position) {
                Some((g, tag)) if g == generation && st.unsettled.remove(&tag) => tags.push(tag),
                _ => stale += 1,
            }
        }
        if stale > 0 {
            self.stale.fetch_add(stale, Ordering::Relaxed);
            tracing::debug!(queue = %self.queue_id, stale, "settling messages of a closed channel skipped; the broker has requeued them");
        }
        tags
    }
}

fn parse_position(p: &Position) -> Option<(u64, u64)> {
    let (g, t) = p.as_str().split_once(':')?;
    Some((g.parse().ok()?, t.parse().ok()?))
}

fn amqp_error(what: &str, e: lapin::Error) -> SourceError {
    SourceError::transient(format!("{what}: {e}")).with_cause(e)
}

/// Sends one frame per tag, or a single `multiple` frame when the tags cover everything
/// unsettled below the highest: acking a 100-message batch is then one frame.
async fn settle(split: Split, what: &str, one: impl Fn(Channel, u64, bool) -> futures_util::future::BoxFuture<'static, lapin::Result<()>>) -> Result<(), SourceError> {
    let Some(channel) = split.channel else {
        return if split.tags.is_empty() { Ok(()) } else { Err(SourceError::transient(format!("{what}: not connected"))) };
    };
    match split.tags.iter().max() {
        None => Ok(()),
        Some(&max) if split.contiguous && split.tags.len() > 1 => one(channel, max, true).await.map_err(|e| amqp_error(what, e)),
        Some(_) => {
            let sends = split.tags.iter().map(|&t| one(channel.clone(), t, false));
            for r in futures_util::future::join_all(sends).await {
                r.map_err(|e| amqp_error(what, e))?;
            }
            Ok(())
        }
    }
}

#[async_trait]
impl QueueSource for RabbitMqSource {
    fn kind(&self) -> &'static str {
        "rabbitmq"
    }

    fn encoder(&self) -> Arc<dyn EventEncoder> {
        self.shared.encoding.clone()
    }

    fn queue_id(&self) -> ShardId {
        self.shared.queue_id.clone()
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Record>, SourceError> {
        let shared = &self.shared;
        let deadline = Instant::now() + wait;
        if shared.ordered {
            let closing = {
                let mut st = shared.state();
                if st.reset {
                    st.reset = false;
                    // From here on nothing of the old channel is handed out or settled.
                    st.generation += 1;
                    st.buffer.clear();
                    st.unsettled.clear();
                    st.acked.clear();
                    st.channel.take()
                } else {
                    None
                }
            };
            if let Some(channel) = closing {
                if let Err(e) = channel.close(200, "esmd: requeue in order after a failed batch".into()).await {
                    tracing::debug!(error = %e, "closing the channel for an ordered retry");
                }
            }
        }
        loop {
            let notified = shared.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = shared.state();
                if !st.buffer.is_empty() {
                    let n = max.min(st.buffer.len());
                    return Ok(st.buffer.drain(..n).collect());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let st = shared.state();
                return match (&st.channel, &st.last_error) {
                    (None, Some(e)) => Err(SourceError::transient(format!("not connected to RabbitMQ: {e}"))),
                    _ => Ok(Vec::new()),
                };
            }
        }
    }

    async fn ack(&self, records: &[Record]) -> Result<(), SourceError> {
        let _order = self.shared.settling.lock().await;
        self.shared.mark_acked(records);
        {
            let mut attempts = self.shared.attempts();
            for r in records {
                attempts.settled(record_fingerprint(r));
            }
        }
        self.send_ackable().await
    }

    async fn release(&self, records: &[Record], _delay: Option<Duration>) -> Result<(), SourceError> {
        {
            let mut attempts = self.shared.attempts();
            for r in records {
                attempts.failed(record_fingerprint(r));
            }
        }
        let _order = self.shared.settling.lock().await;
        let split = self.shared.split(records);
        if self.shared.ordered {
            // No nack: it would put these back while later messages already prefetched (or
            // still on the wire) are handed out first. The channel closes before the next
            // receive and the broker requeues all of them in queue order.
            self.shared.state().reset = true;
            return Ok(());
        }
        settle(split, "nack", |ch, tag, multiple| Box::pin(async move { ch.basic_nack(tag, BasicNackOptions { multiple, requeue: true }).await })).await?;
        // Acks that waited on these tags can go now.
        self.send_ackable().await
    }

    async fn dead_letter(&self, records: &[Record]) -> Result<(), SourceError> {
        let _order = self.shared.settling.lock().await;
        let split = self.shared.split(records);
        {
            let mut attempts = self.shared.attempts();
            for r in records {
                attempts.settled(record_fingerprint(r));
            }
        }
        settle(split, "reject", |ch, tag, multiple| {
            Box::pin(async move {
                if multiple {
                    ch.basic_nack(tag, BasicNackOptions { multiple, requeue: false }).await
                } else {
                    ch.basic_reject(tag, BasicRejectOptions { requeue: false }).await
                }
            })
        })
        .await?;
        self.send_ackable().await
    }

    /// Ordered mode keeps one group: the whole queue.
    fn ordered_groups(&self) -> bool {
        self.shared.ordered
    }

    async fn close(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The background task: connect, consume, and on any failure start over with backoff.
async fn consume(shared: Arc<Shared>, stop: CancellationToken) {
    let backoff = ExponentialBuilder::default().with_min_delay(Duration::from_millis(200)).with_max_delay(Duration::from_secs(30)).with_jitter().without_max_times();
    let mut delays = backoff.build();
    while !stop.is_cancelled() {
        let conn = tokio::select! {
            c = connect(&shared.connection, &shared.client_name) => c,
            _ = stop.cancelled() => break,
        };
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(queue = %shared.queue_id, error = %message, "cannot connect to RabbitMQ; retrying");
                shared.state().last_error = Some(message);
                let delay = delays.next().unwrap_or(Duration::from_secs(30));
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue,
                    _ = stop.cancelled() => break,
                }
            }
        };
        // Channels come and go on one connection (ordered mode closes them on purpose).
        while !stop.is_cancelled() && conn.status().connected() {
            let (channel, consumer) = match open_channel(&shared, &conn).await {
                Ok(c) => c,
                Err(e) => {
                    let message = e.to_string();
                    tracing::warn!(queue = %shared.queue_id, error = %message, "cannot consume the queue; retrying");
                    shared.state().last_error = Some(message);
                    let delay = delays.next().unwrap_or(Duration::from_secs(30));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => continue,
                        _ = stop.cancelled() => break,
                    }
                }
            };
            delays = backoff.build();
            let generation = {
                let mut st = shared.state();
                st.generation += 1;
                st.channel = Some(channel.clone());
                st.buffer.clear();
                st.unsettled.clear();
                st.acked.clear();
                st.last_error = None;
                st.reset = false;
                st.generation
            };
            tracing::info!(queue = %shared.queue_id, generation, prefetch = shared.prefetch, "consuming");
            let ended = pump(&shared, generation, consumer, &stop).await;
            let unexpected = {
                let mut st = shared.state();
                // Not current any more: ordered mode closed the channel on purpose.
                let current = st.generation == generation;
                if current {
                    // Whatever this channel delivered and nobody settled is the broker's again.
                    st.generation += 1;
                    st.channel = None;
                    st.buffer.clear();
                    st.unsettled.clear();
                    st.acked.clear();
                    st.last_error = ended.clone();
                }
                ended.filter(|_| current)
            };
            if let Some(why) = unexpected {
                tracing::warn!(queue = %shared.queue_id, reason = %why, "channel closed; unacked messages return to the queue");
            }
            if channel.status().connected() {
                let _ = channel.close(200, "esmd: stopping".into()).await;
            }
        }
        if conn.status().connected() {
            let _ = conn.close(200, "esmd: stopping".into()).await;
        }
    }
}

async fn open_channel(shared: &Shared, conn: &Connection) -> lapin::Result<(Channel, Consumer)> {
    let channel = conn.create_channel().await?;
    channel.basic_qos(shared.prefetch, BasicQosOptions::default()).await?;
    let consumer = channel
        .basic_consume(shared.queue.as_str().into(), shared.client_name.as_str().into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    Ok((channel, consumer))
}

/// Moves deliveries into the buffer until the channel ends (`Some(reason)`), the source stops
/// or ordered mode resets the channel (`None`).
async fn pump(shared: &Shared, generation: u64, mut consumer: Consumer, stop: &CancellationToken) -> Option<String> {
    loop {
        let next = tokio::select! {
            d = consumer.next() => d,
            _ = stop.cancelled() => return None,
        };
        let delivery = match next {
            None => return Some("the broker cancelled the consumer".into()),
            Some(Err(e)) => return Some(e.to_string()),
            Some(Ok(d)) => d,
        };
        let message_id = delivery.properties.message_id().as_ref().map(|m| m.as_str()).unwrap_or("");
        let key = fingerprint(message_id, &delivery.data);
        // In ordered mode the resets requeue innocent messages too, and a quorum queue counts
        // those returns; only esmd's own count of real failures is fair there.
        let broker_count = if shared.ordered { None } else { delivery_count(delivery.properties.headers().as_ref()) };
        let receive_count = shared.attempts().on_delivery(key, delivery.redelivered, broker_count);
        let record = shared.encoding.record(
            &RawDelivery { properties: &delivery.properties, body: &delivery.data, redelivered: delivery.redelivered },
            Position::new(format!("{generation}:{}", delivery.delivery_tag)),
            receive_count,
            esmd_api::time::now_ms(),
        );
        {
            let mut st = shared.state();
            if st.generation != generation {
                return None;
            }
            st.unsettled.insert(delivery.delivery_tag);
            st.buffer.push_back(record);
        }
        shared.arrived.notify_waiters();
    }
}

/// A quorum queue's `x-delivery-count`: earlier deliveries of this message.
fn delivery_count(headers: Option<&FieldTable>) -> Option<u32> {
    let v = headers?.inner().get("x-delivery-count")?;
    let n: i128 = match v {
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        _ => return None,
    };
    u32::try_from(n.max(0)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::ShortString;

    #[test]
    fn positions_round_trip() {
        assert_eq!(parse_position(&Position::new("3:17")), Some((3, 17)));
        assert_eq!(parse_position(&Position::new("17")), None);
    }

    #[test]
    fn delivery_count_header() {
        let mut h = FieldTable::default();
        assert_eq!(delivery_count(Some(&h)), None);
        h.insert(ShortString::from("x-delivery-count"), AMQPValue::LongLongInt(2));
        assert_eq!(delivery_count(Some(&h)), Some(2));
        h.insert(ShortString::from("x-delivery-count"), AMQPValue::LongInt(-1));
        assert_eq!(delivery_count(Some(&h)), Some(0));
    }
}
