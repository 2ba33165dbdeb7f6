//! `[[mappings]]`: one source, one function, and AWS's parameters in snake_case.

use super::error::{rebase, ConfigError, Issue, Problem};
use super::function::FunctionConfig;
use super::params::{MappingParams, StartingPosition};
use super::parse::{deserialize_at, join, keyed};
use super::source::{ParsedSource, SourceConfig};
use super::validate;
use crate::engine::settings::{BatchSettings, QueueSettings, StreamSettings, MAX_PAYLOAD_BYTES};
use esmd_api::destination::DestinationKind;
use esmd_api::profile::{Family, SourceProfile};
use esmd_api::StartFrom;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;
use uuid::Uuid;

/// A mapping, parsed. Build it with [`super::Config::load`] or [`super::Config::from_str`],
/// which also validate it; [`MappingConfig::stream_settings`] and
/// [`MappingConfig::queue_settings`] check again, for mappings built by hand.
#[derive(Clone, Debug, PartialEq)]
pub struct MappingConfig {
    /// Unique, `[A-Za-z0-9_-]{1,64}`: metric label, log field, status key.
    pub name: String,
    /// `uuid` from the file, or derived from the name ([`derived_uuid`]). Appears in S3 failure
    /// keys (`aws/lambda/<uuid>/...`), so it must stay the same across restarts.
    pub uuid: Uuid,
    /// `enabled = false` keeps a mapping in the file without running it (default true).
    pub enabled: bool,
    pub source: SourceConfig,
    pub function: FunctionConfig,
    pub params: MappingParams,
}

/// AWS caps `maximum_retry_attempts = -1` at this for Kafka mappings with a destination.
pub const KAFKA_RETRY_CAP: u32 = 10;

/// Namespace of derived mapping UUIDs. Never change it: the UUID is part of S3 failure keys,
/// and a new namespace would move every mapping's failures to new prefixes.
const UUID_NAMESPACE: Uuid = Uuid::from_u128(0x6d1f_4c2e_9a5b_4e0f_8c3d_7b2a_1e9f_5c40);

/// The UUID of a mapping without a `uuid` key: UUIDv5 of its name, the same on every start
/// and every host.
pub fn derived_uuid(name: &str) -> Uuid {
    Uuid::new_v5(&UUID_NAMESPACE, name.as_bytes())
}

impl MappingConfig {
    pub fn family(&self) -> Family {
        self.source.family()
    }

    pub fn profile(&self) -> SourceProfile {
        self.source.profile()
    }

    pub fn on_failure_destination(&self) -> Option<&DestinationKind> {
        self.params.on_failure_destination()
    }

    /// The filter patterns' JSON text (empty: no filtering).
    pub fn filter_patterns(&self) -> Vec<String> {
        self.params.filter_criteria.iter().flat_map(|c| c.filters.iter().map(|f| f.pattern.0.clone())).collect()
    }

    /// The compiled filter criteria; `None` without patterns.
    pub fn filter_criteria(&self) -> Result<Option<esmd_filter::FilterCriteria>, ConfigError> {
        let patterns = self.filter_patterns();
        if patterns.is_empty() {
            return Ok(None);
        }
        esmd_filter::FilterCriteria::compile(&patterns)
            .map(Some)
            .map_err(|e| self.invalid(vec![Issue::new("filter_criteria", format!("filter_criteria: {e}"))]))
    }

    /// Checks this mapping alone (no duplicate-name check; that needs the whole file).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let issues = validate::mapping(
            Some(&self.name),
            &self.params,
            &self.profile(),
            Some(&self.source),
            Some(&self.function),
            esmd_api::time::now_ms(),
        );
        if issues.is_empty() {
            Ok(())
        } else {
            Err(self.invalid(issues))
        }
    }

    fn invalid(&self, issues: Vec<Issue>) -> ConfigError {
        let problems = issues
            .into_iter()
            .map(|i| Problem { mapping: Some(self.name.clone()), key: i.path, line: None, message: i.message })
            .collect();
        ConfigError::Invalid { problems }
    }

    fn wrong_family(&self, wanted: Family) -> ConfigError {
        ConfigError::WrongFamily {
            mapping: self.name.clone(),
            source_type: self.source.type_name(),
            actual: self.family().as_str(),
            wanted: wanted.as_str(),
        }
    }

    /// Batch size, window and payload limit, with the source's defaults.
    pub fn batch_settings(&self) -> BatchSettings {
        let profile = self.profile();
        BatchSettings {
            batch_size: self.params.batch_size.map_or(profile.default_batch_size as usize, |n| n.max(1) as usize),
            window: self.params.maximum_batching_window_in_seconds.map_or(profile.default_window, |s| Duration::from_secs_f64(s.clamp(0.0, 300.0))),
            max_payload_bytes: self.params.max_payload_bytes.map_or(MAX_PAYLOAD_BYTES, |n| (n.max(1) as usize).min(MAX_PAYLOAD_BYTES)),
        }
    }

    /// The engine's settings for a stream mapping; validates the mapping first.
    pub fn stream_settings(&self) -> Result<StreamSettings, ConfigError> {
        if self.family() != Family::Stream {
            return Err(self.wrong_family(Family::Stream));
        }
        self.validate()?;
        let p = &self.params;
        let starting_position = match (p.starting_position, p.starting_position_timestamp) {
            (Some(StartingPosition::AtTimestamp), Some(t)) => StartFrom::AtTimestamp(t.0),
            (Some(StartingPosition::Latest), _) => StartFrom::Latest,
            // Validation requires a position (and a timestamp with AT_TIMESTAMP).
            _ => StartFrom::TrimHorizon,
        };
        Ok(StreamSettings {
            batch: self.batch_settings(),
            parallelization_factor: p.parallelization_factor.map_or(1, |n| n as usize),
            starting_position,
            maximum_record_age: p.maximum_record_age_in_seconds.filter(|&s| s >= 0).map(|s| Duration::from_secs(s as u64)),
            maximum_retry_attempts: match p.maximum_retry_attempts.filter(|&n| n >= 0) {
                Some(n) => Some(n as u32),
                // AWS: a Kafka mapping with a destination retries at most 10 times, not forever.
                None if self.profile().type_name == "kafka" && self.on_failure_destination().is_some() => Some(KAFKA_RETRY_CAP),
                None => None,
            },
            bisect_batch_on_function_error: p.bisect_batch_on_function_error.unwrap_or(false),
            report_batch_item_failures: p.report_batch_item_failures(),
            tumbling_window: p.tumbling_window_in_seconds.filter(|&s| s > 0).map(|s| Duration::from_secs(s as u64)),
            read_ahead_bytes: p.max_read_ahead_bytes.map_or_else(|| crate::engine::settings::default_read_ahead(self.batch_settings().batch_size, self.function.max_concurrency()), |n| n.max(1) as usize),
            ..StreamSettings::default()
        })
    }

    /// A queue read one batch at a time to keep publish order (RabbitMQ `ordered = true`).
    pub fn ordered_queue(&self) -> bool {
        self.source.spec().ordered()
    }

    /// The engine's settings for a queue mapping; validates the mapping first.
    pub fn queue_settings(&self) -> Result<QueueSettings, ConfigError> {
        if self.family() != Family::Queue {
            return Err(self.wrong_family(Family::Queue));
        }
        self.validate()?;
        let p = &self.params;
        let defaults = QueueSettings::default();
        let maximum_concurrency = if self.ordered_queue() {
            1
        } else {
            // Unset: the engine's starting concurrency (AWS starts SQS mappings at 5 and grows).
            p.scaling_config.as_ref().and_then(|s| s.maximum_concurrency).map_or(defaults.maximum_concurrency, |n| n as usize)
        };
        Ok(QueueSettings {
            batch: self.batch_settings(),
            maximum_concurrency,
            report_batch_item_failures: p.report_batch_item_failures(),
            maximum_retry_attempts: p.maximum_retry_attempts.filter(|&n| n >= 0).map(|n| n as u32),
            on_exhausted: p.on_exhausted.map(Into::into).unwrap_or_default(),
            ..defaults
        })
    }
}

/// `name`, `uuid`, `enabled`: read apart from the parameters so that a broken parameter does
/// not hide the mapping's name from every message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingHeader {
    name: String,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// Reads and checks `mappings[index]`. Returns the mapping when every part is usable, and
/// every issue found (absolute paths). Source, function and parameters are read separately so
/// that one broken part does not hide problems in the others.
pub(crate) fn parse_mapping(value: Value, index: usize, now_ms: i64) -> (Option<MappingConfig>, Vec<Issue>) {
    let at = format!("mappings[{index}]");
    let mut issues = Vec::new();
    let Value::Object(mut table) = value else {
        issues.push(keyed(&at, "expected a table ([[mappings]])"));
        return (None, issues);
    };
    let source = table.remove("source");
    let function = table.remove("function");
    let mut header = Map::new();
    for key in ["name", "uuid", "enabled"] {
        if let Some(v) = table.remove(key) {
            header.insert(key.to_string(), v);
        }
    }

    let header = deserialize_at::<MappingHeader>(Value::Object(header), &at).map_err(|e| issues.push(e)).ok();
    let params = deserialize_at::<MappingParams>(Value::Object(table), &at).map_err(|e| issues.push(e)).ok();
    let source = match source {
        Some(v) => SourceConfig::parse(v, &join(&at, "source")),
        None => ParsedSource::Broken(keyed(&at, "missing [mappings.source] (a table with a `type`: memory, memory_queue, ...)"), None),
    };
    let (profile, available) = match source {
        ParsedSource::Available(s) => (Some(s.profile()), Some(s)),
        ParsedSource::Planned(profile) => {
            issues.push(Issue::new(
                join(&at, "source.type"),
                format!(
                    "source.type = {:?} is not available in this build (its connector is planned; available: {})",
                    profile.type_name,
                    crate::connectors::available().join(", ")
                ),
            ));
            (Some(profile), None)
        }
        ParsedSource::Broken(issue, profile) => {
            issues.push(issue);
            (profile, None)
        }
    };
    let function = match function {
        Some(v) => FunctionConfig::parse(v, &join(&at, "function")).map_err(|e| issues.push(e)).ok(),
        None => {
            issues.push(keyed(&at, "missing [mappings.function] (a table with a `type`: http or lambda)"));
            None
        }
    };
    let uuid = match header.as_ref().and_then(|h| h.uuid.as_deref()) {
        Some(text) => match Uuid::parse_str(text) {
            Ok(u) => Some(u),
            Err(e) => {
                issues.push(Issue::new(join(&at, "uuid"), format!("uuid = {text:?} is not a UUID: {e}")));
                None
            }
        },
        None => header.as_ref().map(|h| derived_uuid(&h.name)),
    };

    let Some(params) = params else { return (None, issues) };
    // Without a profile (unknown source type) the parameters' rules cannot be told apart.
    if let Some(profile) = profile {
        let name = header.as_ref().map(|h| h.name.as_str());
        let found = validate::mapping(name, &params, &profile, available.as_ref(), function.as_ref(), now_ms);
        issues.extend(found.into_iter().map(|i| rebase(i, &at)));
    }
    match (header, available, function, uuid) {
        (Some(header), Some(source), Some(function), Some(uuid)) => {
            let mapping = MappingConfig { name: header.name, uuid, enabled: header.enabled.unwrap_or(true), source, function, params };
            (Some(mapping), issues)
        }
        _ => (None, issues),
    }
}

#[cfg(test)]
mod tests {
    use super::super::params::StartingPositionTimestamp;
    use super::super::{Config, Format};
    use super::*;
    use crate::engine::settings::QueueExhausted;

    fn load(text: &str) -> Config {
        Config::from_str_with_env(text, Format::Toml, &|_| None).unwrap_or_else(|e| panic!("{e}"))
    }

    const STREAM: &str = "[[mappings]]\nname = \"orders\"\nstarting_position = \"LATEST\"\nsource = { type = \"memory\", stream_name = \"s\" }\nfunction = { type = \"http\", url = \"http://127.0.0.1:9/\" }\n";
    const QUEUE: &str = "[[mappings]]\nname = \"jobs\"\nsource = { type = \"memory_queue\", queue_name = \"q\" }\nfunction = { type = \"http\", url = \"http://127.0.0.1:9/\" }\n";

    #[test]
    fn stream_defaults_equal_aws() {
        let cfg = load(STREAM);
        let m = &cfg.mappings[0];
        assert_eq!(m.family(), Family::Stream);
        assert!(m.enabled);
        let s = m.stream_settings().unwrap();
        assert_eq!(s.batch.batch_size, 100);
        assert_eq!(s.batch.window, Duration::ZERO);
        assert_eq!(s.batch.max_payload_bytes, 6 * 1024 * 1024);
        assert_eq!(s.parallelization_factor, 1);
        assert_eq!(s.starting_position, StartFrom::Latest);
        assert_eq!(s.maximum_record_age, None, "-1: infinite");
        assert_eq!(s.maximum_retry_attempts, None, "-1: until the record expires");
        assert!(!s.bisect_batch_on_function_error);
        assert!(!s.report_batch_item_failures);
        assert_eq!(s.tumbling_window, None);
        assert!(m.filter_criteria().unwrap().is_none());
        assert!(m.on_failure_destination().is_none());
        assert!(matches!(m.queue_settings(), Err(ConfigError::WrongFamily { .. })));
    }

    #[test]
    fn queue_defaults_equal_aws() {
        let cfg = load(QUEUE);
        let m = &cfg.mappings[0];
        assert_eq!(m.family(), Family::Queue);
        let q = m.queue_settings().unwrap();
        assert_eq!(q.batch.batch_size, 10, "SQS default");
        assert_eq!(q.batch.window, Duration::ZERO);
        assert_eq!(q.maximum_concurrency, QueueSettings::default().maximum_concurrency);
        assert_eq!(q.maximum_retry_attempts, None);
        assert_eq!(q.on_exhausted, QueueExhausted::Release);
        assert!(!q.report_batch_item_failures);
        let e = m.stream_settings().unwrap_err();
        assert_eq!(e.to_string(), "mapping \"jobs\": source type \"memory_queue\" is a queue, not a stream");
    }

    #[test]
    fn explicit_values_resolve() {
        let text = STREAM.replace(
            "starting_position = \"LATEST\"",
            "starting_position = \"AT_TIMESTAMP\"\nstarting_position_timestamp = \"2024-05-01T00:00:00Z\"\nbatch_size = 500\nmaximum_batching_window_in_seconds = 2.5\nparallelization_factor = 4\nmaximum_record_age_in_seconds = 3600\nmaximum_retry_attempts = 2\nbisect_batch_on_function_error = true\nfunction_response_types = [\"ReportBatchItemFailures\"]\ntumbling_window_in_seconds = 0\nmax_payload_bytes = 1048576\ndestination_config = { on_failure = { destination = \"file:///tmp/f.jsonl\" } }\nfilter_criteria = { filters = [{ pattern = '{\"data\": {\"kind\": [\"order\"]}}' }] }",
        );
        let cfg = load(&text);
        let m = &cfg.mappings[0];
        let s = m.stream_settings().unwrap();
        assert_eq!(s.batch.batch_size, 500);
        assert_eq!(s.batch.window, Duration::from_millis(2500));
        assert_eq!(s.batch.max_payload_bytes, 1_048_576);
        assert_eq!(s.parallelization_factor, 4);
        assert_eq!(s.starting_position, StartFrom::AtTimestamp(1_714_521_600_000));
        assert_eq!(s.maximum_record_age, Some(Duration::from_secs(3600)));
        assert_eq!(s.maximum_retry_attempts, Some(2));
        assert!(s.bisect_batch_on_function_error && s.report_batch_item_failures);
        assert_eq!(s.tumbling_window, None, "0 = off");
        assert_eq!(m.on_failure_destination(), Some(&DestinationKind::File("/tmp/f.jsonl".into())));
        assert!(m.filter_criteria().unwrap().is_some());
        assert_eq!(m.filter_patterns(), vec!["{\"data\": {\"kind\": [\"order\"]}}".to_string()]);

        let q = QUEUE.replace(
            "name = \"jobs\"",
            "name = \"jobs\"\nbatch_size = 50\nmaximum_batching_window_in_seconds = 1\nscaling_config = { maximum_concurrency = 20 }\nmaximum_retry_attempts = 5\non_exhausted = \"dead_letter\"\nfunction_response_types = [\"ReportBatchItemFailures\"]",
        );
        let q = load(&q).mappings[0].queue_settings().unwrap();
        assert_eq!((q.batch.batch_size, q.batch.window, q.maximum_concurrency), (50, Duration::from_secs(1), 20));
        assert_eq!((q.maximum_retry_attempts, q.on_exhausted, q.report_batch_item_failures), (Some(5), QueueExhausted::DeadLetter, true));
    }

    #[test]
    fn uuid_is_derived_stably_or_taken_from_the_file() {
        let a = load(STREAM).mappings[0].uuid;
        assert_eq!(a, derived_uuid("orders"));
        assert_eq!(a, load(STREAM).mappings[0].uuid);
        assert_eq!(a.get_version_num(), 5);
        assert_ne!(a, derived_uuid("orders2"));
        // Pinned: the derivation must never change (S3 failure keys carry it).
        assert_eq!(derived_uuid("orders").to_string(), Uuid::new_v5(&UUID_NAMESPACE, b"orders").to_string());
        let explicit = STREAM.replace("name = \"orders\"", "name = \"orders\"\nuuid = \"2f1c1f44-3d2a-4a8e-9a61-7c1d1f0f3b11\"");
        assert_eq!(load(&explicit).mappings[0].uuid.to_string(), "2f1c1f44-3d2a-4a8e-9a61-7c1d1f0f3b11");
        let bad = STREAM.replace("name = \"orders\"", "name = \"orders\"\nuuid = \"nope\"");
        let e = Config::from_str_with_env(&bad, Format::Toml, &|_| None).unwrap_err();
        assert!(e.to_string().contains("mapping \"orders\": uuid = \"nope\" is not a UUID"), "{e}");
    }

    #[test]
    fn settings_revalidate_hand_built_mappings() {
        let mut m = load(STREAM).mappings.remove(0);
        m.params.batch_size = Some(0);
        let e = m.stream_settings().unwrap_err();
        assert_eq!(e.to_string(), "mapping \"orders\": batch_size = 0 is out of range (1–10000)");
        assert_eq!(e.problems()[0].key, "batch_size");
    }

    #[test]
    fn broken_parts_are_reported_together() {
        let text = "[[mappings]]\nname = \"orders\"\nbatch_sise = 5\nsource = { type = \"memory\", stream_nam = \"s\" }\nfunction = { type = \"http\", url = \"http://x/\", timeout = 1 }\n";
        let e = Config::from_str_with_env(text, Format::Toml, &|_| None).unwrap_err();
        let keys: Vec<&str> = e.problems().iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["batch_sise", "source.stream_nam", "function.timeout"], "{e}");
        assert!(e.problems().iter().all(|p| p.mapping.as_deref() == Some("orders")));
        assert_eq!(e.problems().iter().map(|p| p.line).collect::<Vec<_>>(), [Some(3), Some(4), Some(5)]);
    }

    #[test]
    fn timestamps_read_several_forms() {
        let ts = |v: Value| serde_json::from_value::<StartingPositionTimestamp>(v).map(|t| t.0);
        assert_eq!(ts(Value::from(1_700_000_000)).unwrap(), 1_700_000_000_000);
        assert_eq!(ts(Value::from(1_700_000_000.5)).unwrap(), 1_700_000_000_500);
        assert_eq!(ts(Value::from("1700000000")).unwrap(), 1_700_000_000_000);
        assert_eq!(ts(Value::from("2023-11-14T22:13:20Z")).unwrap(), 1_700_000_000_000);
        assert_eq!(ts(Value::from("2023-11-15T00:13:20+02:00")).unwrap(), 1_700_000_000_000);
        assert!(ts(Value::from("2023-11-14T22:13:20")).unwrap_err().to_string().contains("UTC offset"));
        assert!(ts(Value::from(-1)).is_err());
        assert!(ts(Value::from(1_700_000_000_000_000i64)).is_err(), "microseconds are not seconds");
        assert!(ts(Value::Bool(true)).is_err());
    }
}
