//! What every worker of one mapping shares.

use crate::destination::Destination;
use crate::invoke::Invoker;
use crate::metrics::MappingMetrics;
use crate::status::MappingHandle;
use esmd_api::EventEncoder;
use serde_json::Value;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A compiled filter: does a record's filter target match? (`FilterCriteria` implements it.)
pub trait RecordFilter: Send + Sync {
    fn matches(&self, target: &Value) -> bool;
}

#[derive(Clone)]
pub struct MappingCtx {
    pub name: String,
    pub invoker: Arc<dyn Invoker>,
    pub encoder: Arc<dyn EventEncoder>,
    pub destination: Option<Arc<dyn Destination>>,
    pub filter: Option<Arc<dyn RecordFilter>>,
    pub metrics: MappingMetrics,
    pub status: MappingHandle,
    /// Fires on shutdown: stop reading, start no new batch, stop retrying.
    pub shutdown: CancellationToken,
}

impl MappingCtx {
    /// Whether a record passes the mapping's filter (no filter: everything passes). A record
    /// whose data the source cannot turn into a filter target never matches.
    pub fn keep(&self, record: &esmd_api::Record) -> bool {
        match &self.filter {
            None => true,
            Some(f) => self.encoder.filter_target(record).is_some_and(|t| f.matches(&t)),
        }
    }
}

impl RecordFilter for esmd_filter::FilterCriteria {
    fn matches(&self, target: &Value) -> bool {
        esmd_filter::FilterCriteria::matches(self, target)
    }
}
