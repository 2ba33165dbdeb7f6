//! Writes to a topic of the source's cluster: the `kafka://topic` failure destination, and the
//! seeding and benchmark tools.

use crate::config::KafkaSourceConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use std::time::Duration;

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
        let producer: FutureProducer = client.create().map_err(|e| ProducerError(e.to_string()))?;
        Ok(FailureProducer { producer })
    }

    /// Sends one message and waits until the broker has it (or `timeout` passes).
    pub async fn send(&self, topic: &str, key: Option<&[u8]>, value: &[u8], headers: &[(&str, &[u8])], timeout: Duration) -> Result<(), ProducerError> {
        let mut h = OwnedHeaders::new_with_capacity(headers.len());
        for (k, v) in headers {
            h = h.insert(Header { key: k, value: Some(*v) });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(value).headers(h);
        if let Some(k) = key {
            record = record.key(k);
        }
        match tokio::time::timeout(timeout, self.producer.send(record, timeout)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(ProducerError(format!("{topic}: {e}"))),
            Err(_) => Err(ProducerError(format!("{topic}: not acknowledged within {timeout:?}"))),
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
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), r)) if tokio::time::Instant::now() < deadline => {
                        record = r;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(ProducerError(format!("{topic}: {e}"))),
                }
            }
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
        let mut record = record;
        loop {
            match self.producer.send_result(record) {
                Ok(_delivery) => return Ok(()),
                Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(10));
                    tokio::task::yield_now().await;
                }
                Err((e, _)) => return Err(ProducerError(format!("{topic}: {e}"))),
            }
        }
    }

    /// Waits until every queued message is acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), ProducerError> {
        self.producer.flush(timeout).map_err(|e| ProducerError(e.to_string()))
    }
}
