//! The ordered-log engine end to end: an in-memory stream, a real HTTP function, the embedded
//! checkpoint store and a file destination.

mod common;
mod support;

use common::*;
use esmd_api::time::now_ms;
use esmd_api::ShardId;
use esmd_memory::{MemoryLog, MemoryLogOptions};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::function::{FunctionServer, Reply};

const T: Duration = Duration::from_secs(30);

fn log(shards: usize) -> MemoryLog {
    MemoryLog::new(MemoryLogOptions { stream_name: "s".into(), shards, ..Default::default() })
}

/// Appends `n` records with data "0".."n-1" to shard 0; returns their positions.
fn fill(log: &MemoryLog, n: usize, key: impl Fn(usize) -> String) -> Vec<String> {
    let shard = log.shards()[0].clone();
    (0..n).map(|i| log.append_to(&shard, key(i).as_bytes(), i.to_string(), None).unwrap().to_string()).collect()
}

fn shard0(log: &MemoryLog) -> String {
    log.shards()[0].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_close_on_size_then_window() {
    let f = FunctionServer::ok().await;
    let log = log(1);
    let pos = fill(&log, 25, |_| "k".into());
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(Arc::new(log.clone()), &f.url(), stream_settings(10, 500), dir.path(), None);
    m.wait_checkpoint(&shard0(&log), &pos[24], T).await;
    let sizes: Vec<usize> = f.requests().iter().map(|e| kinesis_records(e).len()).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    m.stop().await;
}

/// A zero window over a backlog: lanes keep their batches open while the next read follows, so
/// every batch is full but each lane's last. (They used to invoke with what had reached them when
/// they woke, while the poll loop was still handing the read over.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zero_window_batches_fill_from_a_backlog() {
    let f = FunctionServer::ok().await;
    let log = log(1);
    let pos = fill(&log, 2000, |i| format!("k{}", i % 50));
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(100, 0);
    settings.parallelization_factor = 4;
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings, dir.path(), None);
    m.wait_checkpoint(&shard0(&log), &pos[1999], T).await;
    let sizes: Vec<usize> = f.requests().iter().map(|e| kinesis_records(e).len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 2000);
    let short = sizes.iter().filter(|&&n| n < 100).count();
    assert!(short <= 4, "at most one short batch per lane: {sizes:?}");
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_close_on_payload_bytes() {
    let f = FunctionServer::ok().await;
    let log = log(1);
    let shard = log.shards()[0].clone();
    let mut last = String::new();
    for _ in 0..10 {
        last = log.append_to(&shard, b"k", vec![b'x'; 3000], None).unwrap().to_string();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(100, 300);
    // Each record encodes to ≈ 4.4 KB: three fit under 16 KB, a fourth does not.
    settings.batch.max_payload_bytes = 16 * 1024;
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings, dir.path(), None);
    m.wait_checkpoint(shard.as_str(), &last, T).await;
    let sizes: Vec<usize> = f.recorded().iter().map(|r| kinesis_records(&r.json).len()).collect();
    assert_eq!(sizes, vec![3, 3, 3, 1]);
    assert!(f.recorded().iter().all(|r| r.body.len() <= 16 * 1024));
    m.stop().await;
}

/// Parallelization factor 10 with random keys: per-key order holds, and lanes overlap.
#[test]
fn per_key_order_holds_with_parallel_lanes() {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 4, ..Default::default() });
    runner
        .run(&(prop::collection::vec(0u8..40, 300..600), 1usize..30), |(keys, batch_size)| {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
            rt.block_on(async {
                let f = FunctionServer::start(|_| Reply::empty().after(Duration::from_millis(3))).await;
                let log = log(1);
                let pos = fill(&log, keys.len(), |i| format!("key-{}", keys[i]));
                let dir = tempfile::tempdir().unwrap();
                let mut settings = stream_settings(batch_size, 0);
                settings.parallelization_factor = 10;
                let m = start_stream(Arc::new(log.clone()), &f.url(), settings, dir.path(), None);
                m.wait_checkpoint(&shard0(&log), pos.last().unwrap(), T).await;
                let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
                for event in f.requests() {
                    for (_, key, data) in kinesis_records(&event) {
                        by_key.entry(key).or_default().push(data.parse().unwrap());
                    }
                }
                let total: usize = by_key.values().map(Vec::len).sum();
                assert_eq!(total, keys.len(), "every record delivered exactly once");
                for (key, seen) in &by_key {
                    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{key} out of order: {seen:?}");
                }
                if by_key.len() > 10 {
                    assert!(f.max_in_flight() > 1, "lanes never ran concurrently");
                }
                m.stop().await;
            });
            Ok(())
        })
        .unwrap();
}

/// One poison record in a 1,000-record batch with bisect: isolated in ≈ 2·log2(1000)
/// invocations; everything else is delivered; the failure record names exactly it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bisect_isolates_one_poison_record() {
    let f = FunctionServer::start(|event| {
        if kinesis_records(event).iter().any(|(_, _, d)| d == "637") { Reply::error("poison") } else { Reply::empty() }
    })
    .await;
    let log = log(1);
    let pos = fill(&log, 1000, |i| format!("k{i}"));
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(1000, 2000);
    settings.bisect_batch_on_function_error = true;
    settings.maximum_retry_attempts = Some(0);
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings, dir.path(), None);
    m.wait_checkpoint(&shard0(&log), &pos[999], T).await;

    let invocations = f.request_count();
    assert!(invocations <= 2 * 10 + 1, "{invocations} invocations");
    let mut delivered = HashSet::new();
    for event in f.requests() {
        let records = kinesis_records(&event);
        // The function accepts exactly the batches without the poison record.
        if records.iter().all(|r| r.2 != "637") {
            for (seq, _, _) in records {
                assert!(delivered.insert(seq), "a record was delivered twice");
            }
        }
    }
    assert_eq!(delivered.len(), 999);
    let failures = m.failures();
    assert_eq!(failures.len(), 1);
    let info = &failures[0]["KinesisBatchInfo"];
    assert_eq!(info["startSequenceNumber"], pos[637].as_str());
    assert_eq!(info["endSequenceNumber"], pos[637].as_str());
    assert_eq!(info["batchSize"], 1);
    assert_eq!(failures[0]["requestContext"]["condition"], "RetryAttemptsExhausted");
    m.stop().await;
}

/// Records older than maximum_record_age_in_seconds are cut before invoking and reported;
/// the rest is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_records_are_cut_and_reported() {
    let f = FunctionServer::ok().await;
    let log = log(1);
    let shard = log.shards()[0].clone();
    let old = now_ms() - 2 * 3600 * 1000;
    let mut pos = Vec::new();
    for i in 0..8 {
        let arrival = if i < 3 { Some(old) } else { None };
        pos.push(log.append_to(&shard, b"k", format!("r{i}"), arrival).unwrap().to_string());
    }
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(10, 300);
    settings.maximum_record_age = Some(Duration::from_secs(3600));
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings, dir.path(), None);
    m.wait_checkpoint(shard.as_str(), &pos[7], T).await;
    let delivered: Vec<String> = f.requests().iter().flat_map(kinesis_records).map(|(_, _, d)| d).collect();
    assert_eq!(delivered, vec!["r3", "r4", "r5", "r6", "r7"]);
    let failures = m.failures();
    assert_eq!(failures.len(), 1);
    let fr = &failures[0];
    assert_eq!(fr["requestContext"]["condition"], "RecordAgeExceeded");
    assert_eq!(fr["requestContext"]["approximateInvokeCount"], 1);
    assert!(fr.get("responseContext").is_none(), "AWS sends no responseContext for expired records");
    assert_eq!(fr["KinesisBatchInfo"]["startSequenceNumber"], pos[0].as_str());
    assert_eq!(fr["KinesisBatchInfo"]["endSequenceNumber"], pos[2].as_str());
    assert_eq!(fr["KinesisBatchInfo"]["batchSize"], 3);
    m.stop().await;
}

/// MaximumRetryAttempts 1 → approximateInvokeCount 2; throttles in between do not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_count_function_errors_not_throttles() {
    let f = FunctionServer::start(|_| Reply::error("boom")).await;
    f.enqueue(Reply::throttle(None));
    f.enqueue(Reply::status(503, "busy"));
    let log = log(1);
    let pos = fill(&log, 1, |_| "k".into());
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(10, 0);
    settings.maximum_retry_attempts = Some(1);
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings, dir.path(), None);
    m.wait_checkpoint(&shard0(&log), &pos[0], T).await;
    assert_eq!(f.request_count(), 4, "2 throttles + 1 invoke + 1 retry");
    let fr = &m.failures()[0];
    assert_eq!(fr["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(fr["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(fr["responseContext"]["functionError"], "Unhandled");
    m.stop().await;
}

/// One record, ReportBatchItemFailures, MaximumRetryAttempts 2 (as in AWS's recorded
/// scenarios), a function that always answers `reply`; returns once the record is finished.
async fn one_record_with_reply(reply: Reply) -> (FunctionServer, Mapping, String, tempfile::TempDir) {
    let f = FunctionServer::start(move |_| reply.clone()).await;
    let log = log(1);
    let pos = fill(&log, 1, |_| "test".into());
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(1, 0);
    settings.report_batch_item_failures = true;
    settings.maximum_retry_attempts = Some(2);
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings, dir.path(), None);
    m.wait_checkpoint(&shard0(&log), &pos[0], T).await;
    (f, m, pos[0].clone(), dir)
}

/// AWS's recorded ReportBatchItemFailures scenarios (kinesis/dynamodbstreams snapshots):
/// success bodies finish the batch in one invocation; failure bodies fail the whole batch,
/// retried until MaximumRetryAttempts 2 → approximateInvokeCount 3, batchSize 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recorded_partial_batch_scenarios() {
    let successes: Vec<(&str, Reply)> = vec![
        ("empty_string_success", Reply::ok(json!(""))),
        ("empty_list_success", Reply::ok(json!([]))),
        ("null_success", Reply::ok(Value::Null)),
        ("empty_dict_success", Reply::ok(json!({}))),
        ("empty_batch_item_failure_success", Reply::ok(json!({"batchItemFailures": []}))),
        ("null_batch_item_failure_success", Reply::ok(json!({"batchItemFailures": null}))),
    ];
    for (name, reply) in successes {
        let (f, m, _pos, _dir) = one_record_with_reply(reply).await;
        assert_eq!(f.request_count(), 1, "{name}");
        assert!(m.failures().is_empty(), "{name}");
        m.stop().await;
    }
    let failures: Vec<(&str, Reply, Value)> = vec![
        ("item_identifier_not_present_failure", Reply::batch_item_failures([123]), Value::Null),
        ("empty_string_item_identifier_failure", Reply::batch_item_failures([""]), Value::Null),
        ("null_item_identifier_failure", Reply::batch_item_failures([Value::Null]), Value::Null),
        ("invalid_key_foo_failure", Reply::ok(json!({"batchItemFailures": [{"foo": 123}]})), Value::Null),
        ("invalid_key_foo_null_value_failure", Reply::ok(json!({"batchItemFailures": [{"foo": null}]})), Value::Null),
        ("unhandled_exception_in_function", Reply::error("division by zero"), json!("Unhandled")),
    ];
    for (name, reply, function_error) in failures {
        let (f, m, pos, _dir) = one_record_with_reply(reply).await;
        assert_eq!(f.request_count(), 3, "{name}");
        let fr = m.failures();
        assert_eq!(fr.len(), 1, "{name}");
        assert_eq!(fr[0]["requestContext"]["approximateInvokeCount"], 3, "{name}");
        assert_eq!(fr[0]["responseContext"]["functionError"], function_error, "{name}");
        assert_eq!(fr[0]["KinesisBatchInfo"]["batchSize"], 1, "{name}");
        assert_eq!(fr[0]["KinesisBatchInfo"]["startSequenceNumber"], pos.as_str(), "{name}");
        m.stop().await;
    }
}

/// AWS's recorded test_kinesis_report_batch_item_failures: six records, BatchSize 3,
/// MaximumRetryAttempts 3, the function reports record 5 → records 0–4 finish, record 5 is
/// retried from, and given up with approximateInvokeCount 4 and functionError null.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recorded_report_batch_item_failures() {
    let f = FunctionServer::start(|event| {
        let failed: Vec<String> = kinesis_records(event).into_iter().filter(|(_, _, d)| d.contains("true")).map(|(s, _, _)| s).collect();
        Reply::batch_item_failures(failed)
    })
    .await;
    let log = log(1);
    let shard = log.shards()[0].clone();
    let pos: Vec<String> = (0..6)
        .map(|i| log.append_to(&shard, format!("test_{i}").as_bytes(), format!("{{\"should_fail\": {}}}", i == 5), None).unwrap().to_string())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(3, 1000);
    settings.report_batch_item_failures = true;
    settings.maximum_retry_attempts = Some(3);
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings, dir.path(), None);
    m.wait_checkpoint(shard.as_str(), &pos[5], T).await;
    let mut count = BTreeMap::new();
    for e in f.requests() {
        for (seq, _, _) in kinesis_records(&e) {
            *count.entry(seq).or_insert(0) += 1;
        }
    }
    for p in &pos[..5] {
        assert_eq!(count[p], 1);
    }
    assert_eq!(count[&pos[5]], 4);
    let fr = m.failures();
    assert_eq!(fr.len(), 1);
    assert_eq!(fr[0]["requestContext"]["approximateInvokeCount"], 4);
    assert_eq!(fr[0]["responseContext"]["functionError"], Value::Null);
    assert_eq!(fr[0]["responseContext"]["statusCode"], 200);
    assert_eq!(fr[0]["KinesisBatchInfo"]["startSequenceNumber"], pos[5].as_str());
    assert_eq!(fr[0]["KinesisBatchInfo"]["batchSize"], 1);
    m.stop().await;
}

/// Under random function failures, partial responses, bisection and lanes, the checkpoint
/// never passes a record that is neither delivered nor at the destination, and every record
/// ends up one or the other.
#[test]
fn checkpoint_never_passes_an_unfinished_record() {
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 6, ..Default::default() });
    let strategy = (any::<u64>(), 0u32..60, any::<bool>(), 0u32..3, 1usize..5, 1usize..20);
    runner
        .run(&strategy, |(seed, fail_pct, bisect, retries, pf, batch_size)| {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
            rt.block_on(async move {
                let done: Arc<Mutex<HashSet<String>>> = Arc::default();
                let rng = Arc::new(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)));
                let f = {
                    let done = done.clone();
                    FunctionServer::start(move |event| {
                        let records = kinesis_records(event);
                        let mut rng = rng.lock().unwrap();
                        let roll: u32 = rng.random_range(0..100);
                        if roll < fail_pct / 2 {
                            return Reply::error("random failure");
                        }
                        if roll < fail_pct && !records.is_empty() {
                            let cut = rng.random_range(0..records.len());
                            done.lock().unwrap().extend(records[..cut].iter().map(|r| r.0.clone()));
                            return Reply::batch_item_failures([records[cut].0.clone()]);
                        }
                        done.lock().unwrap().extend(records.into_iter().map(|r| r.0));
                        Reply::empty()
                    })
                    .await
                };
                let log = log(1);
                let pos = fill(&log, 300, |i| format!("k{}", i % 13));
                let dir = tempfile::tempdir().unwrap();
                let mut settings = stream_settings(batch_size, 0);
                settings.parallelization_factor = pf;
                settings.bisect_batch_on_function_error = bisect;
                settings.maximum_retry_attempts = Some(retries);
                settings.report_batch_item_failures = true;
                let m = start_stream(Arc::new(log.clone()), &f.url(), settings, dir.path(), None);
                let shard = shard0(&log);
                // Every look asserts the invariant: look as often as the old loop did.
                support::wait::eventually_every("the checkpoint to reach the last record", T, Duration::from_millis(2), || {
                    let cp = m.checkpoint(&shard);
                    let finished: HashSet<String> = {
                        let mut s = done.lock().unwrap().clone();
                        for fr in m.failures() {
                            let info = &fr["KinesisBatchInfo"];
                            let (a, b) = (info["startSequenceNumber"].as_str().unwrap().to_string(), info["endSequenceNumber"].as_str().unwrap().to_string());
                            s.extend(pos.iter().filter(|p| **p >= a && **p <= b).cloned());
                        }
                        s
                    };
                    if let Some(cp) = &cp {
                        for p in pos.iter().filter(|p| *p <= cp) {
                            assert!(finished.contains(p), "checkpoint {cp} passed unfinished record {p}");
                        }
                        if cp == pos.last().unwrap() {
                            assert_eq!(finished.len(), pos.len());
                            return Ok(());
                        }
                    }
                    Err(format!("not finished: checkpoint {cp:?}"))
                })
                .await;
                m.stop().await;
            });
            Ok(())
        })
        .unwrap();
}

/// A restart with the embedded store resumes right after the last finished record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_resumes_after_the_checkpoint() {
    let log = log(1);
    let pos = fill(&log, 200, |_| "k".into());
    let dir = tempfile::tempdir().unwrap();
    // First run: the function takes batches wholly below record 100 and fails the rest.
    let f1 = FunctionServer::start(|event| {
        if kinesis_records(event).iter().all(|r| r.2.parse::<usize>().unwrap() < 100) { Reply::empty() } else { Reply::error("down") }
    })
    .await;
    let m1 = start_stream(Arc::new(log.clone()), &f1.url(), stream_settings(10, 0), dir.path(), None);
    let start = std::time::Instant::now();
    support::wait::wait_for("the first run to reach record 100", T, || {
        f1.requests().iter().flat_map(kinesis_records).any(|r| r.2.parse::<usize>().unwrap() >= 100)
    })
    .await;
    // Checkpoints are saved behind the invocations (group commit), so on a loaded machine the
    // saved position can trail the function's view: wait for it to reach the failing batch.
    let resume_of = |cp: &Option<String>| cp.as_ref().map_or(0, |cp| pos.iter().position(|p| p == cp).unwrap() + 1);
    // T from the start, as before: the wait for record 100 counts.
    support::wait::eventually_every("the checkpoint to reach the batch before record 100", T.saturating_sub(start.elapsed()), Duration::from_millis(5), || {
        let cp = m1.checkpoint(&shard0(&log));
        assert!(resume_of(&cp) <= 100, "checkpoint {cp:?} passed record 100, which the function never took");
        if resume_of(&cp) >= 90 { Ok(()) } else { Err(format!("checkpoint {cp:?}")) }
    })
    .await;
    // The failing batch keeps being retried; the checkpoint must not pass it meanwhile.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cp = m1.checkpoint(&shard0(&log));
    m1.stop().await;
    let resume = resume_of(&cp);
    assert!((90..=100).contains(&resume), "checkpoint {cp:?} is not just before record 100");

    let f2 = FunctionServer::ok().await;
    let m2 = start_stream(Arc::new(log.clone()), &f2.url(), stream_settings(10, 0), dir.path(), None);
    m2.wait_checkpoint(&shard0(&log), &pos[199], T).await;
    let seen: Vec<usize> = f2.requests().iter().flat_map(kinesis_records).map(|r| r.2.parse().unwrap()).collect();
    assert_eq!(seen, (resume..200).collect::<Vec<_>>(), "resumed exactly after the checkpoint");
    m2.stop().await;
}

/// A failing destination holds the shard: nothing is dropped, and it resumes on recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_destination_holds_the_shard() {
    let f = FunctionServer::start(|event| {
        if kinesis_records(event).iter().any(|r| r.2 == "2") { Reply::error("poison") } else { Reply::empty() }
    })
    .await;
    let log = log(1);
    let pos = fill(&log, 10, |_| "k".into());
    let dir = tempfile::tempdir().unwrap();
    // The destination's directory is a plain file: every delivery fails until it is removed.
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, "not a directory").unwrap();
    let registry = esmd::status::StatusRegistry::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let destination = blocker.join("failures.jsonl");
    let mut settings = stream_settings(1, 0);
    settings.maximum_retry_attempts = Some(0);
    let ctx = common::ctx(&f.url(), esmd_api::OrderedSource::encoder(&log), &destination, &registry, &stop);
    let store = esmd::checkpoint::embedded::EmbeddedStore::open(&dir.path().join("cp.redb")).unwrap();
    let mapping = esmd::supervisor::StreamMapping { ctx: Arc::new(ctx), settings: Arc::new(settings), source: Arc::new(log.clone()), store: Arc::new(store) };
    let m = Mapping { registry, stop, handle: tokio::spawn(mapping.run()), destination: destination.clone() };

    m.wait_checkpoint(&shard0(&log), &pos[1], T).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(m.checkpoint(&shard0(&log)).as_deref(), Some(pos[1].as_str()), "the shard must hold at the poison record");
    let delivered: Vec<String> = f
        .requests()
        .iter()
        .map(kinesis_records)
        .filter(|rs| rs.iter().all(|r| r.2 != "2"))
        .flatten()
        .map(|r| r.2)
        .collect();
    assert_eq!(delivered, vec!["0", "1"], "nothing after the poison record runs while the destination is down");

    std::fs::remove_file(&blocker).unwrap();
    m.wait_checkpoint(&shard0(&log), &pos[9], T).await;
    let failures = m.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["KinesisBatchInfo"]["startSequenceNumber"], pos[2].as_str());
    m.stop().await;
}

/// Resharding: children start only after the parent is finished, so a key's order holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn children_wait_for_their_parent() {
    let f = FunctionServer::start(|_| Reply::empty().after(Duration::from_millis(2))).await;
    let log = log(1);
    let parent = log.shards()[0].clone();
    for i in 0..50 {
        log.append_to(&parent, format!("k{}", i % 5).as_bytes(), format!("p{i}"), None).unwrap();
    }
    let children = log.split_shard(&parent).unwrap();
    let mut last: BTreeMap<ShardId, String> = BTreeMap::new();
    for i in 0..50 {
        let (shard, p) = log.append(format!("k{}", i % 5).as_bytes(), format!("c{i}"));
        last.insert(shard, p.to_string());
    }
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(Arc::new(log.clone()), &f.url(), stream_settings(7, 0), dir.path(), None);
    for (shard, p) in &last {
        assert!(children.contains(shard));
        m.wait_checkpoint(shard.as_str(), p, T).await;
    }
    let data: Vec<String> = f.requests().iter().flat_map(kinesis_records).map(|r| r.2).collect();
    let last_parent = data.iter().rposition(|d| d.starts_with('p')).unwrap();
    let first_child = data.iter().position(|d| d.starts_with('c')).unwrap();
    assert!(last_parent < first_child, "a child record ran before the parent finished");
    assert_eq!(data.len(), 100);
    m.stop().await;
}

/// Filtered-out records are finished: the checkpoint passes them and they are never invoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filtered_records_are_finished() {
    let f = FunctionServer::ok().await;
    let log = log(1);
    let shard = log.shards()[0].clone();
    let mut last = String::new();
    for i in 0..20 {
        last = log.append_to(&shard, b"k", format!("{{\"kind\":\"{}\",\"n\":{i}}}", if i % 2 == 0 { "keep" } else { "drop" }), None).unwrap().to_string();
    }
    let filter = esmd_filter::FilterCriteria::compile(&[r#"{"data":{"kind":["keep"]}}"#.to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(Arc::new(log.clone()), &f.url(), stream_settings(100, 200), dir.path(), Some(Arc::new(filter)));
    m.wait_checkpoint(shard.as_str(), &last, T).await;
    let seen: Vec<String> = f.requests().iter().flat_map(kinesis_records).map(|r| r.2).collect();
    assert_eq!(seen.len(), 10);
    assert!(seen.iter().all(|d| d.contains("keep")));
    m.stop().await;
}

/// The mapping-wide read-ahead budget: with 8 shards far behind and a slow function, the
/// records in lanes and in flight stay within the budget (here 40 KiB, about ten 3 KB records
/// as events, plus one record a shard may hold past it), where two batches per lane per shard
/// would be 8 × 2 × 25. Everything is still delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_read_ahead_budget_bounds_what_is_in_flight_across_shards() {
    const HOLD: Duration = Duration::from_millis(50);
    let f = FunctionServer::start(|_| Reply::delay(HOLD, Reply::empty())).await;
    let log = log(8);
    let mut last = BTreeMap::new();
    for shard in log.shards() {
        for _ in 0..40 {
            last.insert(shard.to_string(), log.append_to(&shard, b"k", vec![b'x'; 3000], None).unwrap().to_string());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut settings = stream_settings(25, 0);
    settings.parallelization_factor = 2;
    settings.read_ahead_bytes = 40 * 1024;
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings, dir.path(), None);
    for (shard, position) in &last {
        m.wait_checkpoint(shard, position, T).await;
    }
    m.stop().await;
    // Each request is held HOLD from its arrival; the engine gives its records' room back only
    // after the answer, later still. So the records counted here in flight at each arrival are
    // at most what the engine held.
    let requests: Vec<(std::time::Instant, usize)> = f.recorded().iter().map(|r| (r.received_at, kinesis_records(&r.json).len())).collect();
    assert_eq!(requests.iter().map(|(_, n)| n).sum::<usize>(), 8 * 40);
    let most = requests
        .iter()
        .map(|(at, _)| requests.iter().filter(|(t, _)| t <= at && *at < *t + HOLD).map(|(_, n)| n).sum::<usize>())
        .max()
        .unwrap_or(0);
    // ≈ 4.1 KB per record as an event: 40 KiB holds 9; each of 8 shards may hold one more.
    assert!(most <= 9 + 8, "{most} records in flight at once, past the 40 KiB budget");
    assert!(most >= 2, "the function saw concurrent work ({most})");
}
