//! The RabbitMQ connector against the machine's real broker (127.0.0.1:5672): acks only after
//! success, retries and the failure paths, partial batches, filters, a broker restart mid
//! drain, ordered mode, the rabbitmq:// destination and amqps.
#![cfg(feature = "rabbitmq")]

mod common;
mod support;

use common::{ctx, queue_settings, Mapping};
use esmd_rabbitmq::RabbitMqDestination;
use esmd::engine::settings::{QueueExhausted, QueueSettings};
use esmd::status::StatusRegistry;
use esmd::supervisor::QueueMapping;
use esmd_api::QueueSource;
use esmd_rabbitmq::lapin::BasicProperties;
use esmd_rabbitmq::{Publisher, RabbitMqConnection, RabbitMqOptions, RabbitMqSource, RabbitMqSourceConfig};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::function::{FunctionServer, Reply};
use support::wait::wait_for;
use support::rabbitmq::{rabbitmqctl, rmq_messages, unique, wait_empty, Broker, QueueArgs, BROKER, URI};
use tokio_util::sync::CancellationToken;

fn config(queue: &str, extra: Value) -> RabbitMqSourceConfig {
    let mut v = json!({"uri": URI, "queue": queue, "username": "guest", "password": "guest"});
    if let (Some(o), Value::Object(extra)) = (v.as_object_mut(), extra) {
        o.extend(extra);
    }
    serde_json::from_value(v).expect("config")
}

fn source_with(config: RabbitMqSourceConfig, settings: &QueueSettings) -> Arc<RabbitMqSource> {
    // What `esmd run` uses for these settings.
    let prefetch = esmd_rabbitmq::prefetch(settings.batch.batch_size, settings.maximum_concurrency);
    Arc::new(RabbitMqSource::new(RabbitMqOptions { mapping: "m".into(), config, prefetch, region: "us-east-1".into(), account: "123456789012".into() }).expect("source"))
}

/// Starts a mapping; `tweak` adjusts its context (filters, destination) before it runs.
fn start(source: Arc<RabbitMqSource>, url: &str, settings: QueueSettings, dir: &std::path::Path, tweak: impl FnOnce(&mut esmd::engine::context::MappingCtx)) -> Mapping {
    let registry = StatusRegistry::default();
    let stop = CancellationToken::new();
    let destination = dir.join("failures.jsonl");
    let mut c = ctx(url, source.encoder(), &destination, &registry, &stop);
    tweak(&mut c);
    let handle = tokio::spawn(QueueMapping { ctx: Arc::new(c), settings: Arc::new(settings), source }.run());
    Mapping { registry, stop, handle, destination }
}

/// (messageId, redelivered) of every message every invocation got, in order.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// Collects (messageId, redelivered) of every message every invocation got, in order.
fn recording(reply: impl Fn(&[(String, String, bool)]) -> Reply + Send + Sync + 'static) -> (Seen, impl Fn(&Value) -> Reply + Send + Sync + 'static) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let handler = move |event: &Value| {
        let messages = rmq_messages(event);
        let r = reply(&messages);
        s.lock().unwrap().extend(messages.into_iter().map(|(id, _, redelivered)| (id, redelivered)));
        r
    };
    (seen, handler)
}

/// 100k messages, batch size 100: every message reaches the function once and is acked once
/// (the queue ends with nothing ready and nothing unacked, and no settlement hit a dead
/// channel); the event has AWS's shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drains_a_100k_backlog_acking_every_message_once() {
    let _shared = BROKER.read().await;
    let broker = Broker::open().await;
    let q = unique("drain");
    broker.declare(&q, QueueArgs::default()).await;
    broker.publish_numbered(&q, 100_000).await;

    let first: Arc<Mutex<Option<Value>>> = Arc::default();
    let f1 = first.clone();
    let (seen, handler) = recording(|_| Reply::empty());
    let f = FunctionServer::start(move |event| {
        f1.lock().unwrap().get_or_insert_with(|| event.clone());
        handler(event)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let settings = queue_settings(100, 5);
    let source = source_with(config(&q, json!({})), &settings);
    let m = start(source.clone(), &f.url(), settings, dir.path(), |_| {});
    wait_for("100k messages", Duration::from_secs(240), || seen.lock().unwrap().len() >= 100_000).await;
    wait_empty(&q, Duration::from_secs(30)).await;
    m.stop().await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 100_000, "none twice");
    let ids: BTreeSet<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 100_000, "every message");
    assert!(seen.iter().all(|(_, redelivered)| !redelivered));
    assert_eq!(source.stale_settlements(), 0);
    let event = first.lock().unwrap().clone().unwrap();
    assert_eq!(event["eventSource"], "aws:rmq");
    assert_eq!(event["eventSourceArn"], "arn:aws:mq:us-east-1:123456789012:broker:127-0-0-1:b-5672");
    let message = &event["rmqMessagesByQueue"][format!("{q}::/")][0];
    assert_eq!(message["basicProperties"]["deliveryMode"], 2);
    assert_eq!(message["basicProperties"]["headers"], Value::Null);
    assert!(message["basicProperties"]["messageId"].as_str().unwrap().starts_with("m-"));
    broker.delete(&q).await;
}

/// A slow batch does not hold the others back. Acks of batches that finish after it wait for
/// it (to go out with it as one `multiple` frame) only while they hold at most half the
/// prefetch; then they go out one by one, and the broker keeps delivering to the free slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_batch_does_not_hold_back_the_others() {
    let _shared = BROKER.read().await;
    let broker = Broker::open().await;
    let q = unique("slow");
    broker.declare(&q, QueueArgs::default()).await;
    broker.publish_numbered(&q, 1_000).await;
    let (seen, handler) = recording(|messages| {
        if messages.iter().any(|(id, _, _)| id == "m-0") {
            Reply::delay(Duration::from_secs(7), Reply::empty())
        } else {
            Reply::empty()
        }
    });
    let f = FunctionServer::start(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = queue_settings(10, 5);
    let source = source_with(config(&q, json!({})), &settings);
    let m = start(source.clone(), &f.url(), settings, dir.path(), |_| {});
    // With every later ack waiting on the first batch, the broker would stop at the prefetch
    // (60 messages) until that batch ends.
    wait_for("the other messages while the first batch still runs", Duration::from_secs(5), || seen.lock().unwrap().len() >= 1_000).await;
    wait_empty(&q, Duration::from_secs(30)).await;
    m.stop().await;
    assert_eq!(seen.lock().unwrap().len(), 1_000, "none twice");
    assert_eq!(source.stale_settlements(), 0);
    broker.delete(&q).await;
}

/// A poison message on a classic queue (no delivery count from the broker): esmd counts its
/// failures, gives up after 1 + maximum_retry_attempts deliveries, writes a failure record
/// and acks it. Its batch mates, named nowhere in the partial response, are acked at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_message_goes_to_the_destination_after_its_retries() {
    let _shared = BROKER.read().await;
    let broker = Broker::open().await;
    let q = unique("poison");
    broker.declare(&q, QueueArgs::default()).await;
    broker.publish_numbered(&q, 20).await;

    let (seen, handler) = recording(|messages| Reply::batch_item_failures(messages.iter().filter(|m| m.0 == "m-7").map(|m| json!(m.0))));
    let f = FunctionServer::start(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = queue_settings(10, 2);
    settings.report_batch_item_failures = true;
    settings.maximum_retry_attempts = Some(2);
    settings.on_exhausted = QueueExhausted::Destination;
    let source = source_with(config(&q, json!({})), &settings);
    let m = start(source, &f.url(), settings, dir.path(), |_| {});
    wait_for("a failure record", Duration::from_secs(30), || !m.failures().is_empty()).await;
    wait_empty(&q, Duration::from_secs(30)).await;
    let failures = m.failures();
    m.stop().await;

    let seen = seen.lock().unwrap().clone();
    let poison: Vec<bool> = seen.iter().filter(|(id, _)| id == "m-7").map(|(_, r)| *r).collect();
    assert_eq!(poison, [false, true, true], "delivered 1 + 2 times");
    assert_eq!(seen.len(), 22, "the others once each");
    assert_eq!(failures.len(), 1);
    let record = &failures[0];
    assert_eq!(record["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(record["RabbitMQBatchInfo"]["messageIds"], json!(["m-7"]));
    assert_eq!(record["RabbitMQBatchInfo"]["queue"], format!("{q}::/"));
    broker.delete(&q).await;
}

/// With `on_exhausted = dead_letter` on a quorum queue (whose `x-delivery-count` esmd reads)
/// the poison message is rejected without requeue and lands in the queue's dead-letter queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letter_option_hands_poison_to_the_queues_dlx() {
    let _shared = BROKER.read().await;
    let broker = Broker::open().await;
    let (q, dlq) = (unique("dlx"), unique("dlx-dead"));
    broker.declare(&dlq, QueueArgs::default()).await;
    broker.declare(&q, QueueArgs { quorum: true, dead_letter_to: Some(dlq.clone()), ..Default::default() }).await;
    broker.publish_numbered(&q, 5).await;

    // Whole-batch failures: one message per batch, so only the poison fails.
    let (seen, handler) = recording(|messages| if messages.iter().any(|m| m.1.contains("\"i\":3")) { Reply::error("poison") } else { Reply::empty() });
    let f = FunctionServer::start(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = queue_settings(1, 2);
    settings.maximum_retry_attempts = Some(1);
    settings.on_exhausted = QueueExhausted::DeadLetter;
    let source = source_with(config(&q, json!({})), &settings);
    let m = start(source, &f.url(), settings, dir.path(), |_| {});
    let dead = support::wait::until_every("a dead-lettered message", Duration::from_secs(30), Duration::from_millis(100), || async {
        let dead = broker.drain(&dlq).await;
        if dead.is_empty() { Err("nothing dead-lettered".to_string()) } else { Ok(dead) }
    })
    .await;
    wait_empty(&q, Duration::from_secs(30)).await;
    assert!(m.failures().is_empty(), "dead-lettering is not the destination");
    m.stop().await;

    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, r#"{"i":3}"#);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|(id, _)| id == "m-3").count(), 2, "delivered 1 + 1 times");
    assert_eq!(seen.len(), 6);
    broker.delete(&q).await;
    broker.delete(&dlq).await;
}

/// A partial batch response acks the successes and requeues only the named message, which
/// comes back redelivered; messages a filter drops are acked without an invocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partial_batch_responses_and_filtered_messages_are_acked() {
    let _shared = BROKER.read().await;
    let broker = Broker::open().await;
    let q = unique("partial");
    broker.declare(&q, QueueArgs::default()).await;
    let messages = (0..30).map(|i| {
        let body = if i % 3 == 0 { json!({"kind": "skip", "i": i}) } else { json!({"kind": "work", "i": i}) };
        (body.to_string(), BasicProperties::default().with_message_id(format!("m-{i}").into()))
    });
    broker.publish(&q, messages).await;

    let failed_once: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let fo = failed_once.clone();
    let (seen, handler) = recording(move |messages| {
        let mut fo = fo.lock().unwrap();
        let fail: Vec<Value> = messages.iter().filter(|m| (m.0 == "m-4" || m.0 == "m-11") && fo.insert(m.0.clone())).map(|m| json!(m.0)).collect();
        Reply::batch_item_failures(fail)
    });
    let f = FunctionServer::start(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = queue_settings(10, 2);
    settings.report_batch_item_failures = true;
    let source = source_with(config(&q, json!({})), &settings);
    let filter = esmd_filter::FilterCriteria::compile(&[r#"{"data":{"kind":["work"]}}"#.to_string()]).unwrap();
    let m = start(source, &f.url(), settings, dir.path(), |c| c.filter = Some(Arc::new(filter)));
    wait_for("20 messages + 2 retries", Duration::from_secs(30), || seen.lock().unwrap().len() >= 22).await;
    wait_empty(&q, Duration::from_secs(30)).await;
    m.stop().await;

    let seen = seen.lock().unwrap().clone();
    let mut count: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
    for (id, r) in &seen {
        count.entry(id.as_str()).or_default().push(*r);
    }
    assert_eq!(count.len(), 20, "the 10 filtered messages never reach the function: {count:?}");
    assert!(count.keys().all(|id| id[2..].parse::<usize>().unwrap() % 3 != 0));
    assert_eq!(count["m-4"], [false, true]);
    assert_eq!(count["m-11"], [false, true]);
    assert_eq!(seen.len(), 22, "the other messages of those batches were acked, not retried");
    broker.delete(&q).await;
}

/// `rabbitmqctl stop_app` / `start_app` in the middle of a drain: esmd waits the broker out,
/// reconnects by itself and every message reaches the function (the ones unacked at the
/// restart again, as the broker redelivers them); nothing stays in the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_restart_mid_drain_loses_nothing() {
    let _exclusive = BROKER.write().await;
    let broker = Broker::open().await;
    let q = unique("restart");
    broker.declare(&q, QueueArgs::default()).await;
    broker.publish_numbered(&q, 20_000).await;

    let (seen, handler) = recording(|_| Reply::delay(Duration::from_millis(5), Reply::empty()));
    let f = FunctionServer::start(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = queue_settings(100, 4);
    let prefetch = usize::from(esmd_rabbitmq::prefetch(settings.batch.batch_size, settings.maximum_concurrency));
    let source = source_with(config(&q, json!({})), &settings);
    let m = start(source.clone(), &f.url(), settings, dir.path(), |_| {});
    wait_for("the drain to start", Duration::from_secs(30), || seen.lock().unwrap().len() >= 2_000).await;
    rabbitmqctl("stop_app");
    let during = seen.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!source.is_connected());
    rabbitmqctl("start_app");
    drop(broker);
    let unique_ids = || seen.lock().unwrap().iter().map(|(id, _)| id.clone()).collect::<BTreeSet<_>>().len();
    wait_for("every message after the restart", Duration::from_secs(120), || unique_ids() == 20_000).await;
    assert!(source.is_connected());
    wait_empty(&q, Duration::from_secs(30)).await;
    m.stop().await;

    let seen = seen.lock().unwrap().clone();
    assert!(during < 20_000, "the restart happened mid drain");
    let repeated = seen.len() - 20_000;
    eprintln!("restart: {during} delivered before stop_app, {repeated} delivered twice");
    // At most what was unacked when the broker stopped (the prefetch, 500) comes again; acks
    // waiting for a lower tag are among those.
    assert!(repeated <= prefetch, "{repeated} messages delivered twice (prefetch {prefetch})");
    Broker::open().await.delete(&q).await;
}

/// `ordered = true` on a single-active-consumer queue: one batch at a time, and when a batch
/// fails, it comes back before anything published after it, so the function sees the
/// messages in publish order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ordered_mode_keeps_publish_order_across_a_failure() {
    let _shared = BROKER.read().await;
    let broker = Broker::open().await;
    let q = unique("ordered");
    broker.declare(&q, QueueArgs { single_active_consumer: true, ..Default::default() }).await;
    broker.publish_numbered(&q, 300).await;

    // (message numbers, redelivered) per invocation.
    type Invocations = Arc<Mutex<Vec<(Vec<usize>, bool)>>>;
    let invocations: Invocations = Arc::default();
    let inv = invocations.clone();
    let failures = Arc::new(Mutex::new(0));
    let f = FunctionServer::start(move |event| {
        let ids: Vec<usize> = rmq_messages(event).iter().map(|m| m.0[2..].parse().unwrap()).collect();
        // The batches holding 95 and 201 fail twice each.
        let mut failures = failures.lock().unwrap();
        let fail = ids.iter().any(|i| *i == 95 || *i == 201) && *failures < 4;
        if fail {
            *failures += 1;
        }
        inv.lock().unwrap().push((ids, !fail));
        if fail { Reply::error("not yet") } else { Reply::empty() }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = queue_settings(10, 1);
    settings.batch.window = Duration::from_millis(20);
    let source = source_with(config(&q, json!({"ordered": true})), &settings);
    let m = start(source, &f.url(), settings, dir.path(), |_| {});
    let done = || invocations.lock().unwrap().iter().filter(|(_, ok)| *ok).map(|(ids, _)| ids.len()).sum::<usize>() >= 300;
    wait_for("300 messages", Duration::from_secs(60), done).await;
    wait_empty(&q, Duration::from_secs(30)).await;
    m.stop().await;

    let invocations = invocations.lock().unwrap().clone();
    let succeeded: Vec<usize> = invocations.iter().filter(|(_, ok)| *ok).flat_map(|(ids, _)| ids.clone()).collect();
    assert_eq!(succeeded, (0..300).collect::<Vec<_>>(), "publish order, each once");
    assert_eq!(invocations.iter().filter(|(_, ok)| !ok).count(), 4);
    // Every invocation, failed ones included, continues where the last success ended.
    let mut next = 0;
    for (ids, ok) in &invocations {
        assert_eq!(ids[0], next, "{invocations:?}");
        if *ok {
            next = ids[ids.len() - 1] + 1;
        }
    }
    broker.delete(&q).await;
}

/// The rabbitmq:// destination publishes the failure record with the event as `payload`, and
/// refuses an exchange that routes nowhere instead of dropping the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_destination_publishes_failure_records() {
    let _shared = BROKER.read().await;
    let broker = Broker::open().await;
    let (q, dead) = (unique("dest-src"), unique("dest-dead"));
    broker.declare(&q, QueueArgs::default()).await;
    broker.declare(&dead, QueueArgs::default()).await;
    broker.publish_numbered(&q, 3).await;

    let connection = RabbitMqConnection { uri: URI.into(), virtual_host: "/".into(), username: None, password: None, tls: None };
    let unroutable = Publisher::new(connection.clone(), "esmd-test");
    let e = unroutable.publish("amq.direct", "no-such-binding", b"{}".to_vec(), BasicProperties::default()).await.unwrap_err();
    assert!(e.to_string().contains("no queue is bound"), "{e}");
    unroutable.close().await;

    let f = FunctionServer::start(|_| Reply::error("always")).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = queue_settings(10, 2);
    settings.maximum_retry_attempts = Some(0);
    settings.on_exhausted = QueueExhausted::Destination;
    let source = source_with(config(&q, json!({})), &settings);
    let destination = RabbitMqDestination::new(Publisher::new(connection, "esmd-test-dest"), String::new(), dead.clone());
    let m = start(source, &f.url(), settings, dir.path(), |c| c.destination = Some(Arc::new(destination)));
    // What each round drains is kept: the queue hands a message out once.
    let records = Mutex::new(Vec::new());
    support::wait::until_every("3 failure records", Duration::from_secs(30), Duration::from_millis(100), || async {
        let drained = broker.drain(&dead).await;
        let mut records = records.lock().unwrap();
        records.extend(drained);
        if records.len() >= 3 { Ok(()) } else { Err(format!("{} failure records", records.len())) }
    })
    .await;
    let records = records.into_inner().unwrap();
    wait_empty(&q, Duration::from_secs(30)).await;
    m.stop().await;

    let (body, props) = &records[0];
    let record: Value = serde_json::from_str(body).unwrap();
    assert_eq!(record["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["payload"]["eventSource"], "aws:rmq");
    assert_eq!(record["RabbitMQBatchInfo"]["batchSize"], 1);
    assert_eq!(props.content_type().as_ref().map(|c| c.as_str()), Some("application/json"));
    assert_eq!(*props.delivery_mode(), Some(2));
    broker.delete(&q).await;
    broker.delete(&dead).await;
}

/// amqps with a custom CA and a client certificate (socat terminates TLS in front of the
/// broker); a client without the CA is refused and keeps retrying instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn amqps_with_a_custom_ca_and_client_certificate() {
    let _shared = BROKER.read().await;
    let broker = Broker::open().await;
    let q = unique("tls");
    broker.declare(&q, QueueArgs::default()).await;
    broker.publish_numbered(&q, 50).await;
    let pki = support::tls::TestPki::create();
    let port = support::moto::free_port();
    let _proxy = support::tls::TlsProxy::start(&pki, port, 5672).await;

    let (seen, handler) = recording(|_| Reply::empty());
    let f = FunctionServer::start(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = queue_settings(10, 2);
    let tls = json!({"ca_file": pki.path("ca.pem"), "cert_file": pki.path("client.pem"), "key_file": pki.path("client.key")});
    let source = source_with(config(&q, json!({"uri": format!("amqps://127.0.0.1:{port}"), "tls": tls})), &settings);
    let m = start(source, &f.url(), settings.clone(), dir.path(), |_| {});
    wait_for("50 messages over TLS", Duration::from_secs(30), || seen.lock().unwrap().len() >= 50).await;
    m.stop().await;

    // Without the test CA the broker's certificate is not trusted: no connection, an error
    // from receive, and nothing consumed.
    broker.publish_numbered(&q, 1).await;
    let untrusted = source_with(config(&q, json!({"uri": format!("amqps://127.0.0.1:{port}")})), &settings);
    let e = untrusted.receive(10, Duration::from_secs(3)).await.unwrap_err();
    assert!(e.to_string().contains("not connected to RabbitMQ"), "{e}");
    untrusted.close().await;
    assert_eq!(broker.ready(&q).await, 1);
    broker.delete(&q).await;
}
