//! The consumer group: which partitions this consumer owns, and the rebalance protocol.
//!
//! All partitions are read through the consumer's one queue, as librdkafka means a group
//! consumer to be read: its prefetch limits (`queued.max.messages.kbytes`) then bound the whole
//! consumer, not each partition, and a fetch response is freed in the order it arrived. The
//! router ([`crate::router`]) takes messages from it and puts each into its partition's
//! [`Inbox`]; the rebalance callbacks run on the router's thread, between two messages.
//!
//! Every assignment of a partition gets a new *epoch* and a new inbox; the revoke closes the
//! old one. librdkafka drops what it fetched under an assignment once it ends, so the new
//! inbox holds only the new assignment's records, from the committed offset on. A reader
//! opened under an older epoch stops at its next read, and its commits are ignored: after a
//! rebalance only the current owner moves the group's offset. On revoke the finished offsets
//! are committed synchronously before the partition is handed over.

use crate::convert::Converter;
use crate::encode::{partition_name, KafkaEncoding};
use crate::inbox::{Inbox, Prefetch};
use crate::schema::SchemaDecoder;
use esmd_api::{ShardId, StartFrom};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

pub(crate) type KConsumer = StreamConsumer<GroupContext>;

/// How long group calls made inside a rebalance (committed offsets, offsets for times, the
/// final commit) may take.
pub(crate) const GROUP_CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Slot {
    /// `Some` while the partition is assigned to this consumer.
    pub epoch: Option<u64>,
    /// The current assignment's records; closed by the revoke.
    pub inbox: Option<Arc<Inbox>>,
    /// `topic-N`, shared by every record's item id.
    pub name: Arc<str>,
    /// The next offset to commit: everything below it is finished.
    pub finished: Option<i64>,
    /// An asynchronous commit of this partition failed (brokers refuse commits while the group
    /// rebalances). The reader sends `finished` again: after the last batch of a backlog no
    /// further commit would carry it.
    pub recommit: bool,
    /// The finished offset of a revoke whose commit failed, until the next assignment: nobody
    /// else can have read the partition in between, so if it comes back to us it starts here.
    pub handover: Option<i64>,
}

impl Slot {
    fn new(name: String) -> Self {
        Slot { epoch: None, inbox: None, name: Arc::from(name), finished: None, recommit: false, handover: None }
    }
}

#[derive(Default)]
pub(crate) struct GroupState {
    next_epoch: u64,
    pub slots: BTreeMap<i32, Slot>,
}

impl GroupState {
    pub fn epoch(&self, partition: i32) -> Option<u64> {
        self.slots.get(&partition).and_then(|s| s.epoch)
    }
}

/// What the consumer's context, the source and the readers share.
pub(crate) struct Shared {
    pub mapping: String,
    pub topic: String,
    pub start: StartFrom,
    state: Mutex<GroupState>,
    /// librdkafka errors seen by the group (connection, authentication, fetch), for metrics.
    pub errors: AtomicU64,
    pub converter: Converter,
    /// The bytes all inboxes may hold.
    pub prefetch: Prefetch,
    /// A reader emptied a parked inbox: the router resumes its partition.
    pub wake_router: Notify,
    /// Set by the commit callback when an asynchronous commit failed; the next commit reports it.
    pub commit_failed: Mutex<Option<String>>,
}

impl Shared {
    pub fn new(mapping: String, topic: String, start: StartFrom, encoding: KafkaEncoding, schema: Option<Arc<SchemaDecoder>>, prefetch_bytes: usize) -> Self {
        Shared {
            mapping,
            topic,
            start,
            state: Mutex::new(GroupState::default()),
            errors: AtomicU64::new(0),
            converter: Converter { encoding: Arc::new(encoding), schema },
            prefetch: Prefetch::new(prefetch_bytes),
            wake_router: Notify::new(),
            commit_failed: Mutex::new(None),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn shard_id(&self, partition: i32) -> ShardId {
        ShardId::new(partition_name(&self.topic, partition))
    }

    fn assign(&self, base: &BaseConsumer<GroupContext>, tpl: &mut TopicPartitionList) -> KafkaResult<()> {
        let ours: Vec<i32> = tpl.elements_for_topic(&self.topic).iter().map(|e| e.partition()).collect();
        match self.start {
            StartFrom::AtTimestamp(ts) => self.seed_timestamps(base, tpl, ts)?,
            StartFrom::Latest => {
                // The end as it is when assigned, whichever fetch gets there first.
                if let Err(e) = self.seed_latest(base, tpl) {
                    tracing::warn!(mapping = %self.mapping, error = %e, "cannot resolve LATEST to offsets; librdkafka resolves it");
                }
            }
            _ => {}
        }
        {
            let mut state = self.lock();
            let unset: Vec<i32> = tpl
                .elements_for_topic(&self.topic)
                .iter()
                .filter(|e| matches!(e.offset(), Offset::Invalid | Offset::Stored))
                .map(|e| e.partition())
                .collect();
            let mut handed_back = Vec::new();
            for p in unset {
                if let Some(next) = state.slots.get(&p).and_then(|s| s.handover) {
                    tpl.set_partition_offset(&self.topic, p, Offset::Offset(next))?;
                    handed_back.push((p, next));
                }
            }
            for slot in state.slots.values_mut() {
                slot.handover = None;
            }
            for p in &ours {
                state.next_epoch += 1;
                let epoch = state.next_epoch;
                let slot = state.slots.entry(*p).or_insert_with(|| Slot::new(partition_name(&self.topic, *p)));
                slot.epoch = Some(epoch);
                if let Some(old) = slot.inbox.replace(Arc::new(Inbox::new())) {
                    // Never expected: the revoke closed it.
                    old.close(&self.prefetch);
                }
                slot.finished = None;
                slot.recommit = false;
                // The group's offset is still behind what we finished (the handover commit was
                // refused): the reader commits it, or a partition with nothing left to read
                // would never be committed.
                if let Some((_, next)) = handed_back.iter().find(|(h, _)| h == p) {
                    slot.finished = Some(*next);
                    slot.recommit = true;
                }
            }
        }
        match base.rebalance_protocol() {
            RebalanceProtocol::Cooperative => base.incremental_assign(tpl)?,
            _ => base.assign(tpl)?,
        }
        tracing::info!(mapping = %self.mapping, topic = %self.topic, partitions = ?ours, "partitions assigned");
        Ok(())
    }

    /// AT_TIMESTAMP: partitions the group has no offset for start at the first record at or
    /// after the timestamp. Committed offsets win.
    fn seed_timestamps(&self, base: &BaseConsumer<GroupContext>, tpl: &mut TopicPartitionList, ts: i64) -> KafkaResult<()> {
        let committed = base.committed_offsets(tpl.clone(), GROUP_CALL_TIMEOUT)?;
        let mut by_time = TopicPartitionList::new();
        for e in committed.elements() {
            if e.offset() == Offset::Invalid {
                by_time.add_partition_offset(e.topic(), e.partition(), Offset::Offset(ts))?;
            }
        }
        if by_time.count() == 0 {
            return Ok(());
        }
        let found = base.offsets_for_times(by_time, GROUP_CALL_TIMEOUT)?;
        for e in found.elements() {
            // No record at or after the time: start at the end.
            let offset = match e.offset() {
                Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                _ => Offset::End,
            };
            tpl.set_partition_offset(e.topic(), e.partition(), offset)?;
        }
        Ok(())
    }

    /// LATEST: partitions the group has no offset for start at their high watermark now.
    fn seed_latest(&self, base: &BaseConsumer<GroupContext>, tpl: &mut TopicPartitionList) -> KafkaResult<()> {
        let committed = base.committed_offsets(tpl.clone(), GROUP_CALL_TIMEOUT)?;
        for e in committed.elements_for_topic(&self.topic) {
            if e.offset() == Offset::Invalid && matches!(tpl.find_partition(&self.topic, e.partition()).map(|t| t.offset()), Some(Offset::Invalid | Offset::Stored)) {
                let (_, high) = base.fetch_watermarks(&self.topic, e.partition(), GROUP_CALL_TIMEOUT)?;
                tpl.set_partition_offset(&self.topic, e.partition(), Offset::Offset(high))?;
            }
        }
        Ok(())
    }

    fn revoke(&self, base: &BaseConsumer<GroupContext>, tpl: &TopicPartitionList) {
        let mut finished = TopicPartitionList::new();
        let mut paused = TopicPartitionList::new();
        let mut revoked = Vec::new();
        {
            let mut state = self.lock();
            for e in tpl.elements_for_topic(&self.topic) {
                if let Some(slot) = state.slots.get_mut(&e.partition()) {
                    slot.epoch = None;
                    // What is left in it was never delivered: the next owner fetches it again.
                    if slot.inbox.take().is_some_and(|inbox| inbox.close(&self.prefetch)) {
                        paused.add_partition(&self.topic, e.partition());
                    }
                    if let Some(next) = slot.finished.take() {
                        let _ = finished.add_partition_offset(&self.topic, e.partition(), Offset::Offset(next));
                    }
                }
                revoked.push(e.partition());
            }
        }
        // Hand over only what is finished: the watermark each reader committed.
        if finished.count() > 0 {
            if let Err(e) = base.commit(&finished, CommitMode::Sync) {
                // Brokers may refuse commits while the group rebalances. If the partitions come
                // straight back to us, `assign` starts them at what we know is finished;
                // another owner replays from the last commit (duplicates, never gaps).
                tracing::warn!(mapping = %self.mapping, error = %e, "final commit before handing partitions over failed");
                let mut state = self.lock();
                for e in finished.elements() {
                    if let (Some(slot), Offset::Offset(next)) = (state.slots.get_mut(&e.partition()), e.offset()) {
                        slot.handover = Some(next);
                    }
                }
            }
        }
        // A pause outlives the assignment in librdkafka: a parked partition that comes back
        // would never be fetched.
        if paused.count() > 0 {
            if let Err(e) = base.resume(&paused) {
                tracing::warn!(mapping = %self.mapping, error = %e, "cannot resume parked partitions before handing them over");
            }
        }
        let result = match base.rebalance_protocol() {
            RebalanceProtocol::Cooperative => base.incremental_unassign(tpl),
            _ => base.unassign(),
        };
        if let Err(e) = result {
            tracing::warn!(mapping = %self.mapping, error = %e, "unassign failed");
        }
        tracing::info!(mapping = %self.mapping, topic = %self.topic, partitions = ?revoked, "partitions revoked");
    }
}

/// The consumer's context: logs, errors and the rebalance protocol.
pub(crate) struct GroupContext {
    pub shared: Arc<Shared>,
}

impl ClientContext for GroupContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel::*;
        match level {
            Emerg | Alert | Critical | Error => tracing::error!(mapping = %self.shared.mapping, facility = fac, "librdkafka: {log_message}"),
            Warning => tracing::warn!(mapping = %self.shared.mapping, facility = fac, "librdkafka: {log_message}"),
            Notice | Info => tracing::info!(mapping = %self.shared.mapping, facility = fac, "librdkafka: {log_message}"),
            Debug => tracing::debug!(mapping = %self.shared.mapping, facility = fac, "librdkafka: {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.shared.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(mapping = %self.shared.mapping, error = %error, "kafka: {reason}");
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(&self, base: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(e) = self.shared.assign(base, tpl) {
                    self.shared.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(mapping = %self.shared.mapping, error = %e, "assigning partitions failed; leaving them to the group");
                    self.shared.revoke(base, tpl);
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.shared.revoke(base, tpl),
            other => {
                self.shared.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(mapping = %self.shared.mapping, error = ?other, "rebalance failed; dropping the assignment");
                self.shared.revoke(base, tpl);
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let failed: Vec<(i32, i64)> = offsets
            .elements_for_topic(&self.shared.topic)
            .iter()
            .filter(|e| result.is_err() || e.error().is_err())
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect();
        if let Err(e) = &result {
            // "No offset" means there was nothing new to commit.
            if matches!(e, KafkaError::ConsumerCommit(rdkafka::error::RDKafkaErrorCode::NoOffset)) {
                return;
            }
        }
        if failed.is_empty() {
            return;
        }
        let reason = match &result {
            Err(e) => e.to_string(),
            Ok(()) => offsets.elements().iter().find_map(|e| e.error().err()).map(|e| e.to_string()).unwrap_or_default(),
        };
        tracing::warn!(mapping = %self.shared.mapping, error = %reason, offsets = ?failed, "offset commit failed; the partition's reader commits again");
        {
            let mut state = self.shared.lock();
            for (p, offset) in &failed {
                if let Some(slot) = state.slots.get_mut(p) {
                    // A later commit may already have gone through; sending it again is harmless.
                    if slot.epoch.is_some() && slot.finished.is_some_and(|f| f >= *offset) {
                        slot.recommit = true;
                    }
                }
            }
        }
        *self.shared.commit_failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }
}
