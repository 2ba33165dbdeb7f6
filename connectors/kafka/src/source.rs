//! [`KafkaSource`]: a topic read by a consumer group, each assigned partition a shard.

use crate::config::KafkaSourceConfig;
use crate::encode::{offset_of, EventSource, KafkaEncoding};
use crate::group::{GroupContext, KConsumer, Shared};
use crate::inbox::{Inbox, Item, Taken};
use crate::schema::wire::SchemaRef;
use crate::schema::SchemaDecoder;
use async_trait::async_trait;
use esmd_api::{ErrorKind, EventEncoder, OrderedSource, Position, ReadBatch, Record, ShardInfo, ShardReader, SourceCounters, SourceError, StartFrom};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
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

/// What the partitions' inboxes may hold together, converted and not yet read, beside what
/// librdkafka's queue holds (`queued.max.messages.kbytes`) and the engine's read-ahead budget.
const INBOX_BYTES: usize = 16 << 20;

/// librdkafka's `fetch.queue.backoff.ms` unless the mapping's `properties` set it.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

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
        Self::build(opts, INBOX_BYTES)
    }

    fn build(opts: KafkaOptions, inbox_bytes: usize) -> Result<Self, SourceError> {
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
        let shared = Arc::new(Shared::new(opts.mapping.clone(), cfg.topic.clone(), opts.starting_position.clone(), encoding, schema, inbox_bytes));

        let mut client = ClientConfig::new();
        // While the inboxes are full the router stops polling and librdkafka's queue fills;
        // librdkafka then waits this long before fetching a partition again (its default is
        // 1 s, a stall of every partition at once). A user's `properties` still win.
        client.set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS);
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
        consumer.subscribe(&[&cfg.topic]).map_err(|e| kafka_error("subscribe", e))?;

        // The router polls the consumer's queue: group events (joins, rebalances, errors) and
        // every partition's messages. A thread of its own: rebalance callbacks make blocking
        // group calls, and converting messages is the connector's main work.
        let (stop, stopped) = watch::channel(false);
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
                rt.block_on(crate::router::run(&poller, &thread_shared, stopped.clone()));
                // Once the readers are gone this is the last handle, and dropping it leaves the
                // group (revoking, and committing what is finished) on this thread.
                drop(poller);
                let _ = closed_tx.send(());
            })
            .map_err(|e| SourceError::fatal(format!("kafka: cannot start the group thread: {e}")))?;

        Ok(KafkaSource {
            encoder: shared.converter.encoding.clone(),
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

    /// Takes the partition's inbox. The group's committed offset (or the starting position)
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
        let (epoch, inbox, partition_name) = {
            let state = self.shared.lock();
            let not_ours = || SourceError::new(ErrorKind::Revoked, format!("{} is not assigned to this consumer", shard.id));
            let slot = state.slots.get(&partition).ok_or_else(not_ours)?;
            let (Some(epoch), Some(inbox)) = (slot.epoch, slot.inbox.clone()) else { return Err(not_ours()) };
            (epoch, inbox, slot.name.clone())
        };
        if !inbox.hold() {
            // The previous reader has not been dropped yet.
            return Err(SourceError::transient(format!("{}: the previous reader still holds the partition", shard.id)));
        }
        Ok(Box::new(KafkaReader {
            shared: self.shared.clone(),
            consumer,
            partition,
            epoch,
            inbox,
            topic_c,
            partition_name,
            next_offset: None,
            recommit_at: std::time::Instant::now(),
            taken: Vec::new(),
        }))
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

/// Reads one partition's inbox, which it holds until dropped.
pub struct KafkaReader {
    shared: Arc<Shared>,
    consumer: Arc<KConsumer>,
    partition: i32,
    epoch: u64,
    inbox: Arc<Inbox>,
    topic_c: CString,
    /// `topic-N`, shared by every record's item id.
    partition_name: Arc<str>,
    /// The offset after the last record returned.
    next_offset: Option<i64>,
    /// A failed commit is sent again no sooner than this: while the group rebalances the
    /// broker refuses every one.
    recommit_at: std::time::Instant,
    /// Reused between takes.
    taken: Vec<Item>,
}

impl KafkaReader {
    fn current(&self) -> bool {
        self.shared.lock().epoch(self.partition) == Some(self.epoch)
    }

    fn revoked(&self) -> SourceError {
        SourceError::new(ErrorKind::Revoked, format!("{} was revoked from this consumer", self.shared.shard_id(self.partition)))
    }

    /// Fetches the schema the pending message names. A registry that cannot answer is a
    /// transient error: the engine backs off and reads again, the message still waiting.
    async fn fetch_schema(&self, schema: &SchemaRef) -> Result<(), SourceError> {
        let Some(decoder) = &self.shared.converter.schema else { return Ok(()) };
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
}

impl Drop for KafkaReader {
    fn drop(&mut self) {
        // The partition's next reader goes on where this one stopped.
        self.inbox.release();
    }
}

#[async_trait]
impl ShardReader for KafkaReader {
    async fn read(&mut self, max_records: usize) -> Result<ReadBatch, SourceError> {
        if !self.current() {
            return Err(self.revoked());
        }
        self.recommit();
        let max_records = max_records.max(1);
        let mut got: Vec<Record> = Vec::new();
        let started = tokio::time::Instant::now();
        let mut fill_until = None;
        let mut fetched: Option<SchemaRef> = None;
        loop {
            match self.inbox.take(max_records - got.len(), &mut self.taken, &self.shared.prefetch) {
                // What it held was dropped: the next owner reads it from the committed offset.
                Taken::Closed => return Err(self.revoked()),
                Taken::Items { resume } => {
                    if resume {
                        self.shared.wake_router.notify_one();
                    }
                }
            }
            let mut items = std::mem::take(&mut self.taken).into_iter();
            let mut waiting: Option<SchemaRef> = None;
            while let Some(item) = items.next() {
                let m = match item {
                    Item::Record(r) => {
                        got.push(r);
                        continue;
                    }
                    Item::Raw(m) => m,
                };
                match self.shared.converter.convert(&m, &self.partition_name) {
                    Ok(r) => got.push(r),
                    Err(schema) => {
                        // It and everything after it wait for the schema (order).
                        let mut back = vec![Item::Raw(m)];
                        back.extend(items.by_ref());
                        self.inbox.put_back(back, &self.shared.prefetch);
                        waiting = Some(schema);
                    }
                }
            }
            if let Some(schema) = waiting {
                if !got.is_empty() {
                    break;
                }
                if fetched.as_ref() == Some(&schema) {
                    return Err(SourceError::transient(format!("schema {schema} is still missing after its fetch")));
                }
                // Fetched means cached, found or not: the next take converts it. A registry
                // that cannot answer is a transient error: the engine backs off and reads again.
                self.fetch_schema(&schema).await?;
                fetched = Some(schema);
                continue;
            }
            if got.len() >= max_records {
                break;
            }
            let until = if got.is_empty() {
                started + READ_WAIT
            } else if self.more_behind(&got) {
                // A partition behind hands over what one fetch brought; the rest is on its way.
                // Waiting for it a moment fills the read (and so the batches) as a drain of a
                // backlog should, instead of invoking with a fetch's tail.
                *fill_until.get_or_insert_with(|| tokio::time::Instant::now() + FILL_WAIT)
            } else {
                break;
            };
            if tokio::time::timeout_at(until, self.inbox.ready()).await.is_err() {
                break;
            }
        }
        // Taken after the assignment ended: dropped; the next owner fetches them again.
        if !self.current() {
            return Err(self.revoked());
        }
        if let Some(o) = got.last().and_then(|r| offset_of(&r.position)) {
            self.next_offset = Some(o + 1);
        }
        if let Some(decoder) = &self.shared.converter.schema {
            decoder.report();
        }
        Ok(ReadBatch { records: got, end_of_shard: false, behind_ms: None, backlog: self.backlog() })
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
    //! Readers, inboxes and the router against librdkafka's mock cluster.
    use super::*;
    use crate::mock::EmbeddedKafka;
    use std::time::Instant;

    async fn source(kafka: &EmbeddedKafka, topic: &str) -> (KafkaSource, ShardInfo) {
        let (src, mut shards) = source_with(kafka, topic, 1, INBOX_BYTES).await;
        (src, shards.remove(0))
    }

    /// A source with `partitions` assigned and an inbox budget of `inbox_bytes`.
    async fn source_with(kafka: &EmbeddedKafka, topic: &str, partitions: usize, inbox_bytes: usize) -> (KafkaSource, Vec<ShardInfo>) {
        let config: KafkaSourceConfig = serde_json::from_value(serde_json::json!({
            "bootstrap_servers": [kafka.bootstrap_servers()], "topic": topic, "consumer_group_id": "g",
            "properties": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}
        }))
        .expect("config");
        let opts = KafkaOptions { mapping: "m".into(), config, starting_position: StartFrom::TrimHorizon, counters: esmd_api::no_counters() };
        let src = KafkaSource::build(opts, inbox_bytes).expect("source");
        let start = Instant::now();
        loop {
            let shards = src.list_shards().await.expect("list");
            if shards.len() == partitions {
                return (src, shards);
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
    async fn the_next_reader_goes_on_from_the_inbox_and_one_reader_holds_it_at_a_time() {
        let kafka = EmbeddedKafka::start(1).expect("mock cluster");
        let (src, shard) = drained_and_committed_through_9(&kafka, "v").await;
        let mut second = src.open(&shard, StartFrom::TrimHorizon).await.expect("open");
        assert!(second.read(100).await.expect("read").records.is_empty(), "nothing is read twice");
        let third = src.open(&shard, StartFrom::TrimHorizon).await.err().expect("a second reader is refused");
        assert_eq!(third.kind, ErrorKind::Transient, "{third}");
        drop(second);
        let mut fourth = src.open(&shard, StartFrom::TrimHorizon).await.expect("the inbox was handed back");
        kafka.seed("v", 5, 1, 0, None, |i| (50 + i).to_string().into_bytes()).await.expect("seed");
        assert_eq!(offsets(&read_offsets(&mut *fourth, 5).await), (50..55).collect::<Vec<_>>());
        drop(fourth);
        src.close().await;
    }

    /// A reader that stops taking while the budget is spent does not hold up the others: its
    /// partition is parked (paused), and once its reader takes everything it is resumed and
    /// read on from where it stopped, nothing skipped or read twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_stops_taking_is_parked_and_the_others_go_on() {
        let kafka = EmbeddedKafka::start(1).expect("mock cluster");
        kafka.create_topic("p", 2).expect("topic");
        // 2 MB a partition: more than one fetch of each (`max.partition.fetch.bytes`, 1 MB), so
        // the other partition's second fetch comes after the stuck one's first.
        kafka.seed("p", 4_000, 1, 1_000, Some(2), |i| i.to_string().into_bytes()).await.expect("seed");
        // Room for about 30 records of 1 KB (each about 1.4 KB as an event fragment).
        let (src, shards) = source_with(&kafka, "p", 2, 40_000).await;
        let mut readers = Vec::new();
        for shard in &shards {
            readers.push(src.open(shard, StartFrom::TrimHorizon).await.expect("open"));
        }
        let (stuck, going) = readers.split_at_mut(1);
        let started = Instant::now();
        let read = read_offsets(&mut *going[0], 2_000).await;
        assert_eq!(offsets(&read), (0..2_000).collect::<Vec<_>>(), "the other partition is read whole");
        assert!(started.elapsed() >= crate::router::PARK_AFTER, "which took parking the stuck one");
        let inbox = src.shared.lock().slots[&0].inbox.clone().expect("inbox");
        assert!(inbox.is_parked());
        let read = read_offsets(&mut *stuck[0], 2_000).await;
        assert_eq!(offsets(&read), (0..2_000).collect::<Vec<_>>(), "the parked partition goes on where it stopped");
        assert!(!inbox.is_parked(), "and was resumed");
        drop(readers);
        src.close().await;
    }
}
