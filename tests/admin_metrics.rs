//! What `MappingMetrics` exports: every AWS metric under its `esmd_*` name, the `mapping` and
//! `source` labels only, and the per-shard gauges folded into max and sum.

use esmd::metrics::{install_recorder, MappingMetrics};
use std::time::Duration;

/// The value of `name`'s series for `mapping`, from Prometheus text.
fn value(text: &str, name: &str, mapping: &str) -> Option<f64> {
    let label = format!(r#"mapping="{mapping}""#);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn install_is_idempotent() {
    let a = install_recorder().unwrap();
    let b = install_recorder().unwrap();
    MappingMetrics::new("idempotent", "sqs").throttle();
    // Same recorder behind both handles.
    assert_eq!(value(&a.render(), "esmd_throttles_total", "idempotent"), Some(1.0));
    assert_eq!(value(&b.render(), "esmd_throttles_total", "idempotent"), Some(1.0));
}

#[test]
fn every_method_feeds_its_metric() {
    let handle = install_recorder().unwrap();
    let m = MappingMetrics::new("every", "kafka");
    m.invocation(Duration::from_millis(30));
    m.invocation(Duration::from_secs(2));
    m.function_error();
    m.throttle();
    m.invoke_unavailable();
    m.concurrent_executions(1);
    m.concurrent_executions(1);
    m.concurrent_executions(-1);
    m.polled(10);
    m.filtered_out(3);
    m.invoked_events(7);
    m.failed_invoke_events(2);
    m.dropped(1);
    m.destination_delivered(1);
    m.destination_delivery_failure();
    m.deleted(4);
    m.committed(5);
    m.bisected();
    m.polling_error();
    m.commit_error();
    m.iterator_age("p0", 10);
    m.offset_lag("p0", 6);
    handle.run_upkeep();
    let text = handle.render();

    for (name, expected) in [
        ("esmd_invocations_total", 2.0),
        ("esmd_errors_total", 1.0),
        ("esmd_throttles_total", 1.0),
        ("esmd_invoke_unavailable_total", 1.0),
        ("esmd_concurrent_executions", 1.0),
        ("esmd_polled_events_total", 10.0),
        ("esmd_filtered_out_events_total", 3.0),
        ("esmd_invoked_events_total", 7.0),
        ("esmd_failed_invoke_events_total", 2.0),
        ("esmd_dropped_events_total", 1.0),
        ("esmd_on_failure_destination_delivered_events_total", 1.0),
        ("esmd_destination_delivery_failures_total", 1.0),
        ("esmd_deleted_events_total", 4.0),
        ("esmd_committed_events_total", 5.0),
        ("esmd_bisections_total", 1.0),
        ("esmd_polling_errors_total", 1.0),
        ("esmd_commit_errors_total", 1.0),
        ("esmd_iterator_age_milliseconds", 10.0),
        ("esmd_offset_lag", 6.0),
        ("esmd_max_offset_lag", 6.0),
        ("esmd_duration_seconds_count", 2.0),
        ("esmd_duration_seconds_sum", 2.03),
    ] {
        let got = value(&text, name, "every").unwrap_or_else(|| panic!("no {name}: {text}"));
        assert!((got - expected).abs() < 1e-9, "{name}: {got} != {expected}");
    }
    // A real histogram with buckets, not a summary.
    assert!(text.contains("# TYPE esmd_duration_seconds histogram"), "{text}");
    let bucket = text
        .lines()
        .find(|l| {
            l.starts_with("esmd_duration_seconds_bucket{")
                && l.contains(r#"mapping="every""#)
                && l.contains(r#"le="0.05""#)
        })
        .unwrap_or_else(|| panic!("no 50 ms bucket: {text}"));
    assert!(bucket.ends_with(" 1"), "{bucket}");
    // Help text is registered.
    assert!(text.contains("# HELP esmd_iterator_age_milliseconds"), "{text}");

    // Labels are mapping and source, never the shard.
    for line in text.lines().filter(|l| l.starts_with("esmd_") && l.contains(r#"mapping="every""#)) {
        assert!(line.contains(r#"source="kafka""#), "{line}");
        assert!(!line.contains("p0") && !line.contains("shard"), "{line}");
    }
}

#[test]
fn shard_gauges_are_max_and_sum() {
    let handle = install_recorder().unwrap();
    let m = MappingMetrics::new("shards", "kinesis");
    let clone = m.clone();
    m.iterator_age("s1", 100);
    clone.iterator_age("s2", 300);
    m.iterator_age("s3", 200);
    m.offset_lag("s1", 5);
    clone.offset_lag("s2", 7);
    let get = |name| value(&handle.render(), name, "shards");
    assert_eq!(get("esmd_iterator_age_milliseconds"), Some(300.0));
    assert_eq!(get("esmd_offset_lag"), Some(12.0));
    assert_eq!(get("esmd_max_offset_lag"), Some(7.0));

    // The oldest shard catches up: the max follows it down.
    m.iterator_age("s2", 50);
    assert_eq!(get("esmd_iterator_age_milliseconds"), Some(200.0));

    // A shard goes away (split, merged, partition revoked): it no longer counts.
    m.forget_shard("s3");
    assert_eq!(get("esmd_iterator_age_milliseconds"), Some(100.0));
    m.forget_shard("s2");
    assert_eq!(get("esmd_offset_lag"), Some(5.0));
    assert_eq!(get("esmd_max_offset_lag"), Some(5.0));
    assert_eq!(get("esmd_iterator_age_milliseconds"), Some(100.0));
    m.forget_shard("s1");
    assert_eq!(get("esmd_iterator_age_milliseconds"), Some(0.0));
    assert_eq!(get("esmd_offset_lag"), Some(0.0));
    // Forgetting a shard never seen is harmless.
    m.forget_shard("never");
}

#[test]
fn metrics_made_before_the_recorder_still_report() {
    // Tests in this binary may run in any order; whichever installs first, a MappingMetrics
    // built earlier must end up in the same recorder.
    let m = MappingMetrics::new("early", "sqs");
    let handle = install_recorder().unwrap();
    m.deleted(3);
    assert_eq!(value(&handle.render(), "esmd_deleted_events_total", "early"), Some(3.0));
}
