//! The SDK client for one queue, and what its errors mean to the engine.

use crate::config::{QueueUrl, SqsSourceConfig};
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use esmd_api::{ErrorKind, SourceError};
use esmd_aws::AwsClientConfig;
use std::time::Duration;

/// A long poll waits 20 s; the request may take that plus the network.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(35);

#[derive(Debug, thiserror::Error)]
pub enum SqsSetupError {
    #[error("source.queue_url: {0}")]
    QueueUrl(String),
    #[error("source.region: {0}")]
    NoRegion(#[from] esmd_aws::NoRegion),
    #[error("source.queue_url = {url:?}: {message}")]
    Queue { url: String, message: String },
}

/// A client for the queue of `config`, with credentials from the SDK's default chain and the
/// same region and endpoint rules as the source (`esmd seed` sends with it).
pub async fn client_for(config: &SqsSourceConfig) -> Result<aws_sdk_sqs::Client, SqsSetupError> {
    build(config, None).await
}

/// Builds the client on `sdk` (credentials, retry policy; default: the SDK's chain), with the
/// region and endpoint the source asks for; the queue URL's region is the fallback.
pub(crate) async fn build(config: &SqsSourceConfig, sdk: Option<&aws_config::SdkConfig>) -> Result<aws_sdk_sqs::Client, SqsSetupError> {
    let url = QueueUrl::parse(&config.queue_url).map_err(SqsSetupError::QueueUrl)?;
    let sdk = AwsClientConfig::new(config.region.clone(), config.endpoint_url.clone())
        .with_sdk(sdk.cloned())
        .resolve(url.region.as_deref(), "the queue URL")
        .await?;
    let client = aws_sdk_sqs::config::Builder::from(&sdk).timeout_config(TimeoutConfig::builder().operation_attempt_timeout(OPERATION_TIMEOUT).build());
    Ok(aws_sdk_sqs::Client::from_conf(client.build()))
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
