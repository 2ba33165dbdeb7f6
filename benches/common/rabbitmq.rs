//! Draining a RabbitMQ backlog: esmd against a raw lapin consume+ack loop, same broker, one run.
//!
//! Needs the RabbitMQ on 127.0.0.1:5672 (guest/guest). Before each row a fresh durable queue
//! gets N persistent messages of 1 KB. "raw" consumes it with lapin (prefetch 500, the
//! prefetch esmd uses for batch 100 × 5 batches) and acks every delivery, or acks once per
//! 100 deliveries with `multiple`, as esmd does for a finished batch. "esmd" runs a mapping
//! over its queue into the no-op HTTP function (a process of its own, `noop.rs`) on 127.0.0.1
//! until the function has seen every message. Clocks run from the first message delivered to
//! the last (raw: received; esmd: the function's first and last request).

use super::noop::NoopFunction;
use super::table::Drain;
use esmd::engine::settings::{BatchSettings, QueueSettings};
use esmd::status::StatusRegistry;
use esmd::supervisor::QueueMapping;
use esmd_api::QueueSource;
use esmd_rabbitmq::lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions, QueueDeleteOptions};
use esmd_rabbitmq::lapin::types::FieldTable;
use esmd_rabbitmq::lapin::{BasicProperties, Connection, ConnectionProperties};
use esmd_rabbitmq::{Publisher, RabbitMqConnection, RabbitMqOptions, RabbitMqSource, RabbitMqSourceConfig};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const URI: &str = "amqp://127.0.0.1:5672";
const BODY_BYTES: usize = 1024;

/// The raw rows' names, by how often they ack (1: each delivery).
pub fn raw_row(ack_every: usize) -> String {
    if ack_every <= 1 {
        "raw lapin consume + ack each (prefetch 500)".into()
    } else {
        format!("raw lapin consume + one multiple ack per {ack_every} (prefetch 500)")
    }
}

pub fn esmd_row(batch: usize, concurrency: usize) -> String {
    format!("esmd batch {batch}, {concurrency} concurrent batches")
}

/// One raw row per `raw_acks` entry (see [`raw_row`]), one esmd row per `(batch, concurrency)`;
/// each on a freshly seeded queue of `n` messages.
pub async fn drain(n: usize, raw_acks: &[usize], configs: &[(usize, usize)]) -> Drain {
    println!("backlog: {n} persistent messages of {BODY_BYTES} B per row, RabbitMQ at {URI}\n");
    let queue = format!("esmd-bench-{}", std::process::id());
    let mut rows = Vec::new();
    for &ack_every in raw_acks {
        seed(&queue, n).await;
        rows.push((raw_row(ack_every), raw(&queue, n, ack_every).await));
    }
    for &(batch, concurrency) in configs {
        seed(&queue, n).await;
        rows.push((esmd_row(batch, concurrency), esmd(&queue, n, batch, concurrency).await));
    }
    delete(&queue).await;
    Drain { n, unit: "messages", vs: "vs raw".into(), rows }
}

fn connection() -> RabbitMqConnection {
    RabbitMqConnection { uri: URI.into(), virtual_host: "/".into(), username: None, password: None, tls: None }
}

/// A fresh durable queue with `n` persistent 1 KB messages.
async fn seed(queue: &str, n: usize) {
    let conn = Connection::connect("amqp://127.0.0.1:5672/%2f", ConnectionProperties::default()).await.expect("RabbitMQ at 127.0.0.1:5672 (rabbitmq-server -detached)");
    let ch = conn.create_channel().await.expect("channel");
    let _ = ch.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
    ch.queue_declare(queue.into(), QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default()).await.expect("declare");
    let publisher = Publisher::new(connection(), "esmd-bench-seed");
    let mut i = 0;
    while i < n {
        let chunk = (i..(i + 5000).min(n)).map(|j| {
            let mut body = format!("{{\"n\":{j}}}").into_bytes();
            body.resize(BODY_BYTES, b' ');
            (body, BasicProperties::default().with_delivery_mode(2).with_message_id(format!("m-{j}").into()))
        });
        publisher.publish_all("", queue, chunk).await.expect("seed");
        i += 5000;
    }
    publisher.close().await;
    let _ = conn.close(200, "seeded".into()).await;
}

async fn delete(queue: &str) {
    if let Ok(conn) = Connection::connect("amqp://127.0.0.1:5672/%2f", ConnectionProperties::default()).await {
        if let Ok(ch) = conn.create_channel().await {
            let _ = ch.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
        }
        let _ = conn.close(200, "done".into()).await;
    }
}

/// `ack_every` 1: ack each delivery; above 1: one `multiple` ack per that many deliveries.
async fn raw(queue: &str, n: usize, ack_every: usize) -> Duration {
    let conn = Connection::connect("amqp://127.0.0.1:5672/%2f", ConnectionProperties::default()).await.expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    ch.basic_qos(500, BasicQosOptions::default()).await.expect("qos");
    let mut consumer = ch.basic_consume(queue.into(), "raw".into(), BasicConsumeOptions::default(), FieldTable::default()).await.expect("consume");
    let (mut seen, mut touched, mut first) = (0usize, 0u64, None);
    while seen < n {
        let d = consumer.next().await.expect("stream").expect("delivery");
        first.get_or_insert_with(Instant::now);
        touched += d.data.len() as u64;
        seen += 1;
        if ack_every <= 1 {
            d.ack(BasicAckOptions::default()).await.expect("ack");
        } else if seen % ack_every == 0 || seen == n {
            d.ack(BasicAckOptions { multiple: true }).await.expect("ack");
        }
    }
    let elapsed = first.map(|f: Instant| f.elapsed()).unwrap_or_default();
    assert!(touched >= (n * BODY_BYTES) as u64);
    let _ = conn.close(200, "done".into()).await;
    elapsed
}

async fn esmd(queue: &str, n: usize, batch_size: usize, concurrency: usize) -> Duration {
    let function = NoopFunction::start("\"redelivered\":").await;
    let config: RabbitMqSourceConfig = serde_json::from_value(serde_json::json!({"uri": URI, "queue": queue})).expect("config");
    let settings = QueueSettings {
        batch: BatchSettings { batch_size, window: Duration::ZERO, ..Default::default() },
        maximum_concurrency: concurrency,
        receive_wait: Duration::from_secs(1),
        ..Default::default()
    };
    // What `esmd run` would use for these settings.
    let prefetch = esmd_rabbitmq::prefetch(settings.batch.batch_size, settings.maximum_concurrency);
    let source = Arc::new(RabbitMqSource::new(RabbitMqOptions { mapping: queue.into(), config, prefetch, region: "us-east-1".into(), account: "000000000000".into() }).expect("source"));
    let registry = StatusRegistry::default();
    let stop = CancellationToken::new();
    let ctx = super::mapping_ctx(queue, "rabbitmq", &function.url, 64, source.encoder(), &registry, stop.child_token());
    let handle = tokio::spawn(QueueMapping { ctx: Arc::new(ctx), settings: Arc::new(settings), source }.run());
    function.wait_count(n, Duration::from_secs(3600)).await;
    let elapsed = function.span().await;
    stop.cancel();
    let _ = handle.await;
    elapsed
}
