//! `type = "kinesis"` as the service's wiring sees it.

use crate::{kinesis_source, KinesisOptions, KinesisSeeder, KinesisSourceConfig};
use async_trait::async_trait;
use esmd_api::config::{ConfigIssue, TableError};
use esmd_api::connector::{parse_spec, Connector, OpenContext, OpenedSource, SeedContext, SeedSetupError, SourceSpec};
use esmd_api::profile::{self, SourceProfile};
use esmd_api::seed::Seeder;
use serde_json::Value;
use std::sync::Arc;

pub struct KinesisConnector;

impl Connector for KinesisConnector {
    fn type_name(&self) -> &'static str {
        profile::KINESIS.type_name
    }

    fn profile(&self, _table: &Value) -> SourceProfile {
        profile::KINESIS
    }

    fn parse(&self, table: Value) -> Result<Arc<dyn SourceSpec>, TableError> {
        parse_spec::<KinesisSourceConfig>(table)
    }
}

#[async_trait]
impl SourceSpec for KinesisSourceConfig {
    fn profile(&self) -> SourceProfile {
        profile::KINESIS
    }

    fn validate(&self) -> Vec<ConfigIssue> {
        KinesisSourceConfig::validate(self)
    }

    async fn open(&self, ctx: &OpenContext) -> Result<OpenedSource, String> {
        let options = KinesisOptions::new(self.clone(), &ctx.region, &ctx.account);
        Ok(OpenedSource::Stream(Arc::new(kinesis_source(options).map_err(|e| e.to_string())?)))
    }

    async fn seeder(&self, ctx: &SeedContext) -> Result<Box<dyn Seeder>, SeedSetupError> {
        Ok(Box::new(KinesisSeeder::connect(self, &ctx.region).await.map_err(|e| SeedSetupError::Setup(e.0))?))
    }
}
