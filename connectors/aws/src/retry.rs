//! Which SDK errors are worth retrying, and a call retried on them (`esmd seed`'s writers,
//! anything that must get through a throttle). `SdkError` and `ProvideErrorMetadata` are the
//! same types in every AWS SDK crate (re-exported from the smithy runtime), so this serves all.

pub use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
pub use aws_smithy_types::error::display::DisplayErrorContext;
pub use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use esmd_api::seed::{retry_delays, TargetError};
use std::future::Future;

/// Error codes of throttling and of the service's own trouble: the call may work later.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "RequestThrottled",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "KMSThrottlingException",
    "InternalFailure",
    "InternalServerError",
    "InternalError",
    "ServiceUnavailable",
];

/// An SDK error whose call may work later: no answer at all, a 429 or 5xx, a throttle code.
pub fn is_transient<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            status == 429 || status >= 500 || s.err().code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    }
}

/// `what: <the error with its whole cause chain>`.
pub fn describe<E, R>(what: &str, e: &SdkError<E, R>) -> TargetError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    TargetError(format!("{what}: {}", DisplayErrorContext(e)))
}

/// Runs `call` until it succeeds, retrying transient errors with backoff.
pub async fn retried<T, E, F, Fut>(what: &str, mut call: F) -> Result<T, TargetError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut delays = retry_delays();
    loop {
        match call().await {
            Ok(out) => return Ok(out),
            Err(e) if is_transient(&e) => match delays.next() {
                Some(delay) => {
                    tracing::warn!(call = what, error = %DisplayErrorContext(&e), retry_in_ms = delay.as_millis() as u64, "transient error; retrying");
                    tokio::time::sleep(delay).await;
                }
                None => return Err(describe(what, &e)),
            },
            Err(e) => return Err(describe(what, &e)),
        }
    }
}
