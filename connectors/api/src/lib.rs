//! The seam between esmd's engine and its connectors.
//!
//! A connector turns a broker's records into [`Record`]s, tells the engine about its shards
//! ([`OrderedSource`]) or hands out messages ([`QueueSource`]), and knows how AWS shapes the event
//! for its source ([`EventEncoder`]). The engine knows nothing else about a source.

mod encode;
mod error;
pub mod json;
pub mod kinesis;
mod record;
mod secret;
mod source;
pub mod time;

pub use encode::{write_fragments, EventEncoder, ExtraFields};
pub use error::{ErrorKind, SourceError};
pub use record::{ItemId, Position, Record, ShardId};
pub use secret::Secret;
pub use source::{OrderedSource, QueueSource, ReadBatch, ShardInfo, ShardReader, StartFrom};
