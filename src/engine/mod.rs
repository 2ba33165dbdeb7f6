//! The source-agnostic core: batching, lanes, invoking, failure handling, checkpoints.
pub mod batcher;
pub mod bisect;
pub mod call;
pub mod context;
pub mod give_up;
pub mod lanes;
pub mod queue;
pub mod read_ahead;
pub mod run_batch;
pub mod settings;
pub mod stream;
pub mod watermark;
pub mod window;
