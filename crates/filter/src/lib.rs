//! The AWS EventBridge event-pattern language, as Lambda event source mappings use it for
//! `FilterCriteria`.
//!
//! ```
//! use esmd_filter::Pattern;
//! let p = Pattern::compile(r#"{"detail": {"state": [{"anything-but": "initializing"}]}}"#).unwrap();
//! assert!(p.matches(&serde_json::json!({"detail": {"state": "running"}})));
//! ```
//!
//! Patterns are validated like AWS validates them (messages use AWS's wording) and compiled
//! once; matching then walks the event in place without allocating.
//!
//! Layout: `json` reads the pattern text, `flatten` applies AWS's structure rules and
//! expands `$or`, `ops` compiles each field's value list, `complexity` applies AWS's
//! wildcard limit, `tree` matches one alternative against an event.

#![forbid(unsafe_code)]

mod complexity;
mod criteria;
mod error;
mod flatten;
mod json;
mod ops;
mod pattern;
mod strset;
mod tree;
mod vector;

pub use criteria::{FilterCriteria, MAX_PATTERNS, MAX_PATTERN_CHARS};
pub use error::FilterError;
pub use pattern::Pattern;
pub use vector::{parse_vector_file, test_event_pattern, TestOutcome};
