//! Draining a RabbitMQ backlog: esmd against a raw lapin consume+ack loop, same broker, one run.
//!
//!     cargo bench --bench rabbitmq_drain [-- MESSAGES]        (default 100,000)
//!
//! The measurement is in `common/rabbitmq.rs` (shared with `benches/suite.rs`).

mod common;

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run then.
    let n = common::args::Args::parse().count(100_000, 2_000);
    common::runtime().block_on(async {
        common::rabbitmq::drain(n, &[1, 100], &[(100, 5), (100, 20), (1000, 5)]).await.print();
    });
}
