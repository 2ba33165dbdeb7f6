//! Draining a Kafka backlog (issue 17): esmd against the raw pipeline (the floor) and the raw
//! consumer (the ceiling), each a process of its own, several runs each.
//!
//!     cargo bench --bench kafka_drain [-- RECORDS] [BATCHxLANES ...] [--runs N] [--scale F] [--partitions P]
//!
//! Defaults: 1,000,000 records in 256 partitions; 100x1 1000x1 1000x4; 5 runs. Without
//! `--bench` (`cargo test --all-targets`): 2,000 records, one run, a smoke run.
//!
//! The measurement is in `common/kafka/` (shared with `benches/suite.rs`).

mod common;

fn main() {
    common::run_helper();
    // RUST_LOG=debug shows what the bench's own librdkafka clients (the mock, the offset checks)
    // log; esmd logs to its own file (printed if a drain gets stuck).
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    }
    let args = common::args::Args::parse();
    let records = args.count(1_000_000, 2_000);
    let configs = args.configs_or(&[(100, 1), (1000, 1), (1000, 4)]);
    let partitions = args.partitions.map_or(common::kafka::PARTITIONS, |p| p as i32);
    let runs = args.runs(5);
    common::runtime().block_on(async {
        common::kafka::drain(records, partitions, &configs, runs).await.print();
    });
}
