//! Draining a Kinesis backlog on moto: esmd against a raw GetRecords loop, same server, one run.
//!
//!     cargo bench --bench kinesis_drain [-- RECORDS]        (default 100,000)
//!
//! The measurement is in `common/kinesis.rs` (shared with `benches/suite.rs`).

mod common;

fn main() {
    common::run_helper();
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run then.
    let n = common::args::Args::parse().count(100_000, 2_000);
    common::runtime().block_on(async {
        common::kinesis::drain(n, &[(100, 1), (1000, 1), (100, 4)]).await.print();
    });
}
