//! Draining a Kafka backlog: esmd against the raw rdkafka consumer, same backlog, one run.
//!
//!     cargo bench --bench kafka_drain [-- RECORDS] [BATCHxLANES ...]
//!
//! Defaults: 1,000,000 records; 100x1 1000x1 1000x4.
//!
//! The measurement is in `common/kafka.rs` (shared with `benches/suite.rs`).

mod common;

fn main() {
    if std::env::var("BENCH_KAFKA_DEBUG").is_ok() {
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter("debug").init();
    }
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run then.
    let args = common::args::Args::parse();
    let records = args.count(1_000_000, 5_000);
    let configs = args.configs_or(&[(100, 1), (1000, 1), (1000, 4)]);
    common::runtime().block_on(async {
        common::kafka::drain(records, &configs).await.print();
    });
}
