//! SQS: SendMessageBatch of ten, several batches in flight. FIFO queues get the key as
//! MessageGroupId and a deduplication id unique to this run (a second run is not deduplicated
//! away), and one batch at a time so each group's messages stay in record order.

use esmd_aws::retry::retried;
use esmd_api::seed::{retry_delays, SeedRecord, Seeder, TargetError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use crate::{QueueUrl, SqsSourceConfig};
use tokio::task::JoinSet;

/// SQS's limits per SendMessageBatch: 10 messages, 256 KiB in all.
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 262_144;
/// Standard queues: this many batches in flight.
const IN_FLIGHT: usize = 10;

pub struct SqsSeeder {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    fifo: bool,
    run: String,
}

impl SqsSeeder {
    pub async fn connect(config: &SqsSourceConfig) -> Result<Self, TargetError> {
        let url = QueueUrl::parse(&config.queue_url).map_err(|e| TargetError(format!("source.queue_url: {e}")))?;
        let client = crate::client_for(config).await.map_err(|e| TargetError(e.to_string()))?;
        // Fails here, before any record, when the queue is missing or not ours to use.
        retried("GetQueueAttributes", || client.get_queue_attributes().queue_url(&config.queue_url).send()).await?;
        Ok(SqsSeeder { client, queue_url: config.queue_url.clone(), fifo: url.is_fifo(), run: uuid::Uuid::new_v4().simple().to_string() })
    }

    fn entry(&self, i: usize, r: &SeedRecord) -> Result<SendMessageBatchRequestEntry, TargetError> {
        let mut e = SendMessageBatchRequestEntry::builder().id(format!("e{i}")).message_body(String::from_utf8_lossy(&r.payload));
        if self.fifo {
            e = e.message_group_id(&r.key).message_deduplication_id(format!("{}-{}", self.run, r.n));
        }
        e.build().map_err(|e| TargetError(format!("SendMessageBatch entry: {e}")))
    }
}

/// Batches of at most ten messages and 256 KiB.
fn batches(records: &[SeedRecord]) -> Vec<&[SeedRecord]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        if i > start && (i - start == BATCH_ENTRIES || bytes + r.payload.len() > BATCH_BYTES) {
            out.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += r.payload.len();
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

/// Sends one batch, retrying the entries SQS refused for reasons of its own (throttling,
/// internal errors); an entry refused for the sender's fault fails the run.
async fn send(client: aws_sdk_sqs::Client, queue_url: String, mut entries: Vec<SendMessageBatchRequestEntry>) -> Result<(), TargetError> {
    let mut delays = retry_delays();
    loop {
        let out = retried("SendMessageBatch", || client.send_message_batch().queue_url(&queue_url).set_entries(Some(entries.clone())).send()).await?;
        if out.failed().is_empty() {
            return Ok(());
        }
        if let Some(f) = out.failed().iter().find(|f| f.sender_fault()) {
            return Err(TargetError(format!("SendMessageBatch refused a message: {} {}", f.code(), f.message().unwrap_or_default())));
        }
        let first = &out.failed()[0];
        let why = format!("{} {}", first.code(), first.message().unwrap_or_default());
        let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
        entries.retain(|e| failed.contains(&e.id()));
        match delays.next() {
            Some(delay) => {
                tracing::warn!(entries = entries.len(), error = %why, "SendMessageBatch: entries refused; retrying them");
                tokio::time::sleep(delay).await;
            }
            None => return Err(TargetError(format!("SendMessageBatch: {} messages still refused after retries: {why}", entries.len()))),
        }
    }
}

#[async_trait::async_trait]
impl Seeder for SqsSeeder {
    fn target(&self) -> String {
        self.queue_url.clone()
    }

    fn chunk(&self) -> usize {
        if self.fifo {
            BATCH_ENTRIES
        } else {
            BATCH_ENTRIES * IN_FLIGHT
        }
    }

    async fn write(&mut self, records: &[SeedRecord]) -> Result<(), TargetError> {
        let mut calls = JoinSet::new();
        for batch in batches(records) {
            let entries = batch.iter().enumerate().map(|(i, r)| self.entry(i, r)).collect::<Result<Vec<_>, _>>()?;
            calls.spawn(send(self.client.clone(), self.queue_url.clone(), entries));
        }
        let mut first_error = None;
        while let Some(done) = calls.join_next().await {
            let result = done.map_err(|e| TargetError(format!("SendMessageBatch task: {e}"))).and_then(|r| r);
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64, bytes: usize) -> SeedRecord {
        SeedRecord { n, key: "key-0".into(), poison: false, payload: vec![b'x'; bytes] }
    }

    #[test]
    fn batches_hold_ten_messages_or_256_kib() {
        let small: Vec<_> = (0..25).map(|n| record(n, 100)).collect();
        assert_eq!(batches(&small).iter().map(|b| b.len()).collect::<Vec<_>>(), [10, 10, 5]);
        let big: Vec<_> = (0..5).map(|n| record(n, 100_000)).collect();
        assert_eq!(batches(&big).iter().map(|b| b.len()).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(batches(&[]).is_empty());
    }
}
