//! esmd: event source mappings, self-hosted.
pub mod checkpoint;
pub mod destination;
pub mod engine;
pub mod invoke;
pub mod metrics;
pub mod status;
