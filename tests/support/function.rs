//! A scriptable HTTP function: a real axum server on 127.0.0.1:0 that answers each request as
//! the test says and records everything it received.
//!
//! ```ignore
//! let f = FunctionServer::start(|event| {
//!     if event["Records"].as_array().is_some_and(|r| r.len() > 2) {
//!         Reply::status(500, "too many")
//!     } else {
//!         Reply::ok(json!({}))
//!     }
//! }).await;
//! f.enqueue(Reply::throttle(Duration::from_secs(1)));   // the next request only
//! let invoker = HttpInvoker::new(HttpInvokerOptions { url: f.url(), .. });
//! ...
//! assert_eq!(f.requests().len(), 2);
//! assert!(f.max_in_flight() <= 4);
//! ```
//!
//! Answers come first from the queue ([`FunctionServer::enqueue`], [`FunctionServer::replies`]),
//! then from the handler. A panicking handler answers 500 and fails the test when the server is
//! dropped, so an assertion inside a handler is not lost.

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// What the server answers to one request.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
    delay: Duration,
    abort: bool,
}

impl Reply {
    /// 200 with `json` as the function's response.
    pub fn ok(json: Value) -> Self {
        Self::json(200, json)
    }

    /// 200 with an empty body (a successful batch).
    pub fn empty() -> Self {
        Self::status(200, "")
    }

    pub fn json(status: u16, json: Value) -> Self {
        Self::status(status, json.to_string()).header("content-type", "application/json")
    }

    /// Any status with a raw body.
    pub fn status(code: u16, body: impl Into<Bytes>) -> Self {
        Self { status: code, headers: Vec::new(), body: body.into(), delay: Duration::ZERO, abort: false }
    }

    /// 500 with Lambda's error object: a function error for the HTTP invoker.
    pub fn error(message: &str) -> Self {
        Self::json(500, json!({ "errorType": "Error", "errorMessage": message }))
    }

    /// `{"batchItemFailures":[{"itemIdentifier": id}, ...]}`.
    pub fn batch_item_failures<T: Serialize>(ids: impl IntoIterator<Item = T>) -> Self {
        let items: Vec<Value> = ids.into_iter().map(|id| json!({ "itemIdentifier": id })).collect();
        Self::ok(json!({ "batchItemFailures": items }))
    }

    /// 429, with `Retry-After` in whole seconds (rounded up) when given.
    pub fn throttle(retry_after: impl Into<Option<Duration>>) -> Self {
        let reply = Self::status(429, "");
        match retry_after.into() {
            Some(d) => {
                let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                reply.header("retry-after", &secs.to_string())
            }
            None => reply,
        }
    }

    /// `reply`, sent after `d`.
    pub fn delay(d: Duration, reply: Reply) -> Self {
        Self { delay: reply.delay + d, ..reply }
    }

    /// The connection dies after the request arrived, before a complete answer (a crashed
    /// function process).
    pub fn abort() -> Self {
        Self { abort: true, ..Self::status(200, "") }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// This reply, sent after `d`.
    pub fn after(self, d: Duration) -> Self {
        Self::delay(d, self)
    }

    fn into_response(self) -> Response {
        let body = if self.abort {
            let failure = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "FunctionServer: Reply::abort");
            Body::from_stream(futures_util::stream::once(async move { Err::<Bytes, _>(failure) }))
        } else {
            Body::from(self.body)
        };
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap();
        for (name, value) in &self.headers {
            response
                .headers_mut()
                .append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        response
    }
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    /// Path and query, e.g. `/2015-03-31/functions/f/invocations?Qualifier=live`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body as JSON: `null` when empty, a JSON string holding the text when not JSON.
    pub json: Value,
    /// The client's address: the same address twice means a reused connection.
    pub peer: SocketAddr,
    pub received_at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Shared {
    handler: RwLock<Handler>,
    queue: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Request>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    panics: Mutex<Vec<String>>,
}

impl Shared {
    fn next_reply(&self, request: &Request) -> Reply {
        if let Some(reply) = self.queue.lock().unwrap().pop_front() {
            return reply;
        }
        let handler = self.handler.read().unwrap().clone();
        match catch_unwind(AssertUnwindSafe(|| handler(request))) {
            Ok(reply) => reply,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "non-string panic".to_owned());
                self.panics.lock().unwrap().push(message.clone());
                Reply::status(500, format!("FunctionServer handler panicked: {message}"))
            }
        }
    }
}

/// Counts a request as in flight from arrival until its answer is handed to the server (or the
/// client gives up and the handler future is dropped).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct FunctionServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl FunctionServer {
    /// A server answering every request with `handler(event)`.
    pub async fn start(handler: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_with(move |request: &Request| handler(&request.json)).await
    }

    /// Like [`start`](Self::start), with the whole request (path, headers, peer).
    pub async fn start_with(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            handler: RwLock::new(Arc::new(handler)),
            queue: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            panics: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .fallback(serve)
            // Batches go up to 6 MB; axum's default limit is 2 MB.
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                });
            if let Err(e) = server.await {
                eprintln!("FunctionServer on {addr} stopped: {e}");
            }
        });
        Self { addr, shared, stop: Some(stop) }
    }

    /// Every request succeeds with an empty body.
    pub async fn ok() -> Self {
        Self::start(|_| Reply::empty()).await
    }

    /// Answers with `replies` in order; once they are used up every request gets a 500 saying
    /// so.
    pub async fn replies(replies: impl IntoIterator<Item = Reply>) -> Self {
        let server = Self::start(|_| Reply::status(500, "FunctionServer: no canned reply left")).await;
        server.shared.queue.lock().unwrap().extend(replies);
        server
    }

    /// `http://127.0.0.1:<port>/`
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers the next request with `reply`, before the handler is asked.
    pub fn enqueue(&self, reply: Reply) {
        self.shared.queue.lock().unwrap().push_back(reply);
    }

    /// Replaces the handler for the requests still to come.
    pub fn set_handler(&self, handler: impl Fn(&Value) -> Reply + Send + Sync + 'static) {
        *self.shared.handler.write().unwrap() = Arc::new(move |request: &Request| handler(&request.json));
    }

    /// The JSON bodies received so far, in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.requests.lock().unwrap().iter().map(|r| r.json.clone()).collect()
    }

    /// The full requests received so far, in arrival order.
    pub fn recorded(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// Forgets the requests and the in-flight maximum seen so far.
    pub fn clear(&self) {
        self.shared.requests.lock().unwrap().clear();
        self.shared.max_in_flight.store(self.in_flight(), Ordering::SeqCst);
    }

    /// Requests being answered right now (including those in a [`Reply::delay`]).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests that were in flight at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests arrived and returns their bodies; panics after
    /// `timeout` showing what did arrive.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Value> {
        super::wait::eventually(&format!("{n} requests to the function"), timeout, || {
            let requests = self.requests();
            if requests.len() >= n {
                Ok(requests)
            } else {
                Err(format!("got {}: {requests:#?}", requests.len()))
            }
        })
        .await
    }
}

impl Drop for FunctionServer {
    fn drop(&mut self) {
        // Graceful: idle keep-alive connections close, so a pooled client cannot reach a
        // stopped server through an old connection.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let panics = self.shared.panics.lock().map(|p| p.clone()).unwrap_or_default();
        if !panics.is_empty() && !std::thread::panicking() {
            panic!("FunctionServer handler panicked: {panics:?}");
        }
    }
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = InFlight::enter(&shared);
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let path = uri.path_and_query().map(|p| p.to_string()).unwrap_or_else(|| uri.path().to_owned());
    let request = Request { method, path, headers, body, json, peer, received_at: Instant::now() };
    shared.requests.lock().unwrap().push(request.clone());
    let reply = shared.next_reply(&request);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    reply.into_response()
}
