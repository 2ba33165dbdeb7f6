//! What every AWS-backed part of esmd shares.
//!
//! - [`AwsClientConfig`]: the one place an SDK configuration is built (region, endpoint
//!   override, the default credential chain, behaviour version). The SQS, Kinesis and DynamoDB
//!   Streams connectors, the SQS/SNS/S3 failure destinations, the Lambda invoker and the
//!   DynamoDB lease store all build their clients on it.
//! - [`LazyClient`]: a client made on first use (sources are built synchronously, the SDK's
//!   credential chain is async).
//! - [`retry`]: which SDK errors are worth retrying, and a call retried on them.
//! - [`stream`]: shard polling shared by the Kinesis and DynamoDB Streams connectors.
//!
//! It is not a connector: connectors depend on it and on `esmd-api`, never on each other.

#![forbid(unsafe_code)]

mod client;
pub mod retry;
pub mod stream;

pub use aws_config::SdkConfig;
pub use client::{all_pages, check_endpoint_url, check_region, AwsClientConfig, LazyClient, NoRegion, EMULATOR_REGION};
