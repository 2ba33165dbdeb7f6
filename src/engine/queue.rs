//! A queue mapping: receive → filter → batch → invoke → ack / return to the queue.
//!
//! Batches run concurrently up to `maximum_concurrency`. Success acks (deletes) the messages;
//! failure returns them to the queue so the broker's redrive or dead-letter policy applies;
//! a partial batch response acks only the successes. Beyond AWS, a retry limit can send
//! exhausted messages to the on-failure destination or the queue's dead-letter exchange.

use super::call::{backoff, call_until_ran, pause};
use super::context::MappingCtx;
use super::give_up::give_up;
use super::settings::{QueueExhausted, QueueSettings};
use crate::destination::record::{Condition, ResponseContext};
use crate::invoke::response::{batch_verdict, BatchVerdict};
use crate::status::{ShardHandle, ShardState};
use bytes::Bytes;
use esmd_api::{QueueSource, Record, ShardId};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How often the queue's depth is asked for: cheap, and fresh enough for a dashboard.
const BACKLOG_INTERVAL: Duration = Duration::from_secs(10);

/// Feeds the backlog gauge from sources that know their depth, until shutdown.
async fn report_backlog(ctx: Arc<MappingCtx>, source: Arc<dyn QueueSource>) {
    loop {
        if let Some(n) = source.backlog().await {
            ctx.metrics.queue_backlog(n);
        }
        tokio::select! {
            _ = tokio::time::sleep(BACKLOG_INTERVAL) => {}
            _ = ctx.shutdown.cancelled() => return,
        }
    }
}

pub struct QueueWorker {
    pub ctx: Arc<MappingCtx>,
    pub settings: Arc<QueueSettings>,
    pub source: Arc<dyn QueueSource>,
}

impl QueueWorker {
    pub async fn run(self) {
        let ctx = &self.ctx;
        let queue = self.source.queue_id();
        let status = ctx.status.shard(queue.as_str());
        status.update(|s| s.state = ShardState::Running);
        let slots = Arc::new(Semaphore::new(self.settings.maximum_concurrency.max(1)));
        let mut running = JoinSet::new();
        let mut carry: Vec<Record> = Vec::new();
        let mut delays = backoff(&self.settings.backoff);
        let envelope = ctx.encoder.envelope_size();
        let depth = tokio::spawn(report_backlog(ctx.clone(), self.source.clone()));
        loop {
            while running.try_join_next().is_some() {}
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = ctx.shutdown.cancelled() => break,
            };
            let batch = match self.gather(&mut carry, envelope, &status).await {
                Ok(Some(b)) => {
                    delays = backoff(&self.settings.backoff);
                    b
                }
                Ok(None) => break,
                Err(e) => {
                    ctx.metrics.polling_error();
                    status.update(|s| s.last_error = Some(e.to_string()));
                    tracing::warn!(mapping = %ctx.name, queue = %queue, error = %e, "receive failed");
                    if !pause(ctx, delays.next().unwrap_or(self.settings.backoff.max), None).await {
                        break;
                    }
                    continue;
                }
            };
            let (keep, dropped): (Vec<Record>, Vec<Record>) = batch.into_iter().partition(|r| ctx.keep(r));
            if !dropped.is_empty() {
                ctx.metrics.filtered_out(dropped.len() as u64);
                self.ack(&dropped).await;
            }
            if keep.is_empty() {
                continue;
            }
            let (ctx2, settings, source, queue2, status2) =
                (ctx.clone(), self.settings.clone(), self.source.clone(), queue.clone(), status.clone());
            running.spawn(async move {
                status2.update(|s| s.in_flight_batches += 1);
                ctx2.status.add_in_flight(1);
                let worker = QueueWorker { ctx: ctx2.clone(), settings, source };
                worker.process(&queue2, keep).await;
                ctx2.status.add_in_flight(-1);
                status2.update(|s| s.in_flight_batches = s.in_flight_batches.saturating_sub(1));
                drop(permit);
            });
        }
        // Messages received but never started go straight back.
        if !carry.is_empty() {
            let _ = self.source.release(&carry, None).await;
        }
        while running.join_next().await.is_some() {}
        depth.abort();
        status.update(|s| s.state = ShardState::Stopped);
    }

    /// Receives one batch: up to `batch_size` messages and the payload limit, waiting at most
    /// the batching window after the first. `Ok(None)` on shutdown.
    async fn gather(&self, carry: &mut Vec<Record>, envelope: usize, status: &ShardHandle) -> Result<Option<Vec<Record>>, esmd_api::SourceError> {
        let limits = &self.settings.batch;
        let mut batch: Vec<Record> = Vec::new();
        let mut bytes = envelope;
        let mut deadline: Option<Instant> = None;
        loop {
            // Take what the last receive left over first.
            let mut take = 0;
            for r in carry.iter() {
                let full = batch.len() + take >= limits.batch_size;
                let too_big = batch.len() + take > 0 && bytes + r.event_size() > limits.max_payload_bytes;
                if full || too_big {
                    break;
                }
                bytes += r.event_size();
                take += 1;
            }
            batch.extend(carry.drain(..take));
            if !carry.is_empty() {
                return Ok(Some(batch));
            }
            if batch.len() >= limits.batch_size {
                return Ok(Some(batch));
            }
            let wait = match deadline {
                None if batch.is_empty() => self.settings.receive_wait,
                None => {
                    if limits.window.is_zero() {
                        return Ok(Some(batch));
                    }
                    let d = Instant::now() + limits.window;
                    deadline = Some(d);
                    limits.window
                }
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(Some(batch));
                    }
                    left
                }
            };
            let max = (limits.batch_size - batch.len()).min(10_000);
            let received = tokio::select! {
                r = self.source.receive(max, wait) => r?,
                _ = self.ctx.shutdown.cancelled() => {
                    carry.extend(batch);
                    return Ok(None);
                }
            };
            if !received.is_empty() {
                self.ctx.metrics.polled(received.len() as u64);
            }
            // A whole receive wait without a message while holding none: the queue is drained
            // as far as this consumer can tell.
            let caught_up = received.is_empty() && batch.is_empty() && carry.is_empty();
            status.update(|s| s.caught_up = caught_up);
            carry.extend(received);
            if carry.is_empty() && !batch.is_empty() && limits.window.is_zero() {
                return Ok(Some(batch));
            }
        }
    }

    /// Invokes one batch and settles every message in it.
    async fn process(&self, queue: &ShardId, records: Vec<Record>) {
        let ctx = &self.ctx;
        ctx.metrics.batch();
        let extender = self.source.visibility_timeout().map(|vt| {
            let (source, records) = (self.source.clone(), records.clone());
            // Keep the messages hidden while the function runs long, so a slow function does
            // not get them delivered twice.
            tokio::spawn(async move {
                let every = (vt / 2).max(Duration::from_secs(1));
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = source.extend(&records, vt).await {
                        tracing::warn!(error = %e, "visibility extension failed");
                    }
                }
            })
        });
        let payload = Bytes::from(ctx.encoder.encode_event(queue, &records, None));
        if payload.len() > ctx.invoker.max_payload_bytes() {
            // Only a single message larger than the limit gets here (batches close below it):
            // it can never be invoked, so it takes the failure path instead of looping.
            if let Some(x) = extender {
                x.abort();
            }
            tracing::warn!(mapping = %ctx.name, bytes = payload.len(), "message exceeds the invoke payload limit");
            let context = ResponseContext { status_code: 413, executed_version: "$LATEST".into(), function_error: None };
            ctx.metrics.failed_invoke_events(records.len() as u64);
            self.settle_failed(queue, records, &context).await;
            return;
        }
        let response = call_until_ran(ctx, payload, records.len() as u64, &self.settings.backoff, None).await;
        if let Some(x) = extender {
            x.abort();
        }
        let Ok(response) = response else {
            // Shutdown while the function was unavailable: hand the messages back promptly.
            let _ = self.source.release(&records, None).await;
            return;
        };
        let context = ResponseContext {
            status_code: response.status_code,
            executed_version: response.executed_version.clone(),
            function_error: response.function_error.clone(),
        };
        let failed: Vec<usize> = if response.function_error.is_some() {
            ctx.metrics.function_error();
            (0..records.len()).collect()
        } else if self.settings.report_batch_item_failures {
            match batch_verdict(&response.body, &records) {
                BatchVerdict::Success => vec![],
                BatchVerdict::Partial(idx) => self.with_later_group_members(&records, idx),
                BatchVerdict::Malformed(why) => {
                    tracing::warn!(mapping = %ctx.name, reason = %why, "partial batch response rejected: the whole batch failed");
                    (0..records.len()).collect()
                }
            }
        } else {
            vec![]
        };
        let failed_set: HashSet<usize> = failed.iter().copied().collect();
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        for (i, r) in records.into_iter().enumerate() {
            if failed_set.contains(&i) { bad.push(r) } else { ok.push(r) }
        }
        if !bad.is_empty() {
            ctx.metrics.failed_invoke_events(bad.len() as u64);
        }
        self.ack(&ok).await;
        self.settle_failed(queue, bad, &context).await;
    }

    /// In ordered queues a failed message holds back the rest of its group: later messages of
    /// the same group in this batch are returned too, so the group's order survives the retry.
    fn with_later_group_members(&self, records: &[Record], failed: Vec<usize>) -> Vec<usize> {
        if !self.source.ordered_groups() {
            return failed;
        }
        let mut blocked = HashSet::new();
        let failed: HashSet<usize> = failed.into_iter().collect();
        let mut out = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if failed.contains(&i) || blocked.contains(&r.partition_key) {
                blocked.insert(r.partition_key.clone());
                out.push(i);
            }
        }
        out
    }

    async fn settle_failed(&self, queue: &ShardId, failed: Vec<Record>, context: &ResponseContext) {
        if failed.is_empty() {
            return;
        }
        let limit = self.settings.maximum_retry_attempts;
        let (exhausted, retry): (Vec<Record>, Vec<Record>) =
            failed.into_iter().partition(|r| limit.is_some_and(|max| r.receive_count >= max));
        if !retry.is_empty() {
            if let Err(e) = self.source.release(&retry, self.settings.release_delay).await {
                // The broker returns unacknowledged messages by itself (visibility timeout,
                // channel close): nothing is lost, it only comes back later.
                tracing::warn!(mapping = %self.ctx.name, error = %e, "release failed; the broker will redeliver");
            }
        }
        if exhausted.is_empty() {
            return;
        }
        match self.settings.on_exhausted {
            QueueExhausted::Release => {
                let _ = self.source.release(&exhausted, self.settings.release_delay).await;
            }
            QueueExhausted::DeadLetter => {
                self.ctx.metrics.dropped(exhausted.len() as u64);
                match self.source.dead_letter(&exhausted).await {
                    Ok(()) => self.ctx.metrics.dead_lettered(exhausted.len() as u64),
                    Err(e) => tracing::warn!(mapping = %self.ctx.name, error = %e, "dead-lettering failed; the broker will redeliver"),
                }
            }
            QueueExhausted::Destination => {
                // One failure record per message: each has its own delivery count.
                for r in &exhausted {
                    let one = std::slice::from_ref(r);
                    let invocations = r.receive_count.saturating_add(1);
                    if give_up(&self.ctx, queue, one, Condition::RetryAttemptsExhausted, invocations, Some(context), &self.settings.backoff)
                        .await
                        .is_err()
                    {
                        let _ = self.source.release(one, None).await;
                        continue;
                    }
                    self.ack(one).await;
                }
            }
        }
    }

    /// Acks with a few retries; a message whose ack is lost is redelivered (at-least-once).
    async fn ack(&self, records: &[Record]) {
        if records.is_empty() {
            return;
        }
        let mut delays = backoff(&self.settings.backoff);
        for attempt in 0..5 {
            match self.source.ack(records).await {
                Ok(()) => {
                    self.ctx.metrics.deleted(records.len() as u64);
                    return;
                }
                Err(e) => {
                    tracing::warn!(mapping = %self.ctx.name, attempt, error = %e, "ack failed");
                    if !e.is_retryable() {
                        return;
                    }
                    tokio::time::sleep(delays.next().unwrap_or(self.settings.backoff.max)).await;
                }
            }
        }
    }
}
