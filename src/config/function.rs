//! `[mappings.function]`: what a batch is sent to, selected by `type`.

use super::error::Issue;
use super::parse::{deserialize_at, join, keyed, split_tagged};
use super::secret::Secret;
use esmd_api::config::range;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Longest invoke AWS allows (a Lambda function's maximum timeout).
pub const MAX_TIMEOUT_SECONDS: u64 = 900;

#[derive(Clone, Debug, PartialEq)]
pub enum FunctionConfig {
    /// `type = "http"`: POST the event to a URL.
    Http(HttpFunction),
    /// `type = "lambda"`: the Lambda Invoke API (AWS, LocalStack, moto, the runtime interface
    /// emulator).
    Lambda(LambdaFunction),
}

/// `type = "http"`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFunction {
    /// `http://` or `https://`.
    pub url: String,
    /// Longest wait for one response, 1–900.
    #[serde(default = "default_http_timeout")]
    pub timeout_seconds: u64,
    /// Requests in flight at once through this function.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Sent with every request; values are secrets (API keys, bearer tokens).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// `requestContext.functionArn` in failure records; default: a stand-in ARN made from the
    /// URL.
    #[serde(default)]
    pub function_arn: Option<String>,
}

/// `type = "lambda"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaFunction {
    /// Name, name:alias, ARN or partial ARN.
    pub function_name: String,
    /// Version or alias.
    #[serde(default)]
    pub qualifier: Option<String>,
    /// Default: the SDK's chain (AWS_REGION, profile), then the ARN's region.
    #[serde(default)]
    pub region: Option<String>,
    /// LocalStack, moto, the runtime interface emulator.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Default 900 s, Lambda's own maximum: an event source mapping waits as long as the
    /// function may run; a shorter wait would count a slow success as an error and invoke again.
    #[serde(default = "default_lambda_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
}

fn default_http_timeout() -> u64 {
    30
}
fn default_lambda_timeout() -> u64 {
    MAX_TIMEOUT_SECONDS
}
fn default_max_concurrency() -> usize {
    100
}

impl fmt::Debug for HttpFunction {
    // By hand: the URL may carry credentials or a key in its query, header values are secrets
    // (Secret's Debug hides them; the URL is shown without user info and query).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFunction")
            .field("url", &redact_url(&self.url))
            .field("timeout_seconds", &self.timeout_seconds)
            .field("max_concurrency", &self.max_concurrency)
            .field("headers", &self.headers)
            .field("function_arn", &self.function_arn)
            .finish()
    }
}

/// The URL without user info and query, for messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "<not a URL>".into(),
    }
}

impl FunctionConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            FunctionConfig::Http(_) => "http",
            FunctionConfig::Lambda(_) => "lambda",
        }
    }

    pub fn timeout_seconds(&self) -> u64 {
        match self {
            FunctionConfig::Http(h) => h.timeout_seconds,
            FunctionConfig::Lambda(l) => l.timeout_seconds,
        }
    }

    /// Invocations in flight at once.
    pub fn max_concurrency(&self) -> usize {
        match self {
            FunctionConfig::Http(h) => h.max_concurrency,
            FunctionConfig::Lambda(l) => l.max_concurrency,
        }
    }

    /// Reads a function table found at absolute path `at`.
    pub(crate) fn parse(value: Value, at: &str) -> Result<FunctionConfig, Issue> {
        let (type_name, rest) = split_tagged(value, at, None)?;
        match type_name.as_str() {
            "http" => deserialize_at(rest, at).map(FunctionConfig::Http),
            "lambda" => deserialize_at(rest, at).map(FunctionConfig::Lambda),
            other => Err(keyed(&join(at, "type"), format!("unknown function type {other:?} (http, lambda)"))),
        }
    }

    /// Rules of the function's own keys. Paths are relative to the mapping.
    pub(crate) fn validate(&self, issues: &mut Vec<Issue>) {
        match self {
            FunctionConfig::Http(h) => {
                check_url(issues, "function.url", &h.url);
                range(issues, "function.timeout_seconds", h.timeout_seconds as i128, 1, MAX_TIMEOUT_SECONDS as i128);
                range(issues, "function.max_concurrency", h.max_concurrency as i128, 1, 10_000);
                for (name, value) in &h.headers {
                    let key = format!("function.headers.{name}");
                    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        issues.push(Issue::new(&key, format!("function.headers: {name:?} is not a valid HTTP header name")));
                    }
                    // The value is a secret: say what is wrong, never what it is.
                    if reqwest::header::HeaderValue::from_str(value.expose()).is_err() {
                        issues.push(Issue::new(&key, format!("{key}: the value is not a valid HTTP header value (control characters or newlines)")));
                    }
                }
                if let Some(arn) = &h.function_arn {
                    if !arn.starts_with("arn:") {
                        issues.push(Issue::new("function.function_arn", format!("function.function_arn = {arn:?} is not an ARN (arn:aws:lambda:<region>:<account>:function:<name>)")));
                    }
                }
            }
            FunctionConfig::Lambda(l) => {
                let name_ok = (1..=140).contains(&l.function_name.len())
                    && l.function_name.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.$".contains(c));
                if !name_ok {
                    issues.push(Issue::new(
                        "function.function_name",
                        format!("function.function_name = {:?} is not a function name or ARN (1–140 characters of [A-Za-z0-9-_:.$])", l.function_name),
                    ));
                }
                if let Some(q) = &l.qualifier {
                    if q.is_empty() || q.len() > 128 || !q.chars().all(|c| c.is_ascii_alphanumeric() || "$_-".contains(c)) {
                        issues.push(Issue::new("function.qualifier", format!("function.qualifier = {q:?} is not a version or alias (1–128 characters of [A-Za-z0-9$_-])")));
                    }
                }
                if let Some(r) = &l.region {
                    if r.is_empty() || !r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                        issues.push(Issue::new("function.region", format!("function.region = {r:?} is not a region name (like us-east-1)")));
                    }
                }
                if let Some(url) = &l.endpoint_url {
                    check_url(issues, "function.endpoint_url", url);
                }
                range(issues, "function.timeout_seconds", l.timeout_seconds as i128, 1, MAX_TIMEOUT_SECONDS as i128);
                range(issues, "function.max_concurrency", l.max_concurrency as i128, 1, 10_000);
            }
        }
    }
}

pub(super) fn check_url(issues: &mut Vec<Issue>, key: &str, url: &str) {
    // The URL itself is not repeated: it may hold credentials.
    let problem = match reqwest::Url::parse(url) {
        Err(e) => Some(e.to_string()),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Some(format!("scheme {:?} (http or https)", u.scheme())),
        Ok(u) if u.host_str().unwrap_or_default().is_empty() => Some("no host".into()),
        Ok(_) => None,
    };
    if let Some(problem) = problem {
        issues.push(Issue::new(key, format!("{key} is not an http(s) URL: {problem}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<FunctionConfig, Issue> {
        FunctionConfig::parse(v, "mappings[1].function")
    }

    fn problems(v: Value) -> Vec<String> {
        let mut issues = Vec::new();
        parse(v).unwrap().validate(&mut issues);
        issues.into_iter().map(|i| i.message).collect()
    }

    #[test]
    fn defaults() {
        let FunctionConfig::Http(h) = parse(json!({"type": "http", "url": "http://127.0.0.1:9000/"})).unwrap() else { panic!() };
        assert_eq!((h.timeout_seconds, h.max_concurrency, h.headers.len(), h.function_arn.is_none()), (30, 100, 0, true));
        let FunctionConfig::Lambda(l) = parse(json!({"type": "lambda", "function_name": "f"})).unwrap() else { panic!() };
        assert_eq!((l.timeout_seconds, l.max_concurrency), (900, 100));
        assert_eq!((l.qualifier, l.region, l.endpoint_url), (None, None, None));
    }

    #[test]
    fn unknown_keys_name_the_path() {
        let e = parse(json!({"type": "http", "url": "http://x/", "timeout": 3})).unwrap_err();
        assert_eq!(e.path, "mappings[1].function.timeout");
        assert!(e.message.starts_with("function.timeout: unknown field `timeout`"), "{}", e.message);
        let e = parse(json!({"type": "grpc"})).unwrap_err();
        assert_eq!(e.path, "mappings[1].function.type");
    }

    #[test]
    fn ranges_name_the_key() {
        assert!(problems(json!({"type": "http", "url": "http://x/"})).is_empty());
        assert_eq!(problems(json!({"type": "http", "url": "http://x/", "timeout_seconds": 901})), ["function.timeout_seconds = 901 is out of range (1–900)"]);
        assert_eq!(problems(json!({"type": "http", "url": "http://x/", "timeout_seconds": 0})), ["function.timeout_seconds = 0 is out of range (1–900)"]);
        assert_eq!(problems(json!({"type": "http", "url": "http://x/", "max_concurrency": 0})), ["function.max_concurrency = 0 is out of range (1–10000)"]);
        assert_eq!(problems(json!({"type": "lambda", "function_name": "f", "timeout_seconds": 1000})), ["function.timeout_seconds = 1000 is out of range (1–900)"]);
        assert!(problems(json!({"type": "lambda", "function_name": "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST", "qualifier": "live", "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:5000"})).is_empty());
        assert!(problems(json!({"type": "lambda", "function_name": "f g"}))[0].starts_with("function.function_name"));
        assert!(problems(json!({"type": "lambda", "function_name": "f", "endpoint_url": "localhost:5000"}))[0].starts_with("function.endpoint_url"));
    }

    #[test]
    fn urls_and_headers_are_checked_without_echoing_secrets() {
        let p = problems(json!({"type": "http", "url": "ftp://user:pw@x/"}));
        assert!(p[0].starts_with("function.url is not an http(s) URL: scheme \"ftp\"") && !p[0].contains("pw"), "{p:?}");
        assert!(problems(json!({"type": "http", "url": "not a url"}))[0].starts_with("function.url"));
        let p = problems(json!({"type": "http", "url": "http://x/", "headers": {"Bad Name": "v", "X-Key": "top\nsecret"}}));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p.iter().all(|m| !m.contains("secret")), "{p:?}");
    }

    #[test]
    fn debug_redacts_headers_and_url_credentials() {
        let f = parse(json!({"type": "http", "url": "https://bob:pw123@fn.example/run?key=k123", "headers": {"Authorization": "Bearer tok123"}})).unwrap();
        let debug = format!("{f:?}");
        for secret in ["pw123", "k123", "tok123", "bob"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(debug.contains("https://fn.example/run") && debug.contains("Authorization"), "{debug}");
    }
}
