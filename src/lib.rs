//! esmd: event source mappings, self-hosted.
pub mod admin;
pub mod app;
pub mod checkpoint;
pub mod config;
pub mod demo;
pub mod drain;
pub mod destination;
pub mod engine;
pub mod invoke;
pub mod metrics;
pub mod seed;
pub mod status;
pub mod supervisor;
