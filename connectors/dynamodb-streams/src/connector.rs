//! `type = "dynamodb_streams"` as the service's wiring sees it.

use crate::{dynamodb_streams_source, DynamoDbSeeder, DynamoDbStreamsOptions, DynamoDbStreamsSourceConfig};
use async_trait::async_trait;
use esmd_api::config::{ConfigIssue, TableError};
use esmd_api::connector::{parse_spec, Connector, OpenContext, OpenedSource, SeedContext, SeedSetupError, SourceSpec};
use esmd_api::profile::{self, SourceProfile};
use esmd_api::seed::Seeder;
use serde_json::Value;
use std::sync::Arc;

pub struct DynamoDbStreamsConnector;

impl Connector for DynamoDbStreamsConnector {
    fn type_name(&self) -> &'static str {
        profile::DYNAMODB_STREAMS.type_name
    }

    fn profile(&self, _table: &Value) -> SourceProfile {
        profile::DYNAMODB_STREAMS
    }

    fn parse(&self, table: Value) -> Result<Arc<dyn SourceSpec>, TableError> {
        parse_spec::<DynamoDbStreamsSourceConfig>(table)
    }
}

#[async_trait]
impl SourceSpec for DynamoDbStreamsSourceConfig {
    fn profile(&self) -> SourceProfile {
        profile::DYNAMODB_STREAMS
    }

    fn validate(&self) -> Vec<ConfigIssue> {
        DynamoDbStreamsSourceConfig::validate(self)
    }

    async fn open(&self, ctx: &OpenContext) -> Result<OpenedSource, String> {
        let options = DynamoDbStreamsOptions::new(self.clone(), &ctx.region);
        Ok(OpenedSource::Stream(Arc::new(dynamodb_streams_source(options).map_err(|e| e.to_string())?)))
    }

    async fn seeder(&self, ctx: &SeedContext) -> Result<Box<dyn Seeder>, SeedSetupError> {
        Ok(Box::new(DynamoDbSeeder::connect(self, ctx.keys).await.map_err(|e| SeedSetupError::Setup(e.0))?))
    }
}
