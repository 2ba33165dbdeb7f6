//! [`SqsSource`]: the [`QueueSource`] of one SQS queue.

use crate::client::{build, classify, SqsSetupError};
use crate::config::{QueueUrl, SqsSourceConfig};
use crate::message::record_from_message;
use crate::scale::Pollers;
use async_trait::async_trait;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use esmd_api::{ErrorKind, EventEncoder, QueueSource, Record, ShardId, SourceError};
use esmd_api::sqs::SqsEncoding;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// SQS's limits: 10 messages per receive and per batch request, 20 s long poll, 12 h visibility.
const RECEIVE_MAX: usize = 10;
const BATCH_ENTRIES: usize = 10;
const LONG_POLL_SECONDS: u64 = 20;
const MAX_VISIBILITY_SECONDS: u64 = 43_200;
/// The extra receives that join a long poll that came back full wait this long at most: long
/// enough that SQS queries all its servers, short enough not to hold a batch that is ready.
const FAN_OUT_WAIT_SECONDS: i32 = 1;

#[derive(Clone, Debug)]
pub struct SqsOptions {
    pub config: SqsSourceConfig,
    /// The mapping's `scaling_config.maximum_concurrency`: receives in flight at once at most.
    pub maximum_concurrency: usize,
}

pub struct SqsSource {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    queue_id: ShardId,
    encoding: Arc<SqsEncoding>,
    visibility_timeout: Duration,
    pollers: Pollers,
}

impl SqsSource {
    /// Region and credentials from the SDK's default chain.
    pub async fn connect(options: SqsOptions) -> Result<Self, SqsSetupError> {
        Self::connect_on(options, None).await
    }

    /// Built on a given SDK configuration (explicit credentials, tests). Reads the queue's
    /// visibility timeout once: a missing queue or missing permission fails here, at start.
    pub async fn connect_with(options: SqsOptions, sdk: &aws_config::SdkConfig) -> Result<Self, SqsSetupError> {
        Self::connect_on(options, Some(sdk)).await
    }

    async fn connect_on(options: SqsOptions, sdk: Option<&aws_config::SdkConfig>) -> Result<Self, SqsSetupError> {
        let config = &options.config;
        let url = QueueUrl::parse(&config.queue_url).map_err(SqsSetupError::QueueUrl)?;
        let client = build(config, sdk).await?;
        let region = client.config().region().map(|r| r.to_string()).unwrap_or_default();
        let queue_error = |message: String| SqsSetupError::Queue { url: config.queue_url.clone(), message };
        let attributes = client
            .get_queue_attributes()
            .queue_url(&config.queue_url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .map_err(|e| queue_error(classify("GetQueueAttributes", e).to_string()))?;
        let visibility_seconds = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| queue_error("GetQueueAttributes returned no VisibilityTimeout".into()))?;
        Ok(SqsSource {
            queue_url: config.queue_url.clone(),
            queue_id: ShardId::new(url.name.as_str()),
            encoding: Arc::new(SqsEncoding::new(&region, &url.account, &url.name, url.is_fifo())),
            visibility_timeout: Duration::from_secs(visibility_seconds),
            pollers: Pollers::new(options.maximum_concurrency),
            client,
        })
    }

    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }

    pub fn queue_arn(&self) -> &str {
        self.encoding.queue_arn()
    }

    /// Receives in flight at once while messages wait (scales with the backlog).
    pub fn pollers(&self) -> usize {
        self.pollers.current()
    }

    /// ApproximateNumberOfMessages: messages waiting to be received.
    pub async fn approximate_backlog(&self) -> Result<u64, SourceError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| classify("GetQueueAttributes", e))?;
        Ok(out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    async fn receive_once(&self, max: usize, wait_seconds: i32) -> Result<Vec<Record>, SourceError> {
        receive_once(&self.client, &self.queue_url, &self.encoding, max, wait_seconds).await
    }

    /// Sets the visibility of `records` to `seconds`, ten per request, all requests at once.
    async fn change_visibility(&self, records: &[Record], seconds: u64) -> Result<(), SourceError> {
        let seconds = seconds.min(MAX_VISIBILITY_SECONDS) as i32;
        let mut calls = JoinSet::new();
        for chunk in records.chunks(BATCH_ENTRIES) {
            let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r.position.as_str())
                        .visibility_timeout(seconds)
                        .build()
                        .ok()
                })
                .collect();
            let request = self.client.change_message_visibility_batch().queue_url(&self.queue_url).set_entries(Some(entries));
            calls.spawn(async move {
                let out = request.send().await.map_err(|e| classify("ChangeMessageVisibilityBatch", e))?;
                // An invalid handle means the message was deleted or its handle went stale
                // (it was redelivered meanwhile): nothing left to hide or show.
                let failed: Vec<String> = out
                    .failed()
                    .iter()
                    .filter(|f| f.code() != "ReceiptHandleIsInvalid" && f.code() != "AWS.SimpleQueueService.MessageNotInflight")
                    .map(|f| format!("{}: {}", f.code(), f.message().unwrap_or_default()))
                    .collect();
                if failed.is_empty() {
                    Ok(())
                } else {
                    Err(SourceError::transient(format!("ChangeMessageVisibilityBatch: {}", failed.join("; "))))
                }
            });
        }
        join_all(calls).await
    }
}

async fn receive_once(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    encoding: &SqsEncoding,
    max: usize,
    wait_seconds: i32,
) -> Result<Vec<Record>, SourceError> {
    let out = client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max.clamp(1, RECEIVE_MAX) as i32)
        .wait_time_seconds(wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| classify("ReceiveMessage", e))?;
    Ok(out.messages().iter().filter_map(|m| record_from_message(encoding, m)).collect())
}

/// Waits for every call; the first error wins, after all have finished.
async fn join_all(mut calls: JoinSet<Result<(), SourceError>>) -> Result<(), SourceError> {
    let mut first_error = None;
    while let Some(done) = calls.join_next().await {
        let result = done.unwrap_or_else(|e| Err(SourceError::transient(format!("request task failed: {e}"))));
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[async_trait]
impl QueueSource for SqsSource {
    fn kind(&self) -> &'static str {
        "sqs"
    }

    fn encoder(&self) -> Arc<dyn EventEncoder> {
        self.encoding.clone()
    }

    fn queue_id(&self) -> ShardId {
        self.queue_id.clone()
    }

    /// One long poll; if it comes back full, messages are waiting, and up to
    /// [`Pollers::current`] receives fetch the rest of `max` at once.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Record>, SourceError> {
        let wait_seconds = wait.as_secs().min(LONG_POLL_SECONDS) as i32;
        let mut records = self.receive_once(max, wait_seconds).await?;
        if records.len() < RECEIVE_MAX.min(max) {
            self.pollers.idle();
            return Ok(records);
        }
        let wanted = max.saturating_sub(records.len());
        if wanted == 0 {
            return Ok(records);
        }
        let calls = wanted.div_ceil(RECEIVE_MAX).min(self.pollers.current());
        let mut set = JoinSet::new();
        for i in 0..calls {
            let n = (wanted - i * RECEIVE_MAX).min(RECEIVE_MAX);
            let (client, url, encoding) = (self.client.clone(), self.queue_url.clone(), self.encoding.clone());
            set.spawn(async move { receive_once(&client, &url, &encoding, n, FAN_OUT_WAIT_SECONDS.min(wait_seconds)).await });
        }
        let mut all_full = true;
        let mut error = None;
        while let Some(done) = set.join_next().await {
            match done {
                Ok(Ok(more)) => {
                    all_full &= more.len() == RECEIVE_MAX;
                    records.extend(more);
                }
                Ok(Err(e)) => {
                    all_full = false;
                    error.get_or_insert(e);
                }
                Err(e) => {
                    all_full = false;
                    error.get_or_insert(SourceError::transient(format!("receive task failed: {e}")));
                }
            }
        }
        if all_full {
            self.pollers.busy();
        } else {
            self.pollers.idle();
        }
        // Received messages are returned even when a parallel receive failed: they are in
        // flight now and would otherwise wait out their visibility timeout.
        match error {
            Some(e) if records.is_empty() => Err(e),
            Some(e) => {
                tracing::warn!(queue = %self.queue_id, error = %e, "one of the parallel receives failed");
                Ok(records)
            }
            None => Ok(records),
        }
    }

    /// DeleteMessageBatch, ten per request, all requests at once. An entry SQS rejects because
    /// its handle is no longer valid is not retried: the message was redelivered meanwhile and
    /// will be processed again (at-least-once); other rejected entries fail the call so the
    /// engine retries.
    async fn ack(&self, records: &[Record]) -> Result<(), SourceError> {
        let mut calls = JoinSet::new();
        for chunk in records.chunks(BATCH_ENTRIES) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(r.position.as_str()).build().ok())
                .collect();
            let request = self.client.delete_message_batch().queue_url(&self.queue_url).set_entries(Some(entries));
            let queue = self.queue_id.clone();
            calls.spawn(async move {
                let out = request.send().await.map_err(|e| classify("DeleteMessageBatch", e))?;
                let mut retry = Vec::new();
                for f in out.failed() {
                    if f.code() == "ReceiptHandleIsInvalid" {
                        tracing::warn!(queue = %queue, entry = f.id(), "delete refused: receipt handle no longer valid; the message will be delivered again");
                    } else {
                        retry.push(format!("{}: {}", f.code(), f.message().unwrap_or_default()));
                    }
                }
                if retry.is_empty() {
                    Ok(())
                } else {
                    Err(SourceError::transient(format!("DeleteMessageBatch: {}", retry.join("; "))))
                }
            });
        }
        join_all(calls).await
    }

    /// `delay = None`: the messages are left alone and come back after the queue's visibility
    /// timeout, as with AWS (so `maxReceiveCount` and the redrive policy work as configured).
    /// With a delay they come back after it.
    async fn release(&self, records: &[Record], delay: Option<Duration>) -> Result<(), SourceError> {
        match delay {
            None => Ok(()),
            Some(d) => self.change_visibility(records, d.as_secs()).await,
        }
    }

    async fn extend(&self, records: &[Record], by: Duration) -> Result<(), SourceError> {
        self.change_visibility(records, by.as_secs().max(1)).await
    }

    fn visibility_timeout(&self) -> Option<Duration> {
        Some(self.visibility_timeout)
    }

    fn ordered_groups(&self) -> bool {
        self.encoding.is_fifo()
    }

    async fn backlog(&self) -> Option<u64> {
        match self.approximate_backlog().await {
            Ok(n) => Some(n),
            Err(e) if e.kind == ErrorKind::Fatal => None,
            Err(e) => {
                tracing::debug!(queue = %self.queue_id, error = %e, "queue depth unavailable");
                None
            }
        }
    }
}
