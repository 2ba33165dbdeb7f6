//! `esmd demo` runs to completion on each backlog source: every poison and expired record is
//! isolated and sent to the file destination, everything else reaches the function.

use esmd::demo::{run, DemoOptions, DemoSource};

async fn demo(source: DemoSource) {
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoOptions {
        source,
        records: 1500,
        shards: 3,
        poison_every: 97,
        expired: 3,
        listen: "127.0.0.1:0".into(),
        state_dir: Some(dir.path().to_path_buf()),
        timeout_seconds: 60,
        ..Default::default()
    };
    let report = run(opts, std::future::pending()).await.expect("demo finishes");
    println!("{report}");
    assert_eq!(report.poison_written.len(), 15);
    assert_eq!(report.expired_written.len(), 3);
    assert!(report.isolated_all(), "{report}");
}

/// The default: an embedded Kafka cluster read through the real consumer group.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_runs_to_completion_on_embedded_kafka() {
    #[cfg(feature = "kafka")]
    assert_eq!(DemoSource::default().name(), "kafka");
    demo(DemoSource::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_runs_to_completion_on_the_memory_stream() {
    demo(DemoSource::named("memory").expect("every build embeds the memory stream")).await;
}
