//! An embedded Kafka: librdkafka's in-process mock cluster. `esmd demo` and the fast tests use
//! it so the real consumer path runs with no server. Not a broker to keep data in: it lives as
//! long as this value, in memory.

use crate::producer::{FailureProducer, ProducerError};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use std::time::Duration;

pub struct EmbeddedKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
    bootstrap: String,
}

impl EmbeddedKafka {
    pub fn start(brokers: i32) -> Result<Self, ProducerError> {
        let cluster = MockCluster::new(brokers).map_err(|e| ProducerError::from_message(format!("mock cluster: {e}")))?;
        let bootstrap = cluster.bootstrap_servers();
        Ok(EmbeddedKafka { cluster, bootstrap })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), ProducerError> {
        self.cluster.create_topic(topic, partitions, 1).map_err(|e| ProducerError::from_message(format!("create topic {topic}: {e}")))
    }

    /// A producer connected to this cluster.
    pub fn producer(&self) -> Result<FailureProducer, ProducerError> {
        FailureProducer::with_properties(vec![("bootstrap.servers".into(), self.bootstrap.clone())])
    }

    /// Writes `records` messages to `topic`, `keys` distinct keys (`key-N`), values of
    /// `value_bytes` from `value(i)` padded with spaces. With `round_robin = Some(n)` message i
    /// goes to partition i mod n instead of the key's partition: the mock keeps at most 5 MB
    /// per partition, so a large backlog must be spread evenly.
    pub async fn seed(&self, topic: &str, records: usize, keys: usize, value_bytes: usize, round_robin: Option<i32>, value: impl Fn(usize) -> Vec<u8>) -> Result<(), ProducerError> {
        let producer = self.producer()?;
        for i in 0..records {
            let key = format!("key-{}", i % keys.max(1));
            let mut v = value(i);
            if v.len() < value_bytes {
                v.resize(value_bytes, b' ');
            }
            let partition = round_robin.map(|n| (i % n.max(1) as usize) as i32);
            producer.enqueue(topic, partition, Some(key.as_bytes()), &v, None).await?;
        }
        let p = producer.clone();
        tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(60)))
            .await
            .map_err(|e| ProducerError::from_message(e.to_string()))?
    }
}
