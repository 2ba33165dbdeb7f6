//! Fleets: several `esmd run` processes share one Kinesis stream's shards through a DynamoDB
//! lease table (moto serves both). One instance is killed with SIGKILL mid-drain and a fourth
//! joins later. Every record reaches the function, each key's records in produced order, no
//! shard is read by two instances for longer than the failover time, and the leases end
//! balanced. The figures (duplicates, takeover time) are printed for the README.
#![cfg(feature = "kinesis")]

mod support;

use esmd::lease::LeaseTable;
use esmd_aws::AwsClientConfig;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::function::{FunctionServer, Reply};
use support::kinesis::{client, create_stream, put_records};
use support::moto::{free_port, EsmdProcess, MotoServer};
use support::wait::{eventually, until_every};

const STREAM: &str = "fleet";
const SHARDS: i32 = 16;
const KEYS: usize = 500;
const FAILOVER_S: u64 = 10;

/// One batch as the function saw it.
#[derive(Clone, Debug)]
struct Batch {
    at: Instant,
    instance: String,
    shard: String,
    /// (sequence number, key, n: the key's record number in produced order)
    records: Vec<(String, String, u64)>,
}

type Log = Arc<Mutex<Vec<Batch>>>;

fn records(n: usize) -> Vec<(String, Vec<u8>)> {
    let mut per_key = vec![0u64; KEYS];
    (0..n)
        .map(|i| {
            // Spread keys unevenly, as real traffic is: a few hot keys, a long tail.
            let k = (i * 7 + i / 13) % KEYS;
            per_key[k] += 1;
            (format!("key-{k}"), format!("{{\"k\":\"key-{k}\",\"n\":{}}}", per_key[k]).into_bytes())
        })
        .collect()
}

fn parse(event: &Value) -> (String, Vec<(String, String, u64)>) {
    use base64::Engine as _;
    let mut shard = String::new();
    let records = event["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            shard = r["eventID"].as_str().unwrap_or_default().split(':').next().unwrap_or_default().to_string();
            let data = base64::engine::general_purpose::STANDARD.decode(r["kinesis"]["data"].as_str().unwrap_or_default()).unwrap_or_default();
            let v: Value = serde_json::from_slice(&data).unwrap_or_default();
            (r["kinesis"]["sequenceNumber"].as_str().unwrap_or_default().to_string(), v["k"].as_str().unwrap_or_default().to_string(), v["n"].as_u64().unwrap_or_default())
        })
        .collect();
    (shard, records)
}

fn instance_config(dir: &Path, instance: &str, moto: &str, function: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{instance}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
shutdown_timeout_seconds = 5
[admin]
listen = "127.0.0.1:{port}"
[checkpoint]
type = "dynamodb"
table = "esmd-leases"
region = "us-east-1"
endpoint_url = "{moto}"
create_table = true
[fleet]
instance_id = "{instance}"
failover_time_seconds = {FAILOVER_S}
[[mappings]]
name = "orders"
starting_position = "TRIM_HORIZON"
batch_size = 100
parallelization_factor = 2
source = {{ type = "kinesis", stream_name = "{STREAM}", region = "us-east-1", endpoint_url = "{moto}" }}
function = {{ type = "http", url = "{function}", headers = {{ "X-Esmd-Instance" = "{instance}" }} }}
"#,
            port = free_port(),
        ),
    )
    .unwrap();
    path
}

fn unique(log: &[Batch]) -> usize {
    log.iter().flat_map(|b| b.records.iter().map(|r| (b.shard.clone(), r.0.clone()))).collect::<HashSet<_>>().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_a_stream_and_survive_a_kill() {
    let n: usize = std::env::var("ESMD_FLEET_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let moto = MotoServer::start().await;
    let kinesis = client(&moto.endpoint());
    create_stream(&kinesis, STREAM, SHARDS).await;
    let produced = records(n);
    let seeded = Instant::now();
    for chunk in produced.chunks(10_000) {
        put_records(&kinesis, STREAM, chunk).await;
    }
    eprintln!("fleet: seeded {n} records in {SHARDS} shards in {:.1} s", seeded.elapsed().as_secs_f64());

    let log: Log = Arc::default();
    let recorder = log.clone();
    let f = FunctionServer::start_with(move |request| {
        let instance = request.headers.get("x-esmd-instance").and_then(|v| v.to_str().ok()).unwrap_or("?").to_string();
        let (shard, records) = parse(&request.json);
        recorder.lock().unwrap().push(Batch { at: request.received_at, instance, shard, records });
        Reply::empty()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let start = |name: &str| EsmdProcess::run(&instance_config(dir.path(), name, &moto.endpoint(), &f.url()), dir.path());
    let delivered = |log: &Log| unique(&log.lock().unwrap());

    let started = Instant::now();
    let mut a = start("a");
    let b = start("b");
    let c = start("c");
    let _ = (&b, &c);
    eventually("a fifth of the records", Duration::from_secs(180), || if delivered(&log) * 5 >= n { Ok(()) } else { Err(format!("{} of {n}", delivered(&log))) }).await;

    // SIGKILL: no handback, no final checkpoint. Its leases expire after the failover time.
    let held_by_a: HashSet<String> = {
        let log = log.lock().unwrap();
        let mut last: BTreeMap<&str, &str> = BTreeMap::new();
        for batch in log.iter() {
            last.insert(&batch.shard, &batch.instance);
        }
        last.into_iter().filter(|(_, i)| *i == "a").map(|(s, _)| s.to_string()).collect()
    };
    {
        let log = log.lock().unwrap();
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for b in log.iter() {
            *per.entry(&b.instance).or_default() += 1;
        }
        eprintln!("fleet: batches per instance before the kill {per:?}, a last read {held_by_a:?}");
    }
    assert!(Command::new("kill").args(["-KILL", &a.id().to_string()]).status().unwrap().success());
    let _ = a.0.wait();
    let killed = Instant::now();
    let at_kill = delivered(&log);

    eventually("two thirds of the records", Duration::from_secs(180), || if delivered(&log) * 3 >= n * 2 { Ok(()) } else { Err(format!("{} of {n}", delivered(&log))) }).await;
    let d = start("d");
    eventually("every record", Duration::from_secs(300), || if delivered(&log) >= n { Ok(()) } else { Err(format!("{} of {n}", delivered(&log))) }).await;
    let drained = started.elapsed();

    // The leases end balanced over the three live instances (one lease moves per round).
    let table = LeaseTable::connect("esmd-leases", &AwsClientConfig::new(None, Some(moto.endpoint())).with_sdk(Some(moto.sdk_config()))).await;
    let owners = until_every("the leases to balance over b, c and d", Duration::from_secs(120), Duration::from_secs(1), || async {
        let leases = table.list("orders").await.unwrap();
        let mut owners: BTreeMap<String, usize> = ["b", "c", "d"].iter().map(|i| (i.to_string(), 0)).collect();
        for l in leases.iter().filter(|l| !l.is_finished()) {
            *owners.entry(l.owner.clone().unwrap_or_else(|| "(none)".into())).or_default() += 1;
        }
        let counts: Vec<usize> = owners.values().copied().collect();
        let balanced = owners.len() == 3 && counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1;
        if balanced { Ok(owners) } else { Err(format!("{owners:?}")) }
    })
    .await;

    let log = log.lock().unwrap().clone();
    // Lost: produced records (by key and n) never delivered.
    let got: HashSet<(String, u64)> = log.iter().flat_map(|b| b.records.iter().map(|r| (r.1.clone(), r.2))).collect();
    let want: HashSet<(String, u64)> = produced.iter().map(|(_, d)| {
        let v: Value = serde_json::from_slice(d).unwrap();
        (v["k"].as_str().unwrap().to_string(), v["n"].as_u64().unwrap())
    }).collect();
    let lost = want.difference(&got).count();
    // Order: per key, first deliveries follow the produced order.
    let mut first: HashMap<String, Vec<u64>> = HashMap::new();
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    for r in log.iter().flat_map(|b| b.records.iter()) {
        if seen.insert((r.1.clone(), r.2)) {
            first.entry(r.1.clone()).or_default().push(r.2);
        }
    }
    let order_violations: usize = first.values().map(|ns| ns.windows(2).filter(|w| w[1] < w[0]).count()).sum();
    let deliveries: usize = log.iter().map(|b| b.records.len()).sum();
    let duplicates = deliveries - got.len();
    // Two instances on one shard: a batch from an instance that had already handed the shard
    // to another more than the failover time earlier.
    let mut by_shard: BTreeMap<&str, Vec<&Batch>> = BTreeMap::new();
    for batch in &log {
        by_shard.entry(&batch.shard).or_default().push(batch);
    }
    let mut overlaps = Vec::new();
    for (shard, batches) in &by_shard {
        let mut since: HashMap<&str, Instant> = HashMap::new();
        for w in batches.windows(2) {
            if w[0].instance != w[1].instance {
                since.insert(&w[0].instance, w[1].at);
            }
            if let Some(lost_at) = since.get(w[1].instance.as_str()) {
                if w[1].at.duration_since(*lost_at) > Duration::from_secs(FAILOVER_S) {
                    overlaps.push(format!("{shard}: {} after {:?}", w[1].instance, w[1].at.duration_since(*lost_at)));
                }
            }
        }
    }
    // Takeover: the first batch by another instance on each shard the killed one read last.
    let takeover = held_by_a
        .iter()
        .filter_map(|s| by_shard.get(s.as_str()).and_then(|bs| bs.iter().find(|b| b.at > killed && b.instance != "a")).map(|b| b.at.duration_since(killed)))
        .max();
    eprintln!(
        "fleet: records {n}, instances 3 + 1 joined, kills 1 (a, after {at_kill} records), lost {lost}, order violations {order_violations}, duplicates {duplicates}, \
         orphaned shards {}, last takeover {:.1} s after the kill, drained in {:.1} s, leases at the end {owners:?}",
        held_by_a.len(),
        takeover.map_or(f64::NAN, |t| t.as_secs_f64()),
        drained.as_secs_f64()
    );
    assert_eq!(lost, 0, "records lost");
    assert_eq!(order_violations, 0, "per-key order broken");
    assert!(overlaps.is_empty(), "shards read by two instances past the failover time: {overlaps:#?}");
    assert!(takeover.is_some_and(|t| t < Duration::from_secs(FAILOVER_S * 3)), "orphaned shards taken over late: {takeover:?}");
    drop(d);
}
