//! The benchmark suite of issue 8: every row in one run, one table of ratios, each row esmd
//! against the raw client on the same backlog and machine, with the goal it is held to.
//!
//!     cargo bench --bench suite                     full counts (Kafka 1M × 1 KB, RabbitMQ 100k,
//!                                                   SQS 10k, Kinesis 100k; 200 latency samples,
//!                                                   100 idle mappings, 1,000 shards)
//!     cargo bench --bench suite -- --scale 0.1      the backlogs times 0.1
//!     cargo bench --bench suite -- --only latency,cpu,rss
//!
//!     cargo bench --bench suite -- --only kafka --runs 3
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) every row runs with tiny counts:
//! a smoke run of a few seconds plus the servers' start-up. Servers: Kafka is librdkafka's
//! mock cluster in this process; RabbitMQ is the machine's broker on 127.0.0.1:5672
//! (guest/guest); SQS and Kinesis are moto (`scripts/test-deps.sh`). The drains' function is a
//! no-op HTTP server in a process of its own (`common/noop.rs`); the Kafka clients (esmd run,
//! the raw pipeline, the raw consumer) are processes of their own too, 5 runs each (`--runs`).
//! Latency is measured in-process, function included: its clock stops in the function's
//! handler, which another process could only report later. CPU and RSS are of a child
//! `esmd run`.

mod common;

use common::args::Args;
use common::latency::{self, quantile};
use common::noop::NoopFunction;
use common::table::{print_suite, Row};
use common::{kafka, kinesis, process, rabbitmq, sqs};
use std::time::Duration;

const ROWS: [&str; 7] = ["latency", "cpu", "rss", "kafka", "rabbitmq", "kinesis", "sqs"];

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn only() -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--only") {
        Some(i) => {
            let list: Vec<String> = args.get(i + 1).expect("--only takes a list, e.g. latency,cpu").split(',').map(str::to_string).collect();
            assert!(list.iter().all(|r| ROWS.contains(&r.as_str())), "--only takes rows of {ROWS:?}");
            list
        }
        None => ROWS.iter().map(|r| r.to_string()).collect(),
    }
}

fn main() {
    common::run_helper();
    // RUST_LOG=warn shows what esmd logs (e.g. refused deletes) on stderr.
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    }
    let args = Args::parse();
    let only = only();
    let full = args.measuring();
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("esmd benchmark suite ({build} build, {})\n", if full { "measuring" } else { "smoke run: tiny counts" });
    let mut rows = Vec::new();
    common::runtime().block_on(async {
        // The idle mappings' function: they never call it.
        let function = NoopFunction::start("").await;
        for row in &only {
            println!("## {row}");
            match row.as_str() {
                "latency" => {
                    let samples = if full { 200 } else { 20 };
                    let l = latency::measure(samples).await;
                    let (e50, r50) = (quantile(&l.esmd, 0.5), quantile(&l.raw, 0.5));
                    let (e99, r99) = (quantile(&l.esmd, 0.99), quantile(&l.raw, 0.99));
                    let (emax, rmax) = (quantile(&l.esmd, 1.0), quantile(&l.raw, 1.0));
                    let ratio = |e: Duration, r: Duration| format!("{:.1}×", e.as_secs_f64() / r.as_secs_f64().max(1e-9));
                    rows.push(Row { name: format!("idle→invoke latency p50, window 0 ({samples} samples)"), esmd: ms(e50), raw: ms(r50), ratio: ratio(e50, r50), goal: "—".into(), met: None });
                    rows.push(Row {
                        name: "idle→invoke latency p99 (max)".into(),
                        esmd: format!("{} ({})", ms(e99), ms(emax)),
                        raw: format!("{} ({})", ms(r99), ms(rmax)),
                        ratio: ratio(e99, r99),
                        goal: "p99 < 10 ms".into(),
                        met: Some(e99 < Duration::from_millis(10)),
                    });
                }
                "cpu" => {
                    let (mappings, settle, sample) = if full { (100, Duration::from_secs(3), Duration::from_secs(10)) } else { (10, Duration::from_millis(500), Duration::from_secs(1)) };
                    let percent = process::idle_cpu(mappings, &function.url, settle, sample).await;
                    rows.push(Row {
                        name: format!("CPU of {mappings} idle mappings (esmd run, {} s sample)", sample.as_secs_f64()),
                        esmd: format!("{percent:.2}% of a core"),
                        raw: "—".into(),
                        ratio: "—".into(),
                        goal: "< 2% of a core".into(),
                        met: Some(percent < 2.0),
                    });
                }
                "rss" => {
                    let (shards, settle) = if full { (1000, Duration::from_secs(5)) } else { (100, Duration::from_secs(1)) };
                    // "raw": the same process with one shard, so the column shows the shards' cost.
                    let (one, _) = process::rss_mb(1, &function.url, settle).await;
                    let (rss, peak) = process::rss_mb(shards, &function.url, settle).await;
                    rows.push(Row {
                        name: format!("RSS with {shards} memory shards (esmd run; raw = 1 shard)"),
                        esmd: format!("{rss:.1} MB (peak {peak:.1})"),
                        raw: format!("{one:.1} MB"),
                        ratio: format!("{:.1}×", rss / one),
                        goal: "< 200 MB".into(),
                        met: Some(rss < 200.0),
                    });
                }
                "kafka" => {
                    let n = args.scaled(1_000_000, 2_000);
                    let partitions = args.partitions.map_or(kafka::PARTITIONS, |p| p as i32);
                    let report = kafka::drain(n, partitions, &args.configs_or(&[(100, 1), (1000, 1), (1000, 4)]), args.runs(5)).await;
                    report.print();
                    rows.extend(report.goals());
                }
                "rabbitmq" => {
                    let n = args.scaled(100_000, 500);
                    let drain = rabbitmq::drain(n, &[100, 1], &[(100, 5)]).await;
                    drain.print();
                    let name = format!("RabbitMQ {n} × 1 KB, batch 100 × 5, vs lapin acking per 100");
                    rows.push(Row::throughput(name, &drain, &rabbitmq::esmd_row(100, 5), &rabbitmq::raw_row(100), Some(0.80)));
                    rows.push(Row::throughput("  same, vs lapin acking each message".into(), &drain, &rabbitmq::esmd_row(100, 5), &rabbitmq::raw_row(1), None));
                }
                "kinesis" => {
                    let n = args.scaled(100_000, 200);
                    let drain = kinesis::drain(n, &[(100, 1)]).await;
                    drain.print();
                    rows.push(Row::throughput(format!("Kinesis (moto) {n} × 100 B, 4 shards, batch 100"), &drain, &kinesis::esmd_row(100, 1), kinesis::RAW, None));
                }
                "sqs" => {
                    let n = args.scaled(10_000, 50);
                    let drain = sqs::drain(n, &[5], &[(100, 5)]).await;
                    drain.print();
                    rows.push(Row::throughput(format!("SQS (moto) {n} × 256 B, batch 100, 5 pollers vs 5 loops"), &drain, &sqs::esmd_row(100, 5), &sqs::raw_row(5), None));
                }
                _ => unreachable!("checked in only()"),
            }
            println!();
        }
    });
    println!("## suite ({build} build)\n");
    print_suite(&rows);
}
