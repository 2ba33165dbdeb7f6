//! Tumbling windows end to end: an in-memory stream, a real HTTP function that aggregates in
//! its returned `state`, and the embedded checkpoint store that keeps the state across restarts.

mod common;
mod support;

use common::*;
use esmd_api::time::now_ms;
use esmd_memory::{MemoryLog, MemoryLogOptions};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::function::{FunctionServer, Reply};

const T: Duration = Duration::from_secs(30);
const MIN: i64 = 60_000;

fn log() -> MemoryLog {
    MemoryLog::new(MemoryLogOptions { stream_name: "s".into(), shards: 1, ..Default::default() })
}

fn settings(batch_size: usize, window_seconds: u64) -> esmd::engine::settings::StreamSettings {
    let mut s = stream_settings(batch_size, 0);
    s.tumbling_window = Some(Duration::from_secs(window_seconds));
    s
}

/// A minute-aligned time `minutes` from now (negative: in the past).
fn minute(minutes: i64) -> i64 {
    (now_ms() / MIN + minutes) * MIN
}

/// Appends `data` to shard 0 with the given arrival time; returns the position.
fn put(log: &MemoryLog, data: &str, arrival_ms: i64) -> String {
    let shard = log.shards()[0].clone();
    log.append_to(&shard, b"k", data.to_string(), Some(arrival_ms)).unwrap().to_string()
}

/// The aggregating function: appends each record's data to `state.seen`.
fn aggregate(event: &Value) -> Reply {
    let mut seen: Vec<Value> = event["state"]["seen"].as_array().cloned().unwrap_or_default();
    seen.extend(kinesis_records(event).into_iter().map(|(_, _, data)| Value::String(data)));
    Reply::ok(json!({"state": {"seen": seen}}))
}

fn is_final(e: &Value) -> bool {
    e["isFinalInvokeForWindow"] == json!(true)
}

/// (window start, the data the final invocation's state had seen) for each final invocation.
fn finals(events: &[Value]) -> Vec<(String, Vec<String>)> {
    events
        .iter()
        .filter(|e| is_final(e))
        .map(|e| {
            let seen = e["state"]["seen"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default();
            (e["window"]["start"].as_str().unwrap_or_default().to_string(), seen)
        })
        .collect()
}

fn iso(ms: i64) -> String {
    esmd_api::time::iso_seconds(ms)
}

async fn wait_finals(f: &FunctionServer, n: usize) -> Vec<Value> {
    support::wait::eventually(&format!("{n} final invocations"), T, || {
        let events = f.requests();
        if events.iter().filter(|e| is_final(e)).count() >= n {
            Ok(events)
        } else {
            Err(format!("got {events:#?}"))
        }
    })
    .await
}

/// A backlog over three past windows: batches never span windows, each invocation carries the
/// state the previous one returned, and each window ends with one final invocation holding
/// exactly its records.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_flows_through_a_window_and_each_window_ends_once() {
    let f = FunctionServer::start(aggregate).await;
    let log = log();
    let t0 = minute(-10);
    let mut arrivals = Vec::new();
    for i in 0..5 {
        arrivals.push((format!("a{i}"), t0 + 1000 * i));
    }
    for i in 0..4 {
        arrivals.push((format!("b{i}"), t0 + MIN + 5000 * i));
    }
    for i in 0..3 {
        arrivals.push((format!("c{i}"), t0 + 2 * MIN + 1000 * i));
    }
    let positions: Vec<String> = arrivals.iter().map(|(d, t)| put(&log, d, *t)).collect();
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings(2, 60), dir.path(), None);
    let events = wait_finals(&f, 3).await;
    m.wait_checkpoint(&log.shards()[0].to_string(), positions.last().unwrap(), T).await;

    let shard = log.shards()[0].to_string();
    let mut state = json!({});
    let mut window: Option<String> = None;
    for e in &events {
        assert_eq!(e["shardId"], shard.as_str());
        assert_eq!(e["eventSourceARN"], log.stream_arn());
        assert_eq!(e["isWindowTerminatedEarly"], false);
        let start = e["window"]["start"].as_str().unwrap().to_string();
        if window.as_deref() != Some(start.as_str()) {
            state = json!({});
            window = Some(start.clone());
        }
        assert_eq!(e["state"], state, "each invocation gets the state the previous one of its window returned: {e}");
        let records = kinesis_records(e);
        if is_final(e) {
            assert!(records.is_empty(), "the final invocation carries no records");
            window = None;
            continue;
        }
        assert!(records.len() <= 2);
        let prefix = records[0].2.chars().next().unwrap();
        assert!(records.iter().all(|r| r.2.starts_with(prefix)), "a batch spans two windows: {records:?}");
        let expected_start = match prefix {
            'a' => t0,
            'b' => t0 + MIN,
            _ => t0 + 2 * MIN,
        };
        assert_eq!(e["window"], json!({"start": iso(expected_start), "end": iso(expected_start + MIN)}));
        let mut seen = state["seen"].as_array().cloned().unwrap_or_default();
        seen.extend(records.iter().map(|r| json!(r.2)));
        state = json!({"seen": seen});
    }
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        finals(&events),
        vec![
            (iso(t0), s(&["a0", "a1", "a2", "a3", "a4"])),
            (iso(t0 + MIN), s(&["b0", "b1", "b2", "b3"])),
            (iso(t0 + 2 * MIN), s(&["c0", "c1", "c2"])),
        ]
    );
    m.stop().await;
}

/// A response without `state` fails the invocation (AWS); the retry gets the same state, and a
/// failing final invocation is retried until it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_state_fails_and_the_final_invoke_retries() {
    let final_failed = Arc::new(AtomicBool::new(false));
    let flag = final_failed.clone();
    let f = FunctionServer::start(move |e| {
        if is_final(e) && !flag.swap(true, Ordering::SeqCst) {
            Reply::error("the first final invocation fails")
        } else {
            aggregate(e)
        }
    })
    .await;
    // The first invocation answers without state.
    f.enqueue(Reply::ok(json!({"batchItemFailures": []})));
    let log = log();
    let t0 = minute(-5);
    put(&log, "x0", t0);
    put(&log, "x1", t0 + 1000);
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings(10, 60), dir.path(), None);
    let events = wait_finals(&f, 2).await;
    let summary: Vec<(usize, bool, Value)> = events.iter().map(|e| (kinesis_records(e).len(), is_final(e), e["state"].clone())).collect();
    let seen = json!({"seen": ["x0", "x1"]});
    assert_eq!(summary, vec![(2, false, json!({})), (2, false, json!({})), (0, true, seen.clone()), (0, true, seen)]);
    assert!(m.failures().is_empty());
    m.stop().await;
}

/// The window's state is kept with the checkpoint: a restart continues the open window from
/// the saved state without counting a record twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_survives_a_restart() {
    let f = FunctionServer::start(aggregate).await;
    let log = log();
    // A window that has not ended yet (arrival times ahead of the clock), so it stays open.
    let w = minute(30);
    let first: Vec<String> = (0..4).map(|i| put(&log, &format!("r{i}"), w + i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let shard = log.shards()[0].to_string();
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings(2, 60), dir.path(), None);
    m.wait_checkpoint(&shard, &first[3], T).await;
    m.stop().await;
    assert!(f.requests().iter().all(|e| !is_final(e)));

    // Restart on the same store; more records of the window, then one of the next window.
    for i in 4..7 {
        put(&log, &format!("r{i}"), w + i);
    }
    let last = put(&log, "next", w + MIN);
    f.clear();
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings(2, 60), dir.path(), None);
    let events = wait_finals(&f, 1).await;
    let seen = |e: &Value| e["state"]["seen"].as_array().map(|a| a.len()).unwrap_or(0);
    assert_eq!(seen(&events[0]), 4, "the first invocation after the restart carries the saved state: {}", events[0]);
    let s: Vec<String> = (0..7).map(|i| format!("r{i}")).collect();
    assert_eq!(finals(&events), vec![(iso(w), s)]);
    m.wait_checkpoint(&shard, &last, T).await;
    m.stop().await;
}

/// A state over 1 MB ends the window early: a final invocation marked terminated early, then
/// the same window goes on with a fresh state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_state_ends_the_window_early() {
    let f = FunctionServer::start(|e| {
        if is_final(e) {
            return Reply::ok(json!({"state": {}}));
        }
        let records = kinesis_records(e);
        if records.iter().any(|r| r.2 == "big") {
            Reply::ok(json!({"state": {"blob": "x".repeat(1024 * 1024 + 1)}}))
        } else {
            aggregate(e)
        }
    })
    .await;
    let log = log();
    let t0 = minute(-5);
    put(&log, "big", t0);
    put(&log, "after", t0 + 1000);
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings(1, 60), dir.path(), None);
    let events = wait_finals(&f, 2).await;
    let summary: Vec<(usize, bool, bool)> = events
        .iter()
        .map(|e| (kinesis_records(e).len(), is_final(e), e["isWindowTerminatedEarly"] == json!(true)))
        .collect();
    assert_eq!(summary, vec![(1, false, false), (0, true, true), (1, false, false), (0, true, false)]);
    assert_eq!(events[1]["state"]["blob"].as_str().map(str::len), Some(1024 * 1024 + 1));
    assert_eq!(events[2]["state"], json!({}), "the window goes on with a fresh state");
    assert!(events.iter().all(|e| e["window"]["start"] == iso(t0)));
    m.stop().await;
}

/// A closed shard ends its window; its children start with fresh state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_shard_ends_its_window() {
    let f = FunctionServer::start(aggregate).await;
    let log = log();
    let w = minute(30);
    let parent = log.shards()[0].clone();
    put(&log, "p0", w);
    put(&log, "p1", w + 1);
    let children = log.split_shard(&parent).unwrap();
    let child_pos = log.append_to(&children[0], b"k", "c0", Some(w + 2)).unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings(10, 60), dir.path(), None);
    let events = wait_finals(&f, 1).await;
    let finals: Vec<&Value> = events.iter().filter(|e| is_final(e)).collect();
    assert_eq!(finals[0]["shardId"], parent.as_str());
    assert_eq!(finals[0]["state"], json!({"seen": ["p0", "p1"]}));
    m.wait_checkpoint(children[0].as_str(), &child_pos, T).await;
    let requests = f.requests();
    let child: Vec<&Value> = requests.iter().filter(|e| e["shardId"] == children[0].as_str()).collect();
    assert_eq!(child[0]["state"], json!({}), "children start fresh");
    m.stop().await;
}

/// A record that arrives after its window was closed (arrival times are not strictly ordered)
/// goes to the next window; a closed window is never reopened for a second final invocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_record_never_reopens_a_closed_window() {
    let f = FunctionServer::start(aggregate).await;
    let log = log();
    let t0 = minute(-5);
    put(&log, "a", t0);
    let dir = tempfile::tempdir().unwrap();
    let m = start_stream(Arc::new(log.clone()), &f.url(), settings(10, 60), dir.path(), None);
    wait_finals(&f, 1).await;
    put(&log, "late", t0 + 1000);
    let events = wait_finals(&f, 2).await;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(finals(&events), vec![(iso(t0), s(&["a"])), (iso(t0 + MIN), s(&["late"]))]);
    m.stop().await;
}
