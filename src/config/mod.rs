//! The configuration file (DESIGN §9).
//!
//! TOML (or YAML, or JSON, chosen by the file's extension) with top-level `[admin]`,
//! `[checkpoint]`, `[log]`, `[aws]`, `shutdown_timeout_seconds` and one `[[mappings]]` table per
//! mapping. Mapping keys are AWS's parameter names in snake_case, with AWS's defaults and
//! ranges. String values may use `${ENV}` and `${ENV:-default}`.
//!
//! Loading never does IO beyond reading the file: no connection, no DNS, no file creation.
//! Every problem is collected and reported at once, each naming the mapping, the key path, the
//! allowed range and (TOML) the line.
//!
//! Layout, leaves first: `error`, `parse` (text → JSON tree with lines), `env`
//! (interpolation), `secret`; then the types `params` (AWS's parameters), `function`,
//! `source` (handed to its connector); `validate` (the rules across them); `mapping` (a
//! mapping, its resolved settings); `load` (the pipeline). Each module uses only those before
//! it; the checks every section shares (`range`, `check_name`) are `esmd_api::config`'s.

mod env;
mod error;
mod function;
mod load;
mod mapping;
mod params;
mod parse;
mod secret;
mod source;
mod validate;

pub use env::{interpolate, EnvError};
pub use error::{ConfigError, Problem};
pub use esmd_api::destination::DestinationKind;
pub use esmd_api::profile::{Family, SourceProfile};
pub use function::{FunctionConfig, HttpFunction, LambdaFunction, MAX_TIMEOUT_SECONDS};
pub use mapping::{derived_uuid, MappingConfig};
pub use params::{
    DestinationConfig, FilterConfig, FilterCriteriaConfig, FilterPattern, FunctionResponseType, MappingParams, OnExhausted, OnFailureConfig,
    ScalingConfig, StartingPosition, StartingPositionTimestamp,
};
pub use secret::Secret;
pub use source::SourceConfig;

use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Where the admin endpoint listens unless told otherwise: loopback only, so /status and
/// /metrics are not exposed by accident.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9464);

/// The file formats, chosen by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
    Json,
}

impl Format {
    /// `.toml`, `.yaml`/`.yml`, `.json` (any case).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// A loaded, validated config.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub admin: AdminConfig,
    pub checkpoint: CheckpointConfig,
    pub log: LogConfig,
    pub aws: AwsConfig,
    pub fleet: FleetConfig,
    /// How long `run` waits for in-flight batches after SIGTERM before abandoning them (they
    /// are replayed on restart). 0–3600, default 30.
    pub shutdown_timeout_seconds: u64,
    pub mappings: Vec<MappingConfig>,
}

/// `[admin]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `/metrics`, `/healthz`, `/readyz`, `/status`. An IP address and port (no host names:
    /// resolving one would be IO). Default 127.0.0.1:9464; in a container use 0.0.0.0 and
    /// publish the port on the host's loopback.
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: DEFAULT_ADMIN_LISTEN }
    }
}

/// `[checkpoint]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    #[serde(rename = "type")]
    pub kind: CheckpointKind,
    /// Directory of the embedded store, relative to the working directory unless absolute.
    pub path: PathBuf,
    /// `type = "dynamodb"`: the lease table (KCL 2.x schema; several mappings may share it).
    pub table: Option<String>,
    /// `type = "dynamodb"`: default the SDK's chain.
    pub region: Option<String>,
    /// `type = "dynamodb"`: an emulator (moto, DynamoDB Local, LocalStack).
    pub endpoint_url: Option<String>,
    /// `type = "dynamodb"`: create the table (on-demand billing) when it is missing.
    pub create_table: bool,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig { kind: CheckpointKind::Embedded, path: PathBuf::from("./esmd-state"), table: None, region: None, endpoint_url: None, create_table: false }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    /// A crash-safe local store (redb) in `path`: one instance.
    #[default]
    Embedded,
    /// Shard leases and checkpoints in a DynamoDB table: several instances share a Kinesis or
    /// DynamoDB Streams mapping's shards.
    Dynamodb,
}

/// `[fleet]`: this instance among several (with `[checkpoint] type = "dynamodb"`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// This instance's name in the lease table's `leaseOwner`. Default: `<hostname>-<pid>`.
    /// In Kubernetes: `instance_id = "${POD_NAME}"`.
    pub instance_id: Option<String>,
    /// An instance that has not renewed its leases for this long loses them to the others
    /// (KCL's `failoverTimeMillis`: 10 s). 3–3600.
    pub failover_time_seconds: u64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig { instance_id: None, failover_time_seconds: 10 }
    }
}

impl FleetConfig {
    /// `instance_id`, or `<hostname>-<pid>`.
    pub fn instance_id(&self) -> String {
        self.instance_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty());
            format!("{}-{}", host.unwrap_or_else(|| "esmd".into()), std::process::id())
        })
    }
}

/// `[log]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[aws]`: region and account of the stand-in ARNs of non-AWS sources and functions
/// (eventSourceARN in events, functionArn in failure records).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    pub region: String,
    pub account: String,
}

impl Default for AwsConfig {
    fn default() -> Self {
        // The values LocalStack and most emulators use.
        AwsConfig { region: "us-east-1".into(), account: "000000000000".into() }
    }
}

impl Config {
    /// Reads, interpolates, parses and validates a config file; the format comes from the
    /// extension. Variables come from the process environment.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let format = Format::from_path(path).ok_or_else(|| ConfigError::UnknownFormat { path: path.to_path_buf() })?;
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::from_str(&text, format)
    }

    /// Parses and validates config text; variables come from the process environment.
    #[allow(clippy::should_implement_trait)] // two arguments: not FromStr
    pub fn from_str(text: &str, format: Format) -> Result<Config, ConfigError> {
        Config::from_str_with_env(text, format, &env::process_env)
    }

    /// Parses and validates config text, looking variables up with `env` (tests, or a caller
    /// with its own source of variables).
    pub fn from_str_with_env(text: &str, format: Format, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        load::load(text, format, env, esmd_api::time::now_ms())
    }

    pub fn mapping(&self, name: &str) -> Option<&MappingConfig> {
        self.mappings.iter().find(|m| m.name == name)
    }

    pub fn enabled_mappings(&self) -> impl Iterator<Item = &MappingConfig> {
        self.mappings.iter().filter(|m| m.enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_comes_from_the_extension() {
        assert_eq!(Format::from_path(Path::new("a/esmd.toml")), Some(Format::Toml));
        assert_eq!(Format::from_path(Path::new("esmd.YAML")), Some(Format::Yaml));
        assert_eq!(Format::from_path(Path::new("esmd.yml")), Some(Format::Yaml));
        assert_eq!(Format::from_path(Path::new("esmd.json")), Some(Format::Json));
        assert_eq!(Format::from_path(Path::new("esmd.conf")), None);
        assert_eq!(Format::from_path(Path::new("esmd")), None);
    }

    #[test]
    fn admin_defaults_to_loopback() {
        assert!(AdminConfig::default().listen.ip().is_loopback());
        assert_eq!(DEFAULT_ADMIN_LISTEN.to_string(), "127.0.0.1:9464");
    }
}
