//! The in-process no-op function: a HTTP server on 127.0.0.1 in the bench's own process, for the
//! idle → invoke latency row only. That row's clock stops when the function's handler runs,
//! which only a function in the same process can tell without a delay of its own; the drains
//! use the function in a process of its own (`noop.rs`).

use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Notify;

#[derive(Default)]
struct Seen {
    last: Mutex<Option<Instant>>,
    request: Notify,
}

pub struct Function {
    pub url: String,
    seen: Arc<Seen>,
}

impl Function {
    pub async fn start() -> Function {
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let app = axum::Router::new().route(
            "/",
            // The body is taken, so the handler runs once the whole request is in.
            axum::routing::post(move |_body: bytes::Bytes| {
                let s = s.clone();
                async move {
                    *s.last.lock().expect("lock") = Some(Instant::now());
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

    /// When the latest request arrived.
    pub fn last(&self) -> Option<Instant> {
        *self.seen.last.lock().expect("lock")
    }

    /// Waits for the next request (or one that arrived since the last wait); false on timeout.
    pub async fn next_request(&self, timeout: std::time::Duration) -> bool {
        tokio::time::timeout(timeout, self.seen.request.notified()).await.is_ok()
    }
}
