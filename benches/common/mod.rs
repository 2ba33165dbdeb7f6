//! What the benches share: the no-op function, arguments, the runtime and the tables; plus each
//! measurement as a function, so a drain bench's `main` is a thin wrapper and `benches/suite.rs`
//! can run them all in one process and print one table.
//!
//! Cargo does not make `benches/common/mod.rs` a bench target (only `benches/*.rs` and
//! `benches/*/main.rs`); each bench includes it with `mod common;`.

// Every bench uses only part of this module.
#![allow(dead_code)]

#[path = "../../tests/support/moto.rs"]
pub mod moto;

pub mod args;
pub mod function;
pub mod latency;
pub mod process;
pub mod table;

#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "kinesis")]
pub mod kinesis;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "sqs")]
pub mod sqs;

/// A multi-threaded runtime, as `esmd run` uses.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}
