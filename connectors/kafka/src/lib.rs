//! Kafka for esmd: a topic read by a consumer group, each assigned partition a shard of the
//! ordered-log engine.
//!
//! - Offsets are committed to the group only for finished records (auto-commit and the offset
//!   store are off). The group's committed offsets are the checkpoint: they win over the
//!   starting position and over esmd's local store.
//! - On a rebalance the revoked partitions' readers stop, what is finished is committed
//!   synchronously, and in-flight batches that finish later are not committed: the next owner
//!   may deliver them again (at least once), never skip them.
//! - Records with the same key keep their order under `parallelization_factor`; records
//!   without a key all share one lane, in offset order.
//! - Events, partial-batch identifiers and failure records follow AWS's Kafka shapes
//!   ([`KafkaEncoding`]).

// One FFI call (librdkafka's cached watermarks, `source.rs`) is allowed where it stands.
#![deny(unsafe_code)]

mod config;
mod connector;
mod convert;
mod destination;
mod encode;
mod group;
mod inbox;
pub mod mock;
mod producer;
mod router;
pub mod schema;
mod seed;
mod source;

pub use config::{KafkaSourceConfig, Sasl, SaslMechanism, Tls};
pub use connector::KafkaConnector;
pub use destination::KafkaDestination;
/// The client this connector is built on, for tests and benches that produce or inspect
/// offsets with it (so they need no librdkafka of their own, and none without this crate).
pub use rdkafka;
pub use seed::KafkaSeeder;
pub use encode::{offset_of, partition_name, EventSource, KafkaEncoding, Part, RawMessage, SchemaParts};
pub use producer::{FailureProducer, ProducerError};
pub use source::{KafkaOptions, KafkaReader, KafkaSource};
