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
        state_dir: dir.path().to_path_buf(),
        timeout_seconds: 60,
        ..Default::default()
    };
    let mut printed = String::new();
    let report = run(opts.clone(), std::future::pending(), |r| printed = r.to_string()).await.expect("demo finishes");
    println!("{report}");
    assert_eq!(printed, report.to_string(), "the report is handed out once done");
    // Kept: the failure file is still there, with one record per isolated one.
    let failures = std::fs::read_to_string(dir.path().join("failures.jsonl")).expect("failure file kept");
    assert_eq!(failures.lines().count(), report.failures.len());
    assert!(report.to_string().contains(&dir.path().join("failures.jsonl").display().to_string()));
    // A second run in the same directory starts afresh, not from the first run's checkpoints.
    let again = run(opts, std::future::pending(), |_| {}).await.expect("demo finishes again");
    assert!(again.isolated_all(), "{again}");
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
