//! The fault suite: real `esmd run` processes against real servers (tansu, the machine's
//! RabbitMQ, moto) and a function process that fsyncs every record it acknowledges; faults are
//! applied by PID during a drain, and the function's log is checked against what was seeded.
//!
//! ```text
//! cargo test --test faults                      # the CI subset (README "Reliability")
//! cargo test --test faults -- --long            # every case, larger backlogs, 50 kills
//! cargo test --test faults -- --seed 42 kafka/kill rabbitmq   # cases whose id contains a filter
//! cargo test --test faults -- --list
//! ```
//!
//! Per case: **lost** (seeded, never delivered) must be 0; **order violations** (per key, a
//! record first delivered after a later record of its key) must be 0 on every source here, all
//! ordered; **duplicates** are reported with the bound a fault can explain (records in flight
//! per process × faults); **panics** in esmd's logs must be 0. The table goes to stdout; a
//! failing case keeps its logs in `target/tmp/faults-*` (every case with
//! `ESMD_KEEP_FAULT_LOGS=1`).

#[path = "../support/mod.rs"]
mod support;

mod cases;
mod check;
mod esmd;
mod function;
mod rng;
mod sources;

use cases::{Case, Fault, Outcome};
use sources::Kind;
use std::time::Duration;

struct Args {
    long: bool,
    seed: u64,
    list: bool,
    filters: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args { long: false, seed: 0, list: false, filters: Vec::new() };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--long" => a.long = true,
            "--list" => a.list = true,
            "--seed" => a.seed = it.next().and_then(|s| s.parse().ok()).ok_or("--seed needs a number")?,
            // libtest's options (`cargo test -- --nocapture`, say), meaningless here.
            "--nocapture" | "--quiet" | "-q" | "--ignored" | "--include-ignored" | "--exact" | "--show-output" => {}
            "--test-threads" | "--color" | "--format" => {
                it.next();
            }
            f if ["--test-threads=", "--color=", "--format="].iter().any(|p| f.starts_with(p)) => {}
            f if f.starts_with("--") => return Err(format!("unknown option {f} (--long, --seed N, --list, or case-id filters)")),
            f => a.filters.push(f.to_string()),
        }
    }
    if a.seed == 0 {
        a.seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(1);
    }
    Ok(a)
}

/// The cases of a run. CI (about 10 minutes): every source through the kill loop, each other
/// fault on the sources it matters most for; `--long`: every fault on every source it applies to.
fn plan(long: bool) -> Vec<Case> {
    // moto is slow (an SQS FIFO receive scans the queue; DynamoDB takes 25 items a call), so its
    // sources get smaller backlogs; --long drains a million records through each kill loop on
    // Kafka and RabbitMQ.
    let records = |kind: Kind, fault: Fault| -> u64 {
        let kill = fault == Fault::Kill;
        match (kind, long) {
            (Kind::Kafka | Kind::RabbitMq, true) if kill => 1_000_000,
            (Kind::Kafka | Kind::RabbitMq, true) => 100_000,
            (Kind::Kinesis, true) => 100_000,
            (Kind::DynamoDb | Kind::Sqs, true) => 10_000,
            (Kind::Kafka | Kind::RabbitMq | Kind::Kinesis, false) => 20_000,
            (Kind::DynamoDb, false) => 5_000,
            (Kind::Sqs, false) => 3_000,
        }
    };
    let ci: &[(Kind, Fault)] = &[
        (Kind::Kafka, Fault::Kill),
        (Kind::RabbitMq, Fault::Kill),
        (Kind::Sqs, Fault::Kill),
        (Kind::Kinesis, Fault::Kill),
        (Kind::DynamoDb, Fault::Kill),
        (Kind::Kafka, Fault::Stop),
        (Kind::RabbitMq, Fault::Stop),
        (Kind::Sqs, Fault::Stop),
        (Kind::RabbitMq, Fault::FunctionOutage),
        (Kind::Kinesis, Fault::FunctionOutage),
        (Kind::Kafka, Fault::BrokerRestart),
        (Kind::RabbitMq, Fault::BrokerRestart),
        (Kind::Kinesis, Fault::Disk),
        (Kind::Kafka, Fault::Term),
        (Kind::RabbitMq, Fault::Term),
        (Kind::Kinesis, Fault::Term),
    ];
    let pairs: Vec<(Kind, Fault)> = if long {
        Fault::ALL.iter().flat_map(|&f| Kind::ALL.iter().filter(move |&&k| f.applies_to(k)).map(move |&k| (k, f))).collect()
    } else {
        ci.to_vec()
    };
    let kills = if long { 50 } else { 20 };
    pairs
        .into_iter()
        .map(|(kind, fault)| {
            // Kill loop: the drain outlasts the loop (about 1.4 s up per kill, 4 s on Kafka),
            // so every kill lands mid-drain.
            let per_kill = if kind == Kind::Kafka { 4.0 } else { 1.4 };
            let drain = match fault {
                Fault::Kill => Duration::from_secs_f64(f64::from(kills) * per_kill * if kind == Kind::Kafka { 0.8 } else { 1.2 }),
                _ if long => Duration::from_secs(60),
                _ => Duration::from_secs(12),
            };
            let outage = Duration::from_secs(if long { 30 } else { 8 });
            Case { kind, fault, records: records(kind, fault), kills, outage, drain }
        })
        .collect()
}

fn row(o: &Outcome) -> String {
    let c = &o.case;
    let v = &o.verdict;
    // A full disk saves nothing: a crash then replays everything delivered since.
    let bound = match c.fault {
        Fault::Disk => "bound: all delivered while full".to_string(),
        _ => format!("bound {}", u64::from(o.faults.max(1)) * c.kind.in_flight_bound()),
    };
    let verdict = match (&o.error, o.passed()) {
        (Some(_), _) => "**error**",
        (None, true) => "ok",
        (None, false) => "**FAIL**",
    };
    format!(
        "| {} | {} | {} | {} | {} | {} | {} ({bound}) | {} | {:.0} | {verdict} |",
        c.kind.name(),
        c.fault.name(),
        c.records,
        o.faults,
        v.lost,
        v.order_violations.len(),
        v.duplicates,
        o.panics,
        o.seconds
    )
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--function") {
        function::run_child(&argv);
    }
    let args = match parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("faults: {e}");
            std::process::exit(2);
        }
    };
    let cases: Vec<Case> = plan(args.long).into_iter().filter(|c| args.filters.is_empty() || args.filters.iter().any(|f| c.id().contains(f.as_str()))).collect();
    if args.list {
        for c in &cases {
            println!("{}: {} records, {}", c.id(), c.records, c.fault.name());
        }
        return;
    }
    check::self_check();
    eprintln!("faults: {} cases, seed {} (repeat with `-- --seed {}`){}", cases.len(), args.seed, args.seed, if args.long { ", --long" } else { "" });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut rng = rng::Rng::new(args.seed);
    let mut outcomes = Vec::new();
    for case in cases {
        eprintln!("faults: {} ({}, {} records) …", case.id(), case.fault.name(), case.records);
        let o = rt.block_on(cases::run_case(case, &mut rng));
        eprintln!("faults: {}", row(&o));
        for n in &o.notes {
            eprintln!("faults:   {n}");
        }
        if let Some(e) = &o.error {
            eprintln!("faults:   error: {e}");
        }
        if !o.verdict.order_violations.is_empty() {
            eprintln!("faults:   order violations, first: {:?}", &o.verdict.order_violations[..o.verdict.order_violations.len().min(5)]);
        }
        outcomes.push(o);
    }
    println!("\nfault suite, seed {}{}:\n", args.seed, if args.long { ", --long" } else { "" });
    println!("| source | fault | records | faults applied | lost | order violations | duplicates | panics | seconds | |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for o in &outcomes {
        println!("{}", row(o));
    }
    let failed: Vec<String> = outcomes.iter().filter(|o| !o.passed()).map(|o| o.case.id()).collect();
    if !failed.is_empty() {
        eprintln!("faults: {} of {} cases failed: {}", failed.len(), outcomes.len(), failed.join(", "));
        std::process::exit(1);
    }
}
