//! DynamoDB Streams for esmd.
//!
//! The same shard machinery as Kinesis (`esmd-aws-stream`): shards from DescribeStream (all
//! pages), a child only after its parent is read to its end, GetRecords while there is
//! something to read and every 250 ms once caught up, as Lambda does. Records become AWS's
//! `aws:dynamodb` event records; their partition key is the item's key, so the changes of one
//! item stay in order across parallelization lanes.

#![forbid(unsafe_code)]

mod api;
mod config;
mod connector;
mod encode;
mod seed;

pub use api::DynamoDbStreamsApi;
pub use aws_sdk_dynamodb;
pub use config::{DynamoDbStreamsSourceConfig, StreamArn};
pub use connector::DynamoDbStreamsConnector;
pub use encode::{attribute, image, DynamoDbEncoding};
pub use esmd_aws::stream::ReaderOptions;
pub use seed::DynamoDbSeeder;

use esmd_aws::stream::{StreamSource, StreamSourceOptions};
use esmd_aws::AwsClientConfig;
use std::sync::Arc;
use std::time::Duration;

/// A DynamoDB stream as the engine reads it.
pub type DynamoDbStreamsSource = StreamSource<DynamoDbStreamsApi>;

/// Lambda polls DynamoDB stream shards four times a second.
pub const IDLE_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often new shards are looked for (DynamoDB rolls shards over about every four hours).
pub const DISCOVERY_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DynamoDbStreamsError {
    #[error("source: {0}")]
    Config(String),
}

pub struct DynamoDbStreamsOptions {
    pub config: DynamoDbStreamsSourceConfig,
    /// `[aws] region`: only when neither the config nor the ARN says (never, for a valid ARN).
    pub region: String,
    /// A ready SDK configuration (tests, explicit credentials); default: the SDK's chain.
    pub sdk: Option<esmd_aws::SdkConfig>,
    pub reader: ReaderOptions,
    pub idle_poll_interval: Duration,
    pub discovery_interval: Duration,
}

impl DynamoDbStreamsOptions {
    pub fn new(config: DynamoDbStreamsSourceConfig, region: &str) -> Self {
        DynamoDbStreamsOptions {
            config,
            region: region.into(),
            sdk: None,
            reader: ReaderOptions::default(),
            idle_poll_interval: IDLE_POLL_INTERVAL,
            discovery_interval: DISCOVERY_INTERVAL,
        }
    }
}

/// A DynamoDB client for the table the stream belongs to (same region, endpoint and
/// credentials as the source) and the table's name, from the stream ARN: `esmd seed` writes
/// items with it so the stream fills.
pub async fn table_client(c: &DynamoDbStreamsSourceConfig) -> Result<(aws_sdk_dynamodb::Client, String), DynamoDbStreamsError> {
    let arn = StreamArn::parse(&c.stream_arn).map_err(|e| DynamoDbStreamsError::Config(format!("stream_arn: {e}")))?;
    let region = c.region.clone().unwrap_or(arn.region);
    let client = AwsClientConfig::new(Some(region), c.endpoint_url.clone());
    Ok((aws_sdk_dynamodb::Client::new(&client.load().await), arn.table))
}

/// Builds the source; connects on first use.
pub fn dynamodb_streams_source(options: DynamoDbStreamsOptions) -> Result<DynamoDbStreamsSource, DynamoDbStreamsError> {
    let c = &options.config;
    let arn = StreamArn::parse(&c.stream_arn).map_err(|e| DynamoDbStreamsError::Config(format!("stream_arn: {e}")))?;
    let region = c.region.clone().unwrap_or(arn.region);
    let encoding = Arc::new(DynamoDbEncoding::new(&region, &c.stream_arn));
    let client = AwsClientConfig::new(Some(region), c.endpoint_url.clone()).with_sdk(options.sdk);
    let api = DynamoDbStreamsApi::new(client, c.stream_arn.clone(), encoding.clone());
    let source_options = StreamSourceOptions {
        kind: "dynamodb_streams",
        idle_poll_interval: options.idle_poll_interval,
        discovery_interval: options.discovery_interval,
        reader: options.reader,
    };
    Ok(StreamSource::new(api, encoding, source_options))
}
