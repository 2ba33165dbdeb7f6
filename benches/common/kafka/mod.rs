//! Draining a Kafka backlog (issue 17): esmd against the raw pipeline (the floor: consume,
//! batch, encode, POST, commit) and the raw consumer (the ceiling: read only), same backlog,
//! several runs each.
//!
//! Backlog: N messages of 1 KB in 256 partitions (by default) of librdkafka's mock cluster in
//! the bench's process (`cluster.rs`), 1000 distinct keys, spread round-robin; seeded once, and
//! every run reads it in a fresh consumer group. Every client is a process of its own, connected
//! to the mock over 127.0.0.1: esmd is the built `esmd run` (`esmd.rs`), the raw pipeline and
//! the raw consumer are this binary run as `--raw-pipeline` / `--raw-consumer`. The function is
//! a no-op HTTP server in another process (`noop.rs`). So a client's CPU time and peak RSS from
//! `/proc` are its own, and esmd and the raw pipeline share the cores with the same function
//! and broker.
//!
//! esmd and the raw pipeline are done when their group has committed every partition's end;
//! their clock runs from the function's first completed request to its last, so process start
//! and the group join are not counted. The raw consumer's runs from its first record to its
//! last. CPU is counted from the client's subscription (esmd: `/readyz`) to done: the group join
//! is in it, the process start is not. The runs of esmd and the raw pipeline alternate, so what
//! else the machine does falls on both alike.

mod cluster;
mod esmd;
mod event;
pub mod raw_consumer;
pub mod raw_pipeline;
mod report;

pub use report::Report;

use super::noop::NoopFunction;
use super::process::{cpu_time, machine_busy, own_cpu_time, status_kb};
use esmd_kafka::rdkafka::ClientConfig;
use report::{Config, Sample};
use std::time::Duration;

const TOPIC: &str = "bench";
const VALUE_BYTES: usize = 1024;
/// 1 GB in the mock needs about 200 partitions or more (5 MB each at most).
pub const PARTITIONS: i32 = 256;
const PARTITIONS_MAX: i32 = 10_000;
/// Requests in flight at most, for esmd (the mapping's `max_concurrency`) and the raw pipeline.
const CONCURRENCY: usize = 64;
/// A drain that takes longer is stuck (the slowest run of 1M records so far, on a busy machine,
/// took 17 s).
const TIMEOUT: Duration = Duration::from_secs(600);

/// Seeds `records` messages into `partitions` partitions; the raw consumer `runs` times, then
/// per `(batch size, lanes per partition)` esmd and the raw pipeline `runs` times each.
pub async fn drain(records: usize, partitions: i32, configs: &[(usize, usize)], runs: usize) -> Report {
    event::self_check();
    let seeding = std::time::Instant::now();
    let cluster = tokio::task::block_in_place(|| cluster::Cluster::seed(records, partitions));
    println!("backlog: {records} records of {VALUE_BYTES} B in {partitions} partitions of the mock cluster (seeded in {:.1} s)", seeding.elapsed().as_secs_f64());
    // `"timestampType":` is in every record once: the function counts records.
    let function = NoopFunction::start("\"timestampType\":").await;

    let mut consumer = Vec::new();
    for run in 0..runs {
        let s = raw_consumer_run(&cluster, records, &format!("raw-consumer-{run}")).await;
        eprintln!("  raw consumer, run {}: {}", run + 1, said(&s));
        consumer.push(s);
    }
    let mut done = Vec::new();
    for &(batch, lanes) in configs {
        let mut c = Config { batch, lanes, esmd: Vec::new(), pipeline: Vec::new() };
        for run in 0..runs {
            let group = |client: &str| format!("{client}-{batch}x{lanes}-{run}");
            let e = client_run(&cluster, &function, records, Client::Esmd, &group("esmd"), batch, lanes).await;
            let p = client_run(&cluster, &function, records, Client::RawPipeline, &group("pipeline"), batch, lanes).await;
            eprintln!("  {}, run {}: esmd {}; raw pipeline {}", c.name(), run + 1, said(&e), said(&p));
            c.esmd.push(e);
            c.pipeline.push(p);
        }
        done.push(c);
    }
    Report { records, partitions, concurrency: CONCURRENCY, runs, consumer, configs: done }
}

/// The settings both raw clients' consumers start from: the group settings esmd's consumer runs
/// with (connectors/kafka/src/source.rs), and two fetch timings shorter than librdkafka's.
///
/// A consumer whose one queue holds more than `queued.max.messages.kbytes` (64 MB) stops
/// fetching its partitions for `fetch.queue.backoff.ms` (1 s). The raw pipeline's queue fills in
/// its first second; with the default it then sat idle for 0.9 s in every run, 4× slower than
/// with 10 ms. With 10 ms it still paused ~0.4 s in some runs: while most partitions back off,
/// the broker holds a fetch of the few others (at their end) for `fetch.wait.max.ms` (500 ms),
/// and no backed-off partition is fetched until it answers; 50 ms ended that. esmd never waits
/// so: it splits a queue per partition, and the thresholds then hold per partition (64 MB
/// each), which a 4 MB partition never reaches (it prefetches the whole backlog instead: see its
/// peak RSS). esmd ran as fast with both settings as without (measured, BENCH_KAFKA_PROPS), so
/// the floor gets them: a stall is no part of the work. BENCH_KAFKA_DEBUG=cgrp,fetch adds
/// librdkafka's debug log (shown with RUST_LOG=debug), as it does to esmd's (in esmd's log).
fn consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.queue.backoff.ms", "10")
        .set("fetch.wait.max.ms", "50");
    if let Ok(d) = std::env::var("BENCH_KAFKA_DEBUG") {
        c.set("debug", d);
    }
    for (k, v) in extra_properties() {
        c.set(k, v);
    }
    c
}

/// BENCH_KAFKA_PROPS="key=value,key=value": librdkafka properties for every client's consumer
/// (esmd's mapping `properties` too), to see what a setting changes without editing the bench.
fn extra_properties() -> Vec<(String, String)> {
    properties_from("BENCH_KAFKA_PROPS")
}

/// `k=v,...` from the variable `name`.
fn properties_from(name: &str) -> Vec<(String, String)> {
    let spec = std::env::var(name).unwrap_or_default();
    spec.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A run in a progress line: where its longest pause fell says what caused it (start-up, the
/// middle, the tail).
fn said(s: &Sample) -> String {
    format!("{:.2} s (longest gap {:.0} ms, ending {:.2} s in)", s.span.as_secs_f64(), ms(s.longest_gap), s.longest_gap_end.as_secs_f64())
}

#[derive(Clone, Copy)]
enum Client {
    Esmd,
    RawPipeline,
}

/// A started client, stopped when dropped (esmd) or by [`Running::stop`].
enum Running {
    Esmd(esmd::Esmd),
    Helper(Box<super::child::Helper>),
}

impl Running {
    fn pid(&self) -> u32 {
        match self {
            Running::Esmd(e) => e.pid(),
            Running::Helper(h) => h.pid(),
        }
    }

    async fn stop(self) {
        match self {
            Running::Esmd(e) => drop(e),
            Running::Helper(h) => h.stop().await,
        }
    }
}

/// One drain by esmd or the raw pipeline in a fresh group.
async fn client_run(cluster: &cluster::Cluster, function: &NoopFunction, records: usize, client: Client, group: &str, batch: usize, lanes: usize) -> Sample {
    function.reset().await;
    let watcher = cluster.watch(group);
    let running = match client {
        Client::Esmd => {
            let o = esmd::Options { bootstrap: &cluster.bootstrap, group, url: &function.url, batch, lanes, concurrency: CONCURRENCY };
            Running::Esmd(esmd::start(&o).await)
        }
        Client::RawPipeline => {
            let o = raw_pipeline::Options { bootstrap: cluster.bootstrap.clone(), group: group.into(), url: function.url.clone(), batch, lanes, concurrency: CONCURRENCY };
            Running::Helper(Box::new(raw_pipeline::start(&o).await))
        }
    };
    let pid = running.pid();
    let (cpu0, function0, broker0, machine0) = (cpu_time(pid), cpu_time(function.pid()), own_cpu_time(), machine_busy());
    if let Err(e) = watcher.wait_all(TIMEOUT).await {
        let log = match &running {
            Running::Esmd(esmd) => format!("; esmd's log ends:\n{}", esmd.log_tail()),
            Running::Helper(_) => String::new(),
        };
        panic!("{group}: {e}{log}");
    }
    let cpu = cpu_time(pid) - cpu0;
    let (function_cpu, broker_cpu) = (cpu_time(function.pid()) - function0, own_cpu_time() - broker0);
    let other_cpu = (machine_busy() - machine0).saturating_sub(cpu + function_cpu + broker_cpu);
    let peak_rss_kb = status_kb(pid, "VmHWM");
    running.stop().await;
    let stats = function.stats().await;
    // At least once: a record may arrive twice, none may be missing.
    assert!(stats.records as usize >= records, "{group}: the function saw {} of {records} records", stats.records);
    Sample { span: stats.span, cpu, peak_rss_kb, longest_gap: stats.longest_gap, longest_gap_end: stats.longest_gap_end, function_cpu, broker_cpu, other_cpu, requests: stats.requests }
}

async fn raw_consumer_run(cluster: &cluster::Cluster, records: usize, group: &str) -> Sample {
    let mut helper = raw_consumer::start(&cluster.bootstrap, group, records).await;
    let pid = helper.pid();
    let (cpu0, broker0, machine0) = (cpu_time(pid), own_cpu_time(), machine_busy());
    let (span, longest_gap, longest_gap_end) = raw_consumer::done(&mut helper, TIMEOUT).await;
    let (cpu, broker_cpu) = (cpu_time(pid) - cpu0, own_cpu_time() - broker0);
    let other_cpu = (machine_busy() - machine0).saturating_sub(cpu + broker_cpu);
    let peak_rss_kb = status_kb(pid, "VmHWM");
    helper.stop().await;
    Sample { span, cpu, peak_rss_kb, longest_gap, longest_gap_end, function_cpu: Duration::ZERO, broker_cpu, other_cpu, requests: 0 }
}
