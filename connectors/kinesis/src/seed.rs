//! Kinesis: PutRecords of at most 500 records and 5 MB, one call at a time so each key's
//! records reach their shard in record order (retried entries excepted). The entries of a
//! partial failure (throttling, internal errors) are sent again until accepted.

use esmd_aws::retry::retried;
use esmd_api::seed::{retry_delays, SeedRecord, Seeder, TargetError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_kinesis::Client;
use crate::KinesisSourceConfig;

/// PutRecords' limits: 500 records, 5 MB of data and partition keys.
const CALL_RECORDS: usize = 500;
const CALL_BYTES: usize = 5 * 1024 * 1024;

pub struct KinesisSeeder {
    client: Client,
    stream: String,
}

impl KinesisSeeder {
    pub async fn connect(config: &KinesisSourceConfig, default_region: &str) -> Result<Self, TargetError> {
        let (client, stream) = crate::producer_client(config, default_region).await.map_err(|e| TargetError(e.to_string()))?;
        // A missing stream or missing permission fails here, before any record.
        retried("DescribeStreamSummary", || client.describe_stream_summary().stream_name(&stream).send()).await?;
        Ok(KinesisSeeder { client, stream })
    }

    /// One PutRecords call, then the refused entries again, with backoff.
    async fn put(&self, mut entries: Vec<PutRecordsRequestEntry>) -> Result<(), TargetError> {
        let mut delays = retry_delays();
        loop {
            let out = retried("PutRecords", || self.client.put_records().stream_name(&self.stream).set_records(Some(entries.clone())).send()).await?;
            if out.failed_record_count().unwrap_or(0) == 0 {
                return Ok(());
            }
            // Result entries are in request order; a refused one has an error code.
            let refused: Vec<_> = entries.into_iter().zip(out.records()).filter(|(_, r)| r.error_code().is_some()).collect();
            let why = refused.first().map(|(_, r)| format!("{} {}", r.error_code().unwrap_or_default(), r.error_message().unwrap_or_default())).unwrap_or_default();
            entries = refused.into_iter().map(|(e, _)| e).collect();
            match delays.next() {
                Some(delay) => {
                    tracing::warn!(records = entries.len(), error = %why, "PutRecords: records refused; retrying them");
                    tokio::time::sleep(delay).await;
                }
                None => return Err(TargetError(format!("PutRecords: {} records still refused after retries: {why}", entries.len()))),
            }
        }
    }
}

fn entry(r: &SeedRecord) -> Result<PutRecordsRequestEntry, TargetError> {
    PutRecordsRequestEntry::builder()
        .partition_key(&r.key)
        .data(Blob::new(r.payload.clone()))
        .build()
        .map_err(|e| TargetError(format!("PutRecords entry: {e}")))
}

/// Calls of at most 500 records and 5 MB.
fn calls(records: &[SeedRecord]) -> Vec<&[SeedRecord]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        let size = r.payload.len() + r.key.len();
        if i > start && (i - start == CALL_RECORDS || bytes + size > CALL_BYTES) {
            out.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

#[async_trait::async_trait]
impl Seeder for KinesisSeeder {
    fn target(&self) -> String {
        self.stream.clone()
    }

    fn chunk(&self) -> usize {
        CALL_RECORDS
    }

    async fn write(&mut self, records: &[SeedRecord]) -> Result<(), TargetError> {
        for call in calls(records) {
            self.put(call.iter().map(entry).collect::<Result<_, _>>()?).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_hold_500_records_or_5_mb() {
        let record = |n, bytes| SeedRecord { n, key: "key-0".into(), poison: false, payload: vec![b'x'; bytes] };
        let small: Vec<_> = (0..1200).map(|n| record(n, 10)).collect();
        assert_eq!(calls(&small).iter().map(|c| c.len()).collect::<Vec<_>>(), [500, 500, 200]);
        let big: Vec<_> = (0..12).map(|n| record(n, 1_000_000)).collect();
        assert_eq!(calls(&big).iter().map(|c| c.len()).collect::<Vec<_>>(), [5, 5, 2]);
    }
}
