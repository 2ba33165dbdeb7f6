//! Harness shared by the integration tests: `mod support;` in a test file.
//!
//! - [`function::FunctionServer`]: a real HTTP function on 127.0.0.1 whose answers a test
//!   scripts, recording every request.
//! - [`kafka`]: producing, committed offsets and reading topics with the raw rdkafka client;
//!   [`kafka::Tansu`], an independent Kafka broker on a free port.
//! - [`dynamodb`]: DynamoDB tables with streams on moto (raw JSON requests).
//! - [`kinesis`]: Kinesis streams on moto or kinesis-local ([`kinesis::KinesisLocal`]).
//! - [`moto::MotoServer`]: a moto server (AWS emulator) on a free port, killed on drop.
//! - [`rabbitmq`]: the machine's RabbitMQ (127.0.0.1:5672): queues, publishing, reading back.
//! - [`schema_registry`]: a Confluent-API registry and producers with the registries' real
//!   serializers (Kafka `schema_registry`).
//! - [`tls`]: a test CA and a socat TLS proxy.
//! - [`wait`]: waiting for a condition (`wait_for`, `eventually`, `until`), never a bare sleep.
//!
//! Nothing here talks to anything but 127.0.0.1.

// Every test binary compiles the whole harness and uses a different part of it.
#![allow(dead_code)]

pub mod function;
#[cfg(feature = "dynamodb-streams")]
pub mod dynamodb;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "kinesis")]
pub mod kinesis;
pub mod moto;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "kafka")]
pub mod schema_registry;
pub mod tls;
pub mod wait;
