//! Invokers: how esmd calls a function with a batch.
//!
//! The engine only sees [`Invoker`]. What counts as a function error, a throttle or an error
//! before the function ran is decided here, per protocol, so retries are accounted the way AWS
//! accounts them (throttles and pre-function errors never use up retry attempts).

use async_trait::async_trait;
use bytes::Bytes;
use std::time::Duration;

pub mod http;
pub mod lambda;
pub mod paced;
pub mod response;

/// What came back from a function that ran.
#[derive(Clone, Debug)]
pub struct InvokeResponse {
    /// HTTP status of the invoke (Lambda: 200 even for function errors).
    pub status_code: u16,
    /// `X-Amz-Executed-Version`, `$LATEST` where the protocol has none.
    pub executed_version: String,
    /// `Some("Unhandled")` (or the function's own error type) when the function failed.
    pub function_error: Option<String>,
    /// The function's response body.
    pub body: Bytes,
}

/// The invoke did not reach a running function, or was refused before it ran.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// 429 / TooManyRequests / 503: try again later; does not count as an attempt.
    #[error("throttled{}", .retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    Throttled { retry_after: Option<Duration> },
    /// Connection refused, DNS, TLS, service 5xx before the function ran: does not count as an
    /// attempt.
    #[error("invoke failed before the function ran: {0}")]
    Unavailable(String),
    /// The request itself is wrong (payload too large, function not found, access denied):
    /// retrying the same batch cannot succeed.
    #[error("invoke rejected: {0}")]
    Rejected(String),
}

#[async_trait]
pub trait Invoker: Send + Sync {
    /// Calls the function synchronously with one event.
    async fn invoke(&self, payload: Bytes) -> Result<InvokeResponse, InvokeError>;

    /// The function's ARN as failure records show it (`requestContext.functionArn`).
    fn function_arn(&self) -> &str;

    /// The largest event this invoker accepts (Lambda: 6 MB).
    fn max_payload_bytes(&self) -> usize {
        6 * 1024 * 1024
    }
}

/// What every invoker checks before sending: the payload fits the limit (an oversized event
/// is never sent), and a concurrency slot is free. The permit is held until the function has
/// answered.
pub(crate) async fn admit<'a>(
    permits: &'a tokio::sync::Semaphore,
    payload: &Bytes,
    limit: usize,
) -> Result<tokio::sync::SemaphorePermit<'a>, InvokeError> {
    if payload.len() > limit {
        return Err(InvokeError::Rejected(format!("payload of {} bytes exceeds the {limit} byte limit", payload.len())));
    }
    // The invokers never close their semaphore, so acquiring cannot fail in practice.
    permits.acquire().await.map_err(|_| InvokeError::Unavailable("invoker is shut down".to_owned()))
}
