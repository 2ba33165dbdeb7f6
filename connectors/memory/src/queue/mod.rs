//! [`MemoryQueue`]: an in-memory, SQS-like queue.

mod ids;
mod ready;
mod state;

use crate::failpoint::FailNext;
use esmd_api::sqs::SqsEncoding;
use crate::sync::lock;
use async_trait::async_trait;
use bytes::Bytes;
use esmd_api::time::now_ms;
use esmd_api::{ErrorKind, EventEncoder, QueueSource, Record, ShardId, SourceError};
use ids::Ids;
use state::{Outcome, QueueState, Settle};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use state::DEFAULT_GROUP as DEFAULT_FIFO_GROUP;

/// How a [`MemoryQueue`] is set up. Region and account only appear in ARNs.
#[derive(Clone, Debug)]
pub struct MemoryQueueOptions {
    pub name: String,
    /// How long a received message stays hidden before it is delivered again.
    pub visibility_timeout: Duration,
    /// Keep order per message group, one batch per group at a time (SQS FIFO).
    pub fifo: bool,
    pub region: String,
    pub account: String,
}

impl Default for MemoryQueueOptions {
    fn default() -> Self {
        MemoryQueueOptions {
            name: "esmd-queue".into(),
            visibility_timeout: Duration::from_secs(30),
            fifo: false,
            region: "us-east-1".into(),
            account: "000000000000".into(),
        }
    }
}

/// An in-memory queue with SQS' delivery rules: received messages hide for the visibility
/// timeout and come back by themselves unless deleted; each delivery has its own receipt
/// handle; FIFO queues keep message groups in order. Records are SQS event records.
/// Visibility deadlines use tokio's clock (`tokio::time::Instant`); timestamps in records use
/// the wall clock. Cheap to clone: clones share the queue.
#[derive(Clone)]
pub struct MemoryQueue {
    inner: Arc<QueueInner>,
}

struct QueueInner {
    id: ShardId,
    fifo: bool,
    visibility_timeout: Duration,
    encoding: Arc<SqsEncoding>,
    state: Mutex<QueueState>,
    dead_letters: Mutex<Vec<Record>>,
    /// Fires when messages may have become receivable (send, release, delete in FIFO).
    changed: Notify,
    fail_receives: FailNext,
}

impl MemoryQueue {
    pub fn new(options: MemoryQueueOptions) -> Self {
        let encoding = SqsEncoding::new(&options.region, &options.account, &options.name, options.fifo);
        let state = QueueState::new(Ids::new(&options.name), options.fifo, options.visibility_timeout);
        MemoryQueue {
            inner: Arc::new(QueueInner {
                id: ShardId::new(options.name),
                fifo: options.fifo,
                visibility_timeout: options.visibility_timeout,
                encoding: Arc::new(encoding),
                state: Mutex::new(state),
                dead_letters: Mutex::default(),
                changed: Notify::new(),
                fail_receives: FailNext::default(),
            }),
        }
    }

    /// Enqueues a message and returns its message id. `group` is the FIFO message group
    /// ([`DEFAULT_FIFO_GROUP`] when absent); standard queues only pass it on as the records'
    /// partition key.
    pub fn send(&self, body: impl Into<Bytes>, group: Option<&str>) -> Arc<str> {
        let id = lock(&self.inner.state).send(body.into(), group, now_ms());
        self.inner.changed.notify_waiters();
        id
    }

    /// Messages a receive could return now.
    pub fn visible_len(&self) -> usize {
        let mut state = lock(&self.inner.state);
        state.expire(Instant::now());
        state.visible_len()
    }

    /// Messages received and neither deleted, released nor expired.
    pub fn in_flight_len(&self) -> usize {
        let mut state = lock(&self.inner.state);
        state.expire(Instant::now());
        state.in_flight_len()
    }

    /// Messages released with a delay that has not passed yet.
    pub fn delayed_len(&self) -> usize {
        let mut state = lock(&self.inner.state);
        state.expire(Instant::now());
        state.delayed_len()
    }

    /// Messages deleted by `ack`.
    pub fn acked_count(&self) -> u64 {
        lock(&self.inner.state).deleted
    }

    /// Acks, releases, extensions and dead-letterings that named an outdated delivery and so
    /// did nothing.
    pub fn stale_count(&self) -> u64 {
        lock(&self.inner.state).stale
    }

    /// Messages handed to `dead_letter`, as last delivered, oldest first.
    pub fn dead_letters(&self) -> Vec<Record> {
        lock(&self.inner.dead_letters).clone()
    }

    /// The next `n` receives fail with a transient error.
    pub fn fail_next_receives(&self, n: u32) {
        self.inner.fail_receives.set(n);
    }

    pub fn queue_arn(&self) -> &str {
        self.inner.encoding.queue_arn()
    }

    pub fn encoding(&self) -> Arc<SqsEncoding> {
        self.inner.encoding.clone()
    }

    /// Applies `action` to each record's delivery; outdated deliveries are skipped (see
    /// [`Outcome::Stale`]), foreign receipt handles fail the call after the rest is done.
    fn settle(&self, records: &[Record], action: Settle) -> Result<(), SourceError> {
        let now = Instant::now();
        let mut applied = Vec::new();
        let mut foreign = 0;
        {
            let mut state = lock(&self.inner.state);
            for r in records {
                match state.settle(r.position.as_str(), action, now) {
                    Outcome::Applied => applied.push(r),
                    Outcome::Stale => {}
                    Outcome::Foreign => foreign += 1,
                }
            }
        }
        if matches!(action, Settle::DeadLetter) {
            lock(&self.inner.dead_letters).extend(applied.iter().map(|r| (*r).clone()));
        }
        if !applied.is_empty() && !matches!(action, Settle::Extend(_)) {
            self.inner.changed.notify_waiters();
        }
        if foreign > 0 {
            return Err(SourceError::new(
                ErrorKind::Fatal,
                format!("{foreign} receipt handle(s) were not issued by queue {}", self.inner.id),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl QueueSource for MemoryQueue {
    fn kind(&self) -> &'static str {
        "memory-queue"
    }

    fn encoder(&self) -> Arc<dyn EventEncoder> {
        self.inner.encoding.clone()
    }

    fn queue_id(&self) -> ShardId {
        self.inner.id.clone()
    }

    /// Returns as soon as any message is receivable, or empty after `wait`. Cancel-safe:
    /// messages are taken only in the step that returns them.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Record>, SourceError> {
        if self.inner.fail_receives.take() {
            return Err(SourceError::transient(format!("{}: injected receive failure", self.inner.id)));
        }
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now().checked_add(wait);
        loop {
            // Register before looking, so a send between the look and the wait wakes us.
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            let (records, next_expiry) = {
                let mut state = lock(&self.inner.state);
                let records = state.receive(max, now, now_ms(), &self.inner.encoding);
                (records, state.next_expiry())
            };
            if !records.is_empty() {
                return Ok(records);
            }
            if deadline.is_some_and(|d| d <= now) {
                return Ok(records);
            }
            // Wake for a visibility timeout or release delay running out, too.
            let wake = match (deadline, next_expiry) {
                (Some(d), Some(e)) => Some(d.min(e)),
                (d, e) => d.or(e),
            };
            match wake {
                Some(at) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// Deletes the messages. A receipt handle of an earlier delivery deletes nothing.
    async fn ack(&self, records: &[Record]) -> Result<(), SourceError> {
        self.settle(records, Settle::Delete)
    }

    async fn release(&self, records: &[Record], delay: Option<Duration>) -> Result<(), SourceError> {
        self.settle(records, Settle::Release(delay.unwrap_or_default()))
    }

    async fn dead_letter(&self, records: &[Record]) -> Result<(), SourceError> {
        self.settle(records, Settle::DeadLetter)
    }

    /// Keeps the messages hidden for `by` from now (SQS ChangeMessageVisibility).
    async fn extend(&self, records: &[Record], by: Duration) -> Result<(), SourceError> {
        self.settle(records, Settle::Extend(by))
    }

    fn visibility_timeout(&self) -> Option<Duration> {
        Some(self.inner.visibility_timeout)
    }

    fn ordered_groups(&self) -> bool {
        self.inner.fifo
    }
}

#[cfg(test)]
mod tests;
