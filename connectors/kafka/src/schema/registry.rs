//! Where schemas come from: a registry answers "which schema is id N?".

use super::format::{DataFormat, Definition};
use super::wire::SchemaRef;
use async_trait::async_trait;

/// A schema as a registry hands it out.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub format: DataFormat,
    pub definition: Definition,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The registry has no such schema: asking again will not help. The records naming it
    /// follow the failure path.
    #[error("{0}")]
    NotFound(String),
    /// The registry could not answer (down, refused, timed out, rate limited): records wait
    /// and the fetch is tried again.
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Registry: Send + Sync {
    async fn fetch(&self, schema: &SchemaRef) -> Result<Fetched, FetchError>;
    /// For logs: the registry's URL or ARN.
    fn describe(&self) -> &str;
}
