//! The function under test, as a process of its own: it outlives every esmd it serves, and what
//! it has acknowledged is on disk before esmd hears the answer.
//!
//! The faults binary runs itself as `faults --function --listen <addr> --log <file> --mode <m>`.
//! Each request's records (the payload `{"id", "k", "n"}` of every record, whatever the source)
//! are appended to the log, one JSON line each with the instance that sent it, and the file is
//! fsynced before the 200 goes out. `--mode 500` answers every request with 500 and logs
//! nothing. The harness side, [`Function`], starts, stops and switches the process.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One record as the function saw it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: u64,
    pub key: String,
    pub n: u64,
    /// The esmd process that sent it (`X-Esmd-Instance`).
    pub instance: String,
}

/// The payloads inside an event of any source esmd maps, in the event's order.
pub fn payloads(event: &Value) -> Vec<Value> {
    let b64 = |v: &Value| -> Value {
        let bytes = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    let json = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
    if event["eventSource"] == "aws:rmq" {
        return super::support::rabbitmq::rmq_messages(event).iter().map(|(_, data, _)| json(data)).collect();
    }
    if event["records"].is_object() {
        return super::support::kafka::kafka_records(event).iter().map(|(_, _, _, value)| json(value)).collect();
    }
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    records
        .iter()
        .map(|r| match r["eventSource"].as_str().unwrap_or_default() {
            "aws:kinesis" => b64(&r["kinesis"]["data"]),
            "aws:sqs" => serde_json::from_str(r["body"].as_str().unwrap_or_default()).unwrap_or(Value::Null),
            "aws:dynamodb" => {
                let image = &r["dynamodb"]["NewImage"];
                let num = |a: &str| image[a]["N"].as_str().and_then(|s| s.parse::<u64>().ok());
                json!({"id": num("id"), "k": image["k"]["S"], "n": num("n")})
            }
            _ => Value::Null,
        })
        .collect()
}

struct Server {
    log: Mutex<File>,
    fail: bool,
    requests: std::sync::atomic::AtomicU64,
}

async fn serve(State(server): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    if server.fail {
        return (StatusCode::INTERNAL_SERVER_ERROR, r#"{"errorMessage":"the fault suite's function is failing on purpose"}"#.into());
    }
    let event: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not JSON: {e}")),
    };
    let instance = headers.get("x-esmd-instance").and_then(|v| v.to_str().ok()).unwrap_or("?").to_string();
    let batch = server.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut text = String::new();
    for p in payloads(&event) {
        // `b`: which request of this function process, to tell batches apart in a kept log.
        let line = json!({"id": p["id"], "k": p["k"], "n": p["n"], "i": instance, "b": format!("{}-{batch}", std::process::id())});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    let written = tokio::task::block_in_place(|| -> std::io::Result<()> {
        let mut file = server.log.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(text.as_bytes())?;
        // What the function acknowledged survives the function.
        file.sync_data()
    });
    match written {
        Ok(()) => (StatusCode::OK, String::new()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("log: {e}")),
    }
}

/// The child's main: serves until killed.
pub fn run_child(args: &[String]) -> ! {
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let (Some(listen), Some(log)) = (arg("--listen"), arg("--log")) else {
        eprintln!("faults --function needs --listen and --log");
        std::process::exit(2);
    };
    let fail = arg("--mode").as_deref() == Some("500");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async move {
        let file = OpenOptions::new().create(true).append(true).open(&log).expect("function log");
        let server = Arc::new(Server { log: Mutex::new(file), fail, requests: Default::default() });
        let app = Router::new().fallback(serve).layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024)).with_state(server);
        let addr: SocketAddr = listen.parse().expect("--listen address");
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the function's port");
        axum::serve(listener, app).await.expect("serve");
    });
    std::process::exit(0)
}

/// The function process, seen from the harness.
pub struct Function {
    pub addr: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
    /// Bytes of the log already parsed.
    read: u64,
    pub deliveries: Vec<Delivery>,
    /// Ids delivered at least once.
    pub unique: std::collections::HashSet<u64>,
}

impl Function {
    pub async fn start(dir: &Path) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], super::support::moto::free_port()));
        let mut f = Function { addr, log: dir.join("function.jsonl"), child: None, read: 0, deliveries: Vec::new(), unique: Default::default() };
        f.up("ok").await;
        f
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Starts the process in `mode` (`ok` or `500`) on the same port.
    pub async fn up(&mut self, mode: &str) {
        self.down();
        let exe = std::env::current_exe().expect("own path");
        let child = Command::new(exe)
            .args(["--function", "--listen", &self.addr.to_string(), "--log"])
            .arg(&self.log)
            .args(["--mode", mode])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the function");
        self.child = Some(child);
        let addr = self.addr;
        super::support::wait::wait_for(&format!("the function on {addr}"), Duration::from_secs(20), || std::net::TcpStream::connect(addr).is_ok()).await;
    }

    /// Kills the process: its port is closed until [`up`](Self::up).
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Reads what the log gained since the last call; returns how many ids arrived so far.
    pub fn refresh(&mut self) -> usize {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut file) = File::open(&self.log) else { return self.unique.len() };
        if file.seek(SeekFrom::Start(self.read)).is_err() {
            return self.unique.len();
        }
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        // Only whole lines: the process may be writing the next one.
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        for line in text[..complete].lines() {
            let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            let id = v["id"].as_u64().unwrap_or(u64::MAX);
            if id != u64::MAX {
                self.unique.insert(id);
            }
            self.deliveries.push(Delivery {
                id,
                key: v["k"].as_str().unwrap_or_default().to_string(),
                n: v["n"].as_u64().unwrap_or(0),
                instance: v["i"].as_str().unwrap_or_default().to_string(),
            });
        }
        self.read += complete as u64;
        self.unique.len()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        self.down();
    }
}
