//! One shard of an ordered log: poll → filter → lanes → batch → invoke → checkpoint.
//!
//! The poll loop owns the reader and the checkpoint; each lane owns its batcher and runs one
//! batch at a time. Lanes report finished records to the shard's [`Watermark`]; the poll loop
//! writes the watermark to the store (and commits it to the source) after batches finish,
//! never before. With a tumbling window the shard runs one lane, which keeps the window and
//! attaches its state to the records it finished, so the checkpoint carries the state that
//! holds at the watermark.

use super::batcher::{gather_split, Batcher, EventSized};
use super::call::{backoff, pause};
use super::context::MappingCtx;
use super::give_up::give_up;
use super::lanes::lane_of;
use super::read_ahead::{Held, ReadAhead};
use super::run_batch::{run_batch, run_final_invoke};
use super::settings::StreamSettings;
use super::watermark::Watermark;
use super::window::{self, OpenWindow};
use crate::checkpoint::{Checkpoint, CheckpointStore};
use crate::destination::record::Condition;
use crate::status::{ShardHandle, ShardState};
use esmd_api::{ErrorKind, OrderedSource, Position, Record, ShardId, ShardInfo, ShardReader, StartFrom};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
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
    /// The record's room in the mapping's read-ahead budget, given back when it is dropped:
    /// once its batch is done with.
    room: Held,
}

impl EventSized for Tracked {
    fn event_size(&self) -> usize {
        self.record.event_size()
    }
}

/// Shared between the poll loop and the lanes.
struct Progress {
    watermark: Mutex<Watermark>,
    /// Wakes the poll loop when the watermark (or the state at it) moves.
    moved: Notify,
    /// Every record that arrived before this time (ms) has been read and handed to the lanes:
    /// a tumbling window ending by then can receive no more records.
    read_through_ms: AtomicI64,
    /// The shard was read to its end: lanes close their windows when their channel closes.
    ended: AtomicBool,
    /// More records reach the lanes at once: a read is being handed over, or the shard is
    /// behind and the next read follows. A zero-window lane keeps its batch open meanwhile
    /// (see [`gather_split`]), so batches are what the backlog allows, not what had reached a
    /// lane when it woke. Turned off when the poll loop waits for anything but a read: an idle
    /// shard, a backoff, or room (in the budget or a lane) that has not come within
    /// [`HOLD_WHILE_WAITING`], so no lane holds for long a batch that could free that room.
    coming: watch::Sender<bool>,
}

impl Progress {
    fn new(position: Option<Position>, state: Option<Value>) -> Self {
        Progress {
            watermark: Mutex::new(Watermark::new(position, state)),
            moved: Notify::new(),
            read_through_ms: AtomicI64::new(i64::MIN),
            ended: AtomicBool::new(false),
            coming: watch::Sender::new(false),
        }
    }
    fn set_coming(&self, more: bool) {
        self.coming.send_if_modified(|m| std::mem::replace(m, more) != more);
    }
    fn is_coming(&self) -> bool {
        *self.coming.borrow()
    }
    /// See [`Watermark::attach`]. Attach before finishing the records it follows, so the
    /// checkpoint never pairs a state with a watermark short of what the state counts.
    fn attach(&self, seq: Option<u64>, state: Option<Value>) {
        if self.lock().attach(seq, state) {
            self.moved.notify_one();
        }
    }
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
    /// The mapping's, shared by all its shards.
    pub read_ahead: Arc<ReadAhead>,
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

        let progress = Arc::new(Progress::new(saved.position.clone(), saved.state.clone()));
        // One window state per shard (AWS): a windowed shard runs a single lane. Validation
        // refuses a parallelization factor with tumbling windows.
        let windowed = self.settings.tumbling_window.is_some();
        let n = if windowed { 1 } else { self.settings.parallelization_factor.max(1) };
        let mut restored = if windowed { saved.state.as_ref().and_then(OpenWindow::from_checkpoint) } else { None };
        let capacity = self.settings.batch.batch_size.clamp(16, 10_000) * 2;
        let mut lanes = JoinSet::new();
        let mut senders = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = mpsc::channel::<Tracked>(capacity);
            senders.push(tx);
            lanes.spawn(lane(ctx.clone(), self.settings.clone(), shard.clone(), rx, progress.clone(), status.clone(), restored.take()));
        }

        let mut saved_position = Saved { position: saved.position.clone(), state_version: 0 };
        let mut last_read: Option<Position> = saved.position.clone();
        let mut end_of_shard = false;
        // Enough for every lane to fill a batch from one read: fewer reads, and fewer
        // checkpoint writes between them.
        let read_max = (self.settings.batch.batch_size * n).clamp(100, 10_000);
        let mut delays = backoff(&self.settings.backoff);
        let mut reported_idle = false;
        'poll: while !ctx.shutdown.is_cancelled() {
            let read_started_ms = esmd_api::time::now_ms();
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
                    progress.set_coming(false);
                    tracing::info!(mapping = %ctx.name, shard = %shard, "shard handed to another consumer; stopping");
                    // Only the batches in flight finish; records waiting in lanes are the new
                    // owner's (it reads them again from the committed offset).
                    ctx.shutdown.cancel();
                    break 'poll;
                }
                Err(e) => {
                    progress.set_coming(false);
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
                progress.set_coming(true);
                reported_idle = false;
                ctx.metrics.polled(count as u64);
            }
            if let Some(backlog) = batch.backlog {
                ctx.metrics.offset_lag(shard.as_str(), backlog);
            }
            let mut filtered = Vec::new();
            let mut invalid = Vec::new();
            let last_arrival = batch.records.last().map(|r| r.arrival_ms);
            for record in batch.records {
                let seq = progress.lock().register(record.position.clone());
                last_read = Some(record.position.clone());
                if record.invalid.is_some() {
                    invalid.push((seq, record));
                    continue;
                }
                if !ctx.keep(&record) {
                    filtered.push(seq);
                    continue;
                }
                // Room first: with the budget spent, this shard waits for batches (its own or
                // other shards') to finish, writing checkpoints meanwhile.
                let size = record.event_size();
                let room = match self.read_ahead.try_reserve(size) {
                    Some(room) => room,
                    None => match self.wait_for_room(self.read_ahead.reserve(size), &mut *reader, &progress, &mut saved_position, status).await {
                        Some(room) => room,
                        None => break 'poll,
                    },
                };
                // Then room in the lane: a slow lane does not hold back the checkpoint of what
                // the others finished.
                let tx = &senders[lane_of(&record.partition_key, n)];
                let permit = match tx.try_reserve() {
                    Ok(permit) => permit,
                    Err(mpsc::error::TrySendError::Closed(())) => break 'poll,
                    Err(mpsc::error::TrySendError::Full(())) => {
                        match self.wait_for_room(async { tx.reserve().await.ok() }, &mut *reader, &progress, &mut saved_position, status).await {
                            Some(permit) => permit,
                            None => break 'poll,
                        }
                    }
                };
                permit.send(Tracked { seq, record, room });
            }
            if !filtered.is_empty() {
                ctx.metrics.filtered_out(filtered.len() as u64);
                progress.finish(filtered);
            }
            // The lanes have the whole read. They wait for the next one only if it follows at
            // once: the shard is behind, and no destination call comes first.
            let behind = batch.backlog.is_some_and(|b| b > 0) || batch.behind_ms.is_some_and(|b| b > 0);
            progress.set_coming(count > 0 && behind && invalid.is_empty() && !batch.end_of_shard);
            // Records the source could not make readable: invoking cannot help them, so they go
            // to the destination one by one (each with its own reason) and the shard goes on.
            for (seq, record) in invalid {
                let Some(why) = record.invalid.clone() else { continue };
                let condition = Condition::of_invalid(why.reason);
                tracing::warn!(
                    mapping = %ctx.name, shard = %shard, position = %record.position, condition = condition.as_str(), reason = %why.message,
                    "the record cannot be read for the function"
                );
                if give_up(ctx, shard, std::slice::from_ref(&record), condition, 0, None, &self.settings.backoff).await.is_err() {
                    break 'poll;
                }
                progress.finish([seq]);
            }
            // After the records went to the lanes: a lane that sees this also sees them.
            let through = if count == 0 || batch.behind_ms == Some(0) { Some(read_started_ms) } else { last_arrival };
            if let Some(t) = through {
                progress.read_through_ms.fetch_max(t, Ordering::Release);
            }
            status.update(|s| {
                s.position = last_read.as_ref().map(|p| p.to_string());
                s.backlog = batch.backlog;
                s.millis_behind_latest = batch.behind_ms.or(s.millis_behind_latest);
                s.pending_records = progress.lock().pending() as u64;
                s.caught_up = count == 0
                    && s.pending_records == 0
                    && batch.behind_ms.is_none_or(|b| b == 0)
                    && batch.backlog.is_none_or(|b| b == 0);
            });
            self.checkpoint(&mut *reader, &progress, &mut saved_position, status).await;
            if batch.end_of_shard {
                end_of_shard = true;
                break;
            }
            if count == 0 {
                // Idle shards read empty over and over: report the zero age once, not per read.
                if progress.lock().pending() == 0 && !reported_idle {
                    ctx.metrics.iterator_age(shard.as_str(), 0);
                    status.update(|s| s.iterator_age_ms = 0);
                    reported_idle = true;
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
        progress.set_coming(false);
        progress.ended.store(end_of_shard, Ordering::Release);
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
            let cp = Checkpoint { position: saved_position.position.clone(), shard_finished: true, state: None };
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

    /// Waits for `room` (in the read-ahead budget or a lane), writing checkpoints meanwhile.
    /// The lanes keep their batches open for [`HOLD_WHILE_WAITING`], then are told to send
    /// them. `None`: the mapping is stopping, or the room can never come.
    async fn wait_for_room<T>(
        &self,
        room: impl std::future::Future<Output = Option<T>>,
        reader: &mut dyn ShardReader,
        progress: &Progress,
        saved: &mut Saved,
        status: &ShardHandle,
    ) -> Option<T> {
        let flush_at = tokio::time::Instant::now() + HOLD_WHILE_WAITING;
        // Pinned once: a checkpoint in between keeps the wait's place in the queue.
        tokio::pin!(room);
        loop {
            tokio::select! {
                got = &mut room => {
                    if got.is_some() {
                        // Back to handing over the read.
                        progress.set_coming(true);
                    }
                    return got;
                }
                _ = tokio::time::sleep_until(flush_at), if progress.is_coming() => progress.set_coming(false),
                _ = progress.moved.notified() => self.checkpoint(reader, progress, saved, status).await,
                _ = self.ctx.shutdown.cancelled() => return None,
            }
        }
    }

    /// Writes the watermark (and the window state at it) if it moved: store first (what a
    /// restart resumes from), then the source's own cursor (Kafka consumer group). Sources that
    /// keep their own positions skip the store.
    async fn checkpoint(&self, reader: &mut dyn ShardReader, progress: &Progress, saved: &mut Saved, status: &ShardHandle) {
        let (low, state, state_version, pending, finished) = {
            let w = progress.lock();
            let (state, version) = w.low_state();
            (w.low().cloned(), state.cloned(), version, w.pending() as u64, w.finished_total())
        };
        let state_moved = state_version != saved.state_version;
        if (low.is_none() || low == saved.position) && !state_moved {
            return;
        }
        let cp = Checkpoint { position: low.clone(), shard_finished: false, state };
        if !self.source.keeps_positions() {
            if let Err(e) = self.store.save(&self.ctx.name, &self.shard.id, &cp).await {
                tracing::warn!(mapping = %self.ctx.name, shard = %self.shard.id, error = %e, "checkpoint not saved; will retry");
                status.update(|s| s.last_error = Some(e.to_string()));
                return;
            }
        }
        let mut committed = true;
        if let Some(p) = low.as_ref().filter(|_| low != saved.position) {
            if let Err(e) = reader.commit(p).await {
                self.ctx.metrics.commit_error();
                tracing::warn!(mapping = %self.ctx.name, shard = %self.shard.id, error = %e, "commit to source failed; will retry");
                committed = false;
            }
        }
        if !committed {
            // The next checkpoint tick commits again, even when no record finished meanwhile:
            // the last batch of a backlog would otherwise never be committed.
            return;
        }
        *saved = Saved { position: low, state_version };
        let mut newly_committed = 0;
        status.update(|s| {
            newly_committed = finished.saturating_sub(s.records_finished);
            s.checkpoint = saved.position.as_ref().map(|p| p.to_string());
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

/// How long the lanes keep their batches open while the poll loop waits for room. In a drain
/// the mapping-wide budget is spent most of the time and comes back as other batches finish,
/// within milliseconds; flushing at once made every wait cut the lanes' batches short (twice
/// the requests at batch size 100). Waiting longer means the room is held by batches that are
/// waiting themselves, and only sending them frees it.
const HOLD_WHILE_WAITING: Duration = Duration::from_millis(50);

/// What the checkpoint store last received.
struct Saved {
    position: Option<Position>,
    /// [`Watermark::low_state`]'s version at that write.
    state_version: u64,
}

/// How often a lane with an open window looks again whether the window can close, once its
/// end has passed but the reader has not yet read past it.
const WINDOW_RECHECK: Duration = Duration::from_millis(200);

/// One ordered lane: gathers a batch, runs it to the end, reports it finished, repeats. With
/// tumbling windows it also keeps the shard's open window (`restored` from the checkpoint) and
/// closes it with a final invocation once no more records can belong to it.
async fn lane(
    ctx: Arc<MappingCtx>,
    settings: Arc<StreamSettings>,
    shard: ShardId,
    mut rx: mpsc::Receiver<Tracked>,
    progress: Arc<Progress>,
    status: ShardHandle,
    restored: Option<OpenWindow>,
) {
    let windows = settings.tumbling_window;
    let mut envelope = ctx.encoder.envelope_size();
    if windows.is_some() {
        envelope += window::reserved_bytes(shard.as_str(), ctx.encoder.event_source_arn());
    }
    let mut batcher = Batcher::new(settings.batch.clone(), envelope);
    let mut coming = progress.coming.subscribe();
    let mut carry = None;
    let mut oversized = Vec::new();
    let mut open = restored;
    // The last record this lane finished: window states are attached to it.
    let mut last_seq: Option<u64> = None;
    // A crash between an oversized state and its early final invocation: hand it over now.
    if open.as_ref().is_some_and(|w| w.terminated_early) && close_window(&ctx, &settings, &shard, &progress, &mut open, last_seq, true).await.is_err() {
        return;
    }
    let mut next_check = open.as_ref().map(window_end_instant);
    // The end of the last window this lane closed: a late record (arrival times are not
    // strictly ordered) goes to the next window rather than reopening a closed one.
    let mut closed_until = i64::MIN;
    loop {
        // A record belongs to the open window unless it arrived after it ends; a batch never
        // spans two windows.
        let current = open.as_ref().map(|w| (w.start_ms, w.end_ms));
        let splits = |a: &Tracked, b: &Tracked| match (windows, current) {
            (None, _) => false,
            (Some(size), current) => {
                window_key(a.record.arrival_ms.max(closed_until), size, current) != window_key(b.record.arrival_ms.max(closed_until), size, current)
            }
        };
        let idle = batcher.is_empty() && carry.is_none();
        let check_at = next_check.unwrap_or_else(tokio::time::Instant::now);
        let closed = tokio::select! {
            c = gather_split(&mut rx, &mut batcher, &mut carry, &mut oversized, Some(&mut coming), splits) => Some(c),
            _ = tokio::time::sleep_until(check_at), if idle && next_check.is_some() => None,
            _ = ctx.shutdown.cancelled() => return,
        };
        let Some(closed) = closed else {
            // The open window's end has passed. It closes once the reader has read past it and
            // nothing of it waits here.
            if !batcher.is_empty() || carry.is_some() {
                continue;
            }
            let end = open.as_ref().map_or(i64::MIN, |w| w.end_ms);
            if progress.read_through_ms.load(Ordering::Acquire) < end {
                next_check = Some(tokio::time::Instant::now() + WINDOW_RECHECK);
                continue;
            }
            match rx.try_recv() {
                Ok(item) => {
                    carry = Some(item);
                    continue;
                }
                Err(_) => {
                    if close_window(&ctx, &settings, &shard, &progress, &mut open, last_seq, false).await.is_err() {
                        return;
                    }
                    closed_until = end;
                    next_check = None;
                    continue;
                }
            }
        };
        for item in oversized.drain(..) {
            let rec = std::slice::from_ref(&item.record);
            if give_up(&ctx, &shard, rec, Condition::MaximumPayloadSizeExceeded, 0, None, &settings.backoff).await.is_err() {
                return;
            }
            progress.finish([item.seq]);
            last_seq = last_seq.max(Some(item.seq));
        }
        if !batcher.is_empty() {
            let items = batcher.take();
            if let (Some(size), Some(first)) = (windows, items.first()) {
                let arrival = first.record.arrival_ms.max(closed_until);
                if let Some(end) = open.as_ref().filter(|w| w.is_before(arrival)).map(|w| w.end_ms) {
                    if close_window(&ctx, &settings, &shard, &progress, &mut open, last_seq, false).await.is_err() {
                        return;
                    }
                    closed_until = end;
                }
                if open.is_none() {
                    let w = OpenWindow::containing(arrival, size);
                    next_check = Some(window_end_instant(&w));
                    open = Some(w);
                }
            }
            // The records move out of their items: the invoker borrows them for the whole batch,
            // and the items' room goes back once the batch is done.
            let mut seqs = Vec::with_capacity(items.len());
            let mut rooms = Vec::with_capacity(items.len());
            let records: Vec<Record> = items
                .into_iter()
                .map(|t| {
                    seqs.push(t.seq);
                    rooms.push(t.room);
                    t.record
                })
                .collect();
            status.update(|s| {
                s.in_flight_batches += 1;
                if let Some(last) = records.last() {
                    s.iterator_age_ms = (esmd_api::time::now_ms() - last.arrival_ms).max(0) as u64;
                }
            });
            ctx.status.add_in_flight(1);
            let result = run_batch(&ctx, &settings, &shard, &records, open.as_mut(), |range, w| {
                let seqs = &seqs[range];
                if let (Some(w), Some(&last)) = (w, seqs.last()) {
                    progress.attach(Some(last), Some(w.to_checkpoint()));
                }
                progress.finish(seqs.iter().copied());
            })
            .await;
            ctx.status.add_in_flight(-1);
            status.update(|s| s.in_flight_batches = s.in_flight_batches.saturating_sub(1));
            if result.is_err() {
                return;
            }
            last_seq = last_seq.max(seqs.last().copied());
            drop(rooms);
            if open.as_ref().is_some_and(|w| w.terminated_early)
                && close_window(&ctx, &settings, &shard, &progress, &mut open, last_seq, true).await.is_err()
            {
                return;
            }
        }
        if closed == super::batcher::Closed::Disconnected && carry.is_none() && batcher.is_empty() {
            // A closed shard ends its window (AWS); on shutdown the window stays in the
            // checkpoint for the next run.
            if open.is_some() && progress.ended.load(Ordering::Acquire) && !ctx.shutdown.is_cancelled() {
                let _ = close_window(&ctx, &settings, &shard, &progress, &mut open, last_seq, false).await;
            }
            return;
        }
    }
}

/// Which window a record that arrived at `arrival_ms` goes to, given the open one.
fn window_key(arrival_ms: i64, size: Duration, open: Option<(i64, i64)>) -> i64 {
    match open {
        Some((start, end)) if arrival_ms < end => start,
        _ => OpenWindow::containing(arrival_ms, size).start_ms,
    }
}

fn window_end_instant(w: &OpenWindow) -> tokio::time::Instant {
    let left = (w.end_ms - esmd_api::time::now_ms()).max(0) as u64;
    tokio::time::Instant::now() + Duration::from_millis(left)
}

/// Sends the open window's final invocation and moves on: to nothing (the window is over) or,
/// when it `early` ended for its state's size, to the same window with a fresh state. The
/// checkpoint takes the change once the lane's last record is below the watermark.
async fn close_window(
    ctx: &MappingCtx,
    settings: &StreamSettings,
    shard: &ShardId,
    progress: &Progress,
    open: &mut Option<OpenWindow>,
    last_seq: Option<u64>,
    early: bool,
) -> Result<(), super::run_batch::Aborted> {
    let Some(w) = open.take() else { return Ok(()) };
    if let Err(e) = run_final_invoke(ctx, settings, shard, &w).await {
        *open = Some(w);
        return Err(e);
    }
    let next = early.then(|| w.restarted());
    progress.attach(last_seq, next.as_ref().map(OpenWindow::to_checkpoint));
    *open = next;
    Ok(())
}
