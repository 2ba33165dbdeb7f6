//! One shard of an ordered log: poll → filter → lanes → batch → invoke → checkpoint.
//!
//! The poll loop owns the reader and the checkpoint; each lane owns its batcher and runs one
//! batch at a time. Lanes report finished records to the shard's [`Watermark`]; the poll loop
//! writes the watermark to the store (and commits it to the source) after batches finish,
//! never before.

use super::batcher::{gather, Batcher, EventSized};
use super::call::{backoff, pause};
use super::context::MappingCtx;
use super::give_up::give_up;
use super::lanes::lane_of;
use super::run_batch::run_batch;
use super::settings::StreamSettings;
use super::watermark::Watermark;
use crate::checkpoint::{Checkpoint, CheckpointStore};
use crate::destination::record::Condition;
use crate::status::{ShardHandle, ShardState};
use esmd_api::{ErrorKind, OrderedSource, Position, Record, ShardId, ShardInfo, ShardReader, StartFrom};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;

/// How a shard worker ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ShardExit {
    /// Read to its end, every record finished, marked finished in the store.
    Finished,
    /// Shutdown (or the supervisor stopped it); the checkpoint holds what was finished.
    Stopped,
}

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("shard {shard}: {message}")]
    Fatal { shard: ShardId, message: String },
}

struct Tracked {
    seq: u64,
    record: Record,
}

impl EventSized for Tracked {
    fn event_size(&self) -> usize {
        self.record.event_size()
    }
}

/// Shared between the poll loop and the lanes.
struct Progress {
    watermark: Mutex<Watermark>,
    /// Wakes the poll loop when the watermark moves.
    moved: Notify,
}

impl Progress {
    fn lock(&self) -> MutexGuard<'_, Watermark> {
        self.watermark.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn finish(&self, seqs: impl IntoIterator<Item = u64>) {
        let mut moved = false;
        {
            let mut w = self.lock();
            for s in seqs {
                moved |= w.finish(s);
            }
        }
        if moved {
            self.moved.notify_one();
        }
    }
}

pub struct ShardWorker {
    pub ctx: Arc<MappingCtx>,
    pub settings: Arc<StreamSettings>,
    pub source: Arc<dyn OrderedSource>,
    pub store: Arc<dyn CheckpointStore>,
    pub shard: ShardInfo,
}

impl ShardWorker {
    pub async fn run(self) -> Result<ShardExit, ShardError> {
        let shard_id = self.shard.id.clone();
        let status = self.ctx.status.shard(shard_id.as_str());
        let result = self.run_inner(&status).await;
        match &result {
            Ok(ShardExit::Finished) => status.update(|s| s.state = ShardState::Finished),
            Ok(ShardExit::Stopped) => status.update(|s| s.state = ShardState::Stopped),
            Err(e) => {
                let msg = e.to_string();
                status.update(|s| {
                    s.state = ShardState::Stopped;
                    s.last_error = Some(msg)
                })
            }
        }
        result
    }

    async fn run_inner(&self, status: &ShardHandle) -> Result<ShardExit, ShardError> {
        let ctx = &self.ctx;
        let shard = &self.shard.id;
        let saved = self.load_checkpoint().await?;
        let Some(saved) = saved else { return Ok(ShardExit::Stopped) };
        if saved.shard_finished {
            return Ok(ShardExit::Finished);
        }
        let start = match &saved.position {
            Some(p) => StartFrom::After(p.clone()),
            None => self.first_start().await,
        };
        let Some(mut reader) = self.open(start.clone()).await? else { return Ok(ShardExit::Stopped) };
        status.update(|s| {
            s.state = ShardState::Running;
            s.checkpoint = saved.position.as_ref().map(|p| p.to_string());
        });

        let progress = Arc::new(Progress { watermark: Mutex::new(Watermark::new(saved.position.clone())), moved: Notify::new() });
        let n = self.settings.parallelization_factor.max(1);
        let capacity = self.settings.batch.batch_size.clamp(16, 10_000) * 2;
        let mut lanes = JoinSet::new();
        let mut senders = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = mpsc::channel::<Tracked>(capacity);
            senders.push(tx);
            lanes.spawn(lane(ctx.clone(), self.settings.clone(), shard.clone(), rx, progress.clone(), status.clone()));
        }

        let mut saved_position = saved.position.clone();
        let mut last_read: Option<Position> = saved.position.clone();
        let mut end_of_shard = false;
        // Enough for every lane to fill a batch from one read: fewer reads, and fewer
        // checkpoint writes between them.
        let read_max = (self.settings.batch.batch_size * n).clamp(100, 10_000);
        let mut delays = backoff(&self.settings.backoff);
        'poll: while !ctx.shutdown.is_cancelled() {
            let read = tokio::select! {
                r = reader.read(read_max) => r,
                _ = ctx.shutdown.cancelled() => break 'poll,
            };
            let batch = match read {
                Ok(b) => {
                    delays = backoff(&self.settings.backoff);
                    b
                }
                Err(e) if e.kind == ErrorKind::Revoked => {
                    tracing::info!(mapping = %ctx.name, shard = %shard, "shard handed to another consumer; stopping");
                    // Only the batches in flight finish; records waiting in lanes are the new
                    // owner's (it reads them again from the committed offset).
                    ctx.shutdown.cancel();
                    break 'poll;
                }
                Err(e) => {
                    ctx.metrics.polling_error();
                    status.update(|s| s.last_error = Some(e.to_string()));
                    tracing::warn!(mapping = %ctx.name, shard = %shard, error = %e, "read failed");
                    match e.kind {
                        ErrorKind::Fatal | ErrorKind::NotFound => {
                            return Err(ShardError::Fatal { shard: shard.clone(), message: e.to_string() })
                        }
                        // Handled above.
                        ErrorKind::Revoked => break 'poll,
                        // Resume right after what was already read, never from the starting
                        // position: that would replay or skip records.
                        ErrorKind::IteratorExpired => {
                            let from = last_read.clone().map_or_else(|| start.clone(), StartFrom::After);
                            match self.open(from).await? {
                                Some(r) => reader = r,
                                None => break 'poll,
                            }
                        }
                        ErrorKind::Trimmed => {
                            ctx.metrics.trimmed_read();
                            tracing::error!(mapping = %ctx.name, shard = %shard, "records were trimmed before esmd read them; continuing at TRIM_HORIZON");
                            match self.open(StartFrom::TrimHorizon).await? {
                                Some(r) => reader = r,
                                None => break 'poll,
                            }
                        }
                        ErrorKind::Transient | ErrorKind::Throttled => {
                            let wait = delays.next().unwrap_or(self.settings.backoff.max);
                            if !pause(ctx, wait, None).await {
                                break 'poll;
                            }
                        }
                    }
                    continue;
                }
            };
            let count = batch.records.len();
            if count > 0 {
                ctx.metrics.polled(count as u64);
            }
            if let Some(backlog) = batch.backlog {
                ctx.metrics.offset_lag(shard.as_str(), backlog);
            }
            let mut filtered = Vec::new();
            for record in batch.records {
                let seq = progress.lock().register(record.position.clone());
                last_read = Some(record.position.clone());
                if !ctx.keep(&record) {
                    filtered.push(seq);
                    continue;
                }
                let tx = &senders[lane_of(&record.partition_key, n)];
                let mut item = Some(Tracked { seq, record });
                // Wait for room in the lane, writing checkpoints while we wait so a slow lane
                // does not hold back what the others finished.
                while let Some(it) = item.take() {
                    match tx.try_send(it) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Closed(_)) => break 'poll,
                        Err(mpsc::error::TrySendError::Full(it)) => {
                            item = Some(it);
                            tokio::select! {
                                permit = tx.reserve() => match permit {
                                    Ok(p) => { if let Some(it) = item.take() { p.send(it) } }
                                    Err(_) => break 'poll,
                                },
                                _ = progress.moved.notified() => {
                                    self.checkpoint(&mut *reader, &progress, &mut saved_position, status).await;
                                }
                                _ = ctx.shutdown.cancelled() => break 'poll,
                            }
                        }
                    }
                }
            }
            if !filtered.is_empty() {
                ctx.metrics.filtered_out(filtered.len() as u64);
                progress.finish(filtered);
            }
            status.update(|s| {
                s.position = last_read.as_ref().map(|p| p.to_string());
                s.backlog = batch.backlog;
                s.millis_behind_latest = batch.behind_ms.or(s.millis_behind_latest);
                s.pending_records = progress.lock().pending() as u64;
            });
            self.checkpoint(&mut *reader, &progress, &mut saved_position, status).await;
            if batch.end_of_shard {
                end_of_shard = true;
                break;
            }
            if count == 0 {
                if progress.lock().pending() == 0 {
                    ctx.metrics.iterator_age(shard.as_str(), 0);
                    status.update(|s| s.iterator_age_ms = 0);
                }
                let idle = self.source.idle_poll_interval();
                if !idle.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(idle) => {}
                        _ = progress.moved.notified() => {
                            self.checkpoint(&mut *reader, &progress, &mut saved_position, status).await;
                        }
                        _ = ctx.shutdown.cancelled() => break,
                    }
                }
            }
        }

        // Drain: lanes finish what they hold (or, on shutdown, the batch in flight).
        drop(senders);
        loop {
            tokio::select! {
                joined = lanes.join_next() => if joined.is_none() { break },
                _ = progress.moved.notified() => {
                    self.checkpoint(&mut *reader, &progress, &mut saved_position, status).await;
                }
            }
        }
        self.checkpoint(&mut *reader, &progress, &mut saved_position, status).await;
        let all_done = progress.lock().pending() == 0;
        if end_of_shard && all_done && !ctx.shutdown.is_cancelled() {
            let cp = Checkpoint { position: saved_position.clone(), shard_finished: true, state: None };
            self.save_until_done(&cp, status).await;
            return Ok(ShardExit::Finished);
        }
        Ok(ShardExit::Stopped)
    }

    /// Where a shard without a checkpoint starts: `starting_position`, except for a child
    /// whose parent this mapping has read (the parent has a position in the store). Such a
    /// child's records are all newer than what the mapping finished, so it starts at its first
    /// record: LATEST there would skip what was written to it while the parents drained, or
    /// while esmd was down. A store error counts as "read": replaying loses nothing.
    async fn first_start(&self) -> StartFrom {
        let configured = self.settings.starting_position.clone();
        if matches!(configured, StartFrom::TrimHorizon) || self.source.keeps_positions() {
            return configured;
        }
        for parent in &self.shard.parents {
            match self.store.load(&self.ctx.name, parent).await {
                Ok(Some(cp)) if cp.position.is_some() => return StartFrom::TrimHorizon,
                Ok(_) => {}
                Err(_) => return StartFrom::TrimHorizon,
            }
        }
        configured
    }

    /// The saved checkpoint, waiting out store errors. `None` on shutdown.
    async fn load_checkpoint(&self) -> Result<Option<Checkpoint>, ShardError> {
        if self.source.keeps_positions() {
            return Ok(Some(Checkpoint::default()));
        }
        let mut delays = backoff(&self.settings.backoff);
        loop {
            match self.store.load(&self.ctx.name, &self.shard.id).await {
                Ok(cp) => return Ok(Some(cp.unwrap_or_default())),
                Err(e) => {
                    tracing::warn!(mapping = %self.ctx.name, shard = %self.shard.id, error = %e, "cannot read checkpoint; retrying");
                    if !pause(&self.ctx, delays.next().unwrap_or(self.settings.backoff.max), None).await {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Opens a reader, waiting out retryable errors. `None` on shutdown.
    async fn open(&self, from: StartFrom) -> Result<Option<Box<dyn ShardReader>>, ShardError> {
        let mut delays = backoff(&self.settings.backoff);
        loop {
            match self.source.open(&self.shard, from.clone()).await {
                Ok(r) => return Ok(Some(r)),
                Err(e) if e.kind == ErrorKind::Revoked => {
                    tracing::debug!(mapping = %self.ctx.name, shard = %self.shard.id, error = %e, "shard not ours any more");
                    return Ok(None);
                }
                Err(e) if e.is_retryable() => {
                    self.ctx.metrics.polling_error();
                    tracing::warn!(mapping = %self.ctx.name, shard = %self.shard.id, error = %e, "cannot open shard; retrying");
                    if !pause(&self.ctx, delays.next().unwrap_or(self.settings.backoff.max), None).await {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(ShardError::Fatal { shard: self.shard.id.clone(), message: e.to_string() }),
            }
        }
    }

    /// Writes the watermark if it moved: store first (what a restart resumes from), then the
    /// source's own cursor (Kafka consumer group). Sources that keep their own positions skip
    /// the store.
    async fn checkpoint(
        &self,
        reader: &mut dyn ShardReader,
        progress: &Progress,
        saved: &mut Option<Position>,
        status: &ShardHandle,
    ) {
        let (low, pending, finished) = {
            let w = progress.lock();
            (w.low().cloned(), w.pending() as u64, w.finished_total())
        };
        if low.is_none() || low == *saved {
            return;
        }
        let cp = Checkpoint { position: low.clone(), shard_finished: false, state: None };
        if !self.source.keeps_positions() {
            if let Err(e) = self.store.save(&self.ctx.name, &self.shard.id, &cp).await {
                tracing::warn!(mapping = %self.ctx.name, shard = %self.shard.id, error = %e, "checkpoint not saved; will retry");
                status.update(|s| s.last_error = Some(e.to_string()));
                return;
            }
        }
        if let Some(p) = &low {
            if let Err(e) = reader.commit(p).await {
                self.ctx.metrics.commit_error();
                tracing::warn!(mapping = %self.ctx.name, shard = %self.shard.id, error = %e, "commit to source failed; will retry");
            }
        }
        *saved = low;
        let mut newly_committed = 0;
        status.update(|s| {
            newly_committed = finished.saturating_sub(s.records_finished);
            s.checkpoint = saved.as_ref().map(|p| p.to_string());
            s.pending_records = pending;
            s.records_finished = finished;
        });
        self.ctx.metrics.committed(newly_committed);
    }

    async fn save_until_done(&self, cp: &Checkpoint, status: &ShardHandle) {
        if self.source.keeps_positions() {
            return;
        }
        let mut delays = backoff(&self.settings.backoff);
        while let Err(e) = self.store.save(&self.ctx.name, &self.shard.id, cp).await {
            status.update(|s| s.last_error = Some(e.to_string()));
            if !pause(&self.ctx, delays.next().unwrap_or(self.settings.backoff.max), None).await {
                return;
            }
        }
    }
}

/// One ordered lane: gathers a batch, runs it to the end, reports it finished, repeats.
async fn lane(
    ctx: Arc<MappingCtx>,
    settings: Arc<StreamSettings>,
    shard: ShardId,
    mut rx: mpsc::Receiver<Tracked>,
    progress: Arc<Progress>,
    status: ShardHandle,
) {
    let mut batcher = Batcher::new(settings.batch.clone(), ctx.encoder.envelope_size());
    let mut carry = None;
    let mut oversized = Vec::new();
    loop {
        let closed = tokio::select! {
            c = gather(&mut rx, &mut batcher, &mut carry, &mut oversized) => c,
            _ = ctx.shutdown.cancelled() => return,
        };
        for item in oversized.drain(..) {
            let rec = std::slice::from_ref(&item.record);
            if give_up(&ctx, &shard, rec, Condition::MaximumPayloadSizeExceeded, 0, None, &settings.backoff).await.is_err() {
                return;
            }
            progress.finish([item.seq]);
        }
        if !batcher.is_empty() {
            let items = batcher.take();
            let records: Vec<Record> = items.iter().map(|t| t.record.clone()).collect();
            status.update(|s| {
                s.in_flight_batches += 1;
                if let Some(last) = records.last() {
                    s.iterator_age_ms = (esmd_api::time::now_ms() - last.arrival_ms).max(0) as u64;
                }
            });
            ctx.status.add_in_flight(1);
            let result = run_batch(&ctx, &settings, &shard, &records, |range| {
                progress.finish(items[range].iter().map(|t| t.seq));
            })
            .await;
            ctx.status.add_in_flight(-1);
            status.update(|s| s.in_flight_batches = s.in_flight_batches.saturating_sub(1));
            if result.is_err() {
                return;
            }
        }
        if closed == super::batcher::Closed::Disconnected && carry.is_none() && batcher.is_empty() {
            return;
        }
    }
}
