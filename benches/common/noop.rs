//! The function every drain bench invokes: a no-op HTTP server in a process of its own (the
//! bench binary run as `--noop-function`), on 127.0.0.1. Out of the bench's process, the
//! function's work (receiving 1.4 MB events, counting records) is no client's CPU time, and esmd
//! and the raw clients share the machine with it equally.
//!
//! It counts the records it is sent (occurrences of a marker each record's JSON has once, or
//! bytes), and keeps when the first and the latest request completed and the longest gap between
//! two consecutive ones (a pause in which no request finished: part of a drain's result). The
//! bench reads these with `GET /stats` and clears them with `POST /reset` between runs.

use super::child::{self, Helper};
use axum::extract::State;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const FLAG: &str = "--noop-function";

/// What the function saw since it started or was last reset.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub requests: u64,
    /// Marker occurrences, or bytes when the marker is empty.
    pub records: u64,
    pub bytes: u64,
    /// First completed request to the latest.
    pub span: Duration,
    /// The longest time between two consecutive completed requests.
    pub longest_gap: Duration,
    /// When that gap ended, after the first request: where in a drain it fell.
    pub longest_gap_end: Duration,
    /// Since the first request (zero before it).
    pub since_first: Duration,
}

#[derive(Default)]
struct Seen {
    first: Option<Instant>,
    last: Option<Instant>,
    longest_gap: Duration,
    longest_gap_end: Option<Instant>,
    requests: u64,
    records: u64,
    bytes: u64,
}

impl Seen {
    fn stats(&self) -> Stats {
        let span = match (self.first, self.last) {
            (Some(f), Some(l)) => l - f,
            _ => Duration::ZERO,
        };
        Stats {
            requests: self.requests,
            records: self.records,
            bytes: self.bytes,
            span,
            longest_gap: self.longest_gap,
            longest_gap_end: match (self.first, self.longest_gap_end) {
                (Some(f), Some(e)) => e - f,
                _ => Duration::ZERO,
            },
            since_first: self.first.map(|f| f.elapsed()).unwrap_or_default(),
        }
    }
}

struct Server {
    seen: Mutex<Seen>,
    finder: Option<memchr::memmem::Finder<'static>>,
}

/// The child's main: serves until killed. Arguments: `--marker <text>` (optional).
pub fn run_child(args: &[String]) -> ! {
    let marker = args.iter().position(|a| a == "--marker").and_then(|i| args.get(i + 1)).cloned().unwrap_or_default();
    // memmem, not a comparison at every offset: that was a fifth of the bench process's CPU
    // when the function shared it with the mapping (perf, RabbitMQ drain).
    let finder = (!marker.is_empty()).then(|| memchr::memmem::Finder::new(marker.as_bytes()).into_owned());
    let server = Arc::new(Server { seen: Mutex::default(), finder });
    super::runtime().block_on(async move {
        let app = axum::Router::new()
            .route("/", axum::routing::post(invoke))
            .route("/stats", axum::routing::get(stats))
            .route("/reset", axum::routing::post(reset))
            // A batch of 1000 × 1 KB Kafka records is a 1.4 MB event; esmd allows up to 6 MB.
            .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
            .with_state(server);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the function's port");
        let port = listener.local_addr().expect("function address").port();
        child::say(&port.to_string());
        axum::serve(listener, app).await.expect("serve");
    });
    std::process::exit(0)
}

async fn invoke(State(s): State<Arc<Server>>, body: Bytes) -> &'static str {
    // The body has arrived whole: this is when the request completed, as the caller sees it
    // (the empty response follows the count at once).
    let now = Instant::now();
    let n = match &s.finder {
        Some(f) => f.find_iter(&body).count(),
        None => body.len(),
    };
    let mut seen = s.seen.lock().expect("stats lock");
    if let Some(last) = seen.last {
        let gap = now.saturating_duration_since(last);
        if gap > seen.longest_gap {
            seen.longest_gap = gap;
            seen.longest_gap_end = Some(now);
        }
    }
    seen.first.get_or_insert(now);
    seen.last = Some(now);
    seen.requests += 1;
    seen.records += n as u64;
    seen.bytes += body.len() as u64;
    ""
}

async fn stats(State(s): State<Arc<Server>>) -> axum::Json<Stats> {
    axum::Json(s.seen.lock().expect("stats lock").stats())
}

async fn reset(State(s): State<Arc<Server>>) -> &'static str {
    *s.seen.lock().expect("stats lock") = Seen::default();
    ""
}

/// The function process, seen from the bench; killed when dropped.
pub struct NoopFunction {
    /// Where clients POST their events.
    pub url: String,
    base: String,
    http: reqwest::Client,
    helper: Helper,
}

impl NoopFunction {
    /// Starts the function. `marker`: text each record of an event holds once (e.g.
    /// `"messageId":`); empty counts bytes instead.
    pub async fn start(marker: &str) -> NoopFunction {
        let mut args = Vec::new();
        if !marker.is_empty() {
            args = vec!["--marker".to_string(), marker.to_string()];
        }
        let mut helper = Helper::spawn(FLAG, &args);
        let port: u16 = helper.line(Duration::from_secs(30)).await.parse().expect("the function prints its port");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().no_proxy().build().expect("http client");
        NoopFunction { url: format!("{base}/"), base, http, helper }
    }

    pub fn pid(&self) -> u32 {
        self.helper.pid()
    }

    pub async fn stats(&self) -> Stats {
        let response = self.http.get(format!("{}/stats", self.base)).send().await.expect("the function's stats");
        response.json().await.expect("the function's stats as JSON")
    }

    /// Forgets every request so far: the next run starts from zero.
    pub async fn reset(&self) {
        let r = self.http.post(format!("{}/reset", self.base)).send().await.expect("reset the function's stats");
        assert!(r.status().is_success(), "reset: {}", r.status());
    }

    /// Records (or bytes) received so far.
    pub async fn count(&self) -> usize {
        self.stats().await.records as usize
    }

    /// First request to last request.
    pub async fn span(&self) -> Duration {
        self.stats().await.span
    }

    /// Time since the first request.
    pub async fn since_first(&self) -> Duration {
        self.stats().await.since_first
    }

    /// Polls until `n` records arrived; panics after `timeout` saying how far it got.
    pub async fn wait_count(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.count().await;
            if got >= n {
                return;
            }
            assert!(Instant::now() < deadline, "the function received {got} of {n} records within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
