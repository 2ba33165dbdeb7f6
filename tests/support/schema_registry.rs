//! Schema registries and producers that write with their real serializers.
//!
//! - [`ConfluentRegistry`]: `tests/support/schema_registry/confluent_registry.py`, a Confluent
//!   REST v1 registry written for these tests. No Confluent-API registry server installs from
//!   the registries this project reaches (Confluent's own and Apicurio are Maven/Docker only,
//!   karapace is not on PyPI), so this stands in for one; confluent-kafka's serializers
//!   register and look up their schemas through it, so its REST answers are the ones they accept.
//! - Glue's Schema Registry API is moto's (`support::moto`).
//! - [`produce`] and [`produce_glue`] run `produce.py` / `produce_glue.py`: confluent-kafka's
//!   AvroSerializer, ProtobufSerializer and JSONSerializer, and the aws-glue-schema-registry
//!   serializer, writing to tansu. Every field is a function of the record's index.
//!
//! `scripts/schema-registry-deps.sh` installs the venv; without it these fail, never skip.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("ESMD_SCHEMA_REGISTRY_PYTHON") {
        return PathBuf::from(p);
    }
    let p = root().join("target/test-tools/schema-registry-venv/bin/python");
    assert!(p.is_file(), "{} not found: run `bash scripts/schema-registry-deps.sh` (the README's test command does)", p.display());
    p
}

fn script(name: &str) -> String {
    root().join("tests/support/schema_registry").join(name).display().to_string()
}

pub struct ConfluentRegistry {
    child: Child,
    pub url: String,
    pub pid: u32,
}

impl ConfluentRegistry {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With the registry's own flags: `--basic-auth USER:PASSWORD`, `--tls-cert`, `--tls-key`,
    /// `--client-ca` (mutual TLS).
    pub fn start_with(args: &[&str]) -> Self {
        let mut child = Command::new(python())
            .args([script("confluent_registry.py"), "--host".into(), "127.0.0.1".into(), "--port".into(), "0".into()])
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start confluent_registry.py");
        // Its first line is printed once the socket listens.
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("registry's first line");
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("registry said {line:?}: {e}"));
        let url = ready["url"].as_str().expect("url").to_string();
        let pid = child.id();
        ConfluentRegistry { child, url, pid }
    }

    /// Requests for schemas by id (what a consumer asks) get no answer until [`Self::release`],
    /// as from a registry that hangs, while a producer can still register its schemas. Set it
    /// before producing what must wait: a SIGSTOP after producing races the consumer's lookup.
    pub async fn hang_lookups(&self) {
        self.control("hang", serde_json::json!({"paths": "/schemas/ids/"})).await;
    }

    /// Ends the hang: the held requests are answered.
    pub async fn release(&self) {
        self.control("release", serde_json::json!({})).await;
    }

    /// Test controls are plain HTTP: the TLS registries never use them.
    async fn control(&self, what: &str, body: Value) {
        let resp = reqwest::Client::new().post(format!("{}/_control/{what}", self.url)).json(&body).send().await.unwrap_or_else(|e| panic!("registry control {what}: {e}"));
        assert!(resp.status().is_success(), "registry control {what}: {}", resp.status());
    }

    /// How often each route was asked (`GET /schemas/ids/{id}`: n).
    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/_stats", self.url)).await.expect("stats").json().await.expect("stats JSON")
    }
}

impl Drop for ConfluentRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `produce.py` with `args` (after `--bootstrap --registry --topic`) and returns what it
/// printed: the schema ids and every record written with its expected decoded value.
pub fn produce(bootstrap: &str, registry: &str, topic: &str, args: &[&str]) -> Value {
    run(&script("produce.py"), &["--bootstrap", bootstrap, "--registry", registry, "--topic", topic], args)
}

/// `produce_glue.py` against moto's Glue API at `endpoint`.
pub fn produce_glue(bootstrap: &str, endpoint: &str, registry_name: &str, topic: &str, args: &[&str]) -> Value {
    run(&script("produce_glue.py"), &["--bootstrap", bootstrap, "--glue-endpoint", endpoint, "--registry-name", registry_name, "--topic", topic], args)
}

fn run(script: &str, base: &[&str], args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(script)
        .args(base)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(out.status.success(), "{script} {args:?} failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}
