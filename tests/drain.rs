//! `esmd drain`: the binary against real HTTP functions, a memory stream and SQS on moto.
//! Reports are read with `--json`; the live view's plain lines from stderr.

mod support;

use base64::Engine as _;
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use support::function::{FunctionServer, Reply};
use support::moto::{esmd_command, MotoServer};

/// Runs `esmd drain` on a config in a blocking task (the test's function server keeps
/// answering meanwhile) and returns its output. AWS credentials are dummies (moto).
async fn drain(dir: &Path, config: &str, args: &[&str]) -> Output {
    let path = dir.join("drain.toml");
    std::fs::write(&path, config).unwrap();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || esmd_command(&dir).arg("drain").arg("-c").arg(&path).args(&args).output().unwrap()).await.unwrap()
}

/// A config with one mapping: its parameters and source as TOML lines, an HTTP function, and
/// checkpoints (and any file destination) under `state`.
fn config(state: &Path, mapping: &str, source: &str, function_url: &str) -> String {
    format!(
        "[checkpoint]\ntype = \"embedded\"\npath = \"{}\"\n\n[[mappings]]\n{mapping}\n[mappings.source]\n{source}\n[mappings.function]\ntype = \"http\"\nurl = \"{function_url}\"\n",
        state.display()
    )
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("not a JSON report ({e}):\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

fn kinesis_data(event: &Value) -> Vec<String> {
    event["Records"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(r["kinesis"]["data"].as_str().unwrap()).unwrap();
                    String::from_utf8(bytes).unwrap()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A stream backlog with poison records: the drain ends once every shard has caught up, and
/// its report adds up (every record finished, each poison record isolated by bisection and
/// sent to the destination, latency percentiles in order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_reports_a_stream_backlog_with_poison_records() {
    let f = FunctionServer::start(|event| {
        if kinesis_data(event).iter().any(|d| d.starts_with("poison")) { Reply::error("poison") } else { Reply::empty() }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().display();
    let config = config(
        dir.path(),
        &format!(
            "name = \"orders\"\nstarting_position = \"TRIM_HORIZON\"\nbatch_size = 50\nparallelization_factor = 2\nmaximum_retry_attempts = 0\nbisect_batch_on_function_error = true\ndestination_config = {{ on_failure = {{ destination = \"file:{state}/failures.jsonl\" }} }}"
        ),
        "type = \"memory\"\nstream_name = \"orders\"\nshards = 2\nseed = { records = 2000, record_bytes = 100, keys = 40, poison_every = 500 }",
        &f.url(),
    );
    // Failure records name the function after the mapping, in [aws]'s account and region.
    let config = format!("[aws]\nregion = \"eu-west-1\"\naccount = \"123456789012\"\n\n{config}");
    let out = drain(dir.path(), &config, &["--json", "--live", "off", "--time-limit", "120s"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out);
    assert_eq!(r["caught_up"], true);
    assert_eq!(r["interrupted"], false);
    let m = &r["mappings"][0];
    assert_eq!((m["mapping"].as_str(), m["source"].as_str(), m["caught_up"].as_bool()), (Some("orders"), Some("memory"), Some(true)));
    assert_eq!(m["finished"], 2000, "{m}");
    assert_eq!(m["polled"], 2000, "{m}");
    assert_eq!(m["destination_records"], 4, "one failure record per poison record: {m}");
    assert_eq!(m["dropped"], 4, "{m}");
    let n = |k: &str| m[k].as_u64().unwrap_or_else(|| panic!("{k} in {m}"));
    assert!(n("bisections") >= 4 && n("function_errors") >= 4, "{m}");
    assert!(n("batches") >= 40 && n("invocations") > n("batches"), "{m}");
    assert!(n("peak_concurrency") >= 1 && n("peak_concurrency") <= 4, "two shards × two lanes: {m}");
    assert!(n("peak_iterator_age_ms") > 0, "{m}");
    let ms = |k: &str| m[k].as_f64().unwrap_or_else(|| panic!("{k} in {m}"));
    assert!(ms("latency_p50_ms") <= ms("latency_p95_ms") && ms("latency_p95_ms") <= ms("latency_p99_ms") && ms("latency_p99_ms") <= ms("latency_max_ms"), "{m}");
    assert!(m["records_per_second"].as_f64().unwrap() > 0.0);

    let delivered: std::collections::HashSet<String> =
        f.requests().iter().flat_map(kinesis_data).filter(|d| !d.starts_with("poison")).map(|d| d.trim_end().to_owned()).collect();
    assert_eq!(delivered.len(), 1996, "every good record reached the function");
    let failures = std::fs::read_to_string(dir.path().join("failures.jsonl")).unwrap();
    assert_eq!(failures.lines().count(), 4);
    for line in failures.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["requestContext"]["functionArn"], "arn:aws:lambda:eu-west-1:123456789012:function:orders", "{record}");
    }
}

/// `max_invocations_per_second` spaces the calls of the whole mapping (two shards here): 20
/// invocations at 10 per second cannot take less than 1.9 s from the first to the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_invocations_per_second_paces_the_mapping() {
    let f = FunctionServer::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "name = \"paced\"\nstarting_position = \"TRIM_HORIZON\"\nbatch_size = 2\nmax_invocations_per_second = 10",
        "type = \"memory\"\nstream_name = \"paced\"\nshards = 2\nseed = { records = 40, record_bytes = 10, keys = 2 }",
        &f.url(),
    );
    let out = drain(dir.path(), &config, &["--json", "--live", "off"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let m = &report(&out)["mappings"][0];
    assert_eq!(m["finished"], 40, "{m}");
    let times: Vec<_> = f.recorded().iter().map(|r| r.received_at).collect();
    assert_eq!(times.len(), 20);
    let span = *times.iter().max().unwrap() - *times.iter().min().unwrap();
    // 19 gaps of 100 ms; a little slack for a request that left on time and arrived late.
    assert!(span >= Duration::from_millis(1850), "20 invocations in {span:?}");
}

/// A function that never succeeds (and unlimited retries) never lets the drain catch up: the
/// time limit ends it with exit code 3 and a report that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_limit_ends_a_drain_that_cannot_catch_up() {
    let f = FunctionServer::start(|_| Reply::error("always")).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "name = \"stuck\"\nstarting_position = \"TRIM_HORIZON\"",
        "type = \"memory\"\nstream_name = \"stuck\"\nshards = 1\nseed = { records = 10 }",
        &f.url(),
    );
    let out = drain(dir.path(), &config, &["--time-limit", "2s", "--live", "lines", "--interval", "500ms"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("time limit reached before every shard caught up"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("caught up") && l.ends_with("NO")), "{table}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let progress: Vec<&str> = stderr.lines().filter(|l| l.contains("stuck (memory): 0/10 (0%)")).collect();
    assert!(progress.len() >= 2, "a progress line every 500 ms:\n{stderr}");
}

/// A queue: the drain notices the empty queue (1 s receives) and ends; every message was
/// deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_an_sqs_queue_on_moto() {
    let moto = MotoServer::start().await;
    let url = moto.create_queue("drain", &[]).await;
    let bodies: Vec<String> = (0..300).map(|i| format!("{{\"n\":{i}}}")).collect();
    moto.send_bodies(&url, &bodies, None).await;
    let f = FunctionServer::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let source = format!("type = \"sqs\"\nqueue_url = \"{url}\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"", moto.endpoint());
    let config = config(dir.path(), "name = \"jobs\"\nbatch_size = 10", &source, &f.url());
    let out = drain(dir.path(), &config, &["--json", "--live", "off", "--time-limit", "300s"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let m = &report(&out)["mappings"][0];
    assert_eq!(m["source"], "sqs");
    assert!(m["finished"].as_u64().unwrap() >= 300, "every message deleted: {m}");
    let (visible, in_flight) = moto.queue_counts(&url).await;
    assert_eq!((visible, in_flight), (0, 0));
}
