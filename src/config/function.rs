//! The function a mapping invokes, selected by `type`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// A string never printed by Debug (header values, tokens).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FunctionConfig {
    /// POST the event JSON to a URL.
    Http(HttpFunction),
    /// The Lambda Invoke API (AWS, LocalStack, the runtime interface emulator).
    Lambda(LambdaFunction),
}

impl FunctionConfig {
    pub fn timeout_seconds(&self) -> u64 {
        match self {
            FunctionConfig::Http(h) => h.timeout_seconds,
            FunctionConfig::Lambda(l) => l.timeout_seconds,
        }
    }
    pub fn max_concurrency(&self) -> usize {
        match self {
            FunctionConfig::Http(h) => h.max_concurrency,
            FunctionConfig::Lambda(l) => l.max_concurrency,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFunction {
    pub url: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// The ARN failure records show (default: a stand-in derived from the URL).
    pub function_arn: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaFunction {
    pub function_name: String,
    pub qualifier: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
}

fn default_timeout() -> u64 {
    30
}
fn default_concurrency() -> usize {
    100
}
