//! The SDK client for one queue, and what its errors mean to the engine.

use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Region};
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use crate::config::{QueueUrl, SqsSourceConfig};
use esmd_api::{ErrorKind, SourceError};
use std::time::Duration;

/// Region used with an endpoint override when none is known: emulators accept any region, but
/// requests must be signed with one.
const EMULATOR_REGION: &str = "us-east-1";
/// A long poll waits 20 s; the request may take that plus the network.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(35);

#[derive(Debug, thiserror::Error)]
pub enum SqsSetupError {
    #[error("source.queue_url: {0}")]
    QueueUrl(String),
    #[error("source.region: no region configured, in the environment, or in the queue URL")]
    NoRegion,
    #[error("source.queue_url = {url:?}: {message}")]
    Queue { url: String, message: String },
}

/// A client for the queue of `config`, with credentials from the SDK's default chain and the
/// same region and endpoint rules as the source (`esmd seed` sends with it).
pub async fn client_for(config: &SqsSourceConfig) -> Result<aws_sdk_sqs::Client, SqsSetupError> {
    let url = QueueUrl::parse(&config.queue_url).map_err(SqsSetupError::QueueUrl)?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    build(&loader.load().await, config.region.as_deref(), url.region.as_deref(), config.endpoint_url.as_deref())
}

/// Builds the client on `sdk` (credentials, retry policy), with the region and endpoint the
/// source asks for.
pub(crate) fn build(
    sdk: &aws_config::SdkConfig,
    region: Option<&str>,
    url_region: Option<&str>,
    endpoint_url: Option<&str>,
) -> Result<aws_sdk_sqs::Client, SqsSetupError> {
    let emulator = endpoint_url.is_some() || sdk.endpoint_url().is_some();
    let region = region
        .map(str::to_owned)
        .or_else(|| sdk.region().map(|r| r.to_string()))
        .or_else(|| url_region.map(str::to_owned))
        .or_else(|| emulator.then(|| EMULATOR_REGION.to_owned()))
        .ok_or(SqsSetupError::NoRegion)?;
    let mut config = aws_sdk_sqs::config::Builder::from(sdk)
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(OPERATION_TIMEOUT).build());
    if let Some(url) = endpoint_url {
        config = config.endpoint_url(url);
    }
    Ok(aws_sdk_sqs::Client::from_conf(config.build()))
}

/// Turns an SDK error into a [`SourceError`] the engine can act on.
pub fn classify<E, R>(what: &str, e: SdkError<E, R>) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = e.code().unwrap_or_default().to_owned();
    let kind = match (&e, code.as_str()) {
        (_, "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" | "AWS.SimpleQueueService.QueueDeletedRecently") => {
            ErrorKind::NotFound
        }
        (
            _,
            "AccessDenied" | "AccessDeniedException" | "InvalidClientTokenId" | "UnrecognizedClientException" | "SignatureDoesNotMatch"
            | "InvalidSecurity" | "KMS.AccessDeniedException",
        ) => ErrorKind::Fatal,
        (_, "RequestThrottled" | "ThrottlingException" | "OverLimit" | "KMS.ThrottlingException") => ErrorKind::Throttled,
        _ => ErrorKind::Transient,
    };
    SourceError::new(kind, format!("{what}: {}", DisplayErrorContext(&e)))
}
