use std::error::Error as StdError;

/// What a caller can do about a [`SourceError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Network blip, broker restarting, 5xx: retry with backoff.
    Transient,
    /// The source asked us to slow down (ProvisionedThroughputExceeded, LimitExceeded).
    Throttled,
    /// A shard iterator or consumer session expired: reopen from the checkpoint.
    IteratorExpired,
    /// The requested position is no longer retained: reopen at the oldest record.
    Trimmed,
    /// The shard or queue does not exist (any more).
    NotFound,
    /// The shard was handed to another consumer (Kafka rebalance): stop reading it, without
    /// an error. Its next owner continues from the committed position.
    Revoked,
    /// Credentials, permissions, bad configuration: retrying will not help.
    Fatal,
}

/// An error from a connector, typed so the engine knows whether to retry.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub kind: ErrorKind,
    pub message: String,
    #[source]
    pub cause: Option<Box<dyn StdError + Send + Sync>>,
}

impl SourceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SourceError { kind, message: message.into(), cause: None }
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Fatal, message)
    }
    pub fn with_cause(mut self, cause: impl StdError + Send + Sync + 'static) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }
    /// Whether trying again (after a backoff, possibly reopening) can succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self.kind, ErrorKind::Fatal | ErrorKind::NotFound | ErrorKind::Revoked)
    }
}
