//! The Kafka connector against tansu, an independent Kafka-protocol broker (sqlite storage),
//! so nothing here depends on librdkafka's own mock: delivery, commits, restart-resume and
//! per-key order. `scripts/kafka-deps.sh` installs tansu; without it these tests fail.
#![cfg(feature = "kafka")]

mod common;
mod support;

use common::{start_stream, stream_settings};
use esmd_api::StartFrom;
use esmd_kafka::{KafkaOptions, KafkaSource, KafkaSourceConfig};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::function::{FunctionServer, Reply};
use support::kafka::{committed, create_topic, kafka_records, produce, wait_all_committed, wait_committed, Message, Tansu};
use support::moto::free_port;
use support::tls::{TestPki, TlsProxy};

fn source(bootstrap: &str, topic: &str, group: &str) -> Arc<KafkaSource> {
    source_from(bootstrap, topic, group, StartFrom::TrimHorizon)
}

fn source_from(bootstrap: &str, topic: &str, group: &str, start: StartFrom) -> Arc<KafkaSource> {
    let config: KafkaSourceConfig = serde_json::from_value(json!({"bootstrap_servers": [bootstrap], "topic": topic, "consumer_group_id": group})).expect("config");
    Arc::new(KafkaSource::new(KafkaOptions { mapping: "m".into(), config, starting_position: start, counters: esmd_api::no_counters() }).expect("source"))
}

type Seen = Arc<Mutex<Vec<(String, i64, String)>>>;

/// Waits (up to a minute) until the function has seen `n` records.
async fn wait_delivered(seen: &Seen, n: usize, broker: &Tansu) {
    support::wait::eventually_every(&format!("{n} records delivered"), Duration::from_secs(60), Duration::from_millis(50), || {
        let got = seen.lock().unwrap().len();
        if got >= n { Ok(()) } else { Err(format!("delivered {got} of {n}\n{}", broker.log())) }
    })
    .await
}

async fn recording_function(seen: Seen) -> FunctionServer {
    FunctionServer::start(move |event| {
        seen.lock().unwrap().extend(kafka_records(event).into_iter().map(|(p, o, k, _)| (p, o, k)));
        Reply::empty()
    })
    .await
}

/// Delivery with per-key order under parallelization 4, every offset committed; then a
/// restart with the same group resumes after the commit and delivers only the new records.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delivers_in_key_order_commits_and_resumes_after_restart() {
    let broker = Tansu::start().await;
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "events", 2).await;
    produce(&bs, "events", (0..600).map(|i| Message { partition: Some(i % 2), key: Some(format!("k{}", i % 12)), value: format!("{i}"), timestamp: None })).await;

    let seen: Seen = Arc::default();
    let f = recording_function(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(25, 20);
    settings.parallelization_factor = 4;
    let m = start_stream(source(&bs, "events", "tg"), &f.url(), settings.clone(), dir.path(), None);
    let done = wait_all_committed(&bs, "tg", "events", 2, Duration::from_secs(90)).await;
    m.stop().await;
    assert_eq!(done, [300, 300], "{}", broker.log());

    let first = seen.lock().unwrap().clone();
    let unique: BTreeSet<(String, i64)> = first.iter().map(|(p, o, _)| (p.clone(), *o)).collect();
    assert_eq!(unique.len(), 600);
    let mut last: HashMap<(String, String), i64> = HashMap::new();
    for (p, o, k) in &first {
        if let Some(prev) = last.insert((p.clone(), k.clone()), *o) {
            assert!(*o > prev, "key {k} on {p}: offset {o} after {prev}");
        }
    }

    // Restart: only records written after the commit arrive.
    produce(&bs, "events", (600..700).map(|i| Message { partition: Some(i % 2), key: Some(format!("k{}", i % 12)), value: format!("{i}"), timestamp: None })).await;
    seen.lock().unwrap().clear();
    let dir2 = tempfile::tempdir().unwrap();
    let m2 = start_stream(source(&bs, "events", "tg"), &f.url(), settings, dir2.path(), None);
    wait_all_committed(&bs, "tg", "events", 2, Duration::from_secs(90)).await;
    m2.stop().await;
    let second: BTreeSet<(String, i64)> = seen.lock().unwrap().iter().map(|(p, o, _)| (p.clone(), *o)).collect();
    let expected: BTreeSet<(String, i64)> = (300..350).flat_map(|o| [("events-0".to_string(), o), ("events-1".to_string(), o)]).collect();
    assert_eq!(second, expected);
}

/// A failing batch holds its partition's commit: the group's offset stays below the
/// unfinished record until the function recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_never_passes_an_unfinished_record() {
    let broker = Tansu::start().await;
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "held", 1).await;
    produce(&bs, "held", (0..50).map(|i| Message { partition: Some(0), key: None, value: if i == 20 { "bad".into() } else { format!("{i}") }, timestamp: None })).await;

    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let b = broken.clone();
    let f = FunctionServer::start(move |event| {
        let bad = kafka_records(event).iter().any(|r| r.3 == "bad");
        if bad && b.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::error("not yet")
        } else {
            Reply::empty()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(source(&bs, "held", "hg"), &f.url(), stream_settings(10, 0), dir.path(), None);
    wait_committed(&bs, "hg", "held", &[20], Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(committed(&bs, "hg", "held", 1).await, [20], "held below the failing batch");
    broken.store(false, std::sync::atomic::Ordering::SeqCst);
    wait_all_committed(&bs, "hg", "held", 1, Duration::from_secs(60)).await;
    m.stop().await;
}

/// SASL/SCRAM-SHA-512 against a broker that requires it: records arrive and offsets are
/// committed as the authenticated user; a wrong password delivers nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sasl_scram_authenticates_and_a_wrong_password_reads_nothing() {
    let broker = Tansu::start().await;
    let bs = broker.bootstrap.clone();
    broker.create_user("esmd", "s3cret", "scram512");
    create_topic(&bs, "secure", 1).await;
    produce(&bs, "secure", (0..40).map(|i| Message { partition: Some(0), key: None, value: format!("{i}"), timestamp: None })).await;
    let broker = broker.restart(true).await;

    let scram = |password: &str| {
        let config: KafkaSourceConfig = serde_json::from_value(json!({
            "bootstrap_servers": [bs], "topic": "secure", "consumer_group_id": "sg",
            "sasl": {"mechanism": "SCRAM-SHA-512", "username": "esmd", "password": password}
        }))
        .expect("config");
        Arc::new(KafkaSource::new(KafkaOptions { mapping: "m".into(), config, starting_position: StartFrom::TrimHorizon, counters: esmd_api::no_counters() }).expect("source"))
    };

    // Wrong password: nothing is read, the failures are counted.
    let seen: Seen = Arc::default();
    let f = recording_function(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let bad = scram("wrong");
    let m = start_stream(bad.clone(), &f.url(), stream_settings(10, 0), dir.path(), None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    m.stop().await;
    assert!(seen.lock().unwrap().is_empty());
    assert!(bad.error_count() > 0, "authentication failures are counted");

    let good = scram("s3cret");
    let m = start_stream(good, &f.url(), stream_settings(10, 0), dir.path(), None);
    wait_delivered(&seen, 40, &broker).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    m.stop().await;
    // Read the group's offset back without authentication.
    let broker = broker.restart(false).await;
    assert_eq!(committed(&broker.bootstrap, "sg", "secure", 1).await, [40]);
}

/// AT_TIMESTAMP starts each partition at its first record at or after the time (ListOffsets
/// by timestamp, answered by the broker).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_timestamp_starts_at_the_first_record_at_or_after_the_time() {
    let broker = Tansu::start().await;
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "timed", 1).await;
    let t0 = esmd_api::time::now_ms() - 60_000;
    produce(&bs, "timed", (0..10).map(|i| Message { partition: Some(0), key: None, value: format!("{i}"), timestamp: Some(t0 + i * 1000) })).await;
    let seen: Seen = Arc::default();
    let f = recording_function(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(source_from(&bs, "timed", "atg", StartFrom::AtTimestamp(t0 + 4500)), &f.url(), stream_settings(10, 0), dir.path(), None);
    wait_all_committed(&bs, "atg", "timed", 1, Duration::from_secs(60)).await;
    m.stop().await;
    let offsets: Vec<i64> = seen.lock().unwrap().iter().map(|r| r.1).collect();
    assert_eq!(offsets, (5..10).collect::<Vec<_>>(), "{}", broker.log());
}

/// TLS with a custom root CA and a client certificate (mutual TLS): the broker sits behind a
/// TLS-terminating proxy that requires a certificate signed by the test CA. With the
/// certificate records arrive and are committed; without it nothing is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutual_tls_with_a_custom_ca() {
    let broker = Tansu::start().await;
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "tls", 1).await;
    produce(&bs, "tls", (0..25).map(|i| Message { partition: Some(0), key: None, value: format!("{i}"), timestamp: None })).await;
    let pki = TestPki::create();
    let proxy_port = free_port();
    let broker_port: u16 = bs.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap();
    let broker = broker.restart_behind(proxy_port).await;
    let _proxy = TlsProxy::start(&pki, proxy_port, broker_port).await;

    let tls_source = |client_cert: bool| {
        let mut tls = json!({"ca_file": pki.path("ca.pem")});
        if client_cert {
            tls["cert_file"] = json!(pki.path("client.pem"));
            tls["key_file"] = json!(pki.path("client.key"));
        }
        let config: KafkaSourceConfig = serde_json::from_value(json!({
            "bootstrap_servers": [format!("127.0.0.1:{proxy_port}")], "topic": "tls", "consumer_group_id": "tlsg", "tls": tls
        }))
        .expect("config");
        Arc::new(KafkaSource::new(KafkaOptions { mapping: "m".into(), config, starting_position: StartFrom::TrimHorizon, counters: esmd_api::no_counters() }).expect("source"))
    };

    let seen: Seen = Arc::default();
    let f = recording_function(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let anonymous = tls_source(false);
    let m = start_stream(anonymous.clone(), &f.url(), stream_settings(10, 0), dir.path(), None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    m.stop().await;
    assert!(seen.lock().unwrap().is_empty(), "the proxy refuses clients without a certificate");
    assert!(anonymous.error_count() > 0, "the handshake failures are counted");

    let m = start_stream(tls_source(true), &f.url(), stream_settings(10, 0), dir.path(), None);
    wait_delivered(&seen, 25, &broker).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    m.stop().await;
    let broker = broker.restart(false).await;
    assert_eq!(committed(&broker.bootstrap, "tlsg", "tls", 1).await, [25]);
}
