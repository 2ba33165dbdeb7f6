//! The HTTP invoker: POSTs the event JSON to a URL, for functions that run as plain HTTP services
//! (a container, a local dev server, the Lambda runtime interface emulator's invoke endpoint).
//!
//! How an exchange is read (DESIGN §6), so that retries are counted the way AWS counts them:
//!
//! | outcome                                            | result                                     |
//! |----------------------------------------------------|--------------------------------------------|
//! | 2xx                                                | `Ok`, body = the function's response       |
//! | 2xx with `X-Amz-Function-Error`                    | `Ok`, function error named by the header   |
//! | 2xx whose body is a Lambda error object (below)    | `Ok`, function error `Unhandled`           |
//! | 429, 503                                           | `Throttled`, honouring `Retry-After`       |
//! | 413                                                | `Rejected`                                 |
//! | any other status (3xx, 4xx, 5xx)                   | `Ok`, function error `Unhandled`           |
//! | timeout after the request was sent                 | `Ok`, function error `Unhandled`           |
//! | connection lost after the request was sent         | `Ok`, function error `Unhandled`           |
//! | response larger than 6 MB                          | `Ok`, function error `Unhandled`           |
//! | refused, DNS, TLS, connect timeout                 | `Unavailable` (the function never ran)     |
//! | payload larger than [`Invoker::max_payload_bytes`] | `Rejected`, nothing is sent                |
//!
//! A Lambda error object is `{"errorType": "...", "errorMessage": "...", ...}` without
//! `batchItemFailures`, or the text `Task timed out after ...`: what a Lambda runtime writes for
//! a failed invocation. The runtime interface emulator answers a failed invocation with 200, that
//! body and no `X-Amz-Function-Error` (aws-lambda-runtime-interface-emulator#20); reading it as
//! a success would acknowledge records the function never processed. A function that means to
//! succeed never needs to answer that shape, so the worst case is a retry, never a loss.
//!
//! Status codes of function errors: for a non-2xx answer `status_code` is the real HTTP status,
//! so an operator sees what the server said. Where there is no status (timeout, lost connection,
//! oversized response) it is 200 and the body is the error object Lambda itself returns for the
//! same failure (`Sandbox.Timedout`, `Function.ResponseSizeTooLarge`), because that is what an
//! AWS failure record shows for a Lambda function that failed that way.

use super::{InvokeError, InvokeResponse, Invoker};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Semaphore;

/// Region of the stand-in ARN of an HTTP function built without one: failure records need an
/// ARN and a plain URL has no region. `esmd run` passes `[aws] region` instead.
pub const STAND_IN_REGION: &str = "us-east-1";
/// Account of stand-in ARNs (the account LocalStack and most emulators use).
pub const STAND_IN_ACCOUNT: &str = "000000000000";
/// Lambda's limit on a synchronous response; a larger answer is a function error there too.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// Connecting never takes longer than this (nor longer than half the invoke timeout), so a dead
/// host is reported as `Unavailable` before the invoke timeout would call it a function error.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What could not be built from an invoker's configuration. Shared by the HTTP and Lambda
/// invokers so config code handles one type.
#[derive(Debug, thiserror::Error)]
pub enum InvokerBuildError {
    #[error("invalid function URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The value is never shown: headers carry API keys and tokens.
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader { name: String, reason: String },
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    #[error("invalid function name {name:?}: {reason}")]
    InvalidFunctionName { name: String, reason: String },
    #[error("no AWS region for function {0:?}: set the invoker's region, AWS_REGION or a profile region")]
    NoRegion(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

#[derive(Clone)]
pub struct HttpInvokerOptions {
    /// `http://` or `https://` URL the event is POSTed to.
    pub url: String,
    /// Longest time from sending the request to the end of the response body.
    pub timeout: Duration,
    /// Most requests in flight at once through this invoker.
    pub max_concurrency: usize,
    /// Sent with every request (authorization, API keys); may override `content-type`.
    pub headers: Vec<(String, String)>,
    /// `requestContext.functionArn` in failure records; default: [`stand_in_arn`] of the
    /// stand-in region and account, named `function`.
    pub function_arn: Option<String>,
}

impl fmt::Debug for HttpInvokerOptions {
    // Written by hand so header values (secrets) never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpInvokerOptions")
            .field("url", &redact_url_str(&self.url))
            .field("timeout", &self.timeout)
            .field("max_concurrency", &self.max_concurrency)
            .field("headers", &header_names)
            .field("function_arn", &self.function_arn)
            .finish()
    }
}

/// Calls a function over HTTP. Cheap to share: one pooled client, one concurrency limit.
pub struct HttpInvoker {
    client: reqwest::Client,
    url: Url,
    /// The URL without credentials or query, for messages.
    display_url: String,
    headers: HeaderMap,
    timeout: Duration,
    permits: Arc<Semaphore>,
    function_arn: String,
}

impl fmt::Debug for HttpInvoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpInvoker")
            .field("url", &self.display_url)
            .field("timeout", &self.timeout)
            .field("function_arn", &self.function_arn)
            .finish_non_exhaustive()
    }
}

impl HttpInvoker {
    pub fn new(options: HttpInvokerOptions) -> Result<Self, InvokerBuildError> {
        let url = parse_url(&options.url)?;
        if options.timeout.is_zero() {
            return Err(InvokerBuildError::Zero("timeout"));
        }
        if options.max_concurrency == 0 {
            return Err(InvokerBuildError::Zero("max_concurrency"));
        }
        let headers = build_headers(&options.headers)?;
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(connect_timeout(options.timeout))
            // Keep a connection per concurrent request warm; reuse is what makes small batches
            // cheap.
            .pool_max_idle_per_host(options.max_concurrency)
            .tcp_nodelay(true)
            // A function answers; it does not send us elsewhere. Following a redirect would
            // turn the POST into a GET and invoke nothing.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| InvokerBuildError::Client(error_chain(&e)))?;
        let function_arn = options.function_arn.unwrap_or_else(|| stand_in_arn(STAND_IN_REGION, STAND_IN_ACCOUNT, "function"));
        Ok(Self {
            client,
            display_url: redact_url(&url),
            url,
            headers,
            timeout: options.timeout,
            permits: Arc::new(Semaphore::new(options.max_concurrency)),
            function_arn,
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    async fn exchange(&self, payload: Bytes) -> Result<InvokeResponse, InvokeError> {
        let sent = self.client.post(self.url.clone()).headers(self.headers.clone()).body(payload).send().await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return self.send_failed(e),
        };
        let status = response.status();
        let function_error_header = header_str(response.headers(), "x-amz-function-error");
        let executed_version =
            header_str(response.headers(), "x-amz-executed-version").unwrap_or_else(|| "$LATEST".to_owned());
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));

        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            // Read the (bounded) body so the connection goes back to the pool.
            let _ = read_body(response).await;
            return Err(InvokeError::Throttled { retry_after });
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            let _ = read_body(response).await;
            return Err(InvokeError::Rejected(format!("{} answered 413 Payload Too Large", self.display_url)));
        }

        let body = match read_body(response).await {
            Ok(b) => b,
            Err(ReadError::TooLarge) => return Ok(too_large_response()),
            Err(ReadError::Transport(e)) => return Ok(self.lost_response(e)),
        };
        let function_error = if status.is_success() {
            function_error_header.or_else(|| looks_like_function_error(&body).then(|| "Unhandled".to_owned()))
        } else {
            Some(function_error_header.unwrap_or_else(|| "Unhandled".to_owned()))
        };
        Ok(InvokeResponse { status_code: status.as_u16(), executed_version, function_error, body })
    }

    /// No response: decide whether the function can have run.
    fn send_failed(&self, e: reqwest::Error) -> Result<InvokeResponse, InvokeError> {
        // reqwest's message names the whole URL, query included; `display_url` says where.
        let e = e.without_url();
        if e.is_connect() || e.is_builder() {
            // Refused, DNS, TLS or connect timeout: the request never left, so the function
            // never ran.
            return Err(InvokeError::Unavailable(format!("{}: {}", self.display_url, error_chain(&e))));
        }
        if e.is_timeout() {
            return Ok(timeout_response(self.timeout));
        }
        // The request was sent and the connection died before an answer (the server crashed
        // or closed it). The function may have run and failed; counting it as an attempt keeps
        // a record that kills its function from blocking the shard forever.
        Ok(self.lost_response(e))
    }

    fn lost_response(&self, e: reqwest::Error) -> InvokeResponse {
        let e = e.without_url();
        if e.is_timeout() {
            return timeout_response(self.timeout);
        }
        lambda_style_error(
            "esmd.ConnectionLost",
            &format!("connection to {} lost before the response was complete: {}", self.display_url, error_chain(&e)),
        )
    }
}

#[async_trait]
impl Invoker for HttpInvoker {
    async fn invoke(&self, payload: Bytes) -> Result<InvokeResponse, InvokeError> {
        // Held until the body is read: the function is busy until it has answered.
        let _permit = super::admit(&self.permits, &payload, self.max_payload_bytes()).await?;
        self.exchange(payload).await
    }

    fn function_arn(&self) -> &str {
        &self.function_arn
    }
}

/// `Retry-After` as a delay: delta-seconds (fractions tolerated) or an HTTP date. A date in the
/// past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `arn:aws:lambda:<region>:<account>:function:<name>` for a function that has no ARN of its
/// own (an HTTP function): `esmd run` names it after the mapping, so the ARN stays the same
/// across runs and hosts. Every run of characters a Lambda function name cannot hold becomes
/// `-`, and the name is cut to 64 characters, so the ARN parses as a Lambda ARN for tools that
/// read failure records.
pub fn stand_in_arn(region: &str, account: &str, name: &str) -> String {
    let raw = name;
    let mut name = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    name.truncate(64);
    let mut name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        name.push_str("function");
    }
    format!("arn:aws:lambda:{region}:{account}:function:{name}")
}

/// Whether `body` is what a Lambda runtime writes for a failed invocation (see the module
/// docs): for emulators that do not say so in a header. Public for the fuzz target
/// (fuzz/fuzz_targets/function_response.rs).
#[doc(hidden)]
pub fn looks_like_function_error(body: &[u8]) -> bool {
    if body.starts_with(b"Task timed out after ") {
        return true;
    }
    // Most responses are partial batch responses or empty: skip parsing them.
    if !contains(body, b"errorMessage") || !contains(body, b"errorType") {
        return false;
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(o)) => {
            o.get("errorType").is_some_and(serde_json::Value::is_string)
                && o.get("errorMessage").is_some_and(serde_json::Value::is_string)
                && !o.contains_key("batchItemFailures")
        }
        _ => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Lambda's error object, so code that reads failure bodies written for AWS reads ours too.
pub(crate) fn lambda_style_error(error_type: &str, message: &str) -> InvokeResponse {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
    InvokeResponse {
        status_code: 200,
        executed_version: "$LATEST".to_owned(),
        function_error: Some("Unhandled".to_owned()),
        body: Bytes::from(body.to_string()),
    }
}

/// What Lambda answers when a function exceeds its timeout.
pub(crate) fn timeout_response(timeout: Duration) -> InvokeResponse {
    lambda_style_error("Sandbox.Timedout", &format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()))
}

fn too_large_response() -> InvokeResponse {
    lambda_style_error(
        "Function.ResponseSizeTooLarge",
        &format!("Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
    )
}

pub(crate) fn connect_timeout(timeout: Duration) -> Duration {
    (timeout / 2).min(MAX_CONNECT_TIMEOUT)
}

enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads the body, refusing to buffer more than Lambda would return.
async fn read_body(mut response: reqwest::Response) -> Result<Bytes, ReadError> {
    if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn parse_url(raw: &str) -> Result<Url, InvokerBuildError> {
    let invalid = |reason: String| InvokerBuildError::InvalidUrl { url: redact_url_str(raw), reason };
    let url = Url::parse(raw).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("scheme {:?} is not http or https", url.scheme())));
    }
    if url.host_str().unwrap_or_default().is_empty() {
        return Err(invalid("no host".to_owned()));
    }
    Ok(url)
}

fn build_headers(pairs: &[(String, String)]) -> Result<HeaderMap, InvokerBuildError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in pairs {
        let invalid = |reason: String| InvokerBuildError::InvalidHeader { name: name.clone(), reason };
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        let mut header_value =
            HeaderValue::from_str(value).map_err(|_| invalid("value is not valid header text".to_owned()))?;
        // Keeps the value out of Debug output (reqwest and hyper logs).
        header_value.set_sensitive(true);
        headers.insert(header_name, header_value);
    }
    Ok(headers)
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// scheme://host[:port]/path — no user info and no query, which may hold secrets.
fn redact_url(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

fn redact_url_str(raw: &str) -> String {
    Url::parse(raw).map(|u| redact_url(&u)).unwrap_or_else(|_| "<unparseable URL>".to_owned())
}

/// The error and its causes on one line; reqwest's own Display hides the cause ("error sending
/// request"), which is the part an operator needs ("connection refused").
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_millis(1500)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn lambda_error_objects() {
        assert!(looks_like_function_error(br#"{"errorType":"Error","errorMessage":"boom","trace":[]}"#));
        assert!(looks_like_function_error(b"Task timed out after 1.00 seconds"));
        assert!(!looks_like_function_error(br#"{"errorMessage":"no type"}"#));
        assert!(!looks_like_function_error(br#"{"errorType":"E","errorMessage":"m","batchItemFailures":[]}"#));
        assert!(!looks_like_function_error(br#"{"batchItemFailures":[{"itemIdentifier":"errorType errorMessage"}]}"#));
        assert!(!looks_like_function_error(b""));
    }

    #[test]
    fn stand_in_arns() {
        let arn = |name: &str| stand_in_arn("eu-west-1", "123456789012", name);
        assert_eq!(arn("orders-to-billing"), "arn:aws:lambda:eu-west-1:123456789012:function:orders-to-billing");
        assert_eq!(arn("orders.v2 / eu"), "arn:aws:lambda:eu-west-1:123456789012:function:orders-v2-eu");
        assert_eq!(arn("---"), "arn:aws:lambda:eu-west-1:123456789012:function:function");
        assert_eq!(arn(&"x".repeat(80)).rsplit(':').next().map(str::len), Some(64));
    }

    #[test]
    fn secrets_stay_out_of_messages() {
        let options = HttpInvokerOptions {
            url: "https://user:pw@example.com/fn?token=abc".into(),
            timeout: Duration::from_secs(1),
            max_concurrency: 1,
            headers: vec![("authorization".into(), "Bearer s3cret".into())],
            function_arn: None,
        };
        let shown = format!("{options:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("pw") && !shown.contains("abc"), "{shown}");
        let bad = HttpInvokerOptions { headers: vec![("x-key".into(), "s3cret\n".into())], ..options };
        let err = HttpInvoker::new(bad).unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_function_is_named_without_user_info_or_query() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let invoker = HttpInvoker::new(HttpInvokerOptions {
            url: format!("http://user:pw-s3cret@127.0.0.1:{port}/fn?code=key-s3cret"),
            timeout: Duration::from_secs(5),
            max_concurrency: 1,
            headers: vec![("authorization".into(), "Bearer s3cret".into())],
            function_arn: None,
        })
        .unwrap();
        let err = invoker.invoke(Bytes::from_static(b"{}")).await.unwrap_err().to_string();
        assert!(err.contains(&format!("http://127.0.0.1:{port}/fn: ")), "{err}");
        assert!(!err.contains("s3cret") && !err.contains("code="), "{err}");
    }

    #[test]
    fn rejects_bad_options() {
        let ok = HttpInvokerOptions {
            url: "http://127.0.0.1:1/".into(),
            timeout: Duration::from_secs(1),
            max_concurrency: 1,
            headers: vec![],
            function_arn: None,
        };
        assert!(HttpInvoker::new(HttpInvokerOptions { url: "ftp://x/".into(), ..ok.clone() }).is_err());
        assert!(HttpInvoker::new(HttpInvokerOptions { url: "not a url".into(), ..ok.clone() }).is_err());
        assert!(HttpInvoker::new(HttpInvokerOptions { timeout: Duration::ZERO, ..ok.clone() }).is_err());
        assert!(HttpInvoker::new(HttpInvokerOptions { max_concurrency: 0, ..ok.clone() }).is_err());
        assert!(HttpInvoker::new(ok).is_ok());
    }
}
