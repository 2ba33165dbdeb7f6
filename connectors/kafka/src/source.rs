//! [`KafkaSource`]: a topic read by a consumer group, each assigned partition a shard.

use crate::config::KafkaSourceConfig;
use crate::encode::{offset_of, EventSource, KafkaEncoding, Part, RawMessage, SchemaParts};
use crate::schema::config::Attribute;
use crate::schema::wire::SchemaRef;
use crate::schema::{Outcome, SchemaDecoder};
use crate::group::{GroupContext, KConsumer, Queue, Shared, GROUP_CALL_TIMEOUT};
use async_trait::async_trait;
use esmd_api::{ErrorKind, EventEncoder, OrderedSource, Position, ReadBatch, Record, ShardInfo, ShardReader, SourceCounters, SourceError, StartFrom};
use futures_util::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{ClientConfig, Offset, Timestamp, TopicPartitionList};
use std::ffi::CString;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How long a read waits for the first message before returning an empty batch (the engine
/// then writes checkpoints and reads again).
const READ_WAIT: Duration = Duration::from_millis(250);

/// How long a read of a partition that is behind waits for the rest of a fetch to arrive
/// before it returns what it has.
const FILL_WAIT: Duration = Duration::from_millis(20);

/// Records a reader converts between yields to the runtime.
const YIELD_EVERY: usize = 256;

/// How often a reader sends a refused offset commit again.
const RECOMMIT_INTERVAL: Duration = Duration::from_millis(500);

pub struct KafkaOptions {
    /// The mapping's name: the default consumer group derives from it.
    pub mapping: String,
    pub config: KafkaSourceConfig,
    /// Used for partitions the group has no committed offset for. `After` is not a starting
    /// position here: the group's offsets are the checkpoint.
    pub starting_position: StartFrom,
    /// The mapping's metrics, for what the schema registry does.
    pub counters: Arc<dyn SourceCounters>,
}

/// A Kafka topic as an ordered log. See the crate docs for the guarantees.
pub struct KafkaSource {
    shared: Arc<Shared>,
    encoder: Arc<dyn EventEncoder>,
    /// Set with `schema_registry`: decodes keys and values for every reader.
    schema: Option<Arc<SchemaDecoder>>,
    consumer: Mutex<Option<Arc<KConsumer>>>,
    stop: watch::Sender<bool>,
    closed: Mutex<Option<oneshot::Receiver<()>>>,
}

fn kafka_error(context: &str, e: KafkaError) -> SourceError {
    use rdkafka::error::RDKafkaErrorCode as C;
    let kind = match e.rdkafka_error_code() {
        Some(C::SaslAuthenticationFailed | C::TopicAuthorizationFailed | C::GroupAuthorizationFailed | C::Authentication | C::InvalidConfig | C::UnknownTopic | C::UnknownTopicOrPartition) => {
            ErrorKind::Fatal
        }
        _ => ErrorKind::Transient,
    };
    SourceError::new(kind, format!("{context}: {e}")).with_cause(e)
}

impl KafkaSource {
    /// Creates the consumer and joins the group. Fails on configuration librdkafka rejects.
    pub fn new(opts: KafkaOptions) -> Result<Self, SourceError> {
        let cfg = &opts.config;
        let event_source = match &cfg.cluster_arn {
            Some(arn) => EventSource::Msk { cluster_arn: arn.clone() },
            None => EventSource::SelfManaged,
        };
        let encoding = KafkaEncoding::new(event_source, &cfg.bootstrap_string(), &cfg.topic);
        let schema = match &cfg.schema_registry {
            Some(registry) => Some(Arc::new(SchemaDecoder::new(registry, opts.counters.clone()).map_err(SourceError::fatal)?)),
            None => None,
        };
        let shared = Arc::new(Shared::new(opts.mapping.clone(), cfg.topic.clone(), opts.starting_position.clone(), encoding));

        let mut client = ClientConfig::new();
        for (k, v) in cfg.client_properties() {
            client.set(k, v);
        }
        let reset = match opts.starting_position {
            StartFrom::Latest => "latest",
            _ => "earliest",
        };
        client
            .set("group.id", cfg.group_id(&opts.mapping))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", reset);
        let consumer: KConsumer = client
            .create_with_context(GroupContext { shared: shared.clone() })
            .map_err(|e| SourceError::fatal(format!("kafka consumer: {e}")).with_cause(e))?;
        let consumer = Arc::new(consumer);
        let _ = shared.consumer.set(Arc::downgrade(&consumer));
        consumer.subscribe(&[&cfg.topic]).map_err(|e| kafka_error("subscribe", e))?;

        // Group events (joins, rebalances, errors) are served by polling the consumer's own
        // queue. A thread of its own: rebalance callbacks make blocking group calls.
        let (stop, mut stopped) = watch::channel(false);
        let (closed_tx, closed_rx) = oneshot::channel();
        let poller = consumer.clone();
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("kafka-group-{}", opts.mapping))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "kafka: cannot start the group thread's runtime");
                        return;
                    }
                };
                rt.block_on(async {
                    loop {
                        tokio::select! {
                            m = poller.recv() => match m {
                                // Never expected: every partition has its own queue.
                                Ok(m) => tracing::error!(mapping = %thread_shared.mapping, partition = m.partition(), offset = m.offset(), "kafka: message on the group queue; it is redelivered after the next rebalance"),
                                Err(e) => {
                                    thread_shared.errors.fetch_add(1, Ordering::Relaxed);
                                    tracing::warn!(mapping = %thread_shared.mapping, error = %e, "kafka consumer error");
                                }
                            },
                            _ = stopped.changed() => break,
                        }
                    }
                });
                // Queues hold the consumer; with them gone this is the last handle, and dropping
                // it leaves the group (revoking, and committing what is finished) on this thread.
                thread_shared.release_queues();
                drop(poller);
                let _ = closed_tx.send(());
            })
            .map_err(|e| SourceError::fatal(format!("kafka: cannot start the group thread: {e}")))?;

        Ok(KafkaSource {
            encoder: shared.encoding.clone(),
            schema,
            shared,
            consumer: Mutex::new(Some(consumer)),
            stop,
            closed: Mutex::new(Some(closed_rx)),
        })
    }

    /// librdkafka errors seen so far (connections, authentication, rebalances).
    pub fn error_count(&self) -> u64 {
        self.shared.errors.load(Ordering::Relaxed)
    }

    fn consumer(&self) -> Option<Arc<KConsumer>> {
        self.consumer.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn begin_close(&self) {
        self.shared.release_queues();
        self.consumer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let _ = self.stop.send(true);
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        // Without close(): the group thread still leaves the group, unobserved.
        self.begin_close();
    }
}

#[async_trait]
impl OrderedSource for KafkaSource {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    fn encoder(&self) -> Arc<dyn EventEncoder> {
        self.encoder.clone()
    }

    /// The partitions assigned to this consumer now.
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        let state = self.shared.lock();
        Ok(state
            .slots
            .iter()
            .filter(|(_, s)| s.epoch.is_some())
            .map(|(p, _)| ShardInfo { id: self.shared.shard_id(*p), parents: Vec::new() })
            .collect())
    }

    /// Takes the partition's queue. The group's committed offset (or the starting position)
    /// decides where reading starts; `from` is not used (see [`OrderedSource::keeps_positions`]).
    async fn open(&self, shard: &ShardInfo, _from: StartFrom) -> Result<Box<dyn ShardReader>, SourceError> {
        let partition = shard
            .id
            .as_str()
            .strip_prefix(&format!("{}-", self.shared.topic))
            .and_then(|p| p.parse::<i32>().ok())
            .ok_or_else(|| SourceError::fatal(format!("{} is not a partition of {}", shard.id, self.shared.topic)))?;
        let consumer = self.consumer().ok_or_else(|| SourceError::new(ErrorKind::Revoked, "kafka source is closing"))?;
        let topic_c = CString::new(self.shared.topic.clone()).map_err(|_| SourceError::fatal("topic name contains a NUL byte"))?;
        let (epoch, queue, reseek, start) = {
            let mut state = self.shared.lock();
            let Some(slot) = state.slots.get_mut(&partition) else {
                return Err(SourceError::new(ErrorKind::Revoked, format!("{} is not assigned to this consumer", shard.id)));
            };
            let Some(epoch) = slot.epoch else {
                return Err(SourceError::new(ErrorKind::Revoked, format!("{} is not assigned to this consumer", shard.id)));
            };
            let Some(queue) = slot.queue.take() else {
                // The previous reader has not stopped yet; it hands the queue back when it does.
                return Err(SourceError::transient(format!("{}: the previous reader still holds the partition", shard.id)));
            };
            slot.held = true;
            (epoch, queue, std::mem::take(&mut slot.reseek), slot.start)
        };
        let reader = KafkaReader {
            shared: self.shared.clone(),
            consumer,
            partition,
            epoch,
            queue: Some(queue),
            topic_c,
            partition_name: Arc::from(crate::encode::partition_name(&self.shared.topic, partition)),
            next_offset: None,
            recommit_at: std::time::Instant::now(),
            schema: self.schema.clone(),
            pending: None,
        };
        if reseek {
            if let Err(e) = reader.rewind(start).await {
                // Dropping the reader hands the queue back; the next open tries again.
                self.shared.lock().slots.entry(partition).or_default().reseek = true;
                return Err(e);
            }
        }
        Ok(Box::new(reader))
    }

    fn keeps_positions(&self) -> bool {
        true
    }

    fn idle_poll_interval(&self) -> Duration {
        // Reads wait for messages themselves.
        Duration::ZERO
    }

    fn discovery_interval(&self) -> Duration {
        // Listing reads local state; a rebalance should move workers within moments.
        Duration::from_millis(200)
    }

    async fn close(&self) {
        self.begin_close();
        let closed = self.closed.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(rx) = closed {
            if tokio::time::timeout(Duration::from_secs(30), rx).await.is_err() {
                tracing::warn!(mapping = %self.shared.mapping, "kafka consumer did not leave the group within 30 s");
            }
        }
    }
}

/// Reads one partition. Owns the partition's queue until dropped, then hands it back.
pub struct KafkaReader {
    shared: Arc<Shared>,
    consumer: Arc<KConsumer>,
    partition: i32,
    epoch: u64,
    queue: Option<Queue>,
    topic_c: CString,
    /// `topic-N`, shared by every record's item id.
    partition_name: Arc<str>,
    /// The offset after the last record returned.
    next_offset: Option<i64>,
    /// A failed commit is sent again no sooner than this: while the group rebalances the
    /// broker refuses every one.
    recommit_at: std::time::Instant,
    schema: Option<Arc<SchemaDecoder>>,
    /// A message whose schema is not fetched yet: the head of the partition until it is.
    pending: Option<OwnedMessage>,
}

impl KafkaReader {
    fn current(&self) -> bool {
        self.shared.lock().epoch(self.partition) == Some(self.epoch)
    }

    fn revoked(&self) -> SourceError {
        SourceError::new(ErrorKind::Revoked, format!("{} was revoked from this consumer", self.shared.shard_id(self.partition)))
    }

    /// The message as a record, or the schema it names that is not fetched yet.
    fn convert<M: Message>(&self, m: &M) -> Result<Record, SchemaRef> {
        let timestamp = match m.timestamp() {
            Timestamp::CreateTime(t) => Some((t, "CREATE_TIME")),
            Timestamp::LogAppendTime(t) => Some((t, "LOG_APPEND_TIME")),
            Timestamp::NotAvailable => None,
        };
        let headers = m.headers().map(|h| h.iter().map(|h| (h.key, h.value)).collect()).unwrap_or_default();
        let message = RawMessage { topic: m.topic(), partition: m.partition(), offset: m.offset(), timestamp, key: m.key(), value: m.payload(), headers };
        let Some(decoder) = &self.schema else {
            return Ok(self.shared.encoding.record_in(&message, &self.partition_name));
        };
        // A null key or value (a tombstone) has nothing to validate and passes as it is.
        let decode = |attribute, bytes: Option<&[u8]>| bytes.filter(|_| decoder.decodes(attribute)).map(|b| decoder.decode(b));
        let (key, value) = (decode(Attribute::Key, message.key), decode(Attribute::Value, message.value));
        for outcome in [&key, &value].into_iter().flatten() {
            if let Outcome::Missing(schema) = outcome {
                return Err(schema.clone());
            }
        }
        decoder.count(&[&key, &value]);
        let parts = SchemaParts { key: part(&key), value: part(&value) };
        let mut record = self.shared.encoding.record_with(&message, &self.partition_name, &parts);
        // The key's reason first: it is the first thing AWS validates.
        record.invalid = [&key, &value].into_iter().find_map(|o| match o {
            Some(Outcome::Invalid(why, _)) => Some(Arc::new(why.clone())),
            _ => None,
        });
        Ok(record)
    }

    /// Fetches the schema the pending message names. A registry that cannot answer is a
    /// transient error: the engine backs off and reads again, the message still waiting.
    async fn fetch_schema(&self, schema: &SchemaRef) -> Result<(), SourceError> {
        let Some(decoder) = &self.schema else { return Ok(()) };
        decoder.fetch(schema).await.map_err(|e| SourceError::transient(format!("schema registry: {e}; the partition waits")))
    }

    /// Records still in the partition after what was read: high watermark − next offset, from
    /// librdkafka's cached watermarks (no request to the broker).
    fn backlog(&self) -> Option<u64> {
        let next = self.committed_or_read()?;
        self.high_watermark().map(|high| (high - next).max(0) as u64)
    }

    /// librdkafka's cached high watermark of the partition (no request to the broker).
    fn high_watermark(&self) -> Option<i64> {
        let (mut low, mut high) = (0i64, 0i64);
        // SAFETY: the consumer handle is alive for the call, the topic is a valid C string, and
        // librdkafka only writes the two out-parameters.
        #[allow(unsafe_code)]
        let err = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                self.consumer.client().native_ptr(),
                self.topic_c.as_ptr(),
                self.partition,
                &mut low,
                &mut high,
            )
        };
        (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
    }

    /// Whether the partition holds records after `got`'s last that librdkafka has not handed
    /// over yet (they are being fetched).
    fn more_behind(&self, got: &[Record]) -> bool {
        let next = got.last().and_then(|r| offset_of(&r.position)).map(|o| o + 1);
        matches!((next, self.high_watermark()), (Some(next), Some(high)) if high > next)
    }

    /// AWS's OffsetLag counts from the committed offset.
    fn committed_or_read(&self) -> Option<i64> {
        self.shared.lock().slots.get(&self.partition).and_then(|s| s.finished).or(self.next_offset)
    }

    /// Sends the finished offset again when its asynchronous commit failed.
    fn recommit(&mut self) {
        let now = std::time::Instant::now();
        if now < self.recommit_at {
            return;
        }
        let next = {
            let mut state = self.shared.lock();
            let Some(slot) = state.slots.get_mut(&self.partition) else { return };
            if slot.epoch != Some(self.epoch) || !slot.recommit {
                return;
            }
            slot.recommit = false;
            slot.finished
        };
        let Some(next) = next else { return };
        self.recommit_at = now + RECOMMIT_INTERVAL;
        let mut tpl = TopicPartitionList::new();
        let sent = tpl
            .add_partition_offset(&self.shared.topic, self.partition, Offset::Offset(next))
            .and_then(|()| self.consumer.commit(&tpl, CommitMode::Async));
        if let Err(e) = sent {
            tracing::warn!(mapping = %self.shared.mapping, partition = self.partition, error = %e, "cannot send the offset commit again");
            if let Some(slot) = self.shared.lock().slots.get_mut(&self.partition) {
                slot.recommit = true;
            }
        }
    }

    /// Seeks the partition back to where the current assignment started, so messages an
    /// earlier reader took and dropped are fetched again.
    async fn rewind(&self, start: Option<Offset>) -> Result<(), SourceError> {
        let consumer = self.consumer.clone();
        let topic = self.shared.topic.clone();
        let partition = self.partition;
        let shard = self.shared.shard_id(partition);
        // Group calls block; the rebalance callback runs on the group thread, not here.
        let target = tokio::task::spawn_blocking(move || -> Result<Offset, KafkaError> {
            let target = match start {
                Some(o) => o,
                None => {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(&topic, partition);
                    let committed = consumer.committed_offsets(tpl, GROUP_CALL_TIMEOUT)?;
                    match committed.find_partition(&topic, partition).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => Offset::Offset(o),
                        // Nothing committed: the fetch started at the reset position. LATEST
                        // partitions are resolved to offsets when assigned, so this is the
                        // beginning.
                        _ => Offset::Beginning,
                    }
                }
            };
            consumer.seek(&topic, partition, target, GROUP_CALL_TIMEOUT)?;
            Ok(target)
        })
        .await
        .map_err(|e| SourceError::transient(format!("seek {shard}: {e}")))?
        .map_err(|e| kafka_error(&format!("seek {shard}"), e))?;
        tracing::debug!(mapping = %self.shared.mapping, %shard, offset = ?target, "a reader dropped messages after its assignment ended; fetching again from the assignment's start");
        Ok(())
    }
}

/// What the event carries of one decoded (or undecodable) key or value.
fn part(outcome: &Option<Outcome>) -> Part<'_> {
    match outcome {
        Some(Outcome::Decoded(d)) => Part { replaced: Some(d.event_bytes()), json: Some(&d.json), meta: Some(&d.meta) },
        // As read, with the schema id where the header named one.
        Some(Outcome::Invalid(_, meta)) => Part { replaced: None, json: None, meta: meta.as_ref() },
        Some(Outcome::Missing(_)) | None => Part::default(),
    }
}

impl Drop for KafkaReader {
    fn drop(&mut self) {
        // Hand the queue to the partition's next reader.
        let mut state = self.shared.lock();
        let slot = state.slots.entry(self.partition).or_default();
        if let Some(q) = self.queue.take() {
            slot.queue = Some(q);
        }
        // Taken from the queue and never delivered: the next reader fetches it again.
        if self.pending.is_some() {
            slot.reseek = true;
        }
        slot.held = false;
    }
}

#[async_trait]
impl ShardReader for KafkaReader {
    async fn read(&mut self, max_records: usize) -> Result<ReadBatch, SourceError> {
        if !self.current() {
            return Err(self.revoked());
        }
        self.recommit();
        // Borrowed, never taken: if the engine drops this future (shutdown), the queue stays
        // with the reader and is handed on. `recv` is cancellation safe.
        let mut got = Vec::new();
        if let Some(m) = self.pending.take() {
            let converted = match self.convert(&m) {
                Ok(r) => Ok(r),
                Err(schema) => match self.fetch_schema(&schema).await {
                    // Fetched means cached, found or not: a second miss cannot happen.
                    Ok(()) => self.convert(&m).map_err(|s| SourceError::transient(format!("schema {s} is still missing after its fetch"))),
                    Err(e) => Err(e),
                },
            };
            match converted {
                Ok(r) => got.push(r),
                Err(e) => {
                    self.pending = Some(m);
                    return Err(e);
                }
            }
        }
        let Some(queue) = self.queue.as_ref() else { return Err(self.revoked()) };
        let mut error = None;
        // With a record in hand, take only what is already there.
        let first = if got.is_empty() {
            match tokio::time::timeout(READ_WAIT, queue.recv()).await {
                Err(_) => None,
                Ok(Err(e)) => {
                    error = Some(e);
                    None
                }
                Ok(Ok(m)) => Some(m),
            }
        } else {
            None
        };
        let mut next = first.map(Ok);
        let fill_until = tokio::time::Instant::now() + FILL_WAIT;
        loop {
            // Converting thousands of records is a long stretch without an await: let the
            // other partitions' readers and the lanes run in between.
            if got.len() % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
            let m = match next.take() {
                Some(m) => m,
                None if got.len() < max_records && error.is_none() && self.pending.is_none() => match queue.recv().now_or_never() {
                    Some(m) => m,
                    // A partition behind hands over what one fetch brought; the rest is on its
                    // way. Waiting for it a moment fills the read (and so the batches) as a
                    // drain of a backlog should, instead of invoking with a fetch's tail.
                    None if self.more_behind(&got) => {
                        let left = fill_until.saturating_duration_since(tokio::time::Instant::now());
                        match tokio::time::timeout(left, queue.recv()).await {
                            Ok(m) => m,
                            Err(_) => break,
                        }
                    }
                    None => break,
                },
                None => break,
            };
            match m {
                Ok(m) => match self.convert(&m) {
                    Ok(r) => got.push(r),
                    // Everything after it waits for the schema too (order), so the read ends here.
                    Err(_) => self.pending = Some(m.detach()),
                },
                Err(e) => error = Some(e),
            }
        }
        // Taken after the assignment ended: the old fetch's tail or the new one's head. Dropped;
        // the next reader fetches them again.
        if !self.current() {
            if !got.is_empty() || self.pending.is_some() {
                self.pending = None;
                self.shared.lock().slots.entry(self.partition).or_default().reseek = true;
            }
            return Err(self.revoked());
        }
        if let Some(o) = got.last().and_then(|r| offset_of(&r.position)) {
            self.next_offset = Some(o + 1);
        }
        if let Some(decoder) = &self.schema {
            decoder.report();
        }
        let out = got;
        if out.is_empty() {
            if let Some(e) = error {
                return Err(kafka_error(&format!("fetch {}", self.shared.shard_id(self.partition)), e));
            }
        } else if let Some(e) = error {
            tracing::warn!(mapping = %self.shared.mapping, partition = self.partition, error = %e, "kafka fetch error after a partial read");
        }
        Ok(ReadBatch { records: out, end_of_shard: false, behind_ms: None, backlog: self.backlog() })
    }

    /// Commits everything up to and including `position` to the group, unless the partition
    /// has been handed to another consumer meanwhile.
    async fn commit(&mut self, position: &Position) -> Result<(), SourceError> {
        let offset = offset_of(position).ok_or_else(|| SourceError::fatal(format!("{position} is not a Kafka offset")))?;
        let next = offset + 1;
        {
            let mut state = self.shared.lock();
            let Some(slot) = state.slots.get_mut(&self.partition) else { return Ok(()) };
            if slot.epoch != Some(self.epoch) {
                return Ok(());
            }
            slot.finished = Some(next);
        }
        let previous_failure = self.shared.commit_failed.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.shared.topic, self.partition, Offset::Offset(next))
            .map_err(|e| kafka_error("commit", e))?;
        // Asynchronous: the offset only moves forward, and revoke/close commit synchronously.
        self.consumer.commit(&tpl, CommitMode::Async).map_err(|e| kafka_error("commit", e))?;
        match previous_failure {
            Some(e) => Err(SourceError::transient(format!("an earlier offset commit failed: {e}"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The reader hand-over against librdkafka's mock cluster. When an old reader takes messages
    //! after its assignment ended depends on timing the tests cannot steer, so these set the
    //! flag it leaves and check what the next reader does with it.
    use super::*;
    use crate::mock::EmbeddedKafka;
    use std::time::Instant;

    async fn source(kafka: &EmbeddedKafka, topic: &str) -> (KafkaSource, ShardInfo) {
        let config: KafkaSourceConfig = serde_json::from_value(serde_json::json!({
            "bootstrap_servers": [kafka.bootstrap_servers()], "topic": topic, "consumer_group_id": "g",
            "properties": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}
        }))
        .expect("config");
        let src = KafkaSource::new(KafkaOptions { mapping: "m".into(), config, starting_position: StartFrom::TrimHorizon, counters: esmd_api::no_counters() }).expect("source");
        let start = Instant::now();
        loop {
            if let Some(shard) = src.list_shards().await.expect("list").into_iter().next() {
                return (src, shard);
            }
            assert!(start.elapsed() < Duration::from_secs(30), "never assigned");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn read_offsets(reader: &mut dyn ShardReader, n: usize) -> Vec<Record> {
        let start = Instant::now();
        let mut out = Vec::new();
        while out.len() < n {
            assert!(start.elapsed() < Duration::from_secs(30), "read {} of {n}", out.len());
            out.extend(reader.read(100).await.expect("read").records);
        }
        out
    }

    fn offsets(records: &[Record]) -> Vec<i64> {
        records.iter().filter_map(|r| offset_of(&r.position)).collect()
    }

    async fn drained_and_committed_through_9(kafka: &EmbeddedKafka, topic: &str) -> (KafkaSource, ShardInfo) {
        kafka.create_topic(topic, 1).expect("topic");
        kafka.seed(topic, 50, 1, 0, None, |i| i.to_string().into_bytes()).await.expect("seed");
        let (src, shard) = source(kafka, topic).await;
        let mut first = src.open(&shard, StartFrom::TrimHorizon).await.expect("open");
        let records = read_offsets(&mut *first, 50).await;
        assert_eq!(offsets(&records), (0..50).collect::<Vec<_>>());
        first.commit(&records[9].position).await.expect("commit");
        // The asynchronous commit has to reach the group before a reader looks it up.
        let start = Instant::now();
        loop {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(topic, 0);
            let consumer = src.consumer().expect("consumer");
            let c = tokio::task::spawn_blocking(move || consumer.committed_offsets(tpl, Duration::from_secs(5))).await.expect("join").expect("committed");
            if c.find_partition(topic, 0).map(|e| e.offset()) == Some(Offset::Offset(10)) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "commit never arrived");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (src, shard)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_reader_dropped_messages_the_next_reads_again_from_the_committed_offset() {
        let kafka = EmbeddedKafka::start(1).expect("mock cluster");
        let (src, shard) = drained_and_committed_through_9(&kafka, "t").await;
        // What the old reader leaves when it took (and dropped) messages after its epoch ended.
        src.shared.lock().slots.get_mut(&0).expect("slot").reseek = true;
        let mut second = src.open(&shard, StartFrom::TrimHorizon).await.expect("open");
        assert_eq!(offsets(&read_offsets(&mut *second, 40).await), (10..50).collect::<Vec<_>>());
        assert!(!src.shared.lock().slots[&0].reseek, "one seek per hand-over");
        drop(second);
        src.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_seek_goes_to_the_assignments_own_start_when_it_set_one() {
        let kafka = EmbeddedKafka::start(1).expect("mock cluster");
        let (src, shard) = drained_and_committed_through_9(&kafka, "u").await;
        // A failed final commit, say: the assignment started at what this consumer finished,
        // ahead of the group's commit.
        {
            let mut state = src.shared.lock();
            let slot = state.slots.get_mut(&0).expect("slot");
            slot.reseek = true;
            slot.start = Some(Offset::Offset(30));
        }
        let mut second = src.open(&shard, StartFrom::TrimHorizon).await.expect("open");
        assert_eq!(offsets(&read_offsets(&mut *second, 20).await), (30..50).collect::<Vec<_>>());
        drop(second);
        src.close().await;
    }

    async fn committed(src: &KafkaSource, topic: &str) -> Option<Offset> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, 0);
        let consumer = src.consumer().expect("consumer");
        let c = tokio::task::spawn_blocking(move || consumer.committed_offsets(tpl, Duration::from_secs(5))).await.expect("join").expect("committed");
        c.find_partition(topic, 0).map(|e| e.offset())
    }

    /// What the commit callback (a commit refused while the group rebalanced) or `assign` (a
    /// partition handed back at a finished offset the group never got) leaves: the reader sends
    /// the finished offset itself, with nothing new to read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_commit_is_sent_again_by_the_next_read() {
        let kafka = EmbeddedKafka::start(1).expect("mock cluster");
        let (src, shard) = drained_and_committed_through_9(&kafka, "w").await;
        let mut reader = src.open(&shard, StartFrom::TrimHorizon).await.expect("open");
        {
            let mut state = src.shared.lock();
            let slot = state.slots.get_mut(&0).expect("slot");
            slot.finished = Some(50);
            slot.recommit = true;
        }
        let start = Instant::now();
        while committed(&src, "w").await != Some(Offset::Offset(50)) {
            assert!(start.elapsed() < Duration::from_secs(10), "the finished offset was never committed again");
            assert!(reader.read(100).await.expect("read").records.is_empty(), "nothing new to read");
        }
        assert!(!src.shared.lock().slots[&0].recommit, "sent once it went through");
        drop(reader);
        src.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_the_flag_the_next_reader_goes_on_from_the_queue() {
        let kafka = EmbeddedKafka::start(1).expect("mock cluster");
        let (src, shard) = drained_and_committed_through_9(&kafka, "v").await;
        let mut second = src.open(&shard, StartFrom::TrimHorizon).await.expect("open");
        assert!(second.read(100).await.expect("read").records.is_empty(), "nothing is read twice");
        assert!(src.shared.lock().slots[&0].held, "the reader holds the queue");
        drop(second);
        assert!(!src.shared.lock().slots[&0].held, "and hands it back");
        src.close().await;
    }
}
