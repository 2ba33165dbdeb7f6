//! `kafka://topic`: a topic of the source's own cluster. One message per failed record, keyed
//! with the record's original key, so a consumer of the topic sees the records in the order
//! and partitioning they had. The value is the failure record (AWS's shape, `KafkaBatchInfo`
//! for the whole batch) with the record itself as `payload`, as it appeared in the event.

use crate::FailureProducer;
use async_trait::async_trait;
use esmd_api::destination::{Destination, DestinationError, Failure};
use serde_json::Value;
use std::time::Duration;

pub struct KafkaDestination {
    producer: FailureProducer,
    topic: String,
    describe: String,
    timeout: Duration,
}

impl KafkaDestination {
    pub fn new(producer: FailureProducer, topic: String) -> Self {
        KafkaDestination { describe: format!("kafka://{topic}"), producer, topic, timeout: Duration::from_secs(30) }
    }
}

#[async_trait]
impl Destination for KafkaDestination {
    async fn deliver(&self, failure: &Failure) -> Result<(), DestinationError> {
        let Value::Object(base) = &failure.record else {
            return Err(DestinationError { destination: self.describe.clone(), message: "failure record is not an object".into() });
        };
        let mut messages = Vec::with_capacity(failure.records.len());
        for r in &failure.records {
            let mut doc = base.clone();
            let payload: Value = serde_json::from_slice(&r.encoded).unwrap_or(Value::Null);
            doc.insert("payload".into(), payload);
            let value = serde_json::to_vec(&doc).map_err(|e| DestinationError { destination: self.describe.clone(), message: e.to_string() })?;
            let key = (!r.partition_key.is_empty()).then_some(&r.partition_key[..]);
            messages.push((key, value));
        }
        self.producer
            .send_all(&self.topic, &messages, self.timeout)
            .await
            .map_err(|e| DestinationError { destination: self.describe.clone(), message: e.to_string() })
    }

    fn describe(&self) -> &str {
        &self.describe
    }
}
