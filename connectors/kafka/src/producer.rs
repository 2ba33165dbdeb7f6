//! Writes to a topic of the source's cluster: the `kafka://topic` failure destination, and the
//! seeding and benchmark tools.

use crate::config::KafkaSourceConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use std::future::Future;
use tokio::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
#[error("kafka producer: {0}")]
pub struct ProducerError(String);

impl ProducerError {
    pub(crate) fn from_message(m: String) -> Self {
        ProducerError(m)
    }
}

/// An idempotent producer (acks=all): a message it reports delivered is in the topic once.
#[derive(Clone)]
pub struct FailureProducer {
    producer: FutureProducer,
}

impl FailureProducer {
    /// A producer with the source's connection and security settings.
    pub fn for_source(cfg: &KafkaSourceConfig) -> Result<Self, ProducerError> {
        Self::with_properties(cfg.client_properties())
    }

    pub fn with_properties(props: Vec<(String, String)>) -> Result<Self, ProducerError> {
        let mut client = ClientConfig::new();
        for (k, v) in props {
            // Consumer-only settings passed through `properties` would only produce warnings.
            if k.starts_with("fetch.") || k.starts_with("queued.") || k == "isolation.level" {
                continue;
            }
            client.set(k, v);
        }
        client.set("enable.idempotence", "true").set("acks", "all").set("linger.ms", "5");
        let producer: FutureProducer = client.create().map_err(|e| ProducerError(crate::config::client_error(&e)))?;
        Ok(FailureProducer { producer })
    }

    /// Hands a record to librdkafka, waiting while its local queue is full (until `deadline`,
    /// when given). Returns the acknowledgement to await.
    async fn submit<'a>(&self, topic: &str, mut record: FutureRecord<'a, [u8], [u8]>, deadline: Option<Instant>) -> Result<DeliveryFuture, ProducerError> {
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) if deadline.is_none_or(|d| Instant::now() < d) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(ProducerError(format!("{topic}: {e}"))),
            }
        }
    }

    /// Sends messages (key, value) in order and waits until the broker acknowledged all of
    /// them. On an error some may have been written: the caller retries the whole set, so a
    /// message can appear twice but is never lost.
    pub async fn send_all(&self, topic: &str, messages: &[(Option<&[u8]>, Vec<u8>)], timeout: Duration) -> Result<(), ProducerError> {
        let mut pending = Vec::with_capacity(messages.len());
        for (key, value) in messages {
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(&value[..]);
            if let Some(k) = key {
                record = record.key(*k);
            }
            pending.push(self.submit(topic, record, Some(Instant::now() + timeout)).await?);
        }
        for delivery in pending {
            match tokio::time::timeout(timeout, delivery).await {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err((e, _)))) => return Err(ProducerError(format!("{topic}: {e}"))),
                Ok(Err(_)) => return Err(ProducerError(format!("{topic}: producer closed"))),
                Err(_) => return Err(ProducerError(format!("{topic}: not acknowledged within {timeout:?}"))),
            }
        }
        Ok(())
    }

    /// Queues a message without waiting for its acknowledgement (seeding); call
    /// [`FailureProducer::flush`] after the last one.
    pub async fn enqueue(&self, topic: &str, partition: Option<i32>, key: Option<&[u8]>, value: &[u8], timestamp_ms: Option<i64>) -> Result<(), ProducerError> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(value);
        if let Some(t) = timestamp_ms {
            record = record.timestamp(t);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        self.submit(topic, record, None).await.map(drop)
    }

    /// Queues a keyed message and returns its acknowledgement to await later (`esmd seed`):
    /// the caller keeps many in flight and still learns of every message the broker refused,
    /// which [`FailureProducer::enqueue`] + [`FailureProducer::flush`] would not tell.
    pub async fn enqueue_acked(&self, topic: &str, key: Option<&[u8]>, value: &[u8]) -> Result<impl Future<Output = Result<(), ProducerError>> + Send + 'static, ProducerError> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        let delivery = self.submit(topic, record, None).await?;
        let topic = topic.to_string();
        Ok(async move {
            match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((e, _))) => Err(ProducerError(format!("{topic}: {e}"))),
                Err(_) => Err(ProducerError(format!("{topic}: producer closed"))),
            }
        })
    }

    /// Waits until every queued message is acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), ProducerError> {
        self.producer.flush(timeout).map_err(|e| ProducerError(e.to_string()))
    }
}
