//! Every metric esmd exports: names, labels and help in one place.
//!
//! Engine code records through [`MappingMetrics`] and never names a metric itself. Every series
//! carries the labels `mapping` (the mapping's name) and `source` (the source kind, e.g.
//! `kinesis`, `sqs`, `kafka`). Shard ids are never labels: their number is unbounded (Kinesis
//! resharding, Kafka partitions), so per-shard values are folded into max/sum gauges here.
//!
//! AWS's event source mapping metric set maps one-to-one:
//!
//! | esmd (Prometheus)                                    | Type      | CloudWatch (AWS/Lambda)                                                       |
//! |------------------------------------------------------|-----------|-------------------------------------------------------------------------------|
//! | `esmd_invocations_total`                             | counter   | Invocations                                                                   |
//! | `esmd_errors_total`                                  | counter   | Errors (function errors)                                                      |
//! | `esmd_throttles_total`                               | counter   | Throttles                                                                     |
//! | `esmd_duration_seconds`                              | histogram | Duration (CloudWatch in ms, esmd in s)                                        |
//! | `esmd_concurrent_executions`                         | gauge     | ConcurrentExecutions                                                          |
//! | `esmd_polled_events_total`                           | counter   | PolledEventCount                                                              |
//! | `esmd_filtered_out_events_total`                     | counter   | FilteredOutEventCount                                                         |
//! | `esmd_invoked_events_total`                          | counter   | InvokedEventCount (retries count again)                                       |
//! | `esmd_failed_invoke_events_total`                    | counter   | FailedInvokeEventCount                                                        |
//! | `esmd_dropped_events_total`                          | counter   | DroppedEventCount                                                             |
//! | `esmd_on_failure_destination_delivered_events_total` | counter   | OnFailureDestinationDeliveredEventCount                                       |
//! | `esmd_destination_delivery_failures_total`           | counter   | DestinationDeliveryFailures; Kafka: OnFailureDestinationDeliveryErrorCount    |
//! | `esmd_deleted_events_total`                          | counter   | DeletedEventCount (queues)                                                    |
//! | `esmd_committed_events_total`                        | counter   | CommittedEventCount (Kafka)                                                   |
//! | `esmd_iterator_age_milliseconds`                     | gauge     | IteratorAge (max over the mapping's shards)                                   |
//! | `esmd_offset_lag`                                    | gauge     | OffsetLag / SumOffsetLag (sum over the mapping's shards)                      |
//! | `esmd_max_offset_lag`                                | gauge     | MaxOffsetLag                                                                  |
//! | `esmd_queue_backlog`                                 | gauge     | none (SQS ApproximateNumberOfMessages: messages waiting in a queue source)     |
//! | `esmd_polling_errors_total`                          | counter   | PollingErrorCount (Kafka)                                                     |
//! | `esmd_commit_errors_total`                           | counter   | CommitErrorCount (Kafka)                                                      |
//! | `esmd_invoke_unavailable_total`                      | counter   | InvokeErrorCount (Kafka; the invoke itself failed: unreachable, timeout, 5xx) |
//! | `esmd_bisections_total`                              | counter   | none (esmd only: batches split by BisectBatchOnFunctionError)                 |
//! | `esmd_trimmed_reads_total`                           | counter   | none (esmd only: Kinesis/DynamoDB data expired before it was read)            |
//! | `esmd_schema_fetches_total`                          | counter   | none (Kafka schema registry: schemas asked of the registry)                   |
//! | `esmd_schema_fetch_errors_total`                     | counter   | none (of those, unanswered: records waited)                                   |
//! | `esmd_schema_cache_hits_total`                       | counter   | none (keys and values decoded with a schema already fetched)                  |
//! | `esmd_schema_decode_failures_total`                  | counter   | none (keys and values their schema could not decode or validate)              |
//!
//! Call [`install_recorder`] before serving `/metrics`; it also registers the help text
//! ([`describe`]).

pub mod tally;

use metrics::{describe_counter, describe_gauge, describe_histogram, Label, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tally::{Tally, TallySnapshot};
use std::time::Duration;

pub const INVOCATIONS: &str = "esmd_invocations_total";
pub const ERRORS: &str = "esmd_errors_total";
pub const THROTTLES: &str = "esmd_throttles_total";
pub const DURATION: &str = "esmd_duration_seconds";
pub const CONCURRENT_EXECUTIONS: &str = "esmd_concurrent_executions";
pub const POLLED_EVENTS: &str = "esmd_polled_events_total";
pub const FILTERED_OUT_EVENTS: &str = "esmd_filtered_out_events_total";
pub const INVOKED_EVENTS: &str = "esmd_invoked_events_total";
pub const FAILED_INVOKE_EVENTS: &str = "esmd_failed_invoke_events_total";
pub const DROPPED_EVENTS: &str = "esmd_dropped_events_total";
pub const DESTINATION_DELIVERED_EVENTS: &str = "esmd_on_failure_destination_delivered_events_total";
pub const DESTINATION_DELIVERY_FAILURES: &str = "esmd_destination_delivery_failures_total";
pub const DELETED_EVENTS: &str = "esmd_deleted_events_total";
pub const COMMITTED_EVENTS: &str = "esmd_committed_events_total";
pub const ITERATOR_AGE: &str = "esmd_iterator_age_milliseconds";
pub const OFFSET_LAG: &str = "esmd_offset_lag";
pub const MAX_OFFSET_LAG: &str = "esmd_max_offset_lag";
pub const QUEUE_BACKLOG: &str = "esmd_queue_backlog";
pub const BISECTIONS: &str = "esmd_bisections_total";
pub const TRIMMED_READS: &str = "esmd_trimmed_reads_total";
pub const POLLING_ERRORS: &str = "esmd_polling_errors_total";
pub const COMMIT_ERRORS: &str = "esmd_commit_errors_total";
pub const INVOKE_UNAVAILABLE: &str = "esmd_invoke_unavailable_total";
pub const SCHEMA_FETCHES: &str = "esmd_schema_fetches_total";
pub const SCHEMA_FETCH_ERRORS: &str = "esmd_schema_fetch_errors_total";
pub const SCHEMA_CACHE_HITS: &str = "esmd_schema_cache_hits_total";
pub const SCHEMA_DECODE_FAILURES: &str = "esmd_schema_decode_failures_total";
/// Fleets (a DynamoDB lease table): leases this instance holds, takes and loses.
pub const LEASES_HELD: &str = "esmd_leases_held";
pub const LEASE_TAKEOVERS: &str = "esmd_lease_takeovers_total";
pub const LEASE_LOST: &str = "esmd_lease_lost_total";

/// Bucket bounds for [`DURATION`], in seconds: from a few ms up to Lambda's 15-minute limit.
const DURATION_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0];

/// How often histogram samples are folded into buckets when nobody scrapes; bounds their memory.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("prometheus recorder: {0}")]
    Build(#[from] metrics_exporter_prometheus::BuildError),
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static INSTALL: Mutex<()> = Mutex::new(());

/// Installs the Prometheus recorder as the process-wide `metrics` recorder and registers every
/// metric's description. Idempotent: later calls return the first call's handle, so tests in
/// one binary can each call it.
///
/// Fails if some other recorder was installed globally first.
pub fn install_recorder() -> Result<PrometheusHandle, MetricsError> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    // OnceLock has no stable fallible init; the mutex makes racing first calls install once.
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        // Without buckets the exporter renders histograms as summaries; Duration should be
        // aggregatable across instances, which only real buckets are.
        .set_buckets_for_metric(Matcher::Full(DURATION.to_string()), DURATION_BUCKETS)?
        .install_recorder()?;
    describe();
    // install_recorder() leaves upkeep to the caller; without it histogram samples pile up
    // until a scrape. A plain thread so it works with or without a tokio runtime; it lives as
    // long as the process, like the recorder.
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new().name("esmd-metrics-upkeep".into()).spawn(move || loop {
        std::thread::sleep(UPKEEP_INTERVAL);
        upkeep.run_upkeep();
    });
    if let Err(e) = spawned {
        // Not fatal: /metrics runs upkeep on every scrape.
        tracing::warn!(error = %e, "could not start the metrics upkeep thread");
    }
    let _ = HANDLE.set(handle.clone());
    Ok(handle)
}

/// Registers help text and units with the installed recorder. Called by [`install_recorder`];
/// a no-op without a recorder.
pub fn describe() {
    describe_gauge!(LEASES_HELD, Unit::Count, "Shard leases this instance holds (fleets).");
    describe_counter!(LEASE_TAKEOVERS, Unit::Count, "Shard leases this instance took: unowned, expired or stolen to balance (fleets).");
    describe_counter!(LEASE_LOST, Unit::Count, "Shard leases this instance lost to another instance (fleets).");
    describe_counter!(INVOCATIONS, Unit::Count, "Function invocations, successful or not (CloudWatch Invocations).");
    describe_counter!(ERRORS, Unit::Count, "Invocations that ended in a function error (CloudWatch Errors).");
    describe_counter!(THROTTLES, Unit::Count, "Invocations refused for lack of concurrency (CloudWatch Throttles).");
    describe_histogram!(DURATION, Unit::Seconds, "Time spent invoking the function per batch (CloudWatch Duration).");
    describe_gauge!(CONCURRENT_EXECUTIONS, Unit::Count, "Invocations in flight (CloudWatch ConcurrentExecutions).");
    describe_counter!(POLLED_EVENTS, Unit::Count, "Records read from the source (CloudWatch PolledEventCount).");
    describe_counter!(
        FILTERED_OUT_EVENTS,
        Unit::Count,
        "Records dropped by the filter criteria (CloudWatch FilteredOutEventCount)."
    );
    describe_counter!(
        INVOKED_EVENTS,
        Unit::Count,
        "Records sent to the function; retries count again (CloudWatch InvokedEventCount)."
    );
    describe_counter!(
        FAILED_INVOKE_EVENTS,
        Unit::Count,
        "Records in invocations that failed (CloudWatch FailedInvokeEventCount)."
    );
    describe_counter!(
        DROPPED_EVENTS,
        Unit::Count,
        "Records given up on: retries or record age exhausted (CloudWatch DroppedEventCount)."
    );
    describe_counter!(
        DESTINATION_DELIVERED_EVENTS,
        Unit::Count,
        "Records sent to the on-failure destination (CloudWatch OnFailureDestinationDeliveredEventCount)."
    );
    describe_counter!(
        DESTINATION_DELIVERY_FAILURES,
        Unit::Count,
        "Failed attempts to send to the on-failure destination (CloudWatch DestinationDeliveryFailures)."
    );
    describe_counter!(
        DELETED_EVENTS,
        Unit::Count,
        "Queue messages deleted after success (CloudWatch DeletedEventCount)."
    );
    describe_counter!(
        COMMITTED_EVENTS,
        Unit::Count,
        "Records whose offsets were committed to the source (CloudWatch CommittedEventCount)."
    );
    describe_gauge!(
        ITERATOR_AGE,
        Unit::Milliseconds,
        "Age of the last record of the last batch sent, max over the mapping's shards (CloudWatch IteratorAge)."
    );
    describe_gauge!(
        OFFSET_LAG,
        Unit::Count,
        "Records not yet read, summed over the mapping's shards (CloudWatch OffsetLag, SumOffsetLag)."
    );
    describe_gauge!(
        MAX_OFFSET_LAG,
        Unit::Count,
        "Records not yet read, max over the mapping's shards (CloudWatch MaxOffsetLag)."
    );
    describe_gauge!(
        QUEUE_BACKLOG,
        Unit::Count,
        "Messages waiting in the queue source, as the queue reports it (SQS ApproximateNumberOfMessages)."
    );
    describe_counter!(
        BISECTIONS,
        Unit::Count,
        "Batches split in two after a function error (BisectBatchOnFunctionError)."
    );
    describe_counter!(POLLING_ERRORS, Unit::Count, "Failed reads from the source (CloudWatch PollingErrorCount).");
    describe_counter!(TRIMMED_READS, Unit::Count, "Reads that found their position trimmed away (records expired before esmd read them).");
    describe_counter!(COMMIT_ERRORS, Unit::Count, "Failed checkpoint or offset commits (CloudWatch CommitErrorCount).");
    describe_counter!(
        INVOKE_UNAVAILABLE,
        Unit::Count,
        "Invocations that could not be made: function unreachable, timed out or 5xx (CloudWatch InvokeErrorCount)."
    );
    describe_counter!(SCHEMA_FETCHES, Unit::Count, "Schemas asked of the Kafka source's schema registry.");
    describe_counter!(SCHEMA_FETCH_ERRORS, Unit::Count, "Schema fetches the registry did not answer; the records waited.");
    describe_counter!(SCHEMA_CACHE_HITS, Unit::Count, "Record keys and values decoded with a schema already fetched.");
    describe_counter!(
        SCHEMA_DECODE_FAILURES,
        Unit::Count,
        "Record keys and values their schema could not decode or validate; the records went to the on-failure destination."
    );
}

/// Per-shard values behind the mapping-level max/sum gauges.
#[derive(Default)]
struct ShardGauges {
    iterator_age_ms: HashMap<String, u64>,
    offset_lag: HashMap<String, u64>,
}

struct Inner {
    /// `mapping` and `source`; cloning a label clones two `Arc<str>`, no string copy.
    labels: [Label; 2],
    shards: Mutex<ShardGauges>,
    tally: Tally,
}

/// Metric handles for one mapping (labels `mapping`, `source`).
///
/// Cheap to clone; clones share the per-shard state, so create one per mapping and clone it
/// rather than calling [`MappingMetrics::new`] twice for the same mapping (two instances would
/// each set the max/sum gauges from their own shards).
///
/// Each call looks the series up in the global recorder rather than caching handles at
/// construction: a `MappingMetrics` made before [`install_recorder`] still reports. Calls are
/// per batch, not per record, so the lookup cost does not matter.
#[derive(Clone)]
pub struct MappingMetrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MappingMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappingMetrics").field("labels", &self.inner.labels).finish()
    }
}

impl esmd_api::SourceCounters for MappingMetrics {
    fn add(&self, what: esmd_api::SourceCount, n: u64) {
        self.source_count(what, n);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not stop metrics.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn max(values: &HashMap<String, u64>) -> u64 {
    values.values().copied().max().unwrap_or(0)
}

impl MappingMetrics {
    pub fn new(mapping: &str, source: &str) -> Self {
        let shared = |s: &str| SharedString::from(Arc::<str>::from(s));
        MappingMetrics {
            inner: Arc::new(Inner {
                labels: [Label::new("mapping", shared(mapping)), Label::new("source", shared(source))],
                shards: Mutex::new(ShardGauges::default()),
                tally: Tally::default(),
            }),
        }
    }

    fn labels(&self) -> Vec<Label> {
        self.inner.labels.to_vec()
    }

    fn count(&self, name: &'static str, n: u64) {
        metrics::counter!(name, self.labels()).increment(n);
    }

    fn gauge(&self, name: &'static str, value: f64) {
        metrics::gauge!(name, self.labels()).set(value);
    }

    /// The function answered (success or function error) after `duration`.
    pub fn invocation(&self, duration: Duration) {
        self.count(INVOCATIONS, 1);
        metrics::histogram!(DURATION, self.labels()).record(duration.as_secs_f64());
        self.inner.tally.invocations.fetch_add(1, Relaxed);
        self.inner.tally.latency.record(duration);
    }
    pub fn function_error(&self) {
        self.count(ERRORS, 1);
        self.inner.tally.function_errors.fetch_add(1, Relaxed);
    }
    pub fn throttle(&self) {
        self.count(THROTTLES, 1);
        self.inner.tally.throttles.fetch_add(1, Relaxed);
    }
    pub fn invoke_unavailable(&self) {
        self.count(INVOKE_UNAVAILABLE, 1);
        self.inner.tally.invoke_unavailable.fetch_add(1, Relaxed);
    }
    /// +1 when an invocation starts, -1 when it ends.
    pub fn concurrent_executions(&self, delta: i64) {
        metrics::gauge!(CONCURRENT_EXECUTIONS, self.labels()).increment(delta as f64);
        self.inner.tally.concurrency(delta);
    }
    pub fn polled(&self, n: u64) {
        self.count(POLLED_EVENTS, n);
        self.inner.tally.polled.fetch_add(n, Relaxed);
    }
    pub fn filtered_out(&self, n: u64) {
        self.count(FILTERED_OUT_EVENTS, n);
        self.inner.tally.filtered_out.fetch_add(n, Relaxed);
    }
    pub fn invoked_events(&self, n: u64) {
        self.count(INVOKED_EVENTS, n);
        self.inner.tally.invoked_events.fetch_add(n, Relaxed);
    }
    pub fn failed_invoke_events(&self, n: u64) {
        self.count(FAILED_INVOKE_EVENTS, n);
    }
    pub fn dropped(&self, n: u64) {
        self.count(DROPPED_EVENTS, n);
        self.inner.tally.dropped.fetch_add(n, Relaxed);
    }
    pub fn destination_delivered(&self, n: u64) {
        self.count(DESTINATION_DELIVERED_EVENTS, n);
        self.inner.tally.destination_records.fetch_add(n, Relaxed);
    }
    pub fn destination_delivery_failure(&self) {
        self.count(DESTINATION_DELIVERY_FAILURES, 1);
    }
    pub fn deleted(&self, n: u64) {
        self.count(DELETED_EVENTS, n);
        self.inner.tally.finished.fetch_add(n, Relaxed);
    }
    pub fn committed(&self, n: u64) {
        self.count(COMMITTED_EVENTS, n);
        self.inner.tally.finished.fetch_add(n, Relaxed);
    }
    pub fn bisected(&self) {
        self.count(BISECTIONS, 1);
        self.inner.tally.bisections.fetch_add(1, Relaxed);
    }
    pub fn polling_error(&self) {
        self.count(POLLING_ERRORS, 1);
    }
    /// What the source counted of its own work ([`esmd_api::SourceCounters`]).
    pub fn source_count(&self, what: esmd_api::SourceCount, n: u64) {
        use esmd_api::SourceCount as C;
        let name = match what {
            C::SchemaFetches => SCHEMA_FETCHES,
            C::SchemaFetchErrors => SCHEMA_FETCH_ERRORS,
            C::SchemaCacheHits => SCHEMA_CACHE_HITS,
            C::SchemaDecodeFailures => SCHEMA_DECODE_FAILURES,
        };
        self.count(name, n);
    }
    /// Kinesis/DynamoDB data expired before it was read: those records are lost to the mapping.
    pub fn trimmed_read(&self) {
        self.count(TRIMMED_READS, 1);
    }
    /// A batch was formed and handed to the invoke path (its retries and halves are not new
    /// batches). Only the run's totals count batches; AWS has no such metric.
    pub fn batch(&self) {
        self.inner.tally.batches.fetch_add(1, Relaxed);
    }
    /// Queue messages handed to the dead-letter exchange: done with, though never deleted.
    pub fn dead_lettered(&self, n: u64) {
        self.inner.tally.finished.fetch_add(n, Relaxed);
    }
    /// This mapping's totals since it started (`esmd drain`).
    pub fn tally(&self) -> TallySnapshot {
        self.inner.tally.snapshot()
    }
    pub fn commit_error(&self) {
        self.count(COMMIT_ERRORS, 1);
    }

    /// Per-shard iterator age; exported as the max over the mapping's shards.
    pub fn iterator_age(&self, shard: &str, age_ms: u64) {
        // Set the gauge under the lock: two shards updating at once must not leave an older
        // max as the last value written.
        self.inner.tally.peak_iterator_age_ms.fetch_max(age_ms, Relaxed);
        let mut shards = lock(&self.inner.shards);
        shards.iterator_age_ms.insert(shard.to_string(), age_ms);
        self.gauge(ITERATOR_AGE, max(&shards.iterator_age_ms) as f64);
    }

    /// Messages waiting in a queue source.
    pub fn queue_backlog(&self, n: u64) {
        self.gauge(QUEUE_BACKLOG, n as f64);
    }

    /// Per-shard backlog; exported as sum and max over the mapping's shards.
    pub fn offset_lag(&self, shard: &str, lag: u64) {
        let mut shards = lock(&self.inner.shards);
        // Every read reports it, idle ones too: an unchanged lag leaves the gauges as they are
        // (two registry lookups per read were a tenth of an idle mapping's CPU).
        if shards.offset_lag.get(shard) == Some(&lag) {
            return;
        }
        shards.offset_lag.insert(shard.to_string(), lag);
        self.set_lag_gauges(&shards);
    }

    /// A shard went away: drop it from the max/sum gauges.
    pub fn forget_shard(&self, shard: &str) {
        let mut shards = lock(&self.inner.shards);
        // Only touch gauges this shard fed, so forgetting an unknown shard creates no series.
        if shards.iterator_age_ms.remove(shard).is_some() {
            self.gauge(ITERATOR_AGE, max(&shards.iterator_age_ms) as f64);
        }
        if shards.offset_lag.remove(shard).is_some() {
            self.set_lag_gauges(&shards);
        }
    }

    fn set_lag_gauges(&self, shards: &ShardGauges) {
        self.gauge(OFFSET_LAG, shards.offset_lag.values().fold(0u64, |a, b| a.saturating_add(*b)) as f64);
        self.gauge(MAX_OFFSET_LAG, max(&shards.offset_lag) as f64);
    }
}

/// Fleet gauges and counters carry only the mapping: the instance is the scrape target.
pub fn leases_held(mapping: &str, held: usize) {
    metrics::gauge!(LEASES_HELD, "mapping" => mapping.to_string()).set(held as f64);
}

pub fn lease_takeover(mapping: &str) {
    metrics::counter!(LEASE_TAKEOVERS, "mapping" => mapping.to_string()).increment(1);
}

pub fn lease_lost(mapping: &str) {
    metrics::counter!(LEASE_LOST, "mapping" => mapping.to_string()).increment(1);
}
