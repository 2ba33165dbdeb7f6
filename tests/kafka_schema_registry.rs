//! Kafka `schema_registry` end to end: records written by the registries' own serializers
//! (confluent-kafka's Avro, Protobuf and JSON Schema serializers; aws-glue-schema-registry's) to
//! tansu, decoded by esmd with schemas fetched from a registry, compared field by field with
//! what the producer wrote. Registries: a Confluent REST v1 registry written for these tests
//! (none installs here; see support::schema_registry) and moto's Glue Schema Registry API.
#![cfg(feature = "kafka")]

mod common;
mod support;

use base64::Engine as _;
use esmd::engine::context::RecordFilter;
use esmd::status::StatusRegistry;
use esmd::supervisor::StreamMapping;
use esmd_api::{OrderedSource, StartFrom};
use esmd_kafka::{FailureProducer, KafkaDestination, KafkaOptions, KafkaSource, KafkaSourceConfig};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::function::{FunctionServer, Reply};
use support::kafka::{read_topic, wait_all_committed, Tansu};
use support::schema_registry::{produce, produce_glue, ConfluentRegistry};

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).unwrap_or_default()
}

fn config(bootstrap: &str, topic: &str, registry: Value) -> KafkaSourceConfig {
    serde_json::from_value(json!({"bootstrap_servers": [bootstrap], "topic": topic, "consumer_group_id": format!("g-{topic}"), "schema_registry": registry}))
        .expect("config")
}

/// Every record of every event the function was sent, in arrival order.
type Seen = Arc<Mutex<Vec<Value>>>;

async fn recording_function() -> (FunctionServer, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let f = FunctionServer::start(move |event| {
        let mut got = s.lock().unwrap();
        for records in event["records"].as_object().into_iter().flat_map(|m| m.values()) {
            got.extend(records.as_array().into_iter().flatten().cloned());
        }
        Reply::empty()
    })
    .await;
    (f, seen)
}

struct Running {
    mapping: common::Mapping,
    _dir: tempfile::TempDir,
}

/// A mapping over `config`'s topic whose failures go to the Kafka topic `failures` (the
/// destination that carries each record, so its schema id is there to check).
fn start(config: KafkaSourceConfig, url: &str, filter: Option<Arc<dyn RecordFilter>>) -> Running {
    start_counting(config, url, filter, esmd_api::no_counters())
}

fn start_counting(config: KafkaSourceConfig, url: &str, filter: Option<Arc<dyn RecordFilter>>, counters: Arc<dyn esmd_api::SourceCounters>) -> Running {
    let producer = FailureProducer::for_source(&config).expect("failure producer");
    let source = Arc::new(KafkaSource::new(KafkaOptions { mapping: "m".into(), config, starting_position: StartFrom::TrimHorizon, counters }).expect("source"));
    let dir = tempfile::tempdir().unwrap();
    let registry = StatusRegistry::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut ctx = common::ctx(url, source.encoder(), &dir.path().join("unused.jsonl"), &registry, &stop);
    ctx.destination = Some(Arc::new(KafkaDestination::new(producer, "failures".into())));
    ctx.filter = filter;
    let store = Arc::new(esmd::checkpoint::embedded::EmbeddedStore::open(&dir.path().join("c.redb")).expect("store"));
    let settings = common::stream_settings(7, 20);
    let handle = tokio::spawn(StreamMapping { ctx: Arc::new(ctx), settings: Arc::new(settings), source, store }.run());
    Running { mapping: common::Mapping { registry, stop, handle, destination: dir.path().join("unused.jsonl") }, _dir: dir }
}

async fn wait_seen(seen: &Seen, n: usize, broker: &Tansu) {
    support::wait::eventually_every(&format!("{n} records delivered"), Duration::from_secs(60), Duration::from_millis(50), || {
        let got = seen.lock().unwrap().len();
        if got >= n { Ok(()) } else { Err(format!("delivered {got} of {n}\n{}", broker.log())) }
    })
    .await
}

/// Protobuf's JSON leaves out fields at their default (0, false, ""), as the canonical mapping does.
fn without_defaults(v: &Value) -> Value {
    let Value::Object(m) = v else { return v.clone() };
    Value::Object(
        m.iter()
            .filter(|(_, v)| !matches!(v, Value::Bool(false)) && v.as_f64() != Some(0.0) && v.as_str() != Some(""))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// Avro, Protobuf and JSON Schema keys and values from a Confluent registry, `JSON` format:
/// each field as written, each record naming its schemas, everything committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_avro_protobuf_and_json_schema_records_reach_the_function_as_json() {
    common::logs_from_env();
    let broker = Tansu::start().await;
    let registry = ConfluentRegistry::start();
    let prometheus = esmd::metrics::install_recorder().expect("recorder");
    let metrics = esmd::metrics::MappingMetrics::new("schema-metrics", "kafka");
    for (format, data_format) in [("avro", "AVRO"), ("protobuf", "PROTOBUF"), ("json", "JSON")] {
        let topic = format!("users-{format}");
        let produced = produce(&broker.bootstrap, &registry.url, &topic, &["--format", format, "--key-format", format, "--count", "20", "--create-topic", "1"]);
        let (f, seen) = recording_function().await;
        let m = start_counting(config(&broker.bootstrap, &topic, json!({"uri": registry.url, "event_record_format": "JSON", "validate": ["KEY", "VALUE"]})), &f.url(), None, Arc::new(metrics.clone()));
        wait_seen(&seen, 20, &broker).await;
        assert_eq!(wait_all_committed(&broker.bootstrap, &format!("g-{topic}"), &topic, 1, Duration::from_secs(30)).await, [20]);
        m.mapping.stop().await;
        let seen = seen.lock().unwrap().clone();
        for (got, want) in seen.iter().zip(produced["records"].as_array().unwrap()) {
            let value: Value = serde_json::from_slice(&b64(&got["value"])).unwrap_or_else(|e| panic!("{format}: value is not JSON ({e}): {got}"));
            let key: Value = serde_json::from_slice(&b64(&got["key"])).unwrap_or_else(|e| panic!("{format}: key is not JSON ({e}): {got}"));
            let (want_value, want_key) = if format == "protobuf" { (without_defaults(&want["value"]), without_defaults(&want["key"])) } else { (want["value"].clone(), want["key"].clone()) };
            assert_eq!(value, want_value, "{format} record {}", want["index"]);
            assert_eq!(key, want_key, "{format} key {}", want["index"]);
            assert_eq!(got["offset"], want["offset"]);
            assert_eq!(got["valueSchemaMetadata"], json!({"schemaId": produced["value_schema_id"].to_string(), "dataFormat": data_format}));
            assert_eq!(got["keySchemaMetadata"], json!({"schemaId": produced["key_schema_id"].to_string(), "dataFormat": data_format}));
        }
        assert_eq!(seen.len(), 20, "{format}: each record once");
    }
    // Each schema fetched once, then served from the cache.
    let stats = registry.stats().await;
    let fetches: Vec<(&String, &Value)> = stats["requests"].as_object().unwrap().iter().filter(|(k, _)| k.starts_with("GET /schemas/ids/")).collect();
    assert_eq!(fetches.len(), 6, "a key and a value schema per format: {stats}");
    assert!(fetches.iter().all(|(_, n)| n.as_u64() == Some(1)), "one GET per schema id: {stats}");
    // The mapping's metrics: 6 fetches, 3 × 20 keys and 3 × 20 values from the cache.
    let text = prometheus.render();
    for (name, n) in [("esmd_schema_fetches_total", 6), ("esmd_schema_cache_hits_total", 120)] {
        let line = format!("{name}{{mapping=\"schema-metrics\",source=\"kafka\"}} {n}");
        assert!(text.lines().any(|l| l == line), "{line} not in\n{}", text.lines().filter(|l| l.contains("schema")).collect::<Vec<_>>().join("\n"));
    }
}

/// `SOURCE`: the value is the bytes after the schema id (for Protobuf still led by its
/// message index, as AWS hands them on), the key untouched when only VALUE is validated, and
/// filters match the decoded value all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn source_format_keeps_the_record_bytes_and_filters_see_the_decoded_value() {
    common::logs_from_env();
    let broker = Tansu::start().await;
    let registry = ConfluentRegistry::start();
    let topic = "users-source";
    let produced = produce(&broker.bootstrap, &registry.url, topic, &["--format", "protobuf", "--key-format", "string", "--count", "20", "--create-topic", "1"]);
    let (f, seen) = recording_function().await;
    let filter = esmd_filter::FilterCriteria::compile(&[r#"{"value": {"active": [true]}}"#.to_string()]).expect("filter");
    let m = start(config(&broker.bootstrap, topic, json!({"uri": registry.url, "event_record_format": "SOURCE", "validate": ["VALUE"]})), &f.url(), Some(Arc::new(filter)));
    assert_eq!(wait_all_committed(&broker.bootstrap, "g-users-source", topic, 1, Duration::from_secs(30)).await, [20], "filtered records are committed too");
    wait_seen(&seen, 10, &broker).await;
    m.mapping.stop().await;
    let seen = seen.lock().unwrap().clone();
    let even: Vec<&Value> = produced["records"].as_array().unwrap().iter().filter(|r| r["index"].as_i64().unwrap() % 2 == 0).collect();
    assert_eq!(seen.len(), even.len());
    for (got, want) in seen.iter().zip(even) {
        let written = want["value_hex"].as_str().unwrap();
        // Magic byte and the 4-byte id (10 hex digits) taken off; the rest as written.
        assert_eq!(hex(&b64(&got["value"])), written[10..], "record {}", want["index"]);
        assert_eq!(String::from_utf8(b64(&got["key"])).unwrap(), format!("key-{}", want["index"]));
        assert!(got.get("keySchemaMetadata").is_none());
        assert_eq!(got["valueSchemaMetadata"], json!({"schemaId": produced["value_schema_id"].to_string(), "dataFormat": "PROTOBUF"}));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Glue's header (version 3, a schema version UUID, zlib or not) through moto's Glue API.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn glue_avro_json_and_protobuf_records_decode_through_get_schema_version() {
    common::logs_from_env();
    let broker = Tansu::start().await;
    let moto = support::moto::MotoServer::start().await;
    for (format, compression, data_format) in [("avro", "zlib", "AVRO"), ("json", "none", "JSON"), ("protobuf", "none", "PROTOBUF")] {
        let topic = format!("glue-{format}");
        let produced =
            produce_glue(&broker.bootstrap, &moto.endpoint(), "esmd-tests", &topic, &["--format", format, "--compression", compression, "--count", "12", "--create-topic", "1"]);
        let arn = produced["registry_arn"].as_str().expect("registry arn");
        let (f, seen) = recording_function().await;
        let registry = json!({"uri": arn, "event_record_format": "JSON", "validate": ["VALUE"], "endpoint_url": moto.endpoint()});
        // The SDK's default chain finds these (moto takes any credentials).
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        let m = start(config(&broker.bootstrap, &topic, registry), &f.url(), None);
        wait_seen(&seen, 12, &broker).await;
        m.mapping.stop().await;
        let seen = seen.lock().unwrap().clone();
        for (got, want) in seen.iter().zip(produced["records"].as_array().unwrap()) {
            let value: Value = serde_json::from_slice(&b64(&got["value"])).unwrap_or_else(|e| panic!("{format}: {e}: {got}"));
            let want_value = if format == "protobuf" { without_defaults(&want["value"]) } else { want["value"].clone() };
            assert_eq!(value, want_value, "{format} record {}", want["index"]);
            assert_eq!(got["valueSchemaMetadata"], json!({"schemaId": produced["value_schema_version_id"], "dataFormat": data_format}));
        }
        assert_eq!(seen.len(), 12);
    }
}

/// An unknown schema id, a record without the header, a cut record and one its schema cannot
/// read: each goes to the failure topic with AWS's reason and its schema id, and the records
/// around them reach the function in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undecodable_records_go_to_the_failure_destination_and_the_partition_goes_on() {
    common::logs_from_env();
    let broker = Tansu::start().await;
    let registry = ConfluentRegistry::start();
    let topic = "users-bad";
    let bs = broker.bootstrap.clone();
    let good = produce(&bs, &registry.url, topic, &["--format", "avro", "--count", "3", "--create-topic", "1"]);
    let id = good["value_schema_id"].to_string();
    for (i, bad) in ["unknown-id", "no-magic", "truncated", "wrong-schema"].iter().enumerate() {
        produce(&bs, &registry.url, topic, &["--format", "avro", "--count", "1", "--start", &(3 + i).to_string(), "--bad", bad]);
    }
    produce(&bs, &registry.url, topic, &["--format", "avro", "--count", "3", "--start", "7"]);
    // tansu creates no topic on first use.
    support::kafka::create_topic(&bs, "failures", 1).await;
    let (f, seen) = recording_function().await;
    let m = start(config(&bs, topic, json!({"uri": registry.url, "event_record_format": "JSON", "validate": ["VALUE"]})), &f.url(), None);
    assert_eq!(wait_all_committed(&bs, "g-users-bad", topic, 1, Duration::from_secs(60)).await, [10], "{}", broker.log());
    m.mapping.stop().await;
    let offsets: Vec<i64> = seen.lock().unwrap().iter().map(|r| r["offset"].as_i64().unwrap()).collect();
    assert_eq!(offsets, [0, 1, 2, 7, 8, 9], "the good records, in order, once");

    let failures: Vec<Value> = read_topic(&bs, "failures", 4, Duration::from_secs(30)).await.iter().map(|(_, v)| serde_json::from_str(v).expect("failure JSON")).collect();
    let got: Vec<(String, i64, Value)> = failures
        .iter()
        .map(|f| (f["requestContext"]["condition"].as_str().unwrap().to_string(), f["payload"]["offset"].as_i64().unwrap(), f["payload"]["valueSchemaMetadata"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("SCHEMA_NOT_FOUND".into(), 3, json!({"schemaId": "2147483647"})),
            ("DESERIALIZATION_ERROR".into(), 4, Value::Null),
            ("DESERIALIZATION_ERROR".into(), 5, json!({"schemaId": id, "dataFormat": "AVRO"})),
            ("DESERIALIZATION_ERROR".into(), 6, json!({"schemaId": id, "dataFormat": "AVRO"})),
        ]
    );
    for f in &failures {
        // The function never saw them, and the record is as it was read.
        assert_eq!(f["requestContext"]["approximateInvokeCount"], 1);
        assert!(f.get("responseContext").is_none());
        assert_eq!(f["KafkaBatchInfo"]["batchSize"], 1);
        assert!(f["payload"]["value"].is_string());
    }
}

/// A second schema version mid-topic, and the registry hanging while esmd needs that version:
/// the partition waits (nothing delivered or committed past the first version), then goes on
/// once the registry answers, each schema fetched once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_schema_version_mid_topic_waits_out_a_registry_outage() {
    common::logs_from_env();
    let broker = Tansu::start().await;
    let registry = ConfluentRegistry::start();
    let topic = "users-evolving";
    let bs = broker.bootstrap.clone();
    let v1 = produce(&bs, &registry.url, topic, &["--format", "avro", "--count", "10", "--create-topic", "1"]);
    let (f, seen) = recording_function().await;
    let m = start(config(&bs, topic, json!({"uri": registry.url, "event_record_format": "JSON", "validate": ["VALUE"]})), &f.url(), None);
    wait_seen(&seen, 10, &broker).await;
    assert_eq!(wait_all_committed(&bs, "g-users-evolving", topic, 1, Duration::from_secs(30)).await, [10]);

    // The hang comes first: set after producing, esmd may already have had the new schema.
    registry.hang_lookups().await;
    let v2 = produce(&bs, &registry.url, topic, &["--format", "avro", "--schema-version", "2", "--count", "10", "--start", "10"]);
    assert_ne!(v1["value_schema_id"], v2["value_schema_id"]);
    // Long enough for several reads of the new records; none may pass.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(seen.lock().unwrap().len(), 10, "nothing of version 2 before its schema is had");
    assert_eq!(support::kafka::committed(&bs, "g-users-evolving", topic, 1).await, [10]);
    registry.release().await;
    wait_seen(&seen, 20, &broker).await;
    assert_eq!(wait_all_committed(&bs, "g-users-evolving", topic, 1, Duration::from_secs(60)).await, [20]);
    m.mapping.stop().await;

    let seen = seen.lock().unwrap().clone();
    let expected: Vec<&Value> = v1["records"].as_array().unwrap().iter().chain(v2["records"].as_array().unwrap()).collect();
    assert_eq!(seen.len(), 20, "each record once");
    for (got, want) in seen.iter().zip(expected) {
        let value: Value = serde_json::from_slice(&b64(&got["value"])).unwrap();
        assert_eq!(value, want["value"], "record {}", want["index"]);
    }
    assert_eq!(seen[15]["valueSchemaMetadata"]["schemaId"], v2["value_schema_id"].to_string());
    assert_eq!(serde_json::from_slice::<Value>(&b64(&seen[15]["value"])).unwrap()["email"], "user15@example.com");
    let stats = registry.stats().await;
    let v1_fetches = &stats["requests"][format!("GET /schemas/ids/{}", v1["value_schema_id"])];
    assert_eq!(v1_fetches, 1, "{stats}");
}

/// Basic auth over mutual TLS with the test CA: records decode; with a wrong password the
/// registry refuses (401) and the records wait rather than go anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn basic_auth_over_mutual_tls_and_a_refused_password_holds_the_partition() {
    common::logs_from_env();
    let broker = Tansu::start().await;
    let pki = support::tls::TestPki::create();
    let registry = ConfluentRegistry::start_with(&[
        "--basic-auth", "esmd:s3cret", "--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key"), "--client-ca", &pki.path("ca.pem"),
    ]);
    assert!(registry.url.starts_with("https://"), "{}", registry.url);
    let topic = "users-tls";
    let client = ["--registry-user", "esmd", "--registry-password", "s3cret", "--registry-ca", &pki.path("ca.pem"), "--registry-cert", &pki.path("client.pem"), "--registry-key", &pki.path("client.key")];
    let mut args = vec!["--format", "json", "--count", "5", "--create-topic", "1"];
    args.extend(client);
    let produced = produce(&broker.bootstrap, &registry.url, topic, &args);
    let tls = json!({"ca_file": pki.path("ca.pem"), "cert_file": pki.path("client.pem"), "key_file": pki.path("client.key")});

    let (f, seen) = recording_function().await;
    let wrong = json!({"uri": registry.url, "event_record_format": "JSON", "validate": ["VALUE"], "basic_auth": {"username": "esmd", "password": "wrong"}, "tls": tls});
    let m = start(config(&broker.bootstrap, topic, wrong), &f.url(), None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(seen.lock().unwrap().is_empty(), "nothing passes a registry that refuses esmd");
    assert_eq!(support::kafka::committed(&broker.bootstrap, "g-users-tls", topic, 1).await, [-1], "and nothing is committed");
    m.mapping.stop().await;

    let right = json!({"uri": registry.url, "event_record_format": "JSON", "validate": ["VALUE"], "basic_auth": {"username": "esmd", "password": "s3cret"}, "tls": tls});
    let m = start(config(&broker.bootstrap, topic, right), &f.url(), None);
    wait_seen(&seen, 5, &broker).await;
    m.mapping.stop().await;
    for (got, want) in seen.lock().unwrap().iter().zip(produced["records"].as_array().unwrap()) {
        assert_eq!(serde_json::from_slice::<Value>(&b64(&got["value"])).unwrap(), want["value"]);
    }
}
