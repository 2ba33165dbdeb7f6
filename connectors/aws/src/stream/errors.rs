//! AWS error codes of Kinesis and DynamoDB Streams, sorted by what the engine does about them.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use esmd_api::{ErrorKind, SourceError};

/// Which call failed: the same code means different things for different calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    ListShards,
    ShardIterator,
    GetRecords,
}

/// The engine's reading of an AWS error code (`None`: no answer from the service at all, a
/// timeout or a dropped connection).
pub fn classify(call: Call, code: Option<&str>) -> ErrorKind {
    let Some(code) = code else { return ErrorKind::Transient };
    match code {
        "ExpiredIteratorException" => ErrorKind::IteratorExpired,
        "TrimmedDataAccessException" => ErrorKind::Trimmed,
        // A shard past the retention period is gone: for a reader, its data was trimmed.
        "ResourceNotFoundException" if call != Call::ListShards => ErrorKind::Trimmed,
        "ResourceNotFoundException" => ErrorKind::NotFound,
        "ProvisionedThroughputExceededException" | "LimitExceededException" | "KMSThrottlingException" | "ThrottlingException" | "RequestLimitExceeded" | "Throttling" => {
            ErrorKind::Throttled
        }
        "AccessDeniedException" | "UnrecognizedClientException" | "InvalidSignatureException" | "MissingAuthenticationToken" | "KMSAccessDeniedException" | "KMSDisabledException"
        | "KMSNotFoundException" | "KMSInvalidStateException" | "KMSOptInRequired" | "ValidationException" | "InvalidArgumentException" => ErrorKind::Fatal,
        // InternalFailure, ServiceUnavailable, ResourceInUse (a reshard in progress), ...
        _ => ErrorKind::Transient,
    }
}

/// An SDK error (any AWS SDK crate: they share the runtime) as the engine needs it: its kind
/// from the AWS error code, the message with the whole cause chain.
pub fn source_error<E, R>(call: Call, what: &str, e: SdkError<E, R>) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let kind = match &e {
        SdkError::ConstructionFailure(_) => ErrorKind::Fatal,
        _ => classify(call, e.code()),
    };
    SourceError::new(kind, format!("{what}: {}", DisplayErrorContext(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_by_call() {
        assert_eq!(classify(Call::GetRecords, Some("ExpiredIteratorException")), ErrorKind::IteratorExpired);
        assert_eq!(classify(Call::GetRecords, Some("ProvisionedThroughputExceededException")), ErrorKind::Throttled);
        assert_eq!(classify(Call::ListShards, Some("LimitExceededException")), ErrorKind::Throttled);
        assert_eq!(classify(Call::ShardIterator, Some("TrimmedDataAccessException")), ErrorKind::Trimmed);
        assert_eq!(classify(Call::GetRecords, Some("ResourceNotFoundException")), ErrorKind::Trimmed);
        assert_eq!(classify(Call::ListShards, Some("ResourceNotFoundException")), ErrorKind::NotFound);
        assert_eq!(classify(Call::GetRecords, Some("AccessDeniedException")), ErrorKind::Fatal);
        assert_eq!(classify(Call::GetRecords, Some("InternalFailure")), ErrorKind::Transient);
        assert_eq!(classify(Call::GetRecords, None), ErrorKind::Transient);
    }
}
