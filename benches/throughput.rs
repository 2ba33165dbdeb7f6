//! Throughput of the stream engine against a raw client on the same backlog, in one run.
//!
//!     cargo bench --bench throughput [-- RECORDS]        (default 200,000; --scale F)
//!
//! The measurement is in `common/memory.rs`: an in-memory stream of 4 shards drained into the
//! no-op function (its own process) by raw reqwest POSTs and by esmd's engine, batch 100,
//! 16 requests in flight.

mod common;

fn main() {
    common::run_helper();
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run then.
    let records = common::args::Args::parse().count(200_000, 2_000);
    common::runtime().block_on(async {
        common::memory::drain(records).await.print();
    });
}
