//! Kafka helpers for tests, with the raw rdkafka client (never esmd's code): producing,
//! reading a topic, committed offsets and high watermarks; and [`Tansu`], an independent
//! Kafka-protocol broker started on a free port.

use base64::Engine as _;
use esmd_kafka::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use esmd_kafka::rdkafka::client::DefaultClientContext;
use esmd_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use esmd_kafka::rdkafka::message::Message as _;
use esmd_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use esmd_kafka::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// (partition name `topic-N`, offset, key, value) of each record of a Kafka event.
pub fn kafka_records(event: &Value) -> Vec<(String, i64, String, String)> {
    let b64 = |v: &Value| String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).unwrap_or_default()).into_owned();
    let mut out = Vec::new();
    if let Some(map) = event["records"].as_object() {
        for (partition, records) in map {
            for r in records.as_array().into_iter().flatten() {
                out.push((partition.clone(), r["offset"].as_i64().unwrap_or(-1), b64(&r["key"]), b64(&r["value"])));
            }
        }
    }
    out
}

pub struct Message {
    pub partition: Option<i32>,
    pub key: Option<String>,
    pub value: String,
    /// CreateTime in ms; `None` = now.
    pub timestamp: Option<i64>,
}

impl Message {
    pub fn keyed(key: impl Into<String>, value: impl Into<String>) -> Self {
        Message { partition: None, key: Some(key.into()), value: value.into(), timestamp: None }
    }
}

/// Produces `messages` in order (acks=all) and waits for every acknowledgement.
pub async fn produce(bootstrap: &str, topic: &str, messages: impl IntoIterator<Item = Message>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut pending = Vec::new();
    for m in messages {
        let mut record: FutureRecord<'_, str, str> = FutureRecord::to(topic).payload(&m.value);
        if let Some(k) = &m.key {
            record = record.key(k);
        }
        if let Some(p) = m.partition {
            record = record.partition(p);
        }
        if let Some(t) = m.timestamp {
            record = record.timestamp(t);
        }
        loop {
            match producer.send_result(record) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((_, r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
    for f in pending {
        f.await.expect("delivered").expect("acknowledged");
    }
}

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer")
}

/// The group's committed offset per partition (-1: none).
pub async fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let (bootstrap, group, topic) = (bootstrap.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let c = consumer(&bootstrap, &group);
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&topic, p);
        }
        let got = c.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
        (0..partitions)
            .map(|p| match got.find_partition(&topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => -1,
            })
            .collect()
    })
    .await
    .expect("join")
}

/// The high watermark (next offset to be written) per partition.
pub async fn high_watermarks(bootstrap: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let c = consumer(&bootstrap, "esmd-test-watermarks");
        (0..partitions).map(|p| c.fetch_watermarks(&topic, p, Duration::from_secs(10)).expect("watermarks").1).collect()
    })
    .await
    .expect("join")
}

/// Waits until the group's committed offsets are `expected`, one per partition.
pub async fn wait_committed(bootstrap: &str, group: &str, topic: &str, expected: &[i64], timeout: Duration) {
    super::wait::until_every(&format!("group {group} to commit {expected:?} on {topic}"), timeout, Duration::from_millis(50), || async {
        let c = committed(bootstrap, group, topic, expected.len() as i32).await;
        if c == expected { Ok(()) } else { Err(format!("committed {c:?}, expected {expected:?}")) }
    })
    .await
}

/// Waits until the group has committed every partition's high watermark.
pub async fn wait_all_committed(bootstrap: &str, group: &str, topic: &str, partitions: i32, timeout: Duration) -> Vec<i64> {
    let high = high_watermarks(bootstrap, topic, partitions).await;
    wait_committed(bootstrap, group, topic, &high, timeout).await;
    high
}

/// Reads `n` messages of `topic` from the beginning: (key, value).
pub async fn read_topic(bootstrap: &str, topic: &str, n: usize, timeout: Duration) -> Vec<(Option<String>, String)> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let c = consumer(&bootstrap, &format!("esmd-test-reader-{}", uuid_like()));
        c.subscribe(&[&topic]).expect("subscribe");
        let start = Instant::now();
        let mut out = Vec::new();
        while out.len() < n && start.elapsed() < timeout {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                out.push((m.key().map(|k| String::from_utf8_lossy(k).into_owned()), String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()));
            }
        }
        out
    })
    .await
    .expect("join")
}

fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos())
}

pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin");
    let results = admin
        .create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))))
        .await
        .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

/// tansu, a Kafka-protocol broker (crates.io), with sqlite storage in a temporary directory.
/// Installed by `scripts/kafka-deps.sh`; a missing binary fails the test.
pub struct Tansu {
    child: Child,
    pub bootstrap: String,
    _dir: tempfile::TempDir,
}

impl Tansu {
    fn binary() -> PathBuf {
        if let Ok(p) = std::env::var("ESMD_TANSU") {
            return PathBuf::from(p);
        }
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/tansu/bin/tansu")
    }

    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        Self::launch(dir, port, false).await
    }

    async fn launch(dir: tempfile::TempDir, port: u16, authentication: bool) -> Self {
        Self::launch_advertising(dir, port, port, authentication).await
    }

    async fn launch_advertising(dir: tempfile::TempDir, port: u16, advertised_port: u16, authentication: bool) -> Self {
        let bin = Self::binary();
        assert!(bin.exists(), "tansu not found at {} — run scripts/kafka-deps.sh (the README's test command does)", bin.display());
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{advertised_port}");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.path().join("tansu.log")).expect("log file");
        let mut cmd = Command::new(&bin);
        // A relative sqlite path: tansu mangles absolute ones.
        cmd.current_dir(dir.path())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &advertised, "--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::null())
            .stderr(log);
        if authentication {
            cmd.arg("--authentication");
        }
        let child = cmd.spawn().expect("start tansu");
        let bootstrap = format!("127.0.0.1:{port}");
        super::wait::wait_for(&format!("tansu to listen on {bootstrap}"), Duration::from_secs(30), || std::net::TcpStream::connect(&bootstrap).is_ok()).await;
        Tansu { child, bootstrap, _dir: dir }
    }

    /// Creates a SCRAM user (tansu's own CLI, against this broker).
    pub fn create_user(&self, name: &str, password: &str, mechanism: &str) {
        let status = Command::new(Self::binary())
            .args(["user", "create", "--broker", &format!("tcp://{}", self.bootstrap), "--mechanism", mechanism, name, password])
            .status()
            .expect("tansu user create");
        assert!(status.success(), "tansu user create failed");
    }

    /// Stops the broker, keeping its storage and port for [`relaunch`](Self::relaunch).
    pub fn stop(mut self) -> (tempfile::TempDir, u16) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port: u16 = self.bootstrap.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        // Take the directory out; Drop then only kills the already-stopped child again.
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("tempdir"));
        (dir, port)
    }

    /// Restarts the broker on the same port and storage, telling clients to connect to
    /// `advertised_port` instead (a TLS proxy in front of it).
    pub async fn restart_behind(self, advertised_port: u16) -> Self {
        let (dir, port) = self.stop();
        Self::launch_advertising(dir, port, advertised_port, false).await
    }

    /// Starts a broker [`stop`](Self::stop)ped earlier again, on its port and storage.
    pub async fn relaunch((dir, port): (tempfile::TempDir, u16)) -> Self {
        Self::launch(dir, port, false).await
    }

    /// Restarts the broker on the same port and storage, requiring SASL authentication or not.
    pub async fn restart(self, authentication: bool) -> Self {
        let (dir, port) = self.stop();
        Self::launch(dir, port, authentication).await
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
