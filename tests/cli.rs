//! The `esmd` binary: validate, filter-test, run with graceful shutdown, and the repository's
//! example configs (docker-compose.yml: tests/config_compose.rs).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::function::FunctionServer;

fn esmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_esmd"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_example_config_validates() {
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("config")).unwrap() {
        let path = entry.unwrap().path();
        if !matches!(path.extension().and_then(|e| e.to_str()), Some("toml" | "json")) {
            continue;
        }
        // config/kafka.toml and config/rabbitmq.toml read their passwords from the environment,
        // with no default.
        let out = esmd()
            .args(["validate", "-c"])
            .arg(&path)
            .env("KAFKA_PASSWORD", "not-a-real-secret")
            .env("RABBITMQ_PASSWORD", "not-a-real-secret")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}{}", path.display(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} example configs found");
}

#[test]
fn invalid_config_fails_naming_mapping_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[[mappings]]
name = "orders"
source = { type = "memory", stream_name = "s" }
function = { type = "http", url = "http://127.0.0.1:1/" }
starting_position = "LATEST"
batch_size = 20000
parallelization_factor = 0
"#,
    )
    .unwrap();
    let out = esmd().args(["validate", "-c"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mapping \"orders\": batch_size = 20000 is out of range (1–10000)"), "{err}");
    assert!(err.contains("mapping \"orders\": parallelization_factor = 0 is out of range (1–10)"), "{err}");
}

#[test]
fn filter_test_prints_the_verdict_last() {
    let last = |args: &[&str]| {
        let out = esmd().arg("filter-test").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_string()
    };
    assert_eq!(last(&["--pattern", r#"{"a":[1]}"#, "--event", r#"{"a":1}"#]), "match");
    assert_eq!(last(&["--pattern", r#"{"a":[2]}"#, "--event", r#"{"a":1}"#]), "nomatch");
    assert_eq!(last(&["--pattern", r#"{"a":1}"#, "--event", r#"{"a":1}"#]), "invalid");
    let vector = root().join("tests/fixtures/filter-patterns/content_prefix.json5");
    assert_eq!(last(&["--file", vector.to_str().unwrap()]), "match");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_delivers_and_exits_cleanly_on_sigterm() {
    let f = FunctionServer::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("esmd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[admin]
listen = "127.0.0.1:0"
[checkpoint]
path = "{}"
[[mappings]]
name = "seeded"
source = {{ type = "memory", stream_name = "s", shards = 2, seed = {{ records = 500 }} }}
function = {{ type = "http", url = "{}" }}
starting_position = "TRIM_HORIZON"
"#,
            state.display(),
            f.url()
        ),
    )
    .unwrap();
    let mut child = esmd().args(["run", "-c"]).arg(&config).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    let delivered = || f.requests().iter().map(|e| e["Records"].as_array().map_or(0, Vec::len)).sum::<usize>();
    while delivered() < 500 {
        assert!(start.elapsed() < Duration::from_secs(30), "only {} records delivered", delivered());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGTERM: stop polling, finish in-flight batches, write checkpoints, exit 0.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "esmd did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(Path::new(&state).join("checkpoints.redb").exists());
}
