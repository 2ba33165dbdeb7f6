//! Kinesis for the tests: a client for moto or kinesis-local, streams, producing, and
//! [`KinesisLocal`] (kinesis-local on free 127.0.0.1 ports, killed on drop).
//!
//! kinesis-local comes from `scripts/kinesis-deps.sh` (target/test-tools/kinesis-local) or
//! `$ESMD_KINESIS_LOCAL` (the package directory). It runs with `node -r kinesis_local_pin.js`,
//! which makes every server of the process listen on 127.0.0.1: kinesis-local has no host
//! option. A missing package fails the test.

use super::moto::{free_port, sdk_config_for};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};
use aws_sdk_kinesis::Client;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A client with dummy credentials for an emulator at `endpoint`.
pub fn client(endpoint: &str) -> Client {
    Client::new(&sdk_config_for(endpoint))
}

/// Creates a stream and waits until it is ACTIVE.
pub async fn create_stream(client: &Client, name: &str, shards: i32) {
    client.create_stream().stream_name(name).shard_count(shards).send().await.unwrap();
    wait_active(client, name).await;
}

pub async fn wait_active(client: &Client, name: &str) {
    super::wait::until_every(&format!("stream {name} to be active"), Duration::from_secs(30), Duration::from_millis(100), || async {
        let d = client.describe_stream_summary().stream_name(name).send().await.unwrap();
        let status = d.stream_description_summary().map(|s| s.stream_status().clone());
        if status == Some(StreamStatus::Active) { Ok(()) } else { Err(format!("stream {name} not active: {status:?}")) }
    })
    .await
}

/// Puts records (partition key, data) in PutRecords calls of 500, in order, retrying the
/// entries the emulator refused. Returns (shard id, sequence number) per record.
pub async fn put_records(client: &Client, stream: &str, records: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(records.len());
    for chunk in records.chunks(500) {
        // One record at a time per key would keep order across retries; the emulators used
        // here accept every entry, which the assertion checks.
        let entries: Vec<PutRecordsRequestEntry> =
            chunk.iter().map(|(k, d)| PutRecordsRequestEntry::builder().partition_key(k).data(Blob::new(d.clone())).build().unwrap()).collect();
        let r = client.put_records().stream_name(stream).set_records(Some(entries)).send().await.unwrap();
        assert_eq!(r.failed_record_count(), Some(0), "PutRecords refused entries");
        out.extend(r.records().iter().map(|e| (e.shard_id().unwrap_or_default().to_string(), e.sequence_number().unwrap_or_default().to_string())));
    }
    out
}

/// Splits `shard` at the middle of its hash range (children: the next two shard ids) and waits
/// until the stream is active again.
pub async fn split_in_half(client: &Client, stream: &str, shard: &str) {
    let listed = client.list_shards().stream_name(stream).send().await.unwrap();
    let s = listed.shards().iter().find(|s| s.shard_id() == shard).unwrap();
    let range = s.hash_key_range().unwrap();
    let (lo, hi): (u128, u128) = (range.starting_hash_key().parse().unwrap(), range.ending_hash_key().parse().unwrap());
    client.split_shard().stream_name(stream).shard_to_split(shard).new_starting_hash_key((lo + (hi - lo) / 2).to_string()).send().await.unwrap();
    wait_active(client, stream).await;
}

/// The open and closed shards of a stream: (id, parent, adjacent parent).
pub async fn shards(client: &Client, stream: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let r = client.list_shards().stream_name(stream).send().await.unwrap();
    r.shards().iter().map(|s| (s.shard_id().to_string(), s.parent_shard_id().map(str::to_string), s.adjacent_parent_shard_id().map(str::to_string))).collect()
}

/// Where the package is, and how to get it when it is not there.
pub fn kinesis_local_package() -> PathBuf {
    if let Some(path) = std::env::var_os("ESMD_KINESIS_LOCAL") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/kinesis-local/node_modules/kinesis-local")
}

pub struct KinesisLocal {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl KinesisLocal {
    /// Starts kinesis-local with fast resharding and waits until it answers.
    pub async fn start() -> Self {
        let package = kinesis_local_package();
        let main = package.join("main.js");
        assert!(main.is_file(), "kinesis-local not found at {}: run `bash scripts/kinesis-deps.sh` first (or set ESMD_KINESIS_LOCAL)", package.display());
        let pin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/kinesis_local_pin.js");
        let mut failures = Vec::new();
        for _ in 0..3 {
            let (port, tls_port) = (free_port(), free_port());
            let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kinesis-local-{port}.log"));
            let log_file = File::create(&log).unwrap();
            let child = Command::new("node")
                .arg("-r")
                .arg(&pin)
                .arg(&main)
                .env("KINESIS_MOCK_PLAIN_PORT", port.to_string())
                .env("KINESIS_MOCK_TLS_PORT", tls_port.to_string())
                .env("KINESIS_MOCK_CERT_PATH", package.join("server.json"))
                .env("AWS_REGION", "us-east-1")
                .env("LOG_LEVEL", "WARN")
                .env("CREATE_STREAM_DURATION", "50ms")
                .env("SPLIT_SHARD_DURATION", "50ms")
                .env("MERGE_SHARDS_DURATION", "50ms")
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run node: {e}; run `bash scripts/kinesis-deps.sh`"));
            let mut server = KinesisLocal { child, port, log };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(e) => failures.push(e),
            }
        }
        panic!("kinesis-local did not start:\n{}", failures.join("\n---\n"));
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = client(&self.endpoint());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("kinesis-local exited with {status}:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default()));
            }
            if client.list_streams().send().await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("kinesis-local not answering:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> Client {
        client(&self.endpoint())
    }
}

impl Drop for KinesisLocal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("kinesis-local log: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
