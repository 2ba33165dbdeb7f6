//! Validated, resolved settings the engine runs with. `config` builds these from the user's
//! file; tests build them directly.

use esmd_api::StartFrom;
use std::time::Duration;

/// AWS's synchronous invoke payload limit.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct BatchSettings {
    /// `batch_size`.
    pub batch_size: usize,
    /// `maximum_batching_window_in_seconds`, measured from a batch's first record.
    pub window: Duration,
    /// Encoded event bytes at most (6 MB unless lowered).
    pub max_payload_bytes: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings { batch_size: 100, window: Duration::ZERO, max_payload_bytes: MAX_PAYLOAD_BYTES }
    }
}

/// Backoff between retries of a failing batch or an unavailable function.
#[derive(Clone, Debug)]
pub struct RetryBackoff {
    pub min: Duration,
    pub max: Duration,
}

impl Default for RetryBackoff {
    fn default() -> Self {
        RetryBackoff { min: Duration::from_millis(100), max: Duration::from_secs(30) }
    }
}

#[derive(Clone, Debug)]
pub struct StreamSettings {
    pub batch: BatchSettings,
    /// `parallelization_factor`, 1–10.
    pub parallelization_factor: usize,
    /// Where a shard without a checkpoint starts (`starting_position`).
    pub starting_position: StartFrom,
    /// `maximum_record_age_in_seconds`; `None` = -1 (infinite).
    pub maximum_record_age: Option<Duration>,
    /// `maximum_retry_attempts`; `None` = -1 (retry until the record expires).
    pub maximum_retry_attempts: Option<u32>,
    pub bisect_batch_on_function_error: bool,
    /// `function_response_types = ["ReportBatchItemFailures"]`.
    pub report_batch_item_failures: bool,
    /// `tumbling_window_in_seconds`; `None` = 0.
    pub tumbling_window: Option<Duration>,
    pub backoff: RetryBackoff,
    /// `maximum_read_ahead_bytes` (esmd): bytes of records read and not finished, across the
    /// mapping's shards ([`super::read_ahead`]).
    pub read_ahead_bytes: usize,
}

/// The smallest default read-ahead: room for eight full-size events in flight or waiting,
/// whatever the number of shards.
pub const DEFAULT_READ_AHEAD_BYTES: usize = 8 * MAX_PAYLOAD_BYTES;

/// The largest default read-ahead.
const MAX_DEFAULT_READ_AHEAD_BYTES: usize = 512 << 20;

/// The default read-ahead of a mapping: enough for every invocation it may have in flight to
/// be a full batch of 2 KiB records with as many waiting behind them, so a drain of many
/// partitions sends full batches (with 48 MiB, 256 partitions behind got 134 records each, and
/// batches of 1,000 went out with 80); at least [`DEFAULT_READ_AHEAD_BYTES`], at most 512 MiB.
pub fn default_read_ahead(batch_size: usize, max_concurrency: usize) -> usize {
    (2 * max_concurrency * batch_size * 2048).clamp(DEFAULT_READ_AHEAD_BYTES, MAX_DEFAULT_READ_AHEAD_BYTES)
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            batch: BatchSettings::default(),
            parallelization_factor: 1,
            starting_position: StartFrom::TrimHorizon,
            maximum_record_age: None,
            maximum_retry_attempts: None,
            bisect_batch_on_function_error: false,
            report_batch_item_failures: false,
            tumbling_window: None,
            backoff: RetryBackoff::default(),
            read_ahead_bytes: DEFAULT_READ_AHEAD_BYTES,
        }
    }
}

/// What a queue mapping does with a message whose retries are used up (beyond AWS, which
/// always leaves that to the queue's redrive policy).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum QueueExhausted {
    /// Return it to the queue and let the broker's redrive/dead-letter policy decide (AWS).
    #[default]
    Release,
    /// Send a failure record to the on-failure destination, then ack it.
    Destination,
    /// Reject without requeue so the queue's dead-letter exchange takes it.
    DeadLetter,
}

#[derive(Clone, Debug)]
pub struct QueueSettings {
    pub batch: BatchSettings,
    /// `scaling_config.maximum_concurrency`: batches in flight at once.
    pub maximum_concurrency: usize,
    pub report_batch_item_failures: bool,
    /// Deliveries of a message before it counts as exhausted; `None` = no limit (AWS).
    pub maximum_retry_attempts: Option<u32>,
    pub on_exhausted: QueueExhausted,
    /// Longest a receive waits for the first message (SQS long polling: 20 s).
    pub receive_wait: Duration,
    /// Delay before a failed message is visible again, where the source supports it.
    pub release_delay: Option<Duration>,
    pub backoff: RetryBackoff,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            batch: BatchSettings { batch_size: 10, ..Default::default() },
            maximum_concurrency: 5,
            report_batch_item_failures: false,
            maximum_retry_attempts: None,
            on_exhausted: QueueExhausted::Release,
            receive_wait: Duration::from_secs(20),
            release_delay: None,
            backoff: RetryBackoff::default(),
        }
    }
}
