//! Publishing with publisher confirms: the `rabbitmq://` destination, `esmd seed` and tests.
//! A message counts as published only when the broker confirmed it and routed it somewhere
//! (`mandatory`), so a failure record can never vanish into an exchange without a binding.

use crate::config::RabbitMqConnection;
use crate::connect::{connect, ConnectError};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("connect: {0}")]
    Connect(#[from] ConnectError),
    #[error("publish: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker refused the message (nack)")]
    Nacked,
    #[error("no queue is bound to exchange {exchange:?} with routing key {routing_key:?}: the message was returned")]
    Unroutable { exchange: String, routing_key: String },
}

/// A confirming publisher that reconnects on the next call after its connection died.
pub struct Publisher {
    connection: RabbitMqConnection,
    name: String,
    open: Mutex<Option<(Connection, Channel)>>,
}

impl Publisher {
    /// Connects lazily: the first publish opens the connection.
    pub fn new(connection: RabbitMqConnection, name: impl Into<String>) -> Self {
        Publisher { connection, name: name.into(), open: Mutex::new(None) }
    }

    async fn channel(&self) -> Result<Channel, PublishError> {
        let mut open = self.open.lock().await;
        if let Some((conn, channel)) = open.as_ref() {
            if conn.status().connected() && channel.status().connected() {
                return Ok(channel.clone());
            }
        }
        let conn = connect(&self.connection, &self.name).await?;
        let channel = conn.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        *open = Some((conn, channel.clone()));
        Ok(channel)
    }

    /// Publishes every message and waits for all confirms; any failure fails the call (some
    /// messages may then be published twice when the caller retries: at least once).
    pub async fn publish_all(&self, exchange: &str, routing_key: &str, messages: impl IntoIterator<Item = (Vec<u8>, BasicProperties)>) -> Result<(), PublishError> {
        let channel = self.channel().await?;
        let mut confirms = Vec::new();
        for (body, properties) in messages {
            let confirm = channel
                .basic_publish(exchange.into(), routing_key.into(), BasicPublishOptions { mandatory: true, immediate: false }, &body, properties)
                .await?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            match confirm.await? {
                Confirmation::Ack(None) | Confirmation::NotRequested => {}
                Confirmation::Ack(Some(_)) => {
                    return Err(PublishError::Unroutable { exchange: exchange.to_string(), routing_key: routing_key.to_string() });
                }
                Confirmation::Nack(_) => return Err(PublishError::Nacked),
            }
        }
        Ok(())
    }

    pub async fn publish(&self, exchange: &str, routing_key: &str, body: Vec<u8>, properties: BasicProperties) -> Result<(), PublishError> {
        self.publish_all(exchange, routing_key, [(body, properties)]).await
    }

    pub async fn close(&self) {
        if let Some((conn, _)) = self.open.lock().await.take() {
            let _ = conn.close(200, "esmd: done".into()).await;
        }
    }
}
