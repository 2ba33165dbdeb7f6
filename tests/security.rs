//! Security checks against the real `esmd` binary (issue 16).
//!
//! - **Secrets never appear in output.** Configs carry distinctive secret strings in every
//!   place a secret can sit: Kafka SASL passwords, the TLS key password and a librdkafka
//!   property, RabbitMQ passwords (a source's, a failure destination's, one written into a URI
//!   by mistake), HTTP function header values and the user info and query of a function URL.
//!   `esmd validate` (of good and of broken configs) and `esmd run` at `RUST_LOG=trace`, with
//!   librdkafka's own debug logs on (`debug = "all"`: its configuration dump included) and
//!   lapin's traces, are captured whole (stdout and stderr), and so are `/status` and
//!   `/metrics` while it runs; no secret may appear anywhere, as written or encoded (a list
//!   of byte values, as lapin printed the SASL response of its login, hex, Basic auth).
//! - **The admin endpoint beyond loopback is said out loud.** `[admin] listen` on a
//!   non-loopback address without `allow_remote = true` makes `run` log a warning naming the
//!   address and `admin.allow_remote`, and `validate` print it; loopback, or saying so, is
//!   quiet.
//!
//! Kafka runs nowhere here: the bootstrap servers are closed 127.0.0.1 ports, so librdkafka
//! logs its connection attempts. RabbitMQ is the machine's broker at 127.0.0.1:5672: a user of
//! this test's own (created and deleted with rabbitmqctl) logs in for real, so lapin's
//! handshake, credentials included, goes through its tracing; another mapping and a failure
//! destination are refused with wrong passwords. HTTP functions are the test's own on
//! 127.0.0.1.

// Without the Kafka or RabbitMQ connector only the admin-endpoint checks run.
#![cfg_attr(not(all(feature = "kafka", feature = "rabbitmq")), allow(dead_code))]

mod support;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::function::FunctionServer;

const SASL_PASSWORD: &str = "s3cr3t-SASL-PASS-9f2c";
const SASL_PLAIN_PASSWORD: &str = "s3cr3t-SASL-PLAIN-PASS-e61b";
const TLS_KEY_PASSWORD: &str = "s3cr3t-TLS-KEY-PASS-4b7d";
const KAFKA_PROPERTY: &str = "s3cr3t-KAFKA-PROP-51e0";
const RABBIT_PASSWORD: &str = "s3cr3t-RABBIT-PASS-2d8a";
const RABBIT_WRONG_PASSWORD: &str = "s3cr3t-RABBIT-WRONG-6c3f";
const RABBIT_DESTINATION_PASSWORD: &str = "s3cr3t-RABBIT-DEST-PASS-0e9b";
const RABBIT_URI_PASSWORD: &str = "s3cr3t-URI-PASS-77aa";
const HTTP_TOKEN: &str = "s3cr3t-HTTP-TOKEN-3a5e";
const HTTP_API_KEY: &str = "s3cr3t-HTTP-APIKEY-8d21";
const URL_QUERY: &str = "s3cr3t-URL-QUERY-c41f";
const URL_PASSWORD: &str = "s3cr3t-URL-USERINFO-19bd";
/// Written without quotes, so the config holds a number where a secret string belongs.
const NUMERIC_PASSWORD: &str = "7391824650";

const SECRETS: &[&str] = &[
    SASL_PASSWORD,
    SASL_PLAIN_PASSWORD,
    TLS_KEY_PASSWORD,
    KAFKA_PROPERTY,
    RABBIT_PASSWORD,
    RABBIT_WRONG_PASSWORD,
    RABBIT_DESTINATION_PASSWORD,
    RABBIT_URI_PASSWORD,
    HTTP_TOKEN,
    HTTP_API_KEY,
    URL_QUERY,
    URL_PASSWORD,
    NUMERIC_PASSWORD,
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `esmd` at the most verbose logging there is, without colours.
fn esmd() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_esmd"));
    command.env("RUST_LOG", "trace").env("NO_COLOR", "1").env("SASL_PASSWORD", SASL_PASSWORD).env_remove("RUST_LOG_STYLE");
    command
}

/// A 127.0.0.1 port nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Each secret as it could show in output: as written, as a Debug list of its bytes (how lapin
/// prints a SASL response: `LongString([0, 117, …])`), in hex, and the Basic authorization
/// reqwest makes of a URL's user info.
fn secret_forms() -> Vec<(String, String)> {
    use base64::Engine as _;
    let mut forms = Vec::new();
    for secret in SECRETS {
        forms.push((secret.to_string(), secret.to_string()));
        forms.push((secret.to_string(), secret.bytes().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")));
        forms.push((secret.to_string(), secret.bytes().map(|b| format!("{b:02x}")).collect()));
    }
    forms.push((URL_PASSWORD.to_string(), base64::engine::general_purpose::STANDARD.encode(format!("esmd:{URL_PASSWORD}"))));
    forms
}

/// Fails naming the secret and showing where it appeared (a little context either side).
fn assert_no_secret(what: &str, text: &str) {
    for (secret, form) in secret_forms() {
        if let Some(at) = text.find(&form) {
            let start = text[..at].char_indices().rev().nth(300).map_or(0, |(i, _)| i);
            let end = text[at..].char_indices().nth(300).map_or(text.len(), |(i, _)| at + i);
            panic!("{what}: the secret {secret:?} appears as {form:?} ({} times); around the first:\n…{}…", text.matches(&form).count(), &text[start..end]);
        }
    }
}

fn validate(config: &Path) -> (ExitStatus, String) {
    let out = esmd().args(["validate", "-c"]).arg(config).output().unwrap();
    (out.status, format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A running `esmd run`, its stdout and stderr collected as they come.
struct Esmd {
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Esmd {
    fn run(config: &Path) -> Self {
        let mut child = esmd().args(["run", "-c"]).arg(config).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("esmd starts");
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        let pipes: [Box<dyn Read + Send>; 2] = [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
        for mut pipe in pipes {
            let output = output.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 64 * 1024];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }));
        }
        Esmd { child, output, readers }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Where to reach the admin endpoint, from its "admin endpoint listening addr=…" line (an
    /// unspecified address is reached on 127.0.0.1).
    async fn admin_addr(&mut self) -> String {
        const MARK: &str = "admin endpoint listening addr=";
        let output = self.output.clone();
        let child = &mut self.child;
        support::wait::until("esmd to log its admin address", Duration::from_secs(60), || {
            let text = output.lock().unwrap().clone();
            let exited = child.try_wait().unwrap();
            async move {
                if let Some(at) = text.find(MARK) {
                    let addr: std::net::SocketAddr = text[at + MARK.len()..].split_whitespace().next().unwrap_or_default().parse().map_err(|e| format!("{e}"))?;
                    let ip = if addr.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { addr.ip() };
                    return Ok(std::net::SocketAddr::new(ip, addr.port()).to_string());
                }
                match exited {
                    Some(status) => Err(format!("esmd exited ({status}) before listening:\n{}", tail(&text))),
                    None => Err("not yet".into()),
                }
            }
        })
        .await
    }

    /// SIGTERM, then everything it wrote.
    fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "esmd did not exit within 60 s of SIGTERM:\n{}", tail(&self.output()));
            std::thread::sleep(Duration::from_millis(50));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        (status, self.output())
    }
}

impl Drop for Esmd {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tail(text: &str) -> &str {
    let start = text.char_indices().rev().nth(4000).map_or(0, |(i, _)| i);
    &text[start..]
}

async fn get(addr: &str, path: &str) -> String {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
    response.text().await.unwrap()
}

/// A RabbitMQ user with a password of its own, deleted again on drop.
#[cfg(all(feature = "kafka", feature = "rabbitmq"))]
struct RabbitUser(String);

#[cfg(all(feature = "kafka", feature = "rabbitmq"))]
impl RabbitUser {
    fn create(password: &str) -> Self {
        let name = support::rabbitmq::unique("security-user");
        let user = RabbitUser(name.clone());
        rabbitmqctl(&["add_user", &name, password]);
        rabbitmqctl(&["set_permissions", "-p", "/", &name, ".*", ".*", ".*"]);
        user
    }
}

#[cfg(all(feature = "kafka", feature = "rabbitmq"))]
impl Drop for RabbitUser {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").args(["delete_user", &self.0]).output();
    }
}

#[cfg(all(feature = "kafka", feature = "rabbitmq"))]
fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl").args(args).output().expect("rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl {}: {}{}", args[0], String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// Every kind of secret in one config, each on a path that is really taken: two Kafka mappings
/// (SCRAM with a kafka:// destination, PLAIN over TLS) against a closed port with librdkafka's
/// debug logs on, a RabbitMQ source that logs in, one that is refused, a function that answers
/// (headers, a key in the URL's query), one that is down (user info and a key in its URL) and
/// one that fails into a RabbitMQ destination that refuses its password.
#[cfg(all(feature = "kafka", feature = "rabbitmq"))]
fn everything_config(dir: &Path, function: &str, failing: &str, queue: &str, rabbit_user: &str) -> PathBuf {
    let kafka = closed_port();
    let down = closed_port();
    let path = dir.join("esmd.toml");
    let text = format!(
        r#"
shutdown_timeout_seconds = 5
[admin]
listen = "127.0.0.1:0"
[checkpoint]
path = "{state}"

[[mappings]]
name = "kafka-scram"
starting_position = "TRIM_HORIZON"
destination_config = {{ on_failure = {{ destination = "kafka://esmd-security-failures" }} }}
[mappings.source]
type = "kafka"
bootstrap_servers = ["127.0.0.1:{kafka}"]
topic = "orders"
sasl = {{ mechanism = "SCRAM-SHA-512", username = "esmd-scram-user", password = "${{SASL_PASSWORD}}" }}
properties = {{ debug = "all", "ssl.keystore.password" = "{KAFKA_PROPERTY}" }}
[mappings.function]
type = "http"
url = "{function}fn?code={URL_QUERY}"
headers = {{ Authorization = "Bearer {HTTP_TOKEN}" }}

[[mappings]]
name = "kafka-tls"
starting_position = "LATEST"
[mappings.source]
type = "kafka"
bootstrap_servers = ["127.0.0.1:{kafka}"]
topic = "orders"
sasl = {{ mechanism = "PLAIN", username = "esmd-plain-user", password = "{SASL_PLAIN_PASSWORD}" }}
tls = {{ enabled = true, key_password = "{TLS_KEY_PASSWORD}" }}
properties = {{ debug = "all" }}
[mappings.function]
type = "http"
url = "{function}"

[[mappings]]
name = "rabbit-in"
[mappings.source]
type = "rabbitmq"
uri = "amqp://127.0.0.1:5672"
queue = "{queue}"
username = "{rabbit_user}"
password = "{RABBIT_PASSWORD}"
[mappings.function]
type = "http"
url = "{function}fn?code={URL_QUERY}"
headers = {{ Authorization = "Bearer {HTTP_TOKEN}", "X-Api-Key" = "{HTTP_API_KEY}" }}

[[mappings]]
name = "rabbit-refused"
[mappings.source]
type = "rabbitmq"
uri = "amqp://127.0.0.1:5672"
queue = "{queue}"
username = "guest"
password = "{RABBIT_WRONG_PASSWORD}"
[mappings.function]
type = "http"
url = "{function}"

[[mappings]]
name = "function-up"
starting_position = "TRIM_HORIZON"
[mappings.source]
type = "memory"
stream_name = "up"
seed = {{ records = 5 }}
[mappings.function]
type = "http"
url = "{function}fn?code={URL_QUERY}"
headers = {{ Authorization = "Bearer {HTTP_TOKEN}", "X-Api-Key" = "{HTTP_API_KEY}" }}

[[mappings]]
name = "function-down"
starting_position = "TRIM_HORIZON"
[mappings.source]
type = "memory"
stream_name = "down"
seed = {{ records = 3 }}
[mappings.function]
type = "http"
url = "http://esmd:{URL_PASSWORD}@127.0.0.1:{down}/fn?code={URL_QUERY}"
headers = {{ Authorization = "Bearer {HTTP_TOKEN}" }}

[[mappings]]
name = "function-fails"
starting_position = "TRIM_HORIZON"
maximum_retry_attempts = 0
destination_config = {{ on_failure = {{ destination = "rabbitmq:///{queue}-failures", connection = {{ uri = "amqp://127.0.0.1:5672", username = "guest", password = "{RABBIT_DESTINATION_PASSWORD}" }} }} }}
[mappings.source]
type = "memory"
stream_name = "fails"
seed = {{ records = 3 }}
[mappings.function]
type = "http"
url = "{failing}fn?code={URL_QUERY}"
headers = {{ Authorization = "Bearer {HTTP_TOKEN}" }}
"#,
        state = dir.join("state").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `validate`, then `run` at trace for a few seconds while `/status` and `/metrics` are read:
/// no secret anywhere, and each secret was really used (the function saw its headers, the
/// RabbitMQ user logged in, librdkafka dumped its configuration).
#[cfg(all(feature = "kafka", feature = "rabbitmq"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_validate_run_logs_status_or_metrics() {
    let _broker = support::rabbitmq::BROKER.read().await;
    let broker = support::rabbitmq::Broker::open().await;
    let queue = support::rabbitmq::unique("security");
    broker.declare(&queue, support::rabbitmq::QueueArgs::default()).await;
    broker.declare(&format!("{queue}-failures"), support::rabbitmq::QueueArgs::default()).await;
    broker.publish_numbered(&queue, 3).await;
    let user = RabbitUser::create(RABBIT_PASSWORD);
    let function = FunctionServer::ok().await;
    let failing = FunctionServer::start(|_| support::function::Reply::error("boom")).await;
    let dir = tempfile::tempdir().unwrap();
    let config = everything_config(dir.path(), &function.url(), &failing.url(), &queue, &user.0);

    let (status, validated) = validate(&config);
    assert!(status.success(), "{validated}");
    assert!(validated.contains("ok (7 mappings)"), "{validated}");
    assert_no_secret("esmd validate", &validated);

    let mut esmd = Esmd::run(&config);
    let admin = esmd.admin_addr().await;
    let mut served = String::new();
    // Every path taken: both functions called (and one failing into the destination), the
    // refused logins seen, the function that is down retried.
    let start = Instant::now();
    loop {
        let status_text = get(&admin, "/status").await;
        served.push_str(&status_text);
        served.push_str(&get(&admin, "/metrics").await);
        let recorded = function.recorded();
        let output = esmd.output();
        let logged = |message: &str, mapping: &str| output.lines().any(|l| l.contains(message) && l.contains(&format!("mapping={mapping} ")));
        let progress = [
            ("a RabbitMQ event", recorded.iter().any(|r| r.json["eventSource"] == "aws:rmq")),
            ("a memory-stream event", recorded.iter().any(|r| r.json["Records"][0]["eventSourceARN"].as_str().is_some_and(|a| a.ends_with("stream/up")))),
            ("the failing function called", failing.request_count() > 0),
            ("a refused RabbitMQ login", status_text.contains("ACCESS_REFUSED")),
            ("the function that is down retried", logged("function not reachable; retrying", "function-down")),
            ("the RabbitMQ destination failing", logged("on-failure destination failed", "function-fails")),
        ];
        if progress.iter().all(|(_, done)| *done) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "still waiting for {:?}:\n{status_text}\n{}", progress.iter().filter(|(_, done)| !done).map(|(what, _)| what).collect::<Vec<_>>(), tail(&output));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A few seconds more of librdkafka reconnecting, lapin retrying, the destination failing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    served.push_str(&get(&admin, "/status").await);
    served.push_str(&get(&admin, "/metrics").await);
    let (_, output) = esmd.stop();

    // The checks looked at something: the secrets were in use and the logs were verbose.
    for r in function.recorded().iter().filter(|r| r.json["eventSource"] == "aws:rmq") {
        assert_eq!(r.header("authorization"), Some(format!("Bearer {HTTP_TOKEN}").as_str()));
        assert_eq!(r.header("x-api-key"), Some(HTTP_API_KEY));
        assert!(r.path.ends_with(&format!("?code={URL_QUERY}")), "{}", r.path);
    }
    assert!(output.contains("Client configuration"), "librdkafka's configuration dump (debug = all) is logged:\n{}", tail(&output));
    assert!(output.contains("sasl.password = [redacted]"), "the dump lists the SASL settings:\n{}", tail(&output));
    assert!(output.contains("TRACE io_loop: lapin::io_loop:"), "lapin's traces are logged");
    assert!(served.contains("esmd_invocations_total"), "{served}");

    assert_no_secret("esmd run at RUST_LOG=trace (stdout and stderr)", &output);
    assert_no_secret("/status and /metrics", &served);

    broker.delete(&queue).await;
    broker.delete(&format!("{queue}-failures")).await;
}

/// Broken configs, each problem next to a secret: the messages name the key and never repeat
/// the value (a URI with credentials in it, a URL with user info and a key, a number where a
/// password string belongs, secrets under keys esmd refuses).
#[cfg(all(feature = "kafka", feature = "rabbitmq"))]
#[test]
fn validate_errors_never_repeat_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[mappings]]
name = "rabbit-uri"
[mappings.source]
type = "rabbitmq"
uri = "amqp://guest:{RABBIT_URI_PASSWORD}@127.0.0.1:5672"
queue = "jobs"
password = "{RABBIT_PASSWORD}"
[mappings.function]
type = "http"
url = "ftp://esmd:{URL_PASSWORD}@127.0.0.1/fn?code={URL_QUERY}"
headers = {{ "Bad Header" = "Bearer {HTTP_TOKEN}", Ok = "{HTTP_API_KEY}\u0001" }}

[[mappings]]
name = "kafka-bad"
starting_position = "TRIM_HORIZON"
[mappings.source]
type = "kafka"
bootstrap_servers = ["127.0.0.1:9092"]
topic = "orders"
sasl = {{ mechanism = "SCRAM-SHA-512", username = "u", password = {NUMERIC_PASSWORD} }}
properties = {{ "sasl.password" = "{KAFKA_PROPERTY}" }}
tls = {{ key_password = "{TLS_KEY_PASSWORD}", cert_file = "/c.pem" }}
[mappings.function]
type = "http"
url = "http://127.0.0.1:9/"

[[mappings]]
name = "destination-uri"
starting_position = "TRIM_HORIZON"
maximum_retry_attempts = 0
destination_config = {{ on_failure = {{ destination = "rabbitmq:///dlq", connection = {{ uri = "amqp://guest:{RABBIT_DESTINATION_PASSWORD}@127.0.0.1:5672", username = "guest", password = "{RABBIT_PASSWORD}" }} }} }}
[mappings.source]
type = "memory"
stream_name = "s"
[mappings.function]
type = "http"
url = "http://127.0.0.1:9/"
headers = {{ Authorization = {NUMERIC_PASSWORD} }}
"#
        ),
    )
    .unwrap();
    let (status, output) = validate(&config);
    assert!(!status.success(), "{output}");
    // Each problem is reported, by key.
    for key in [
        "mapping \"rabbit-uri\": source.uri",
        "source.username is missing",
        "function.url is not an http(s) URL",
        "function.headers: \"Bad Header\" is not a valid HTTP header name",
        "function.headers.Ok: the value is not a valid HTTP header value",
        "mapping \"kafka-bad\": source.sasl.password",
        "mapping \"destination-uri\": destination_config.on_failure.connection.uri",
        "mapping \"destination-uri\": function.headers.Authorization",
    ] {
        assert!(output.contains(key), "{key:?} missing in:\n{output}");
    }
    assert_no_secret("esmd validate of a broken config", &output);
}

/// A librdkafka property esmd passes through but librdkafka does not know: `run` stops at
/// start naming the key, not the value (rdkafka's error carries both).
#[cfg(feature = "kafka")]
#[test]
fn a_refused_kafka_property_is_named_without_its_value() {
    let dir = tempfile::tempdir().unwrap();
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
name = "typo"
starting_position = "TRIM_HORIZON"
source = {{ type = "kafka", bootstrap_servers = ["127.0.0.1:{}"], topic = "t", properties = {{ "ssl.keystore.passwrd" = "{KAFKA_PROPERTY}" }} }}
function = {{ type = "http", url = "http://127.0.0.1:9/" }}
"#,
            dir.path().join("state").display(),
            closed_port()
        ),
    )
    .unwrap();
    let out = esmd().args(["run", "-c"]).arg(&config).output().unwrap();
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{output}");
    assert!(output.contains("ssl.keystore.passwrd"), "the error names the property:\n{output}");
    assert_no_secret("esmd run with a property librdkafka refuses", &output);

    // `esmd seed` opens a producer with the same properties.
    let out = esmd().args(["seed", "-c"]).arg(&config).args(["--count", "1"]).output().unwrap();
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{output}");
    assert!(output.contains("ssl.keystore.passwrd"), "the error names the property:\n{output}");
    assert_no_secret("esmd seed with a property librdkafka refuses", &output);
}

// The admin endpoint beyond loopback.

fn admin_config(dir: &Path, name: &str, admin: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[admin]\n{admin}\n[checkpoint]\npath = \"{}\"\n[[mappings]]\nname = \"idle\"\nstarting_position = \"TRIM_HORIZON\"\nsource = {{ type = \"memory\", stream_name = \"idle\" }}\nfunction = {{ type = \"http\", url = \"http://127.0.0.1:9/\" }}\n",
            dir.join(format!("{name}-state")).display()
        ),
    )
    .unwrap();
    path
}

/// (name, `[admin]` body, warns).
const ADMIN_CASES: &[(&str, &str, bool)] = &[
    ("all-interfaces", "listen = \"0.0.0.0:0\"", true),
    ("all-interfaces-allowed", "listen = \"0.0.0.0:0\"\nallow_remote = true", false),
    ("loopback", "listen = \"127.0.0.1:0\"", false),
    ("ipv6-loopback", "listen = \"[::1]:0\"", false),
];

fn warns(text: &str) -> bool {
    text.contains("admin.allow_remote")
}

#[test]
fn validate_warns_about_an_admin_endpoint_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    for (name, admin, expected) in ADMIN_CASES {
        let (status, output) = validate(&admin_config(dir.path(), name, admin));
        assert!(status.success(), "{name}: a warning is not an error: {output}");
        assert_eq!(warns(&output), *expected, "{name}:\n{output}");
        if *expected {
            assert!(output.contains("warning: ") && output.contains("admin.listen = 0.0.0.0:0 is not a loopback address"), "{name}:\n{output}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_warns_about_an_admin_endpoint_beyond_loopback_and_still_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = Vec::new();
    for (name, admin, expected) in ADMIN_CASES {
        running.push((name, *expected, Esmd::run(&admin_config(dir.path(), name, admin))));
    }
    for (name, _, esmd) in &mut running {
        // Started anyway: the endpoint answers.
        let admin = esmd.admin_addr().await;
        assert_eq!(get(&admin, "/healthz").await, "ok", "{name}");
    }
    for (name, expected, esmd) in running {
        let (status, output) = esmd.stop();
        assert!(status.success(), "{name}: {status}\n{}", tail(&output));
        assert_eq!(warns(&output), expected, "{name}:\n{}", tail(&output));
        if expected {
            let line = output.lines().find(|l| warns(l)).unwrap();
            assert!(line.contains("WARN") && line.contains("admin.listen = 0.0.0.0:0 is not a loopback address"), "{line}");
        }
    }
}

/// The shipped configs that listen on every interface (compose inside its container, the
/// Kubernetes manifests) say that they mean it, so they start without the warning.
#[test]
fn shipped_configs_beyond_loopback_allow_it() {
    use esmd::config::{Config, Format};
    let env: HashMap<&str, &str> = [("ESMD_ADMIN_LISTEN", "0.0.0.0:9464"), ("RABBITMQ_PASSWORD", "x"), ("KAFKA_PASSWORD", "x"), ("POD_NAME", "esmd-0"), ("FUNCTION_TOKEN", "x")].into();
    let lookup = |name: &str| env.get(name).map(|v| v.to_string());
    let mut configs = vec![("config/compose/esmd.toml".to_string(), std::fs::read_to_string(root().join("config/compose/esmd.toml")).unwrap())];
    for entry in std::fs::read_dir(root().join("deploy/kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let doc: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            if let Some(toml) = doc["data"]["esmd.toml"].as_str() {
                configs.push((path.display().to_string(), toml.to_string()));
            }
        }
    }
    assert!(configs.len() >= 3, "{configs:?}");
    for (path, text) in configs {
        let cfg = Config::from_str_with_env(&text, Format::Toml, &lookup).unwrap_or_else(|e| panic!("{path}:\n{e}"));
        assert!(!cfg.admin.is_loopback(), "{path}: listens beyond loopback ({})", cfg.admin.listen);
        assert!(cfg.warnings().is_empty(), "{path}: {:?}", cfg.warnings());
    }
}
