//! `esmd seed` (the library function the command runs) against real servers: SQS, Kinesis and
//! DynamoDB Streams on moto, the machine's RabbitMQ, Kafka on librdkafka's in-process mock
//! cluster. Each test seeds a backlog from a config file, reads it back with the raw client and
//! checks count, sizes, key cardinality and poison records. Everything talks to 127.0.0.1 only.

mod support;

use esmd::config::Config;
use esmd::seed::{seed, SeedOptions, Summary};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// 500 records of 300 bytes over 17 keys, one in ten poison.
fn options() -> SeedOptions {
    SeedOptions { count: 500, record_bytes: 300, keys: 17, poison_fraction: 0.1, rate: None }
}

/// A config whose one mapping `load` reads from `source` (an inline TOML table).
fn config(dir: &Path, source: &str) -> Config {
    let path = dir.join("seed.toml");
    // Streams need a starting position; queues refuse one.
    let queue = source.contains("\"sqs\"") || source.contains("\"rabbitmq\"");
    let start = if queue { "" } else { "starting_position = \"TRIM_HORIZON\"\n" };
    std::fs::write(&path, format!("[[mappings]]\nname = \"load\"\nsource = {source}\nfunction = {{ type = \"http\", url = \"http://127.0.0.1:9/\" }}\n{start}")).unwrap();
    Config::load(&path).unwrap_or_else(|e| panic!("{source}: {e}"))
}

/// Dummy credentials and region for the SDK's default chain (the seeders build their clients
/// as `esmd seed` does), and nothing of the machine's AWS configuration. Every test sets the
/// same values, so tests running at once do not disturb each other.
#[cfg(any(feature = "sqs", feature = "kinesis", feature = "dynamodb-streams"))]
fn aws_env() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/esmd-test-aws-config");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/esmd-test-aws-credentials");
    std::env::remove_var("AWS_PROFILE");
}

/// Checks what came back — (key the transport carried, payload) — against what was asked and
/// against the summary.
fn check(read: &[(String, Vec<u8>)], o: &SeedOptions, summary: &Summary) {
    assert_eq!(read.len() as u64, o.count, "records read back");
    assert_eq!(summary.records, o.count);
    assert_eq!(summary.bytes, o.count * o.record_bytes as u64);
    let mut numbers = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut poison = 0;
    for (key, payload) in read {
        assert_eq!(payload.len(), o.record_bytes, "payload size");
        let v: Value = serde_json::from_slice(payload).unwrap();
        let n = v["n"].as_u64().unwrap();
        assert_eq!(v["key"].as_str(), Some(key.as_str()), "the transport's key is the payload's");
        assert_eq!(*key, format!("key-{}", n % o.keys));
        numbers.insert(n);
        keys.insert(key.clone());
        if v["poison"] == Value::Bool(true) {
            poison += 1;
        }
    }
    assert_eq!(numbers, (0..o.count).collect(), "every record once");
    assert_eq!(keys.len() as u64, o.keys, "key cardinality");
    let expected_poison = (o.count as f64 * o.poison_fraction).floor() as u64;
    assert_eq!((poison, summary.poison), (expected_poison, expected_poison));
}

#[cfg(feature = "sqs")]
mod sqs {
    use super::*;
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    use support::moto::MotoServer;

    /// Every message of a queue: (MessageGroupId or the payload's key, body).
    async fn read_queue(moto: &MotoServer, url: &str) -> Vec<(Option<String>, Vec<u8>)> {
        let client = moto.sqs_client();
        let mut out = Vec::new();
        loop {
            let got = client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                .send()
                .await
                .unwrap();
            if got.messages().is_empty() {
                return out;
            }
            for m in got.messages() {
                let group = m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId)).cloned();
                out.push((group, m.body().unwrap_or_default().as_bytes().to_vec()));
                client.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
            }
        }
    }

    fn key_of(payload: &[u8]) -> String {
        serde_json::from_slice::<Value>(payload).unwrap()["key"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn a_standard_queue_gets_every_record() {
        aws_env();
        let moto = MotoServer::start().await;
        let url = moto.create_queue("seed-standard", &[]).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &format!("{{ type = \"sqs\", queue_url = \"{url}\", endpoint_url = \"{}\" }}", moto.endpoint()));
        let o = options();
        let summary = seed(&cfg, None, &o).await.unwrap();
        assert_eq!((summary.source, summary.target.as_str()), ("sqs", url.as_str()));
        let read: Vec<_> = read_queue(&moto, &url).await.into_iter().map(|(_, body)| (key_of(&body), body)).collect();
        check(&read, &o, &summary);
    }

    /// FIFO: the key is the message group, and each group's messages come in record order.
    #[tokio::test]
    async fn a_fifo_queue_gets_keys_as_message_groups_in_order() {
        aws_env();
        let moto = MotoServer::start().await;
        let url = moto.create_queue("seed-groups.fifo", &[]).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &format!("{{ type = \"sqs\", queue_url = \"{url}\", endpoint_url = \"{}\" }}", moto.endpoint()));
        let o = SeedOptions { count: 120, keys: 4, ..options() };
        let summary = seed(&cfg, None, &o).await.unwrap();
        let read = read_queue(&moto, &url).await;
        let read: Vec<_> = read.into_iter().map(|(group, body)| (group.expect("a FIFO message has a group"), body)).collect();
        check(&read, &o, &summary);
        for key in 0..o.keys {
            let group = format!("key-{key}");
            let numbers: Vec<u64> = read.iter().filter(|(g, _)| *g == group).map(|(_, b)| serde_json::from_slice::<Value>(b).unwrap()["n"].as_u64().unwrap()).collect();
            assert!(numbers.windows(2).all(|w| w[0] < w[1]), "group {group}: {numbers:?}");
        }
    }

    #[tokio::test]
    async fn a_missing_queue_fails_before_writing() {
        aws_env();
        let moto = MotoServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let url = moto.url("/123456789012/no-such-queue");
        let cfg = config(dir.path(), &format!("{{ type = \"sqs\", queue_url = \"{url}\", endpoint_url = \"{}\" }}", moto.endpoint()));
        let e = seed(&cfg, None, &options()).await.unwrap_err().to_string();
        assert!(e.contains("mapping \"load\"") && e.contains("GetQueueAttributes"), "{e}");
    }
}

#[cfg(feature = "kinesis")]
mod kinesis {
    use super::*;
    use aws_sdk_kinesis::types::ShardIteratorType;
    use support::kinesis::{client, create_stream};
    use support::moto::MotoServer;

    #[tokio::test]
    async fn a_stream_gets_every_record_keyed() {
        aws_env();
        let moto = MotoServer::start().await;
        let kinesis = client(&moto.endpoint());
        create_stream(&kinesis, "seed-stream", 3).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &format!("{{ type = \"kinesis\", stream_name = \"seed-stream\", endpoint_url = \"{}\" }}", moto.endpoint()));
        let o = options();
        let summary = seed(&cfg, None, &o).await.unwrap();
        assert_eq!((summary.source, summary.target.as_str()), ("kinesis", "seed-stream"));

        let mut read = Vec::new();
        let shards = kinesis.list_shards().stream_name("seed-stream").send().await.unwrap();
        for shard in shards.shards() {
            let it = kinesis.get_shard_iterator().stream_name("seed-stream").shard_id(shard.shard_id()).shard_iterator_type(ShardIteratorType::TrimHorizon).send().await.unwrap();
            let mut iterator = it.shard_iterator().map(str::to_string);
            while let Some(i) = iterator {
                let page = kinesis.get_records().shard_iterator(i).send().await.unwrap();
                if page.records().is_empty() {
                    break;
                }
                read.extend(page.records().iter().map(|r| (r.partition_key().unwrap_or_default().to_string(), r.data().as_ref().to_vec())));
                iterator = page.next_shard_iterator().map(str::to_string);
            }
        }
        check(&read, &o, &summary);
    }
}

#[cfg(feature = "dynamodb-streams")]
mod dynamodb_streams {
    use super::*;
    use serde_json::json;
    use support::dynamodb::DynamoDb;
    use support::moto::MotoServer;

    /// (hash key, payload) of each stream record's new image.
    fn images(records: &[Value], hash: &str) -> Vec<(String, Vec<u8>)> {
        records
            .iter()
            .map(|r| {
                let image = &r["dynamodb"]["NewImage"];
                (image[hash]["S"].as_str().unwrap().to_string(), image["payload"]["S"].as_str().unwrap().as_bytes().to_vec())
            })
            .collect()
    }

    /// A table with a sort key: every record a new item (INSERT), the sort key its number.
    #[tokio::test]
    async fn a_table_with_a_sort_key_streams_every_record_as_an_insert() {
        aws_env();
        let moto = MotoServer::start().await;
        let db = DynamoDb::new(&moto.endpoint());
        let arn = db.create_keyed_table("seed-sorted", &[("id", "S", "HASH"), ("seq", "N", "RANGE")], "NEW_IMAGE").await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &format!("{{ type = \"dynamodb_streams\", stream_arn = \"{arn}\", endpoint_url = \"{}\" }}", moto.endpoint()));
        let o = options();
        let summary = seed(&cfg, None, &o).await.unwrap();
        assert_eq!((summary.source, summary.target.as_str()), ("dynamodb_streams", "table seed-sorted"));
        let records = db.stream_records(&arn).await;
        assert!(records.iter().all(|r| r["eventName"] == "INSERT"));
        for r in &records {
            let image = &r["dynamodb"]["NewImage"];
            assert_eq!(image["seq"]["N"], image["n"]["N"], "the sort key is the record number");
            let payload: Value = serde_json::from_str(image["payload"]["S"].as_str().unwrap()).unwrap();
            assert_eq!(image["poison"]["BOOL"], payload["poison"]);
        }
        check(&images(&records, "id"), &o, &summary);
    }

    /// A hash key only: a key's later records overwrite its item, one stream record per write.
    #[tokio::test]
    async fn a_table_without_a_sort_key_gets_one_item_per_key_and_every_write_streamed() {
        aws_env();
        let moto = MotoServer::start().await;
        let db = DynamoDb::new(&moto.endpoint());
        let arn = db.create_table_with_stream("seed-hashed", "NEW_IMAGE").await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &format!("{{ type = \"dynamodb_streams\", stream_arn = \"{arn}\", endpoint_url = \"{}\" }}", moto.endpoint()));
        let o = SeedOptions { count: 100, keys: 7, ..options() };
        let summary = seed(&cfg, None, &o).await.unwrap();
        let records = db.stream_records(&arn).await;
        let inserts = records.iter().filter(|r| r["eventName"] == "INSERT").count();
        assert_eq!((inserts, records.len() - inserts), (7, 93), "the first write of each key inserts, the rest modify");
        check(&images(&records, "pk"), &o, &summary);
        let scanned = db.call("Scan", json!({"TableName": "seed-hashed", "Select": "COUNT"})).await;
        assert_eq!(scanned["Count"], 7);
    }
}

#[cfg(feature = "rabbitmq")]
mod rabbitmq {
    use super::*;
    use support::rabbitmq::{unique, Broker, QueueArgs, BROKER, URI};

    #[tokio::test]
    async fn a_queue_gets_every_record_persistent() {
        let _broker = BROKER.read().await;
        let broker = Broker::open().await;
        let queue = unique("seed");
        broker.declare(&queue, QueueArgs::default()).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &format!("{{ type = \"rabbitmq\", uri = \"{URI}\", queue = \"{queue}\" }}"));
        let o = options();
        let summary = seed(&cfg, None, &o).await.unwrap();
        assert_eq!(summary.source, "rabbitmq");
        let messages = broker.drain(&queue).await;
        broker.delete(&queue).await;
        assert!(messages.iter().all(|(_, p)| *p.delivery_mode() == Some(2)), "persistent");
        let read: Vec<_> = messages
            .iter()
            .map(|(body, p)| {
                let v: Value = serde_json::from_str(body).unwrap();
                assert_eq!(p.message_id().as_ref().map(|m| m.to_string()), Some(format!("seed-{}", v["n"])));
                (v["key"].as_str().unwrap().to_string(), body.as_bytes().to_vec())
            })
            .collect();
        check(&read, &o, &summary);
    }

    /// `mandatory`: a queue that does not exist is an error, not a silent drop.
    #[tokio::test]
    async fn a_missing_queue_is_an_error() {
        let _broker = BROKER.read().await;
        let queue = unique("seed-missing");
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &format!("{{ type = \"rabbitmq\", uri = \"{URI}\", queue = \"{queue}\" }}"));
        let e = seed(&cfg, None, &SeedOptions { count: 3, ..options() }).await.unwrap_err().to_string();
        assert!(e.contains(&queue) && e.contains("exist"), "{e}");
    }
}

#[cfg(feature = "kafka")]
mod kafka {
    use super::*;
    use esmd_kafka::mock::EmbeddedKafka;
    use std::time::Duration;
    use support::kafka::read_topic;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_topic_gets_every_record_keyed() {
        let kafka = EmbeddedKafka::start(1).unwrap();
        kafka.create_topic("seeded", 3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &format!("{{ type = \"kafka\", bootstrap_servers = [\"{}\"], topic = \"seeded\" }}", kafka.bootstrap_servers()));
        let o = options();
        let summary = seed(&cfg, None, &o).await.unwrap();
        assert_eq!((summary.source, summary.target.as_str()), ("kafka", "seeded"));
        let read: Vec<_> = read_topic(kafka.bootstrap_servers(), "seeded", 500, Duration::from_secs(30))
            .await
            .into_iter()
            .map(|(key, value)| (key.expect("keyed"), value.into_bytes()))
            .collect();
        check(&read, &o, &summary);
    }
}
