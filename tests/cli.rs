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
    support::wait::eventually("500 records delivered", Duration::from_secs(30), || {
        let delivered = f.requests().iter().map(|e| e["Records"].as_array().map_or(0, Vec::len)).sum::<usize>();
        if delivered >= 500 { Ok(()) } else { Err(format!("only {delivered} records delivered")) }
    })
    .await;
    // SIGTERM: stop polling, finish in-flight batches, write checkpoints, exit 0.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    // 60 s from the start, as before: what the wait for the records took counts.
    let status = support::wait::eventually("esmd to exit after SIGTERM", Duration::from_secs(60).saturating_sub(start.elapsed()), || {
        child.try_wait().unwrap().ok_or_else(|| "esmd did not exit after SIGTERM".to_string())
    })
    .await;
    assert!(status.success(), "exit status {status:?}");
    assert!(Path::new(&state).join("checkpoints.redb").exists());
    // Logs into a pipe are plain text: colour codes are for terminals.
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    assert!(logs.contains("INFO"), "{logs}");
    assert!(!logs.contains('\x1b'), "ANSI escapes in piped logs: {logs:?}");
}

/// `esmd seed -c FILE ...`: writes the config and runs the command with dummy AWS credentials
/// and none of the machine's AWS configuration.
fn seed_command(dir: &Path, toml: &str, args: &[&str]) -> std::process::Output {
    let config = dir.join("seed.toml");
    std::fs::write(&config, toml).unwrap();
    esmd()
        .args(["seed", "-c"])
        .arg(&config)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .unwrap()
}

const MEMORY_MAPPING: &str = r#"
[[mappings]]
name = "NAME"
source = { type = "memory", stream_name = "s" }
function = { type = "http", url = "http://127.0.0.1:9/" }
starting_position = "TRIM_HORIZON"
"#;

#[test]
fn seed_refuses_memory_sources_pointing_to_their_seed_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = seed_command(dir.path(), &MEMORY_MAPPING.replace("NAME", "mem"), &["--count", "10"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mapping \"mem\"") && stderr.contains("inside the esmd process") && stderr.contains("seed = {"), "{stderr}");
}

#[test]
fn seed_needs_mapping_when_the_file_has_several() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("{}{}", MEMORY_MAPPING.replace("NAME", "orders"), MEMORY_MAPPING.replace("NAME", "payments"));
    let out = seed_command(dir.path(), &toml, &["--count", "10"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--mapping") && stderr.contains("orders, payments"), "{stderr}");
    let out = seed_command(dir.path(), &toml, &["--count", "10", "--mapping", "refunds"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("\"refunds\"") && stderr.contains("orders, payments"), "{stderr}");
    // Options are checked before anything is built.
    let out = seed_command(dir.path(), &toml, &["--count", "10", "--mapping", "orders", "--poison-fraction", "2"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--poison-fraction 2 is outside 0.0–1.0"));
}

/// One real run through the binary: SQS on moto, the endpoint from the config file, the
/// summary printed as text and as JSON, and the messages in the queue.
#[cfg(feature = "sqs")]
#[tokio::test]
async fn seed_fills_an_sqs_queue_and_prints_the_summary() {
    let moto = support::moto::MotoServer::start().await;
    let url = moto.create_queue("cli-seed", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[mappings]]\nname = \"drain\"\nsource = {{ type = \"sqs\", queue_url = \"{url}\", endpoint_url = \"{}\" }}\nfunction = {{ type = \"http\", url = \"http://127.0.0.1:9/\" }}\n",
        moto.endpoint()
    );
    let args = ["--count", "40", "--record-bytes", "200", "--keys", "4", "--poison-fraction", "0.25"];
    let out = seed_command(dir.path(), &toml, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for line in ["mapping: drain", "source: sqs", &format!("target: {url}"), "records: 40", "bytes: 8000", "poison: 10", "keys: 4"] {
        assert!(stdout.lines().any(|l| l == line), "no line {line:?} in:\n{stdout}");
    }
    assert!(stdout.contains("elapsed_seconds: ") && stdout.contains("records_per_second: "), "{stdout}");

    let out = seed_command(dir.path(), &toml, &[&args[..], &["--json", "--rate", "200"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((summary["records"].as_u64(), summary["poison"].as_u64(), summary["source"].as_str()), (Some(40), Some(10), Some("sqs")));
    // 40 records at 200/s: the last chunk (of 20) leaves at 0.1 s.
    assert!(summary["elapsed_seconds"].as_f64().unwrap() >= 0.1, "{summary}");

    let bodies = moto.drain_bodies(&url).await;
    assert_eq!(bodies.len(), 80);
    assert!(bodies.iter().all(|b| b.len() == 200));
}
