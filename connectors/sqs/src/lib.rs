//! Amazon SQS for esmd: one queue, long-polled, messages deleted only after the function ran.
//!
//! - Receives long-poll (up to 20 s) so an idle mapping costs one request per 20 s; while
//!   messages wait, more receives run at once ([`scale::Pollers`]), up to the mapping's
//!   `scaling_config.maximum_concurrency`.
//! - Success deletes (DeleteMessageBatch); a failed message is left alone so it comes back
//!   after the queue's visibility timeout and the queue's redrive policy applies (AWS's
//!   behaviour). Long batches get their visibility extended by the engine.
//! - FIFO queues: SQS itself hands out no message of a group that has messages in flight, so
//!   one group never has two batches at once and its failed messages come back first.
//! - Events are AWS's `aws:sqs` records, written by the same encoder as esmd's in-memory queue
//!   ([`esmd_api::sqs::SqsEncoding`]).

#![forbid(unsafe_code)]

mod client;
mod config;
mod connector;
mod message;
mod scale;
mod seed;
mod source;

pub use client::{classify, client_for, SqsSetupError};
pub use config::{QueueUrl, SqsSourceConfig};
pub use connector::SqsConnector;
pub use message::record_from_message;
pub use scale::Pollers;
pub use seed::SqsSeeder;
pub use source::{SqsOptions, SqsSource};
