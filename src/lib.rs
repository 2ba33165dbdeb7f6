//! esmd: event source mappings, self-hosted.
//!
//! The engine, invokers, checkpoint stores, admin endpoint and the CLI's commands; the
//! sources are connector crates (`connectors/`), reached through [`connectors`] only.

#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod checkpoint;
pub mod config;
pub mod connectors;
pub mod demo;
pub mod drain;
pub mod destination;
pub mod engine;
pub mod import;
pub mod invoke;
pub mod lease;
pub mod metrics;
pub mod seed;
pub mod status;
pub mod supervisor;
