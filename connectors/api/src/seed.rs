//! `esmd seed`'s seam: a connector's writer of synthetic records. The records themselves
//! (payloads of an exact size, keys, poison) come from the service's generator.

use async_trait::async_trait;
use std::time::Duration;

/// One record to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedRecord {
    /// Its number, 0-based, in write order.
    pub n: u64,
    /// `key-{n % keys}`: partition key, Kafka key, FIFO message group, DynamoDB hash key.
    pub key: String,
    pub poison: bool,
    /// `{"n":…,"key":…,"poison":…,"pad":"xxx…"}`, exactly `record_bytes` long.
    pub payload: Vec<u8>,
}

/// What a target refused, in its own words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// One source type's writer.
#[async_trait]
pub trait Seeder: Send {
    /// The topic, queue, stream or table, for the summary.
    fn target(&self) -> String;
    /// Records per [`Seeder::write`]: enough for the target's batch calls (several in flight
    /// where the target allows it).
    fn chunk(&self) -> usize;
    /// Writes the records; returns once they are written (or, for Kafka, queued: see
    /// [`Seeder::finish`]). Transient failures are retried inside.
    async fn write(&mut self, records: &[SeedRecord]) -> Result<(), TargetError>;
    /// Waits for whatever is still unacknowledged.
    async fn finish(&mut self) -> Result<(), TargetError> {
        Ok(())
    }
}

/// Delays between retries of transient failures (throttling, a broker restarting): about
/// 100 ms doubling to 5 s, with jitter, nine tries in all (about 25 s of waiting).
pub fn retry_delays() -> impl Iterator<Item = Duration> {
    use backon::{BackoffBuilder, ExponentialBuilder};
    ExponentialBuilder::default().with_min_delay(Duration::from_millis(100)).with_max_delay(Duration::from_secs(5)).with_max_times(8).with_jitter().build()
}
