//! `rabbitmq://<exchange>/<routing-key>`: one persistent message per failure, published with
//! confirms and `mandatory`, so an exchange with no bound queue is an error (retried), not a
//! silent drop. The body is the failure record (AWS's shape) with the event the function was
//! invoked with under `payload`, so a consumer of the dead-letter queue can replay it.

use crate::Publisher;
use async_trait::async_trait;
use esmd_api::destination::{Destination, DestinationError, Failure};
use lapin::BasicProperties;
use serde_json::Value;

pub struct RabbitMqDestination {
    publisher: Publisher,
    exchange: String,
    routing_key: String,
    describe: String,
}

impl RabbitMqDestination {
    pub fn new(publisher: Publisher, exchange: String, routing_key: String) -> Self {
        RabbitMqDestination { describe: format!("rabbitmq://{exchange}/{routing_key}"), publisher, exchange, routing_key }
    }

    fn error(&self, message: impl ToString) -> DestinationError {
        DestinationError { destination: self.describe.clone(), message: message.to_string() }
    }
}

#[async_trait]
impl Destination for RabbitMqDestination {
    async fn deliver(&self, failure: &Failure) -> Result<(), DestinationError> {
        let Value::Object(mut doc) = failure.record.clone() else {
            return Err(self.error("failure record is not an object"));
        };
        let payload: Value = serde_json::from_slice(&failure.payload).unwrap_or(Value::Null);
        doc.insert("payload".into(), payload);
        let body = serde_json::to_vec(&doc).map_err(|e| self.error(e))?;
        let properties = BasicProperties::default().with_content_type("application/json".into()).with_delivery_mode(2).with_app_id("esmd".into());
        self.publisher.publish(&self.exchange, &self.routing_key, body, properties).await.map_err(|e| self.error(e))
    }

    fn describe(&self) -> &str {
        &self.describe
    }
}
