//! Draining a RabbitMQ backlog: esmd against a raw lapin consume+ack loop, same broker, one run.
//!
//!     cargo bench --bench rabbitmq_drain [-- MESSAGES] [BATCHxCONCURRENCY ...]
//!
//! Defaults: 100,000 messages; 100x5 100x20 1000x5.
//!
//! The measurement is in `common/rabbitmq.rs` (shared with `benches/suite.rs`).

mod common;

fn main() {
    common::run_helper();
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run then.
    let args = common::args::Args::parse();
    let n = args.count(100_000, 2_000);
    let configs = args.configs_or(&[(100, 5), (100, 20), (1000, 5)]);
    common::runtime().block_on(async {
        common::rabbitmq::drain(n, &[1, 100], &configs).await.print();
    });
}
