//! What the benches share: the no-op function, arguments, the runtime and the tables; plus each
//! measurement as a function, so a drain bench's `main` is a thin wrapper and `benches/suite.rs`
//! can run them all in one process and print one table.
//!
//! Cargo does not make `benches/common/mod.rs` a bench target (only `benches/*.rs` and
//! `benches/*/main.rs`); each bench includes it with `mod common;`, and calls [`run_helper`]
//! first: a bench binary is also its own helper processes (the function, the raw Kafka clients).

// Every bench uses only part of this module.
#![allow(dead_code)]

// The allocator the esmd binary runs with (src/main.rs), so esmd rows measure what ships. The
// raw rows share the process, and so the allocator.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[path = "../../tests/support/moto.rs"]
pub mod moto;

pub mod args;
pub mod child;
pub mod function;
pub mod latency;
pub mod memory;
pub mod noop;
pub mod process;
pub mod table;

#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "kinesis")]
pub mod kinesis;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "sqs")]
pub mod sqs;

/// When this binary was started as one of the benches' helper processes (`--noop-function`,
/// `--raw-consumer`, `--raw-pipeline`), runs it and exits; otherwise returns at once.
pub fn run_helper() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((flag, rest)) = args.split_first() else { return };
    let helper = [noop::FLAG, "--raw-consumer", "--raw-pipeline"].contains(&flag.as_str());
    // RUST_LOG=debug (with BENCH_KAFKA_DEBUG=cgrp,fetch for librdkafka's own log) shows what a
    // helper's clients do, on the bench's stderr.
    if helper && std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    }
    match flag.as_str() {
        noop::FLAG => noop::run_child(rest),
        #[cfg(feature = "kafka")]
        kafka::raw_consumer::FLAG => kafka::raw_consumer::run_child(rest),
        #[cfg(feature = "kafka")]
        kafka::raw_pipeline::FLAG => kafka::raw_pipeline::run_child(rest),
        _ => {}
    }
}

/// The context every bench's mapping runs with: an HTTP invoker to the no-op function at
/// `url` (30 s timeout, `max_concurrency` requests in flight), no destination, no filter, and
/// its own metrics and status under `name`.
pub fn mapping_ctx(
    name: &str,
    kind: &str,
    url: &str,
    max_concurrency: usize,
    encoder: std::sync::Arc<dyn esmd_api::EventEncoder>,
    registry: &esmd::status::StatusRegistry,
    shutdown: tokio_util::sync::CancellationToken,
) -> esmd::engine::context::MappingCtx {
    use esmd::invoke::http::{HttpInvoker, HttpInvokerOptions};
    let invoker = HttpInvoker::new(HttpInvokerOptions { url: url.to_owned(), timeout: std::time::Duration::from_secs(30), max_concurrency, headers: vec![], function_arn: None })
        .expect("invoker");
    esmd::engine::context::MappingCtx {
        name: name.into(),
        invoker: std::sync::Arc::new(invoker),
        encoder,
        destination: None,
        filter: None,
        metrics: esmd::metrics::MappingMetrics::new(name, kind),
        status: registry.mapping(name, kind),
        shutdown,
    }
}

/// A multi-threaded runtime, as `esmd run` uses.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}
