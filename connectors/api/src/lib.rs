//! The seam between esmd's engine and its connectors.
//!
//! A connector turns a broker's records into [`Record`]s, tells the engine about its shards
//! ([`OrderedSource`]) or hands out messages ([`QueueSource`]), and knows how AWS shapes the event
//! for its source ([`EventEncoder`]). The engine knows nothing else about a source.
//!
//! A connector crate also exports a [`connector::Connector`]: the factory the service's
//! wiring table asks for its config section, its source, its broker's failure destination,
//! its `esmd seed` writer and its embedded demo backlog. The AWS shapes that more than one
//! connector writes (Kinesis records, SQS records) live here too.

#![forbid(unsafe_code)]

pub mod config;
pub mod connector;
mod counters;
pub mod destination;
mod encode;
mod error;
pub mod json;
pub mod kinesis;
pub mod profile;
mod record;
mod secret;
pub mod seed;
mod source;
pub mod sqs;
pub mod time;

pub use counters::{no_counters, NoCounters, SourceCount, SourceCounters};
pub use encode::{write_fragments, EventEncoder, ExtraFields};
pub use error::{ErrorKind, SourceError};
pub use record::{Invalid, InvalidReason, ItemId, Position, Record, ShardId};
pub use secret::Secret;
pub use source::{OrderedSource, QueueSource, ReadBatch, ShardInfo, ShardReader, StartFrom};
