//! The sources under test: each one's server, its seeded backlog, the mapping that reads it,
//! and what "settled" means once everything is delivered.

use super::check::Seeded;
use super::support;
use serde_json::json;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Kafka,
    RabbitMq,
    Sqs,
    Kinesis,
    DynamoDb,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Kafka, Kind::RabbitMq, Kind::Sqs, Kind::Kinesis, Kind::DynamoDb];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Kafka => "kafka (tansu)",
            Kind::RabbitMq => "rabbitmq (ordered)",
            Kind::Sqs => "sqs fifo (moto)",
            Kind::Kinesis => "kinesis (moto)",
            Kind::DynamoDb => "dynamodb streams (moto, 300 items)",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Kind::Kafka => "kafka",
            Kind::RabbitMq => "rabbitmq",
            Kind::Sqs => "sqs",
            Kind::Kinesis => "kinesis",
            Kind::DynamoDb => "dynamodb",
        }
    }

    /// Whether esmd's own checkpoint store (the redb file in the state dir) holds the positions;
    /// Kafka keeps them in the group, the queues in the broker's acks.
    pub fn checkpoints_on_disk(self) -> bool {
        matches!(self, Kind::Kinesis | Kind::DynamoDb)
    }

    pub fn has_broker_restart(self) -> bool {
        matches!(self, Kind::Kafka | Kind::RabbitMq)
    }

    /// The most records one process can hold unfinished: a fault can make each of them be
    /// delivered again.
    pub fn in_flight_bound(self) -> u64 {
        match self {
            // Per partition (4): each of the 4 lanes holds the batch in flight (100) and its
            // channel (two batches), and the poll loop holds the read in hand (batch × lanes).
            // Lanes now keep zero-window batches open while the next read follows, so they run
            // fuller on average (SIGSTOP: 4,225 of 6,400, 2026-12-03), never past this.
            Kind::Kafka => 4 * (4 * 100 * 3 + 100 * 4),
            // prefetch: batch × (concurrency + 1).
            Kind::RabbitMq => 100 * 2,
            // batch 10 × pollers.
            Kind::Sqs => 10 * 10,
            Kind::Kinesis => 100 * 3 * 2 * 3,
            Kind::DynamoDb => 100 * 2 * 3,
        }
    }

    /// How long a paused or failing esmd stays unseen before the source hands its work to
    /// someone else (the visibility timeout, the group's session timeout).
    pub fn lease_s(self) -> u64 {
        match self {
            Kind::Kafka => KAFKA_SESSION_S,
            Kind::Sqs => SQS_VISIBILITY_S,
            _ => 0,
        }
    }
}

/// The group's session timeout: how long a SIGKILLed esmd stays a member. The rebalance timeout
/// (`max.poll.interval.ms`, 10 s) bounds how long a join waits for members that never answer:
/// with librdkafka's default of 300 s, one join that reached tansu before a killed member had
/// expired held the group for good (seen in a 50-kill run).
pub const KAFKA_SESSION_S: u64 = 3;
const SQS_VISIBILITY_S: u64 = 5;
/// Kept below SQS's visibility timeout (esmd warns otherwise).
pub const FUNCTION_TIMEOUT_S: u64 = 3;
const PARTITIONS: i32 = 4;

pub enum Backend {
    Kafka { broker: Option<support::kafka::Tansu>, topic: String },
    RabbitMq { queue: String },
    Sqs { moto: support::moto::MotoServer, url: String },
    Kinesis { moto: support::moto::MotoServer, stream: String },
    DynamoDb { moto: support::moto::MotoServer, arn: String },
}

impl Backend {
    /// Starts the source's server (or finds the machine's RabbitMQ) and seeds `seeded`.
    pub async fn start(kind: Kind, seeded: &Seeded) -> Self {
        let ids = 0..seeded.len();
        match kind {
            Kind::Kafka => {
                use support::kafka::{create_topic, produce, Message, Tansu};
                let broker = Tansu::start().await;
                let topic = "faults".to_string();
                create_topic(&broker.bootstrap, &topic, PARTITIONS).await;
                produce(&broker.bootstrap, &topic, ids.map(|id| Message::keyed(seeded.keys[id as usize].clone(), seeded.payload(id)))).await;
                Backend::Kafka { broker: Some(broker), topic }
            }
            Kind::RabbitMq => {
                use esmd_rabbitmq::lapin::BasicProperties;
                use support::rabbitmq::{unique, Broker, QueueArgs};
                let broker = Broker::open().await;
                let queue = unique("faults");
                broker.declare(&queue, QueueArgs::default()).await;
                broker.publish(&queue, ids.map(|id| (seeded.payload(id), BasicProperties::default().with_message_id(format!("m-{id}").into())))).await;
                Backend::RabbitMq { queue }
            }
            Kind::Sqs => {
                use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
                let moto = support::moto::MotoServer::start().await;
                let url = moto.create_queue("faults.fifo", &[("VisibilityTimeout", &SQS_VISIBILITY_S.to_string())]).await;
                let client = moto.sqs_client();
                let ids: Vec<u64> = ids.collect();
                for chunk in ids.chunks(10) {
                    let entries = chunk
                        .iter()
                        .enumerate()
                        .map(|(i, &id)| {
                            SendMessageBatchRequestEntry::builder()
                                .id(format!("e{i}"))
                                .message_body(seeded.payload(id))
                                // A group per key: FIFO keeps each key's order.
                                .message_group_id(&seeded.keys[id as usize])
                                .message_deduplication_id(format!("d-{id}"))
                                .build()
                                .expect("entry")
                        })
                        .collect();
                    let out = client.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.expect("SendMessageBatch");
                    assert!(out.failed().is_empty(), "{:?}", out.failed());
                }
                Backend::Sqs { moto, url }
            }
            Kind::Kinesis => {
                use support::kinesis::{client, create_stream, put_records};
                let moto = support::moto::MotoServer::start().await;
                let stream = "faults".to_string();
                let c = client(&moto.endpoint());
                create_stream(&c, &stream, 2).await;
                let records: Vec<(String, Vec<u8>)> = ids.map(|id| (seeded.keys[id as usize].clone(), seeded.payload(id).into_bytes())).collect();
                put_records(&c, &stream, &records).await;
                Backend::Kinesis { moto, stream }
            }
            Kind::DynamoDb => {
                let moto = support::moto::MotoServer::start().await;
                let db = support::dynamodb::DynamoDb::new(&moto.endpoint());
                // One item per key, written again for each of its records: DynamoDB Streams
                // (and esmd's lanes) keep order per item, not across the items of a hash key.
                let arn = db.create_keyed_table("faults", &[("k", "S", "HASH")], "NEW_IMAGE").await;
                let ids: Vec<u64> = ids.collect();
                // 25 consecutive ids never share a key (see `Seeded::new`), as BatchWriteItem
                // requires.
                for chunk in ids.chunks(25) {
                    let puts: Vec<_> = chunk
                        .iter()
                        .map(|&id| json!({"PutRequest": {"Item": {"k": {"S": seeded.keys[id as usize]}, "n": {"N": seeded.n[id as usize].to_string()}, "id": {"N": id.to_string()}}}}))
                        .collect();
                    db.call("BatchWriteItem", json!({"RequestItems": {"faults": puts}})).await;
                }
                Backend::DynamoDb { moto, arn }
            }
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Backend::Kafka { .. } => Kind::Kafka,
            Backend::RabbitMq { .. } => Kind::RabbitMq,
            Backend::Sqs { .. } => Kind::Sqs,
            Backend::Kinesis { .. } => Kind::Kinesis,
            Backend::DynamoDb { .. } => Kind::DynamoDb,
        }
    }

    fn kafka_bootstrap(&self) -> String {
        match self {
            Backend::Kafka { broker: Some(b), .. } => b.bootstrap.clone(),
            _ => String::new(),
        }
    }

    /// The inline source table of the mapping.
    pub fn source_toml(&self) -> String {
        match self {
            Backend::Kafka { topic, .. } => format!(
                r#"{{ type = "kafka", bootstrap_servers = ["{}"], topic = "{topic}", consumer_group_id = "faults", properties = {{ "session.timeout.ms" = "{}", "heartbeat.interval.ms" = "500", "max.poll.interval.ms" = "10000" }} }}"#,
                self.kafka_bootstrap(),
                KAFKA_SESSION_S * 1000
            ),
            Backend::RabbitMq { queue } => {
                format!(r#"{{ type = "rabbitmq", uri = "{}", queue = "{queue}", username = "guest", password = "guest", ordered = true }}"#, support::rabbitmq::URI)
            }
            Backend::Sqs { moto, url } => format!(r#"{{ type = "sqs", queue_url = "{url}", region = "us-east-1", endpoint_url = "{}" }}"#, moto.endpoint()),
            Backend::Kinesis { moto, stream } => {
                format!(r#"{{ type = "kinesis", stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/{stream}", endpoint_url = "{}" }}"#, moto.endpoint())
            }
            Backend::DynamoDb { moto, arn } => format!(r#"{{ type = "dynamodb_streams", stream_arn = "{arn}", endpoint_url = "{}" }}"#, moto.endpoint()),
        }
    }

    /// The mapping's other keys: parallelization above 1 on every stream.
    pub fn mapping_toml(&self) -> &'static str {
        match self.kind() {
            Kind::Kafka => "starting_position = \"TRIM_HORIZON\"\nbatch_size = 100\nparallelization_factor = 4",
            Kind::RabbitMq => "batch_size = 100",
            Kind::Sqs => "batch_size = 10",
            Kind::Kinesis => "starting_position = \"TRIM_HORIZON\"\nbatch_size = 100\nparallelization_factor = 3",
            Kind::DynamoDb => "starting_position = \"TRIM_HORIZON\"\nbatch_size = 100\nparallelization_factor = 2",
        }
    }

    /// Restarts the broker under the running mapping: down for `down`, then up again with its
    /// data.
    pub async fn restart_broker(&mut self, down: Duration) {
        match self {
            Backend::Kafka { broker, .. } => {
                let b = broker.take().expect("tansu is running");
                let dir_port = b.stop();
                tokio::time::sleep(down).await;
                *broker = Some(support::kafka::Tansu::relaunch(dir_port).await);
            }
            Backend::RabbitMq { .. } => {
                let ctl = |c: &'static str| tokio::task::spawn_blocking(move || support::rabbitmq::rabbitmqctl(c));
                ctl("stop_app").await.expect("join");
                tokio::time::sleep(down).await;
                ctl("start_app").await.expect("join");
            }
            _ => panic!("{} has no broker restart", self.kind().name()),
        }
    }

    /// Once everything is delivered: nothing is left for a restart to deliver again (Kafka:
    /// the group committed every partition; the queues: every message acked or deleted).
    pub async fn wait_settled(&self, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let state = match self {
                Backend::Kafka { topic, .. } => {
                    let bs = self.kafka_bootstrap();
                    let high = support::kafka::high_watermarks(&bs, topic, PARTITIONS).await;
                    let committed = support::kafka::committed(&bs, "faults", topic, PARTITIONS).await;
                    (high == committed).then_some(()).ok_or(format!("committed {committed:?} of {high:?}"))
                }
                Backend::RabbitMq { queue } => {
                    let q = queue.clone();
                    let (ready, unacked) = tokio::task::spawn_blocking(move || support::rabbitmq::counts(&q)).await.expect("join");
                    (ready == 0 && unacked == 0).then_some(()).ok_or(format!("{ready} ready, {unacked} unacked"))
                }
                Backend::Sqs { moto, url } => {
                    let counts = moto.queue_counts(url).await;
                    (counts == (0, 0)).then_some(()).ok_or(format!("(visible, in flight) = {counts:?}"))
                }
                // The checkpoints are esmd's own; a restart after the drain is what proves them.
                Backend::Kinesis { .. } | Backend::DynamoDb { .. } => Ok(()),
            };
            match state {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() > deadline => return Err(format!("not settled after {timeout:?}: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Removes what the run left on the machine's shared broker.
    pub async fn cleanup(&self) {
        if let Backend::RabbitMq { queue } = self {
            support::rabbitmq::Broker::open().await.delete(queue).await;
        }
    }
}
