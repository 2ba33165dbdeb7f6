//! The memory sources as the service's wiring sees them: `type = "memory"` and
//! `type = "memory_queue"`.

use crate::config::{MemoryQueueSource, MemorySource};
use crate::{MemoryLog, MemoryLogOptions, MemoryQueue, MemoryQueueOptions};
use async_trait::async_trait;
use esmd_api::config::TableError;
use esmd_api::connector::{
    parse_spec, BacklogPosition, BacklogRecord, Connector, EmbeddedBacklog, LocalFuture, OpenContext, OpenedSource, SeedContext, SeedSetupError, SourceSpec,
};
use esmd_api::profile::SourceProfile;
use esmd_api::seed::Seeder;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// `type = "memory"`.
pub struct MemoryStreamConnector;
/// `type = "memory_queue"`.
pub struct MemoryQueueConnector;

const STREAM: SourceProfile = SourceProfile::stream("memory");

fn queue_profile(fifo: bool) -> SourceProfile {
    SourceProfile::sqs_like("memory_queue", fifo)
}

#[async_trait]
impl Connector for MemoryStreamConnector {
    fn type_name(&self) -> &'static str {
        "memory"
    }

    fn profile(&self, _table: &Value) -> SourceProfile {
        STREAM
    }

    fn parse(&self, table: Value) -> Result<Arc<dyn SourceSpec>, TableError> {
        parse_spec::<MemorySource>(table)
    }

    fn embedded_backlog<'a>(&'a self, shards: usize, records: &'a [BacklogRecord]) -> Option<LocalFuture<'a, Result<EmbeddedBacklog, String>>> {
        Some(Box::pin(async move { memory_backlog(shards, records) }))
    }
}

fn memory_backlog(shards: usize, records: &[BacklogRecord]) -> Result<EmbeddedBacklog, String> {
    let log = MemoryLog::new(MemoryLogOptions { stream_name: "esmd-demo".into(), shards: shards.max(1), ..Default::default() });
    let all = log.shards();
    let mut positions = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let (shard, pos) = match r.timestamp_ms {
            // A record from the past goes round-robin: the hash would send them all one way.
            Some(ms) => {
                let shard = all[i % all.len()].clone();
                let pos = log.append_to(&shard, r.key.as_bytes(), r.data.clone(), Some(ms)).map_err(|e| format!("append: {e}"))?;
                (shard, pos)
            }
            None => log.append(r.key.as_bytes(), r.data.clone()),
        };
        positions.push(BacklogPosition { shard: shard.to_string(), position: pos.to_string(), label: pos.to_string() });
    }
    Ok(EmbeddedBacklog { source: Arc::new(log), positions, description: "an in-memory stream", keep_alive: Box::new(()) })
}

#[async_trait]
impl SourceSpec for MemorySource {
    fn profile(&self) -> SourceProfile {
        STREAM
    }

    fn validate(&self) -> Vec<esmd_api::config::ConfigIssue> {
        MemorySource::validate(self)
    }

    async fn open(&self, ctx: &OpenContext) -> Result<OpenedSource, String> {
        let log = MemoryLog::new(MemoryLogOptions {
            stream_name: self.stream_name.clone(),
            shards: self.shards,
            region: ctx.region.clone(),
            account: ctx.account.clone(),
        });
        if let Some(seed) = &self.seed {
            for i in 0..seed.records {
                let key = format!("key-{}", i % seed.keys.max(1));
                let poison = seed.poison_every > 0 && i % seed.poison_every == seed.poison_every - 1;
                let mut data = if poison { b"poison".to_vec() } else { format!("{{\"n\":{i}}}").into_bytes() };
                data.resize(seed.record_bytes.max(data.len()), b' ');
                log.append(key.as_bytes(), data);
            }
        }
        Ok(OpenedSource::Stream(Arc::new(log)))
    }

    async fn seeder(&self, _ctx: &SeedContext) -> Result<Box<dyn Seeder>, SeedSetupError> {
        Err(SeedSetupError::Unsupported(
            "a memory source lives inside the esmd process that reads it, so nothing outside can fill it: give it a backlog in the config instead, `seed = { records = N, record_bytes = B, keys = K, poison_every = P }` on the source".into(),
        ))
    }
}

#[async_trait]
impl Connector for MemoryQueueConnector {
    fn type_name(&self) -> &'static str {
        "memory_queue"
    }

    fn profile(&self, table: &Value) -> SourceProfile {
        queue_profile(table.get("fifo").and_then(Value::as_bool).unwrap_or(false))
    }

    fn parse(&self, table: Value) -> Result<Arc<dyn SourceSpec>, TableError> {
        parse_spec::<MemoryQueueSource>(table)
    }
}

#[async_trait]
impl SourceSpec for MemoryQueueSource {
    fn profile(&self) -> SourceProfile {
        queue_profile(self.fifo)
    }

    fn validate(&self) -> Vec<esmd_api::config::ConfigIssue> {
        MemoryQueueSource::validate(self)
    }

    async fn open(&self, ctx: &OpenContext) -> Result<OpenedSource, String> {
        Ok(OpenedSource::Queue(Arc::new(MemoryQueue::new(MemoryQueueOptions {
            name: self.queue_name.clone(),
            visibility_timeout: Duration::from_secs(self.visibility_timeout_seconds),
            fifo: self.fifo,
            region: ctx.region.clone(),
            account: ctx.account.clone(),
        }))))
    }

    async fn seeder(&self, _ctx: &SeedContext) -> Result<Box<dyn Seeder>, SeedSetupError> {
        Err(SeedSetupError::Unsupported(
            "a memory_queue source lives inside the esmd process that reads it, so nothing outside can fill it: for a synthetic backlog use a `type = \"memory\"` source with its `seed = { records = N, ... }`".into(),
        ))
    }
}
