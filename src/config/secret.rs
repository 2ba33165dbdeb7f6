//! A string that never reaches a log line: [`esmd_api::Secret`], shared with connector configs.

pub use esmd_api::Secret;
