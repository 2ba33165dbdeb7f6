//! `type = "sqs"` as the service's wiring sees it.

use crate::{SqsOptions, SqsSeeder, SqsSource, SqsSourceConfig};
use async_trait::async_trait;
use esmd_api::config::{ConfigIssue, TableError};
use esmd_api::connector::{parse_spec, Connector, OpenContext, OpenedSource, SeedContext, SeedSetupError, SourceSpec};
use esmd_api::profile::{self, SourceProfile};
use esmd_api::seed::Seeder;
use esmd_api::QueueSource;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub struct SqsConnector;

impl Connector for SqsConnector {
    fn type_name(&self) -> &'static str {
        "sqs"
    }

    /// FIFO is told by the queue URL, even when the rest of the table is broken.
    fn profile(&self, table: &Value) -> SourceProfile {
        let fifo = table.get("queue_url").and_then(Value::as_str).is_some_and(|u| u.trim_end_matches('/').ends_with(".fifo"));
        profile::sqs(fifo)
    }

    fn parse(&self, table: Value) -> Result<Arc<dyn SourceSpec>, TableError> {
        parse_spec::<SqsSourceConfig>(table)
    }
}

#[async_trait]
impl SourceSpec for SqsSourceConfig {
    fn profile(&self) -> SourceProfile {
        profile::sqs(self.is_fifo())
    }

    fn validate(&self) -> Vec<ConfigIssue> {
        SqsSourceConfig::validate(self)
    }

    async fn open(&self, ctx: &OpenContext) -> Result<OpenedSource, String> {
        let source = SqsSource::connect(SqsOptions { config: self.clone(), maximum_concurrency: ctx.maximum_concurrency }).await.map_err(|e| e.to_string())?;
        warn_short_visibility(&ctx.mapping, source.visibility_timeout(), ctx.function_timeout);
        Ok(OpenedSource::Queue(Arc::new(source)))
    }

    async fn seeder(&self, _ctx: &SeedContext) -> Result<Box<dyn Seeder>, SeedSetupError> {
        Ok(Box::new(SqsSeeder::connect(self).await.map_err(|e| SeedSetupError::Setup(e.0))?))
    }
}

/// A queue whose visibility timeout is shorter than the function's timeout hands a message to
/// another consumer while the function may still run (AWS refuses such mappings; esmd extends
/// the visibility of running batches, so it only warns).
fn warn_short_visibility(mapping: &str, visibility: Option<Duration>, function_timeout: Duration) {
    if let Some(v) = visibility.filter(|v| *v < function_timeout) {
        tracing::warn!(
            mapping = %mapping,
            visibility_timeout_s = v.as_secs(),
            function_timeout_s = function_timeout.as_secs(),
            "the queue's visibility timeout is shorter than the function timeout: esmd extends it while batches run, but other consumers of the queue may see duplicates; AWS recommends 6 × the function timeout"
        );
    }
}
