//! A moto server (AWS emulator) on a free 127.0.0.1 port, one per test, killed on drop.
//!
//! moto comes from `scripts/test-deps.sh` (a venv in `target/test-tools/venv`), started through
//! `tests/support/moto_server.py`, or is `$ESMD_MOTO_SERVER`. A missing moto fails the test: a
//! skipped AWS test looks like a passing one.
//!
//! moto accepts any credentials and does not check signatures; [`MotoServer::sdk_config`] uses
//! dummy ones, region us-east-1 and the server's URL, so nothing can reach the real cloud.

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use serde_json::{json, Value};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
/// The account moto puts every resource in.
pub const ACCOUNT: &str = "123456789012";

const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct MotoServer {
    child: Child,
    port: u16,
    log: PathBuf,
    http: reqwest::Client,
}

/// The command that starts moto, given moto_server's flags: `$ESMD_MOTO_SERVER` when set, else
/// the venv's Python running `tests/support/moto_server.py` (moto with speed fixes for large SQS
/// queues, see that file).
pub fn moto_command() -> (PathBuf, Vec<String>) {
    if let Some(path) = std::env::var_os("ESMD_MOTO_SERVER") {
        return (PathBuf::from(path), Vec::new());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let launcher = root.join("tests/support/moto_server.py").display().to_string();
    (root.join("target/test-tools/venv/bin/python"), vec![launcher])
}

impl MotoServer {
    /// Starts moto and waits until it answers HTTP.
    pub async fn start() -> Self {
        let (binary, launcher) = moto_command();
        assert!(
            binary.is_file(),
            "moto's Python not found at {}: run `bash scripts/test-deps.sh` first (or set ESMD_MOTO_SERVER)",
            binary.display()
        );
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        // The free port is found by binding and releasing it, so another process can take it in
        // between; moto then exits and we try another.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("moto-{port}.log"));
            let log_file = File::create(&log).unwrap();
            let child = Command::new(&binary)
                .args(&launcher)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("PYTHONUNBUFFERED", "1")
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}; run `bash scripts/test-deps.sh`", binary.display()));
            let mut server = Self { child, port, log, http: http.clone() };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(e) => failures.push(e), // dropping `server` kills it
            }
        }
        panic!("moto_server did not start:\n{}", failures.join("\n---\n"));
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("moto_server exited with {status}:\n{}", self.log_tail()));
            }
            if self.http.get(self.url("/moto-api/data.json")).send().await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("moto_server not answering after {START_TIMEOUT:?}:\n{}", self.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `http://127.0.0.1:<port>` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The endpoint to give SDK clients and invokers.
    pub fn endpoint(&self) -> String {
        self.url("")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Dummy credentials, us-east-1, this server as the endpoint.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_for(&self.endpoint())
    }

    pub fn lambda_client(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.sdk_config())
    }

    pub fn sqs_client(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config())
    }

    pub fn sns_client(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.sdk_config())
    }

    /// Path-style: there are no `<bucket>.127.0.0.1` names.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&self.sdk_config()).force_path_style(true).build())
    }

    /// Creates a queue (FIFO when the name ends in `.fifo`) with these attributes
    /// (`VisibilityTimeout`, `RedrivePolicy`, ...); returns its URL.
    pub async fn create_queue(&self, name: &str, attributes: &[(&str, &str)]) -> String {
        use aws_sdk_sqs::types::QueueAttributeName;
        let mut request = self.sqs_client().create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        for (k, v) in attributes {
            request = request.attributes(QueueAttributeName::from(*k), *v);
        }
        request.send().await.unwrap().queue_url().unwrap().to_owned()
    }

    /// `arn:aws:sqs:us-east-1:123456789012:<name>`.
    pub fn queue_arn(name: &str) -> String {
        format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
    }

    /// Sends the bodies in batches of ten; FIFO queues get `group` and a deduplication id per
    /// message. Returns the message ids in send order.
    pub async fn send_bodies(&self, url: &str, bodies: &[String], group: Option<&str>) -> Vec<String> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        let client = self.sqs_client();
        let mut ids = Vec::with_capacity(bodies.len());
        for (c, chunk) in bodies.chunks(10).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    let mut e = SendMessageBatchRequestEntry::builder().id(format!("e{i}")).message_body(body);
                    if let Some(g) = group {
                        e = e.message_group_id(g).message_deduplication_id(format!("d-{}-{}", c * 10 + i, uuid::Uuid::new_v4()));
                    }
                    e.build().unwrap()
                })
                .collect();
            let out = client.send_message_batch().queue_url(url).set_entries(Some(entries)).send().await.unwrap();
            assert!(out.failed().is_empty(), "{:?}", out.failed());
            let mut ok: Vec<_> = out.successful().to_vec();
            ok.sort_by_key(|e| e.id()[1..].parse::<usize>().unwrap());
            ids.extend(ok.iter().map(|e| e.message_id().to_owned()));
        }
        ids
    }

    /// (visible, in flight) messages of a queue.
    pub async fn queue_counts(&self, url: &str) -> (u64, u64) {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .sqs_client()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let get = |a: A| out.attributes().and_then(|m| m.get(&a)).and_then(|v| v.parse().ok()).unwrap_or(0);
        (get(A::ApproximateNumberOfMessages), get(A::ApproximateNumberOfMessagesNotVisible))
    }

    /// Receives (and deletes) every message currently visible in a queue; returns the bodies.
    pub async fn drain_bodies(&self, url: &str) -> Vec<String> {
        let client = self.sqs_client();
        let mut bodies = Vec::new();
        loop {
            let out = client.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
            if out.messages().is_empty() {
                return bodies;
            }
            for m in out.messages() {
                bodies.push(m.body().unwrap_or_default().to_owned());
                client.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
            }
        }
    }

    /// POSTs JSON to a moto API path; panics unless moto answers 2xx.
    pub async fn post_json(&self, path: &str, body: &Value) -> String {
        let response = self.http.post(self.url(path)).json(body).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "moto {path} answered {status}: {text}");
        text
    }

    /// Lambda without Docker: invoke echoes the event, or returns the canned results queued with
    /// [`queue_lambda_results`](Self::queue_lambda_results).
    pub async fn lambda_without_docker(&self) {
        self.post_json("/moto-api/config", &json!({ "lambda": { "use_docker": false } })).await;
    }

    /// The next invokes (of any function in us-east-1) return these bodies, in order.
    pub async fn queue_lambda_results(&self, results: &[&str]) {
        self.post_json("/moto-api/static/lambda-simple/response", &json!({ "results": results, "region": REGION }))
            .await;
    }

    /// Forgets every resource.
    pub async fn reset(&self) {
        self.post_json("/moto-api/reset", &json!({})).await;
    }

    /// An IAM role Lambda may assume; returns its ARN. Sent as a raw IAM query request: moto
    /// routes it by the credential scope and checks no signature, and this spares the tests an
    /// IAM SDK.
    pub async fn create_role(&self, name: &str) -> String {
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Principal": { "Service": "lambda.amazonaws.com" }, "Action": "sts:AssumeRole" }]
        });
        let mut form = reqwest::Url::parse("http://form.invalid/").unwrap();
        form.query_pairs_mut()
            .append_pair("Action", "CreateRole")
            .append_pair("Version", "2010-05-08")
            .append_pair("RoleName", name)
            .append_pair("AssumeRolePolicyDocument", &policy.to_string());
        let response = self
            .http
            .post(self.url("/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(form.query().unwrap().to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "IAM CreateRole answered {status}: {text}");
        let arn = text.split("<Arn>").nth(1).and_then(|rest| rest.split("</Arn>").next());
        arn.unwrap_or_else(|| panic!("no role ARN in {text}")).to_owned()
    }

    /// A python3.12 function (any code: moto without Docker never runs it); returns its ARN.
    pub async fn create_function(&self, name: &str) -> String {
        let role = self.create_role(&format!("{name}-role")).await;
        let code = b"def handler(event, context):\n    return event\n";
        let created = self
            .lambda_client()
            .create_function()
            .function_name(name)
            .runtime(Runtime::Python312)
            .role(role)
            .handler("index.handler")
            .code(FunctionCode::builder().zip_file(Blob::new(zip_one_file("index.py", code))).build())
            .send()
            .await
            .unwrap();
        created.function_arn().unwrap().to_owned()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // moto's log is only worth keeping when the test failed.
        if std::thread::panicking() {
            eprintln!("moto_server log: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Dummy credentials, us-east-1, `endpoint` (moto, or a [`FunctionServer`] playing Lambda):
/// never the real cloud.
///
/// [`FunctionServer`]: super::function::FunctionServer
pub fn sdk_config_for(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "esmd-tests",
        )))
        .endpoint_url(endpoint)
        .build()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A zip archive (stored, not compressed) holding one file: enough for CreateFunction, without a
/// zip crate.
pub fn zip_one_file(name: &str, data: &[u8]) -> Vec<u8> {
    let crc = crc32(data);
    let size = u32::try_from(data.len()).unwrap();
    let name_len = u16::try_from(name.len()).unwrap();
    let dos_date: u16 = (1 << 5) | 1; // 1980-01-01
    let mut zip = Vec::new();
    // Local file header.
    zip.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    for v in [20u16, 0, 0, 0, dos_date] {
        zip.extend_from_slice(&v.to_le_bytes());
    }
    for v in [crc, size, size] {
        zip.extend_from_slice(&v.to_le_bytes());
    }
    zip.extend_from_slice(&name_len.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip.extend_from_slice(name.as_bytes());
    zip.extend_from_slice(data);
    // Central directory.
    let central_start = u32::try_from(zip.len()).unwrap();
    zip.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    for v in [20u16, 20, 0, 0, 0, dos_date] {
        zip.extend_from_slice(&v.to_le_bytes());
    }
    for v in [crc, size, size] {
        zip.extend_from_slice(&v.to_le_bytes());
    }
    for v in [name_len, 0, 0, 0, 0] {
        zip.extend_from_slice(&v.to_le_bytes());
    }
    zip.extend_from_slice(&0u32.to_le_bytes()); // external attributes
    zip.extend_from_slice(&0u32.to_le_bytes()); // offset of the local header
    zip.extend_from_slice(name.as_bytes());
    let central_size = u32::try_from(zip.len()).unwrap() - central_start;
    // End of central directory.
    zip.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, 1, 1] {
        zip.extend_from_slice(&v.to_le_bytes());
    }
    zip.extend_from_slice(&central_size.to_le_bytes());
    zip.extend_from_slice(&central_start.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// `esmd run -c <config>` against moto: dummy credentials, and nothing of the machine's AWS
/// configuration (profiles, credential files, instance metadata) can leak in. Killed when
/// dropped, even when an assertion fails first.
pub struct EsmdProcess(pub Child);

/// The `esmd` binary with dummy AWS credentials and none of the machine's AWS configuration
/// (profiles, credential files, instance metadata). `dir` holds the (absent) AWS config and
/// credential files the process is pointed at.
pub fn esmd_command(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_esmd"));
    command
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE");
    command
}

impl EsmdProcess {
    /// `dir` holds the (absent) AWS config and credential files the process is pointed at.
    pub fn run(config: &std::path::Path, dir: &std::path::Path) -> Self {
        let child = esmd_command(dir)
            .args(["run", "-c"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("esmd starts");
        EsmdProcess(child)
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for EsmdProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
