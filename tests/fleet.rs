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
use support::wait::{eventually, until, until_every};

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

/// An instance's config file and admin port: leases in moto's DynamoDB, the stream on moto too.
fn instance_config(dir: &Path, instance: &str, moto: &str, function: &str) -> (std::path::PathBuf, u16) {
    instance_config_on(dir, instance, moto, moto, STREAM, function)
}

/// The same with the stream on another Kinesis (kinesis-local, for resharding).
fn instance_config_on(dir: &Path, instance: &str, moto: &str, kinesis: &str, stream: &str, function: &str) -> (std::path::PathBuf, u16) {
    let path = dir.join(format!("{instance}.toml"));
    let port = free_port();
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
source = {{ type = "kinesis", stream_name = "{stream}", region = "us-east-1", endpoint_url = "{kinesis}" }}
function = {{ type = "http", url = "{function}", headers = {{ "X-Esmd-Instance" = "{instance}" }} }}
"#,
        ),
    )
    .unwrap();
    (path, port)
}

/// Per key, the first deliveries must follow the produced order: returns how many step back,
/// and the distinct (key, n) delivered.
fn order_violations(log: &[Batch]) -> (usize, HashSet<(String, u64)>) {
    let mut first: HashMap<String, Vec<u64>> = HashMap::new();
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    for r in log.iter().flat_map(|b| b.records.iter()) {
        if seen.insert((r.1.clone(), r.2)) {
            first.entry(r.1.clone()).or_default().push(r.2);
        }
    }
    (first.values().map(|ns| ns.windows(2).filter(|w| w[1] < w[0]).count()).sum(), seen)
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
    let start = |name: &str| EsmdProcess::run(&instance_config(dir.path(), name, &moto.endpoint(), &f.url()).0, dir.path());
    let delivered = |log: &Log| unique(&log.lock().unwrap());

    let started = Instant::now();
    let mut instances: BTreeMap<&str, EsmdProcess> = ["a", "b", "c"].into_iter().map(|name| (name, start(name))).collect();
    eventually("a fifth of the records", Duration::from_secs(180), || if delivered(&log) * 5 >= n { Ok(()) } else { Err(format!("{} of {n}", delivered(&log))) }).await;

    // SIGKILL the instance holding the most leases: no handback, no final checkpoint. Its
    // leases expire after the failover time.
    let table = LeaseTable::connect("esmd-leases", &AwsClientConfig::new(None, Some(moto.endpoint())).with_sdk(Some(moto.sdk_config()))).await;
    let leases = table.list("orders").await.unwrap();
    let mut by_owner: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for l in leases.iter().filter(|l| !l.is_finished()) {
        by_owner.entry(l.owner.clone().unwrap_or_default()).or_default().insert(l.shard.to_string());
    }
    let (victim, orphaned) = by_owner.into_iter().filter(|(o, _)| !o.is_empty()).max_by_key(|(_, s)| s.len()).expect("someone holds leases");
    let victim: &str = ["a", "b", "c"].into_iter().find(|i| *i == victim).expect("a known instance");
    let mut killed_process = instances.remove(victim).expect("running");
    assert!(Command::new("kill").args(["-KILL", &killed_process.id().to_string()]).status().unwrap().success());
    let _ = killed_process.0.wait();
    let killed = Instant::now();
    let at_kill = delivered(&log);
    eventually("two thirds of the records", Duration::from_secs(180), || if delivered(&log) * 3 >= n * 2 { Ok(()) } else { Err(format!("{} of {n}", delivered(&log))) }).await;
    instances.insert("d", start("d"));
    eventually("every record", Duration::from_secs(300), || if delivered(&log) >= n { Ok(()) } else { Err(format!("{} of {n}", delivered(&log))) }).await;
    let drained = started.elapsed();

    // The leases end balanced over the three live instances (one lease moves per round).
    let alive: Vec<String> = instances.keys().map(|i| i.to_string()).collect();
    let owners = until_every("the leases to balance over the live instances", Duration::from_secs(120), Duration::from_secs(1), || async {
        let leases = table.list("orders").await.unwrap();
        let mut owners: BTreeMap<String, usize> = alive.iter().map(|i| (i.clone(), 0)).collect();
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
    let (order_violations, _) = order_violations(&log);
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
    let takeover = orphaned
        .iter()
        .filter_map(|s| by_shard.get(s.as_str()).and_then(|bs| bs.iter().find(|b| b.at > killed && b.instance != victim)).map(|b| b.at.duration_since(killed)))
        .max();
    eprintln!(
        "fleet: records {n}, instances 3 + 1 joined, kills 1 ({victim}, holding {} leases, after {at_kill} records), lost {lost}, order violations {order_violations}, \
         duplicates {duplicates}, last takeover of an orphaned shard {:.1} s after the kill, drained in {:.1} s, leases at the end {owners:?}",
        orphaned.len(),
        takeover.map_or(f64::NAN, |t| t.as_secs_f64()),
        drained.as_secs_f64()
    );
    assert_eq!(lost, 0, "records lost");
    assert_eq!(order_violations, 0, "per-key order broken");
    assert!(overlaps.is_empty(), "shards read by two instances past the failover time: {overlaps:#?}");
    assert!(takeover.is_some_and(|t| t < Duration::from_secs(FAILOVER_S * 3)), "orphaned shards taken over late: {takeover:?}");
    drop(instances);
}

fn recording_function(log: Log, delay: Duration) -> impl Fn(&support::function::Request) -> Reply + Send + Sync + 'static {
    move |request| {
        let instance = request.headers.get("x-esmd-instance").and_then(|v| v.to_str().ok()).unwrap_or("?").to_string();
        let (shard, records) = parse(&request.json);
        log.lock().unwrap().push(Batch { at: request.received_at, instance, shard, records });
        Reply::delay(delay, Reply::empty())
    }
}

async fn metric(port: u16, name: &str) -> f64 {
    let text = reqwest::Client::builder().no_proxy().build().unwrap().get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// Fencing: an instance paused (SIGSTOP) past the failover time loses its leases; resumed, it
/// writes no checkpoint through them (the rows' checkpoints never go back) and stops those
/// shards. Handback: a stopped (SIGTERM) instance's leases are taken before the failover time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_instance_is_fenced_and_a_stopped_one_hands_its_leases_back() {
    let n = 6_000;
    let moto = MotoServer::start().await;
    let kinesis = client(&moto.endpoint());
    create_stream(&kinesis, STREAM, 4).await;
    put_records(&kinesis, STREAM, &records(n)).await;
    let log: Log = Arc::default();
    // Slow batches: the drain outlasts the pause.
    let f = FunctionServer::start_with(recording_function(log.clone(), Duration::from_millis(150))).await;
    let dir = tempfile::tempdir().unwrap();
    let (a_config, a_port) = instance_config(dir.path(), "a", &moto.endpoint(), &f.url());
    let (b_config, _) = instance_config(dir.path(), "b", &moto.endpoint(), &f.url());
    let a = EsmdProcess::run(&a_config, dir.path());
    let table = LeaseTable::connect("esmd-leases", &AwsClientConfig::new(None, Some(moto.endpoint())).with_sdk(Some(moto.sdk_config()))).await;
    let owners = || async {
        let leases = table.list("orders").await.map_err(|e| e.to_string())?;
        Ok::<_, String>(leases.into_iter().map(|l| (l.shard.to_string(), (l.owner, l.checkpoint))).collect::<BTreeMap<_, _>>())
    };
    until_every("a to hold all four leases and deliver", Duration::from_secs(60), Duration::from_millis(200), || async {
        let o = owners().await?;
        let all_a = o.len() == 4 && o.values().all(|(owner, _)| owner.as_deref() == Some("a"));
        if all_a && log.lock().unwrap().len() >= 8 { Ok(()) } else { Err(format!("{o:?}")) }
    })
    .await;

    assert!(Command::new("kill").args(["-STOP", &a.id().to_string()]).status().unwrap().success());
    let b = EsmdProcess::run(&b_config, dir.path());
    until("b to take every lease", Duration::from_secs(FAILOVER_S * 4), || async {
        let o = owners().await?;
        if o.values().all(|(owner, _)| owner.as_deref() == Some("b")) { Ok(()) } else { Err(format!("{o:?}")) }
    })
    .await;
    let checkpoints = |o: &BTreeMap<String, (Option<String>, String)>| o.iter().map(|(s, (_, cp))| (s.clone(), cp.clone())).collect::<BTreeMap<_, _>>();
    let mut last = checkpoints(&owners().await.unwrap());
    assert!(Command::new("kill").args(["-CONT", &a.id().to_string()]).status().unwrap().success());
    // For a few seconds after the resume (a's batches in flight at the pause finish now):
    // no checkpoint moves backwards, which a stale write by a would do.
    let resumed = Instant::now();
    while resumed.elapsed() < Duration::from_secs(5) {
        let now = checkpoints(&owners().await.unwrap());
        for (shard, cp) in &now {
            let before = &last[shard];
            let numeric = |s: &str| s.parse::<u128>().ok();
            if let (Some(x), Some(y)) = (numeric(before), numeric(cp)) {
                assert!(y >= x, "{shard}: checkpoint went back from {before} to {cp} after the paused instance resumed");
            }
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lost_leases = until("a to notice its leases are gone", Duration::from_secs(30), || async {
        let lost = metric(a_port, "esmd_lease_lost_total").await;
        if lost >= 1.0 { Ok(lost) } else { Err(format!("esmd_lease_lost_total = {lost}")) }
    })
    .await;
    eprintln!("fleet (fencing): a lost {lost_leases} leases while paused; no checkpoint went back");

    // Everything arrives, in order per key, with both running (a takes some leases back).
    let delivered = |log: &Log| unique(&log.lock().unwrap());
    eventually("every record", Duration::from_secs(180), || if delivered(&log) >= n { Ok(()) } else { Err(format!("{} of {n}", delivered(&log))) }).await;

    // SIGTERM b: it hands its leases back, and a holds them all well before the failover time.
    assert!(Command::new("kill").args(["-TERM", &b.id().to_string()]).status().unwrap().success());
    let stopped = Instant::now();
    until_every("a to hold every lease after b stopped", Duration::from_secs(60), Duration::from_millis(100), || async {
        let o = owners().await?;
        let unfinished_not_a: Vec<_> = o.iter().filter(|(_, (owner, cp))| cp != esmd::lease::SHARD_END && owner.as_deref() != Some("a")).collect();
        if unfinished_not_a.is_empty() { Ok(()) } else { Err(format!("{unfinished_not_a:?}")) }
    })
    .await;
    let handback = stopped.elapsed();
    eprintln!("fleet (handback): a held every lease {:.1} s after SIGTERM to b", handback.as_secs_f64());
    assert!(handback < Duration::from_secs(FAILOVER_S), "leases waited for the failover time: {handback:?}");
    drop(a);
}

/// Resharding across instances (kinesis-local for the stream, moto for the lease table): a
/// split and a merge during the drain; every child's first batch, on whichever instance, comes
/// after its parents' last; nothing is lost and each key stays in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn children_start_after_their_parents_finish_across_instances() {
    let moto = MotoServer::start().await;
    let kl = support::kinesis::KinesisLocal::start().await;
    let c = kl.client();
    create_stream(&c, "reshard", 2).await;
    let produced = records(6_000);
    let (phase1, rest) = produced.split_at(2_000);
    let (phase2, phase3) = rest.split_at(2_000);
    let log: Log = Arc::default();
    let f = FunctionServer::start_with(recording_function(log.clone(), Duration::from_millis(5))).await;
    let dir = tempfile::tempdir().unwrap();
    let instances: Vec<EsmdProcess> = ["a", "b", "c"]
        .into_iter()
        .map(|i| EsmdProcess::run(&instance_config_on(dir.path(), i, &moto.endpoint(), &kl.endpoint(), "reshard", &f.url()).0, dir.path()))
        .collect();

    put_records(&c, "reshard", phase1).await;
    support::kinesis::split_in_half(&c, "reshard", "shardId-000000000000").await;
    put_records(&c, "reshard", phase2).await;
    c.merge_shards().stream_name("reshard").shard_to_merge("shardId-000000000003").adjacent_shard_to_merge("shardId-000000000001").send().await.unwrap();
    support::kinesis::wait_active(&c, "reshard").await;
    put_records(&c, "reshard", phase3).await;
    let shards = support::kinesis::shards(&c, "reshard").await;
    assert_eq!(shards.len(), 5, "{shards:?}");

    let n = produced.len();
    let delivered = |log: &Log| order_violations(&log.lock().unwrap()).1.len();
    eventually("every record", Duration::from_secs(240), || if delivered(&log) >= n { Ok(()) } else { Err(format!("{} of {n}", delivered(&log))) }).await;
    drop(instances);

    let log = log.lock().unwrap().clone();
    let (order_violations, seen) = order_violations(&log);
    let first_batch = |shard: &str| log.iter().position(|b| b.shard == shard);
    let last_batch = |shard: &str| log.iter().rposition(|b| b.shard == shard);
    let by_instance = |shard: &str| log.iter().filter(|b| b.shard == shard).map(|b| b.instance.clone()).collect::<std::collections::BTreeSet<_>>();
    let mut lineage = Vec::new();
    for (child, parent, adjacent) in &shards {
        for p in parent.iter().chain(adjacent) {
            if let (Some(child_first), Some(parent_last)) = (first_batch(child), last_batch(p)) {
                assert!(child_first > parent_last, "{child} (on {:?}) started at batch {child_first} before its parent {p} (on {:?}) ended at batch {parent_last}", by_instance(child), by_instance(p));
                lineage.push(format!("{p} on {:?} → {child} on {:?}", by_instance(p), by_instance(child)));
            }
        }
    }
    eprintln!("fleet (resharding): records {n}, shards 2 → 5, order violations {order_violations}, lineage {lineage:?}");
    assert_eq!(seen.len(), n, "nothing lost");
    assert_eq!(order_violations, 0, "per-key order broken");
    assert_eq!(lineage.len(), 4, "every parent → child edge delivered records on both sides");
}

/// A tumbling window survives its lease moving: the state travels in the lease row
/// (`esmdWindowState`), so the instance that takes the shard over goes on with the window's
/// state as of the checkpoint instead of starting the window again from `{}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_window_goes_on_where_it_was_when_its_lease_moves() {
    const WINDOW_S: u64 = 900;
    // Windows are aligned to the epoch: keep the whole test inside one of them.
    let into = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % WINDOW_S;
    if into > WINDOW_S - 120 {
        tokio::time::sleep(Duration::from_secs(WINDOW_S - into + 1)).await;
    }
    let moto = MotoServer::start().await;
    let kinesis = client(&moto.endpoint());
    create_stream(&kinesis, STREAM, 1).await;
    let log: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let recorder = log.clone();
    let f = FunctionServer::start_with(move |request| {
        let instance = request.headers.get("x-esmd-instance").and_then(|v| v.to_str().ok()).unwrap_or("?").to_string();
        let e = &request.json;
        recorder.lock().unwrap().push((instance, e.clone()));
        let count = e["state"]["count"].as_u64().unwrap_or(0) + e["Records"].as_array().map_or(0, |r| r.len() as u64);
        Reply::ok(serde_json::json!({"state": {"count": count}}))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = |instance: &str| {
        let (path, _) = instance_config(dir.path(), instance, &moto.endpoint(), &f.url());
        let text = std::fs::read_to_string(&path).unwrap().replace("parallelization_factor = 2", &format!("parallelization_factor = 1\ntumbling_window_in_seconds = {WINDOW_S}"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let counted = |log: &Arc<Mutex<Vec<(String, Value)>>>, instance: &str| {
        log.lock().unwrap().iter().filter(|(i, _)| i == instance).map(|(_, e)| e["Records"].as_array().map_or(0, Vec::len)).sum::<usize>()
    };

    let a = EsmdProcess::run(&config("a"), dir.path());
    put_records(&kinesis, STREAM, &records(300)).await;
    eventually("a to see the first 300 records", Duration::from_secs(60), || if counted(&log, "a") >= 300 { Ok(()) } else { Err(format!("{}", counted(&log, "a"))) }).await;
    // SIGTERM: a writes its checkpoint (with the window's state) and hands the lease back.
    assert!(Command::new("kill").args(["-TERM", &a.id().to_string()]).status().unwrap().success());
    let mut a = a;
    let exit = eventually("a to exit", Duration::from_secs(30), || a.0.try_wait().unwrap().ok_or_else(|| "running".to_string())).await;
    assert!(exit.success(), "{exit:?}");

    let _b = EsmdProcess::run(&config("b"), dir.path());
    put_records(&kinesis, STREAM, &records(200)[..100]).await;
    eventually("b to see the next 100 records", Duration::from_secs(60), || if counted(&log, "b") >= 100 { Ok(()) } else { Err(format!("{}", counted(&log, "b"))) }).await;
    let log = log.lock().unwrap().clone();
    let (_, first_of_b) = log.iter().find(|(i, _)| i == "b").unwrap();
    let (_, last_of_a) = log.iter().rev().find(|(i, _)| i == "a").unwrap();
    assert_eq!(first_of_b["window"], last_of_a["window"], "one window");
    assert_eq!(first_of_b["state"]["count"], serde_json::json!(300), "b went on with a's state: {first_of_b:#}");
    eprintln!("fleet (window): the window's state moved with the lease: b's first invocation got count {}", first_of_b["state"]["count"]);
}
