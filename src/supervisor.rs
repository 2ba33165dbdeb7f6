//! One task per mapping: finds shards, respects lineage, starts and stops shard workers.
//!
//! A child shard (after a split or merge) starts only when every parent is finished to its
//! end, so a key's records are never processed out of order across a reshard. Parents that
//! are no longer listed (retention expired) count as finished.

use crate::checkpoint::CheckpointStore;
use crate::engine::call::{backoff, pause};
use crate::engine::context::MappingCtx;
use crate::engine::queue::QueueWorker;
use crate::engine::settings::{QueueSettings, StreamSettings};
use crate::engine::stream::{ShardExit, ShardWorker};
use crate::status::ShardState;
use esmd_api::{OrderedSource, QueueSource, ShardId, ShardInfo};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub struct StreamMapping {
    pub ctx: Arc<MappingCtx>,
    pub settings: Arc<StreamSettings>,
    pub source: Arc<dyn OrderedSource>,
    pub store: Arc<dyn CheckpointStore>,
}

impl StreamMapping {
    /// Runs until shutdown. Returns once every shard worker has stopped.
    pub async fn run(self) {
        let ctx = &self.ctx;
        // One budget for all the mapping's shards, as they come and go.
        let read_ahead = crate::engine::read_ahead::ReadAhead::new(self.settings.read_ahead_bytes);
        let mut finished: HashSet<ShardId> = HashSet::new();
        match self.store.list(&ctx.name).await {
            Ok(saved) => finished.extend(saved.into_iter().filter(|(_, cp)| cp.shard_finished).map(|(id, _)| id)),
            Err(e) => tracing::warn!(mapping = %ctx.name, error = %e, "cannot list checkpoints; relying on per-shard reads"),
        }
        let mut running: HashMap<ShardId, CancellationToken> = HashMap::new();
        let mut workers: JoinSet<(ShardId, Result<ShardExit, crate::engine::stream::ShardError>)> = JoinSet::new();
        let mut known: Vec<ShardInfo> = Vec::new();
        let mut delays = backoff(&self.settings.backoff);
        let mut discover_now = true;
        loop {
            if discover_now {
                match self.source.list_shards().await {
                    Ok(shards) => {
                        // A shard that is gone (a Kafka partition now read by another consumer)
                        // must not keep feeding this mapping's lag and age gauges.
                        for old in known.iter().filter(|o| !shards.iter().any(|s| s.id == o.id)) {
                            ctx.metrics.forget_shard(old.id.as_str());
                        }
                        known = shards;
                        delays = backoff(&self.settings.backoff);
                        ctx.status.set_error(None);
                    }
                    Err(e) => {
                        ctx.metrics.polling_error();
                        ctx.status.set_error(Some(e.to_string()));
                        tracing::warn!(mapping = %ctx.name, error = %e, "shard discovery failed");
                        if !pause(ctx, delays.next().unwrap_or(self.settings.backoff.max), None).await {
                            break;
                        }
                        continue;
                    }
                }
                // Shards that vanished (Kafka partitions revoked) stop; their checkpoint holds.
                let listed: HashSet<&ShardId> = known.iter().map(|s| &s.id).collect();
                running.retain(|id, stop| {
                    let keep = listed.contains(id);
                    if !keep {
                        tracing::info!(mapping = %ctx.name, shard = %id, "shard no longer listed; stopping it");
                        stop.cancel();
                    }
                    keep
                });
            }
            self.start_ready(&known, &finished, &mut running, &mut workers, &read_ahead);
            ctx.status.set_started(true);
            discover_now = false;
            tokio::select! {
                joined = workers.join_next(), if !workers.is_empty() => {
                    if let Some(Ok((id, exit))) = joined {
                        running.remove(&id);
                        match exit {
                            Ok(ShardExit::Finished) => {
                                tracing::info!(mapping = %ctx.name, shard = %id, "shard finished");
                                ctx.metrics.forget_shard(id.as_str());
                                finished.insert(id);
                                // A closed shard's children exist by now: start them without
                                // waiting for the next periodic discovery.
                                discover_now = true;
                            }
                            // Stopped without shutdown: the shard was revoked (Kafka) or
                            // stopped by discovery; look again before restarting anything.
                            Ok(ShardExit::Stopped) => discover_now = true,
                            Err(e) => {
                                tracing::error!(mapping = %ctx.name, shard = %id, error = %e, "shard worker failed; restarting after discovery");
                                ctx.status.set_error(Some(e.to_string()));
                                discover_now = true;
                                if !pause(ctx, delays.next().unwrap_or(self.settings.backoff.max), None).await {
                                    break;
                                }
                            }
                        }
                    }
                }
                _ = tokio::time::sleep(self.source.discovery_interval()) => discover_now = true,
                _ = ctx.shutdown.cancelled() => break,
            }
        }
        while workers.join_next().await.is_some() {}
        self.source.close().await;
        ctx.status.set_started(false);
    }

    fn start_ready(
        &self,
        known: &[ShardInfo],
        finished: &HashSet<ShardId>,
        running: &mut HashMap<ShardId, CancellationToken>,
        workers: &mut JoinSet<(ShardId, Result<ShardExit, crate::engine::stream::ShardError>)>,
        read_ahead: &Arc<crate::engine::read_ahead::ReadAhead>,
    ) {
        let listed: HashSet<&ShardId> = known.iter().map(|s| &s.id).collect();
        for shard in known {
            if running.contains_key(&shard.id) || finished.contains(&shard.id) {
                continue;
            }
            if !shard.parents.is_empty() {
                let parents = shard.parents.iter().map(|p| p.to_string()).collect();
                self.ctx.status.shard(shard.id.as_str()).update(|s| s.parents = parents);
            }
            let waiting = shard.parents.iter().any(|p| listed.contains(p) && !finished.contains(p));
            if waiting {
                self.ctx.status.shard(shard.id.as_str()).update(|s| s.state = ShardState::WaitingForParents);
                continue;
            }
            let stop = self.ctx.shutdown.child_token();
            let mut shard_ctx = (*self.ctx).clone();
            shard_ctx.shutdown = stop.clone();
            let worker = ShardWorker {
                ctx: Arc::new(shard_ctx),
                settings: self.settings.clone(),
                source: self.source.clone(),
                store: self.store.clone(),
                shard: shard.clone(),
                read_ahead: read_ahead.clone(),
            };
            let id = shard.id.clone();
            running.insert(id.clone(), stop);
            workers.spawn(async move { (id, worker.run().await) });
        }
    }
}

pub struct QueueMapping {
    pub ctx: Arc<MappingCtx>,
    pub settings: Arc<QueueSettings>,
    pub source: Arc<dyn QueueSource>,
}

impl QueueMapping {
    pub async fn run(self) {
        self.ctx.status.set_started(true);
        let (ctx, source) = (self.ctx.clone(), self.source.clone());
        QueueWorker { ctx: self.ctx, settings: self.settings, source: self.source }.run().await;
        source.close().await;
        ctx.status.set_started(false);
    }
}
