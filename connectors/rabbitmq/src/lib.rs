//! RabbitMQ for esmd: one queue consumed with manual acknowledgements.
//!
//! - Messages are acked only after the function succeeded (or a filter dropped them); a failed
//!   message is nacked with requeue (AWS's behaviour), or, beyond AWS, after
//!   `maximum_retry_attempts` sent to an on-failure destination or rejected to the queue's
//!   dead-letter exchange.
//! - Broker restarts and closed channels are waited out with backoff. Unacked messages go back
//!   to the queue by the broker's own rules; esmd never settles a message on a channel other
//!   than the one that delivered it.
//! - Events and their `basicProperties` follow AWS's `aws:rmq` shape ([`RmqEncoding`]).

#![forbid(unsafe_code)]

mod attempts;
mod config;
mod connect;
mod connector;
mod destination;
mod encode;
mod publish;
mod seed;
mod source;
mod uri;

pub use config::{RabbitMqConnection, RabbitMqSourceConfig, Tls};
pub use connect::ConnectError;
pub use connector::{prefetch, RabbitMqConnector};
pub use destination::RabbitMqDestination;
pub use seed::RabbitMqSeeder;
pub use encode::{RawDelivery, RmqEncoding};
pub use lapin;
pub use publish::{PublishError, Publisher};
pub use source::{RabbitMqOptions, RabbitMqSource, SourceSetupError};

/// Whether a log event is one of lapin's frame dumps: lapin traces every frame it sends with
/// its Debug form, and Connection.StartOk's SASL response holds the password (as a list of
/// byte values). `esmd`'s logging drops these events whatever `RUST_LOG` says.
pub fn is_frame_dump(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.target().starts_with("lapin") && ["next_msg", "frame", "frames"].iter().any(|f| metadata.fields().field(f).is_some())
}
