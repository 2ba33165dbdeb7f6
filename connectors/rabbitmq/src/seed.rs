//! RabbitMQ: persistent messages published to the default exchange with the mapping's queue as
//! routing key, with publisher confirms, through the `rabbitmq://` destination's [`Publisher`].
//! A chunk that fails (connection lost, nack) is published again: a message may then be in the
//! queue twice, never missing. A queue that does not exist fails at once (`mandatory`).

use esmd_api::seed::{retry_delays, SeedRecord, Seeder, TargetError};
use lapin::types::ShortString;
use lapin::BasicProperties;
use crate::{PublishError, Publisher, RabbitMqSourceConfig};

/// Messages per confirm round.
const CHUNK: usize = 500;

pub struct RabbitMqSeeder {
    publisher: Publisher,
    queue: String,
    virtual_host: String,
}

impl RabbitMqSeeder {
    pub fn new(config: &RabbitMqSourceConfig, mapping: &str) -> Self {
        RabbitMqSeeder {
            publisher: Publisher::new(config.connection(), format!("esmd:{mapping}:seed")),
            queue: config.queue.clone(),
            virtual_host: config.virtual_host.clone(),
        }
    }
}

fn message(r: &SeedRecord) -> (Vec<u8>, BasicProperties) {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        // The record number: a consumer can count duplicates after a republished chunk.
        .with_message_id(ShortString::from(format!("seed-{}", r.n)));
    (r.payload.clone(), properties)
}

#[async_trait::async_trait]
impl Seeder for RabbitMqSeeder {
    fn target(&self) -> String {
        format!("{} (vhost {})", self.queue, self.virtual_host)
    }

    fn chunk(&self) -> usize {
        CHUNK
    }

    async fn write(&mut self, records: &[SeedRecord]) -> Result<(), TargetError> {
        let mut delays = retry_delays();
        loop {
            match self.publisher.publish_all("", &self.queue, records.iter().map(message)).await {
                Ok(()) => return Ok(()),
                Err(e @ PublishError::Unroutable { .. }) => return Err(TargetError(format!("{e} (does queue {:?} exist?)", self.queue))),
                Err(e) => match delays.next() {
                    Some(delay) => {
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "publishing failed; publishing the chunk again");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(TargetError(e.to_string())),
                },
            }
        }
    }

    async fn finish(&mut self) -> Result<(), TargetError> {
        self.publisher.close().await;
        Ok(())
    }
}
