//! Configuration: TOML (or JSON) with one `[[mappings]]` table per mapping, AWS's parameter
//! names in snake_case, AWS's defaults and ranges. Loading validates everything without IO and
//! reports every problem at once, each naming the mapping, the key and what is allowed.

mod env;
mod function;
mod mapping;
mod source;

pub use function::{FunctionConfig, HttpFunction, LambdaFunction, Secret};
pub use mapping::{
    DestinationConfig, DestinationKind, FilterConfig, FilterCriteriaConfig, MappingConfig, OnExhausted, OnFailure,
    ScalingConfig, StartingPosition, Timestamp,
};
pub use source::{Family, MemoryQueueSource, MemorySource, Seed, SourceConfig};

use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Loopback by default: the admin endpoint is not for the network unless asked.
    #[serde(default = "default_listen")]
    pub listen: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    #[serde(rename = "type", default = "embedded")]
    pub kind: String,
    #[serde(default = "default_state")]
    pub path: PathBuf,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
}

/// Region and account for stand-in ARNs of non-AWS sources.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default = "default_account")]
    pub account: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub aws: AwsConfig,
    /// How long SIGTERM waits for in-flight batches.
    #[serde(default = "default_shutdown")]
    pub shutdown_timeout_seconds: u64,
    #[serde(default)]
    pub mappings: Vec<MappingConfig>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: default_listen() }
    }
}
impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig { kind: embedded(), path: default_state() }
    }
}
impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig { region: default_region(), account: default_account() }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9464".into()
}
fn embedded() -> String {
    "embedded".into()
}
fn default_state() -> PathBuf {
    PathBuf::from("./esmd-state")
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_account() -> String {
    "000000000000".into()
}
fn default_shutdown() -> u64 {
    30
}

/// Everything wrong with a config file, one problem per line.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(e)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(vec![format!("cannot read {}: {e}", path.display())]))?;
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            Some("toml") | None => Format::Toml,
            Some(other) => return Err(ConfigError(vec![format!("unsupported config format .{other} (use .toml or .json)")])),
        };
        Config::parse(&text, format)
    }

    /// Parses, interpolates `${ENV}` and validates.
    pub fn parse(text: &str, format: Format) -> Result<Config, ConfigError> {
        let text = env::interpolate(text, |name| std::env::var(name).ok()).map_err(ConfigError)?;
        let cfg: Config = match format {
            Format::Toml => toml::from_str(&text).map_err(|e| ConfigError(vec![e.to_string().trim_end().to_string()]))?,
            Format::Json => serde_json::from_str(&text).map_err(|e| ConfigError(vec![e.to_string()]))?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        if self.checkpoint.kind != "embedded" {
            errors.push(format!("checkpoint.type = {:?}: only \"embedded\" is available", self.checkpoint.kind));
        }
        let mut names = HashSet::new();
        let now = esmd_api::time::now_ms();
        for m in &self.mappings {
            if !names.insert(&m.name) {
                errors.push(format!("mapping {:?}: name is used by another mapping", m.name));
            }
            m.validate(now, &mut errors);
        }
        if errors.is_empty() { Ok(()) } else { Err(ConfigError(errors)) }
    }
}

#[cfg(test)]
mod tests;
