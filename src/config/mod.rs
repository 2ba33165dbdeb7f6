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
    /// Says that a `listen` address beyond loopback is meant: the endpoints have no
    /// authentication, so without it esmd warns at start (and `esmd validate` too). Default
    /// false.
    pub allow_remote: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: DEFAULT_ADMIN_LISTEN, allow_remote: false }
    }
}

impl AdminConfig {
    /// Whether only this host can reach `listen` (127.0.0.0/8, ::1, or ::ffff:127.x.y.z).
    pub fn is_loopback(&self) -> bool {
        self.listen.ip().to_canonical().is_loopback()
    }

    /// The warning for an endpoint reachable from other hosts that the config did not say it
    /// wants (`allow_remote`); `None` for loopback or when allowed.
    pub fn remote_warning(&self) -> Option<String> {
        if self.is_loopback() || self.allow_remote {
            return None;
        }
        Some(format!(
            "admin.listen = {} is not a loopback address: /metrics and /status (mapping names, sources, positions, errors) are served without authentication to anyone who can reach it; \
             set admin.allow_remote = true if that is intended (a firewall, a loopback-only published port or a network policy guards it), or listen on 127.0.0.1",
            self.listen
        ))
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

    /// What is allowed but probably not meant: `esmd validate` prints these, `esmd run` logs
    /// them as warnings at start.
    pub fn warnings(&self) -> Vec<String> {
        self.admin.remote_warning().into_iter().collect()
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
        assert!(!AdminConfig::default().allow_remote);
        assert_eq!(AdminConfig::default().remote_warning(), None);
    }

    fn admin(listen: &str, allow_remote: bool) -> AdminConfig {
        AdminConfig { listen: listen.parse().unwrap(), allow_remote }
    }

    #[test]
    fn an_admin_endpoint_beyond_loopback_warns_unless_allowed() {
        for listen in ["127.0.0.1:9464", "127.1.2.3:80", "[::1]:9464", "[::ffff:127.0.0.1]:9464"] {
            assert!(admin(listen, false).is_loopback(), "{listen}");
            assert_eq!(admin(listen, false).remote_warning(), None, "{listen}");
        }
        for listen in ["0.0.0.0:9464", "[::]:9464", "10.1.2.3:9464", "[::ffff:10.0.0.1]:9464"] {
            let warning = admin(listen, false).remote_warning().unwrap_or_else(|| panic!("{listen} should warn"));
            assert!(warning.starts_with(&format!("admin.listen = {} is not a loopback address", admin(listen, false).listen)), "{warning}");
            assert!(warning.contains("admin.allow_remote = true"), "{warning}");
            assert_eq!(admin(listen, true).remote_warning(), None, "{listen} with allow_remote");
        }
    }
}
