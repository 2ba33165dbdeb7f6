//! Kafka: the idempotent producer esmd's `kafka://` destinations use (acks=all, so a record
//! is written once even when librdkafka resends it), records keyed so each key keeps to one
//! partition in order. Many records are in flight; every acknowledgement is checked.

use esmd_api::seed::{SeedRecord, Seeder, TargetError};
use crate::{FailureProducer, KafkaSourceConfig, ProducerError};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

/// Acknowledgements awaited at most: bounds memory on large runs, far above what keeps the
/// producer busy.
const MAX_IN_FLIGHT: usize = 50_000;

type Ack = Pin<Box<dyn Future<Output = Result<(), ProducerError>> + Send>>;

pub struct KafkaSeeder {
    producer: FailureProducer,
    topic: String,
    in_flight: VecDeque<Ack>,
}

impl KafkaSeeder {
    /// The source's connection and security settings (SASL, TLS, properties).
    pub fn new(config: &KafkaSourceConfig) -> Result<Self, TargetError> {
        let producer = FailureProducer::for_source(config).map_err(|e| TargetError(e.to_string()))?;
        Ok(KafkaSeeder { producer, topic: config.topic.clone(), in_flight: VecDeque::new() })
    }

    async fn settle_until(&mut self, in_flight: usize) -> Result<(), TargetError> {
        while self.in_flight.len() > in_flight {
            if let Some(ack) = self.in_flight.pop_front() {
                ack.await.map_err(|e| TargetError(e.to_string()))?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Seeder for KafkaSeeder {
    fn target(&self) -> String {
        self.topic.clone()
    }

    fn chunk(&self) -> usize {
        1000
    }

    async fn write(&mut self, records: &[SeedRecord]) -> Result<(), TargetError> {
        for r in records {
            let ack = self.producer.enqueue_acked(&self.topic, Some(r.key.as_bytes()), &r.payload).await.map_err(|e| TargetError(e.to_string()))?;
            self.in_flight.push_back(Box::pin(ack));
        }
        self.settle_until(MAX_IN_FLIGHT).await
    }

    async fn finish(&mut self) -> Result<(), TargetError> {
        self.settle_until(0).await
    }
}
