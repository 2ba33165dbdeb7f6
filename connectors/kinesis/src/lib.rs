//! Kinesis Data Streams for esmd.
//!
//! Every shard is a worker of the engine's ordered-log machinery: shards come from ListShards
//! (all pages, at start and every `discovery_interval`), with their parents so a child starts
//! only after its parents are read to their end. Readers poll GetRecords while behind and wait
//! about a second once caught up, as Lambda does. Records become AWS's `aws:kinesis` event
//! records (the shape lives in `esmd_api::kinesis`, shared with the in-memory stream).

#![forbid(unsafe_code)]

mod api;
mod config;
mod connector;
mod seed;

pub use api::KinesisApi;
pub use aws_sdk_kinesis;
pub use config::{valid_stream_name, KinesisSourceConfig, StreamArn};
pub use connector::KinesisConnector;
pub use esmd_aws::stream::{sequence_cmp, ReaderOptions};
pub use seed::KinesisSeeder;

use esmd_api::kinesis::KinesisEncoding;
use esmd_aws::stream::{StreamSource, StreamSourceOptions};
use esmd_aws::AwsClientConfig;
use std::sync::Arc;
use std::time::Duration;

/// A Kinesis stream as the engine reads it.
pub type KinesisSource = StreamSource<KinesisApi>;

/// Lambda polls a Kinesis shard about once a second when there is nothing new.
pub const IDLE_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often new shards (after a split or merge) are looked for.
pub const DISCOVERY_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    #[error("source: {0}")]
    Config(String),
}

pub struct KinesisOptions {
    pub config: KinesisSourceConfig,
    /// `[aws] region` and `account`: the stream ARN of a stream named without one.
    pub region: String,
    pub account: String,
    /// A ready SDK configuration (tests, explicit credentials); default: the SDK's chain.
    pub sdk: Option<esmd_aws::SdkConfig>,
    pub reader: ReaderOptions,
    pub idle_poll_interval: Duration,
    pub discovery_interval: Duration,
}

impl KinesisOptions {
    pub fn new(config: KinesisSourceConfig, region: &str, account: &str) -> Self {
        KinesisOptions {
            config,
            region: region.into(),
            account: account.into(),
            sdk: None,
            reader: ReaderOptions::default(),
            idle_poll_interval: IDLE_POLL_INTERVAL,
            discovery_interval: DISCOVERY_INTERVAL,
        }
    }
}

/// The stream's name and region: the config's region, else the ARN's, else `default_region`
/// (`[aws] region`).
fn name_and_region(c: &KinesisSourceConfig, default_region: &str) -> Result<(Option<StreamArn>, String, String), KinesisError> {
    let arn = c.stream_arn.as_deref().map(StreamArn::parse).transpose().map_err(|e| KinesisError::Config(format!("stream_arn: {e}")))?;
    let name = c.name().ok_or_else(|| KinesisError::Config("stream_arn or stream_name is required".into()))?;
    let region = c.region.clone().or_else(|| arn.as_ref().map(|a| a.region.clone())).unwrap_or_else(|| default_region.to_string());
    Ok((arn, name, region))
}

/// A client for the source's stream (region, endpoint and credentials as the source uses
/// them) and the stream's name: `esmd seed` writes with it.
pub async fn producer_client(c: &KinesisSourceConfig, default_region: &str) -> Result<(aws_sdk_kinesis::Client, String), KinesisError> {
    let (_, name, region) = name_and_region(c, default_region)?;
    let client = AwsClientConfig::new(Some(region), c.endpoint_url.clone());
    Ok((aws_sdk_kinesis::Client::new(&client.load().await), name))
}

/// Builds the source; connects on first use.
pub fn kinesis_source(options: KinesisOptions) -> Result<KinesisSource, KinesisError> {
    let c = &options.config;
    let (arn, name, region) = name_and_region(c, &options.region)?;
    let account = arn.as_ref().map_or_else(|| options.account.clone(), |a| a.account.clone());
    let stream_arn = c.stream_arn.clone().unwrap_or_else(|| format!("arn:aws:kinesis:{region}:{account}:stream/{name}"));
    let encoding = Arc::new(KinesisEncoding::for_stream(&region, &stream_arn, &format!("arn:aws:iam::{account}:role/esmd")));
    let client = AwsClientConfig::new(Some(region), c.endpoint_url.clone()).with_sdk(options.sdk);
    let api = KinesisApi::new(client, name, encoding.clone());
    let source_options = StreamSourceOptions {
        kind: "kinesis",
        idle_poll_interval: options.idle_poll_interval,
        discovery_interval: options.discovery_interval,
        reader: options.reader,
    };
    Ok(StreamSource::new(api, encoding, source_options))
}
