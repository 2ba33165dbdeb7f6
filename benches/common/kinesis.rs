//! Draining a Kinesis backlog on moto: esmd against a raw GetRecords loop, same server, one run.
//!
//! Starts moto (scripts/test-deps.sh) on a free 127.0.0.1 port and writes N records of 100
//! bytes with random partition keys to a 4-shard stream. "raw" reads every shard from
//! TRIM_HORIZON with its own GetRecords loop (10,000 records per call, the four shards at once)
//! and touches every record. "esmd" runs a mapping over the same stream (a fresh checkpoint
//! store, TRIM_HORIZON) into the no-op HTTP function (a process of its own, `noop.rs`) on
//! 127.0.0.1 until the function has seen every record. Kinesis reads are not destructive, so
//! every row reads the same backlog.
//! Clocks run from the first record received to the last (esmd: the function's first and last
//! request). moto scans a shard from its first record on every GetRecords, so reads get
//! slower as they go; the numbers say more about the ratio than about Kinesis.

use super::noop::NoopFunction;
use super::moto;
use super::table::Drain;
use esmd::checkpoint::embedded::EmbeddedStore;
use esmd::engine::settings::{BatchSettings, StreamSettings};
use esmd::status::StatusRegistry;
use esmd::supervisor::StreamMapping;
use esmd_api::{OrderedSource, StartFrom};
use esmd_kinesis::{kinesis_source, KinesisOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const STREAM: &str = "bench";
const SHARDS: i32 = 4;
const RECORD_BYTES: usize = 100;

pub const RAW: &str = "raw GetRecords loop (10,000 per call, 4 shards at once)";

pub fn esmd_row(batch: usize, lanes: usize) -> String {
    format!("esmd batch {batch}, {lanes} lane(s)/shard")
}

type Span = Arc<Mutex<(Option<Instant>, Option<Instant>)>>;

/// Seeds one stream with `n` records; the raw row, then one esmd row per `(batch, lanes)`.
pub async fn drain(n: usize, configs: &[(usize, usize)]) -> Drain {
    let server = moto::MotoServer::start().await;
    let client = aws_sdk_kinesis::Client::new(&server.sdk_config());
    println!("backlog: {n} records of {RECORD_BYTES} B in {SHARDS} shards, moto at {}\n", server.endpoint());
    seed(&client, n).await;
    let mut rows = vec![(RAW.to_string(), raw(&client, n).await)];
    for &(batch, lanes) in configs {
        rows.push((esmd_row(batch, lanes), esmd(&server.endpoint(), n, batch, lanes).await));
    }
    Drain { n, unit: "records", vs: "vs raw".into(), rows }
}

async fn seed(client: &aws_sdk_kinesis::Client, n: usize) {
    use aws_sdk_kinesis::primitives::Blob;
    use aws_sdk_kinesis::types::PutRecordsRequestEntry;
    client.create_stream().stream_name(STREAM).shard_count(SHARDS).send().await.expect("create stream");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut i = 0;
    while i < n {
        let entries: Vec<PutRecordsRequestEntry> = (i..(i + 500).min(n))
            .map(|j| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut data = format!("{{\"n\":{j}}}").into_bytes();
                data.resize(RECORD_BYTES, b' ');
                PutRecordsRequestEntry::builder().partition_key(format!("k{}", x % 10_000)).data(Blob::new(data)).build().expect("entry")
            })
            .collect();
        let r = client.put_records().stream_name(STREAM).set_records(Some(entries)).send().await.expect("put records");
        assert_eq!(r.failed_record_count(), Some(0));
        i += 500;
    }
}

async fn raw(client: &aws_sdk_kinesis::Client, n: usize) -> Duration {
    let listed = client.list_shards().stream_name(STREAM).send().await.expect("list shards");
    let span: Span = Arc::default();
    let total = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for shard in listed.shards() {
        let (client, span, total, id) = (client.clone(), span.clone(), total.clone(), shard.shard_id().to_string());
        tasks.push(tokio::spawn(async move {
            let it = client
                .get_shard_iterator()
                .stream_name(STREAM)
                .shard_id(&id)
                .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("iterator");
            let mut iterator = it.shard_iterator().map(str::to_string);
            let mut touched = 0u64;
            while let Some(i) = iterator.take() {
                let r = client.get_records().shard_iterator(i).limit(10_000).send().await.expect("get records");
                if r.records().is_empty() {
                    break;
                }
                let now = Instant::now();
                {
                    let mut s = span.lock().expect("span lock");
                    s.0.get_or_insert(now);
                    s.1 = Some(now);
                }
                touched += r.records().iter().map(|rec| rec.data().as_ref().len() as u64).sum::<u64>();
                total.fetch_add(r.records().len() as u64, Ordering::Relaxed);
                iterator = r.next_shard_iterator().map(str::to_string);
            }
            touched
        }));
    }
    for t in tasks {
        t.await.expect("reader");
    }
    assert_eq!(total.load(Ordering::Relaxed) as usize, n);
    let s = *span.lock().expect("span lock");
    match s {
        (Some(a), Some(b)) => b - a,
        _ => Duration::ZERO,
    }
}

async fn esmd(endpoint: &str, n: usize, batch_size: usize, lanes: usize) -> Duration {
    let function = NoopFunction::start("\"eventSource\":\"aws:kinesis\"").await;
    let config = serde_json::from_value(serde_json::json!({"stream_name": STREAM, "endpoint_url": endpoint})).expect("config");
    let mut options = KinesisOptions::new(config, moto::REGION, "000000000000");
    options.sdk = Some(moto::sdk_config_for(endpoint));
    let source = Arc::new(kinesis_source(options).expect("source"));
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("checkpoints.redb")).expect("store"));
    let registry = StatusRegistry::default();
    let stop = CancellationToken::new();
    let ctx = super::mapping_ctx("bench", "kinesis", &function.url, 64, source.encoder(), &registry, stop.child_token());
    let settings = StreamSettings {
        batch: BatchSettings { batch_size, window: Duration::ZERO, ..Default::default() },
        parallelization_factor: lanes,
        starting_position: StartFrom::TrimHorizon,
        ..Default::default()
    };
    let handle = tokio::spawn(StreamMapping { ctx: Arc::new(ctx), settings: Arc::new(settings), source, store }.run());
    function.wait_count(n, Duration::from_secs(600)).await;
    let elapsed = function.span().await;
    stop.cancel();
    let _ = handle.await;
    elapsed
}
