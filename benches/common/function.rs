//! The function every bench invokes: a no-op HTTP server on 127.0.0.1 in the bench's process.
//! It counts the records it is sent (occurrences of a marker each record's JSON has once),
//! remembers when the first and the last request arrived, and wakes a waiter on each request.

use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Default)]
struct Seen {
    span: Mutex<(Option<Instant>, Option<Instant>)>,
    records: AtomicU64,
    request: Notify,
}

pub struct Function {
    pub url: String,
    seen: Arc<Seen>,
}

impl Function {
    /// `marker`: bytes each record of an event holds once (e.g. `"messageId":`); empty counts
    /// bytes instead. `report_pauses`: print gaps of over 500 ms between requests, which are
    /// part of a drain's result and worth locating.
    pub async fn start(marker: &'static [u8], report_pauses: bool) -> Function {
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let finder = Arc::new(memchr::memmem::Finder::new(marker));
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |body: Bytes| {
                let s = s.clone();
                let finder = finder.clone();
                async move {
                    let now = Instant::now();
                    {
                        let mut span = s.span.lock().expect("span lock");
                        if let (true, Some(first), Some(last)) = (report_pauses, span.0, span.1) {
                            if now - last > Duration::from_millis(500) {
                                eprintln!("  (no request for {:.1} s before {:.2} s)", (now - last).as_secs_f64(), (now - first).as_secs_f64());
                            }
                        }
                        span.0.get_or_insert(now);
                        span.1 = Some(now);
                    }
                    // memmem, not a comparison at every offset: that was a fifth of the bench
                    // process's CPU, taken from the mapping it measures (perf, RabbitMQ drain).
                    let n = if marker.is_empty() { body.len() } else { finder.find_iter(&body).count() };
                    s.records.fetch_add(n as u64, Ordering::Relaxed);
                    // notify_one keeps a permit when nobody waits, so no request is missed.
                    s.request.notify_one();
                    ""
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the function's port");
        let url = format!("http://{}/", listener.local_addr().expect("function address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Function { url, seen }
    }

    /// Records (or bytes) received so far.
    pub fn count(&self) -> usize {
        self.seen.records.load(Ordering::Relaxed) as usize
    }

    /// First request to last request.
    pub fn span(&self) -> Duration {
        match *self.seen.span.lock().expect("span lock") {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        }
    }

    /// Time since the first request.
    pub fn since_first(&self) -> Duration {
        self.seen.span.lock().expect("span lock").0.map(|f| f.elapsed()).unwrap_or_default()
    }

    /// When the latest request arrived.
    pub fn last(&self) -> Option<Instant> {
        self.seen.span.lock().expect("span lock").1
    }

    /// Waits for the next request (or one that arrived since the last wait); false on timeout.
    pub async fn next_request(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.seen.request.notified()).await.is_ok()
    }

    /// Polls until `n` records arrived; panics after `timeout` saying how far it got.
    pub async fn wait_count(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.count() < n {
            assert!(Instant::now() < deadline, "the function received {} of {n} records within {timeout:?}", self.count());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
