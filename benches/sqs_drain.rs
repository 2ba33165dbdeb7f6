//! Draining an SQS backlog through moto: esmd against a raw receive + delete loop, one run.
//!
//!     cargo bench --bench sqs_drain [-- MESSAGES]        (default 10,000)
//!
//! The measurement is in `common/sqs.rs` (shared with `benches/suite.rs`).

mod common;

fn main() {
    common::run_helper();
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run then.
    let n = common::args::Args::parse().count(10_000, 200);
    common::runtime().block_on(async {
        common::sqs::drain(n, &[1, 5], &[(100, 5), (100, 20)]).await.print();
    });
}
