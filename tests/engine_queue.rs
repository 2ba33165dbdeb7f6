//! The queue engine end to end: the in-memory queue, a real HTTP function, a file destination.

mod common;
mod support;

use common::*;
use esmd::engine::settings::QueueExhausted;
use esmd_memory::{MemoryQueue, MemoryQueueOptions};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::function::{FunctionServer, Reply};
use support::wait::wait_for;

fn queue(fifo: bool) -> MemoryQueue {
    MemoryQueue::new(MemoryQueueOptions { name: "q".into(), fifo, visibility_timeout: Duration::from_secs(30), ..Default::default() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_is_bounded_and_everything_is_acked() {
    let f = FunctionServer::start(|_| Reply::empty().after(Duration::from_millis(20))).await;
    let q = queue(false);
    for i in 0..200 {
        q.send(format!("m{i}"), None);
    }
    let dir = tempfile::tempdir().unwrap();
    let m = start_queue(Arc::new(q.clone()), &f.url(), queue_settings(5, 3), dir.path());
    wait_for("all acked", Duration::from_secs(30), || q.acked_count() == 200).await;
    assert!(f.max_in_flight() <= 3, "max in flight {}", f.max_in_flight());
    assert!(f.max_in_flight() > 1, "batches never ran concurrently");
    let bodies: HashSet<String> = f.requests().iter().flat_map(sqs_records).map(|r| r.1).collect();
    assert_eq!(bodies.len(), 200);
    m.stop().await;
}

/// ReportBatchItemFailures acks only the successes; failed messages come back, and after
/// the retry limit go to the destination and are acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partial_batch_acks_successes_and_retries_failures() {
    let f = FunctionServer::start(|event| {
        let bad: Vec<String> = sqs_records(event).into_iter().filter(|(_, body)| body.starts_with("bad")).map(|(id, _)| id).collect();
        Reply::batch_item_failures(bad)
    })
    .await;
    let q = queue(false);
    for i in 0..30 {
        q.send(if i % 10 == 3 { format!("bad{i}") } else { format!("good{i}") }, None);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut settings = queue_settings(10, 2);
    settings.report_batch_item_failures = true;
    settings.maximum_retry_attempts = Some(2);
    settings.on_exhausted = QueueExhausted::Destination;
    let m = start_queue(Arc::new(q.clone()), &f.url(), settings, dir.path());
    wait_for("all acked", Duration::from_secs(30), || q.acked_count() == 30).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (_, body) in f.requests().iter().flat_map(sqs_records) {
        *seen.entry(body).or_default() += 1;
    }
    for (body, n) in &seen {
        let expected = if body.starts_with("bad") { 3 } else { 1 };
        assert_eq!(*n, expected, "{body} delivered {n} times");
    }
    let failures = m.failures();
    assert_eq!(failures.len(), 3);
    for fr in &failures {
        assert_eq!(fr["requestContext"]["condition"], "RetryAttemptsExhausted");
        assert_eq!(fr["requestContext"]["approximateInvokeCount"], 3);
    }
    assert_eq!(q.visible_len() + q.in_flight_len(), 0);
    m.stop().await;
}

/// A malformed partial response fails the whole batch: nothing is acked by a typo.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_partial_response_fails_the_batch() {
    let f = FunctionServer::start(|_| Reply::ok(serde_json::json!({"batchItemFailures": [{"itemIdentifer": "typo"}]}))).await;
    let q = queue(false);
    for i in 0..4 {
        q.send(format!("m{i}"), None);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut settings = queue_settings(10, 2);
    settings.report_batch_item_failures = true;
    settings.maximum_retry_attempts = Some(1);
    settings.on_exhausted = QueueExhausted::DeadLetter;
    let m = start_queue(Arc::new(q.clone()), &f.url(), settings, dir.path());
    wait_for("dead-lettered", Duration::from_secs(30), || q.dead_letters().len() == 4).await;
    assert_eq!(q.acked_count(), 0);
    m.stop().await;
}

/// FIFO: a message group is never in two batches at once, and its order holds across
/// failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifo_groups_keep_their_order() {
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let processed: Arc<Mutex<BTreeMap<String, Vec<usize>>>> = Arc::default();
    let attempts: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
    let f = {
        let (in_flight, processed, attempts) = (in_flight.clone(), processed.clone(), attempts.clone());
        FunctionServer::start(move |event| {
            let records = sqs_records(event);
            let groups: HashSet<String> = records.iter().map(|(_, b)| b.split(':').next().unwrap().to_string()).collect();
            {
                let mut busy = in_flight.lock().unwrap();
                for g in &groups {
                    assert!(busy.insert(g.clone()), "group {g} in two batches at once");
                }
            }
            std::thread::sleep(Duration::from_millis(3));
            // Every message fails on its first delivery: order must survive the retries.
            let mut failed = Vec::new();
            let mut blocked = HashSet::new();
            for (id, body) in &records {
                let (g, n) = body.split_once(':').unwrap();
                let mut a = attempts.lock().unwrap();
                let count = a.entry(body.clone()).or_insert(0);
                *count += 1;
                if *count == 1 || blocked.contains(g) {
                    blocked.insert(g.to_string());
                    failed.push(id.clone());
                } else {
                    processed.lock().unwrap().entry(g.to_string()).or_default().push(n.parse().unwrap());
                }
            }
            let mut busy = in_flight.lock().unwrap();
            for g in &groups {
                busy.remove(g);
            }
            Reply::batch_item_failures(failed)
        })
        .await
    };
    let q = queue(true);
    for n in 0..20 {
        for g in ["a", "b", "c"] {
            q.send(format!("{g}:{n}"), Some(g));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut settings = queue_settings(4, 5);
    settings.report_batch_item_failures = true;
    let m = start_queue(Arc::new(q.clone()), &f.url(), settings, dir.path());
    wait_for("all acked", Duration::from_secs(30), || q.acked_count() == 60).await;
    for (g, order) in processed.lock().unwrap().iter() {
        assert_eq!(order, &(0..20).collect::<Vec<_>>(), "group {g}");
    }
    m.stop().await;
}

/// Filtered-out messages are acked without invoking.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filtered_messages_are_acked() {
    let f = FunctionServer::ok().await;
    let q = queue(false);
    for i in 0..10 {
        q.send(format!("{{\"keep\":{}}}", i % 2 == 0), None);
    }
    let filter = esmd_filter::FilterCriteria::compile(&[r#"{"body":{"keep":[true]}}"#.to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let registry = esmd::status::StatusRegistry::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut ctx = common::ctx(&f.url(), esmd_api::QueueSource::encoder(&q), &dir.path().join("f.jsonl"), &registry, &stop);
    ctx.filter = Some(Arc::new(filter));
    let mapping = esmd::supervisor::QueueMapping { ctx: Arc::new(ctx), settings: Arc::new(queue_settings(10, 2)), source: Arc::new(q.clone()) };
    let handle = tokio::spawn(mapping.run());
    wait_for("all acked", Duration::from_secs(30), || q.acked_count() == 10).await;
    let bodies: Vec<String> = f.requests().iter().flat_map(sqs_records).map(|r| r.1).collect();
    assert_eq!(bodies.len(), 5);
    assert!(bodies.iter().all(|b| b.contains("true")));
    stop.cancel();
    handle.await.unwrap();
}
