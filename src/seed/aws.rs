//! What the AWS seeders share: which SDK errors are worth retrying, and a call retried on them.
//! `SdkError` and `ProvideErrorMetadata` are the same types in every AWS SDK crate (re-exported
//! from the smithy runtime); they are named here through aws-sdk-sqs, which esmd always has.

use super::{retry_delays, TargetError};
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
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

pub(super) fn is_transient<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            status == 429 || status >= 500 || s.err().code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    }
}

pub(super) fn describe<E>(what: &str, e: &SdkError<E>) -> TargetError
where
    E: std::error::Error + Send + Sync + 'static,
{
    TargetError(format!("{what}: {}", DisplayErrorContext(e)))
}

/// Runs `call` until it succeeds, retrying transient errors with backoff.
pub(super) async fn retried<T, E, F, Fut>(what: &str, mut call: F) -> Result<T, TargetError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E>>>,
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
