//! Counts a connector keeps about its own work, for the mapping's metrics. The engine owns the
//! metric names ([`SourceCount`] maps to them in `src/metrics`); a connector only counts.

use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceCount {
    /// Schemas asked of a schema registry (Kafka `schema_registry`).
    SchemaFetches,
    /// Of those, the ones the registry could not answer (records waited).
    SchemaFetchErrors,
    /// Keys and values decoded with a schema already fetched.
    SchemaCacheHits,
    /// Keys and values their schema could not decode or validate (records sent to the
    /// on-failure destination).
    SchemaDecodeFailures,
}

pub trait SourceCounters: Send + Sync + std::fmt::Debug {
    fn add(&self, what: SourceCount, n: u64);
}

/// Counts nothing: sources built outside a running mapping (benches, tests, the demo).
#[derive(Debug)]
pub struct NoCounters;

impl SourceCounters for NoCounters {
    fn add(&self, _what: SourceCount, _n: u64) {}
}

pub fn no_counters() -> Arc<dyn SourceCounters> {
    Arc::new(NoCounters)
}
