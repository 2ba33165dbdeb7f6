//! The machine's RabbitMQ (127.0.0.1:5672, guest/guest), driven with the raw lapin client:
//! queues per test, publishing with confirms, reading queues back, restarting the broker.
//!
//! Tests that restart the broker take [`BROKER`] for writing; every other RabbitMQ test holds
//! it for reading, so a restart never lands in the middle of someone else's test.

use esmd_rabbitmq::lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions};
use esmd_rabbitmq::lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use esmd_rabbitmq::lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;
use tokio::sync::RwLock;

pub const URI: &str = "amqp://127.0.0.1:5672";
const URI_VHOST: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

pub static BROKER: RwLock<()> = RwLock::const_new(());

/// A queue name no other test (or earlier run) uses.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("esmd-test-{name}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Connects, starting the broker (`rabbitmq-server -detached`) when nothing listens. A broker
/// that does not come up fails the test: it is never skipped.
pub async fn connect() -> Connection {
    if let Ok(c) = Connection::connect(URI_VHOST, ConnectionProperties::default()).await {
        return c;
    }
    let _ = Command::new("rabbitmq-server").arg("-detached").status();
    super::wait::until_every("RabbitMQ at 127.0.0.1:5672", Duration::from_secs(90), Duration::from_millis(500), || async {
        Connection::connect(URI_VHOST, ConnectionProperties::default()).await.map_err(|e| format!("RabbitMQ at 127.0.0.1:5672 is needed (rabbitmq-server -detached): {e}"))
    })
    .await
}

pub struct Broker {
    pub conn: Connection,
    pub channel: Channel,
}

/// Queue arguments: `x-queue-type`, dead-lettering, single active consumer.
#[derive(Default)]
pub struct QueueArgs {
    pub quorum: bool,
    pub dead_letter_to: Option<String>,
    pub single_active_consumer: bool,
}

impl Broker {
    pub async fn open() -> Self {
        let conn = connect().await;
        let channel = conn.create_channel().await.expect("channel");
        channel.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        Broker { conn, channel }
    }

    /// A durable queue (deleted first if an earlier run left it).
    pub async fn declare(&self, queue: &str, args: QueueArgs) {
        let _ = self.channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
        let mut t = FieldTable::default();
        if args.quorum {
            t.insert(ShortString::from("x-queue-type"), AMQPValue::LongString(LongString::from("quorum")));
        }
        if let Some(dlq) = args.dead_letter_to {
            t.insert(ShortString::from("x-dead-letter-exchange"), AMQPValue::LongString(LongString::from("")));
            t.insert(ShortString::from("x-dead-letter-routing-key"), AMQPValue::LongString(LongString::from(dlq.as_str())));
        }
        if args.single_active_consumer {
            t.insert(ShortString::from("x-single-active-consumer"), AMQPValue::Boolean(true));
        }
        self.channel.queue_declare(queue.into(), QueueDeclareOptions { durable: true, ..Default::default() }, t).await.expect("declare");
    }

    pub async fn delete(&self, queue: &str) {
        let _ = self.channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
    }

    /// Publishes persistent messages to a queue (default exchange) and waits for every confirm.
    pub async fn publish(&self, queue: &str, messages: impl IntoIterator<Item = (String, BasicProperties)>) {
        let mut confirms = Vec::new();
        for (body, props) in messages {
            let props = props.with_delivery_mode(2);
            confirms.push(self.channel.basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body.as_bytes(), props).await.expect("publish"));
            // Keep the number of outstanding confirms bounded on big backlogs.
            if confirms.len() >= 5000 {
                for c in confirms.drain(..) {
                    c.await.expect("confirm");
                }
            }
        }
        for c in confirms {
            c.await.expect("confirm");
        }
    }

    /// `n` messages with bodies `{"i":N}` and message ids `m-N`.
    pub async fn publish_numbered(&self, queue: &str, n: usize) {
        self.publish(queue, (0..n).map(|i| (json!({"i": i}).to_string(), BasicProperties::default().with_message_id(format!("m-{i}").into())))).await;
    }

    /// Messages ready in the queue (not counting unacked ones).
    pub async fn ready(&self, queue: &str) -> u32 {
        let q = self.channel.queue_declare(queue.into(), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default()).await.expect("passive declare");
        q.message_count()
    }

    /// Takes every ready message out of the queue: (body, headers as JSON-ish text).
    pub async fn drain(&self, queue: &str) -> Vec<(String, BasicProperties)> {
        let mut out = Vec::new();
        while let Some(m) = self.channel.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.expect("get") {
            out.push((String::from_utf8_lossy(&m.delivery.data).into_owned(), m.delivery.properties.clone()));
        }
        out
    }
}

/// Waits until the queue holds no ready message and, checked with rabbitmqctl, none unacked.
pub async fn wait_empty(queue: &str, timeout: Duration) {
    // Each look runs rabbitmqctl (an Erlang VM start): not more often than every 200 ms.
    super::wait::eventually_every(&format!("{queue} to be empty"), timeout, Duration::from_millis(200), || {
        let (ready, unacked) = counts(queue);
        if ready == 0 && unacked == 0 { Ok(()) } else { Err(format!("{queue}: {ready} ready, {unacked} unacked")) }
    })
    .await
}

/// (ready, unacknowledged) as the broker reports them.
pub fn counts(queue: &str) -> (u64, u64) {
    let out = Command::new("rabbitmqctl").args(["list_queues", "-q", "--no-table-headers", "name", "messages_ready", "messages_unacknowledged"]).output().expect("rabbitmqctl");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if let [name, ready, unacked] = cols[..] {
            if name == queue {
                return (ready.parse().unwrap_or(u64::MAX), unacked.parse().unwrap_or(u64::MAX));
            }
        }
    }
    panic!("queue {queue} not listed by rabbitmqctl: {text}");
}

/// `rabbitmqctl stop_app` / `start_app`: the broker restarts under the running mapping.
pub fn rabbitmqctl(command: &str) {
    let out = Command::new("rabbitmqctl").arg(command).output().expect("rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl {command}: {}", String::from_utf8_lossy(&out.stderr));
}

/// (messageId, decoded data, redelivered) of each message of an `aws:rmq` event.
pub fn rmq_messages(event: &Value) -> Vec<(String, String, bool)> {
    use base64::Engine as _;
    let mut out = Vec::new();
    if let Some(queues) = event["rmqMessagesByQueue"].as_object() {
        for messages in queues.values() {
            for m in messages.as_array().into_iter().flatten() {
                let data = base64::engine::general_purpose::STANDARD.decode(m["data"].as_str().unwrap_or_default()).unwrap_or_default();
                out.push((
                    m["basicProperties"]["messageId"].as_str().unwrap_or_default().to_string(),
                    String::from_utf8_lossy(&data).into_owned(),
                    m["redelivered"].as_bool().unwrap_or(false),
                ));
            }
        }
    }
    out
}
