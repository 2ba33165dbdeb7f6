//! On-failure destinations: where a batch goes when esmd gives up on it. The trait and the
//! failure are `esmd_api::destination`'s; this module holds the destinations any mapping can
//! use whatever its source (a file, SQS, SNS, S3), and the failure record's AWS shape. A
//! broker's own destination (`kafka://`, `rabbitmq://`) comes with its connector.

pub use esmd_api::destination::{Destination, DestinationError, Failure};

pub mod aws;
pub mod file;
pub mod record;
pub mod s3;
pub mod sns;
pub mod sqs;
