//! One `[[mappings]]` table: AWS's CreateEventSourceMapping parameters in snake_case, their
//! defaults and ranges, and the engine settings they resolve to.

use super::function::FunctionConfig;
use super::source::{Family, SourceConfig};
use crate::engine::settings::{BatchSettings, QueueExhausted, QueueSettings, StreamSettings, MAX_PAYLOAD_BYTES};
use esmd_api::StartFrom;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    AtTimestamp,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnExhausted {
    #[default]
    Release,
    Destination,
    DeadLetter,
}

/// RFC 3339 text or epoch seconds.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    Epoch(f64),
    Text(String),
}

impl Timestamp {
    fn to_ms(&self) -> Result<i64, String> {
        match self {
            Timestamp::Epoch(s) => Ok((s * 1000.0) as i64),
            Timestamp::Text(t) => chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_millis())
                .map_err(|e| format!("{t:?} is not an RFC 3339 time or epoch seconds ({e})")),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterCriteriaConfig {
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    pub pattern: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    pub on_failure: Option<OnFailure>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnFailure {
    pub destination: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingConfig {
    pub maximum_concurrency: Option<usize>,
}

/// Where failure records go, parsed from `destination_config.on_failure.destination`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestinationKind {
    File(PathBuf),
    Sqs(String),
    Sns(String),
    S3(String),
    Kafka(String),
    RabbitMq(String),
}

impl DestinationKind {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_prefix("file://").or_else(|| s.strip_prefix("file:")) {
            if p.is_empty() {
                return Err("file destination needs a path".into());
            }
            return Ok(DestinationKind::File(PathBuf::from(p)));
        }
        if let Some(t) = s.strip_prefix("kafka://") {
            return if t.is_empty() { Err("kafka destination needs a topic".into()) } else { Ok(DestinationKind::Kafka(t.into())) };
        }
        if let Some(t) = s.strip_prefix("rabbitmq://") {
            return if t.is_empty() { Err("rabbitmq destination needs an exchange".into()) } else { Ok(DestinationKind::RabbitMq(t.into())) };
        }
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        if parts.len() == 6 && parts[0] == "arn" {
            return match parts[2] {
                "sqs" => Ok(DestinationKind::Sqs(s.into())),
                "sns" => Ok(DestinationKind::Sns(s.into())),
                "s3" => Ok(DestinationKind::S3(s.into())),
                other => Err(format!("{other} ARNs cannot be failure destinations (sqs, sns or s3)")),
            };
        }
        Err(format!("{s:?} is not a destination (file://path, arn:aws:sqs|sns|s3:…, kafka://topic, rabbitmq://exchange/routing-key)"))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DestinationKind::File(_) => "file",
            DestinationKind::Sqs(_) => "sqs",
            DestinationKind::Sns(_) => "sns",
            DestinationKind::S3(_) => "s3",
            DestinationKind::Kafka(_) => "kafka",
            DestinationKind::RabbitMq(_) => "rabbitmq",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    pub name: String,
    /// Used in S3 failure keys; defaults to a UUID derived from the name.
    pub uuid: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub source: SourceConfig,
    pub function: FunctionConfig,
    pub batch_size: Option<usize>,
    pub maximum_batching_window_in_seconds: Option<f64>,
    pub parallelization_factor: Option<usize>,
    pub starting_position: Option<StartingPosition>,
    pub starting_position_timestamp: Option<Timestamp>,
    pub maximum_record_age_in_seconds: Option<i64>,
    pub maximum_retry_attempts: Option<i64>,
    pub bisect_batch_on_function_error: Option<bool>,
    #[serde(default)]
    pub function_response_types: Vec<String>,
    pub filter_criteria: Option<FilterCriteriaConfig>,
    pub destination_config: Option<DestinationConfig>,
    pub tumbling_window_in_seconds: Option<u64>,
    pub scaling_config: Option<ScalingConfig>,
    /// esmd: a payload cap below the 6 MB invoke limit.
    pub max_payload_bytes: Option<usize>,
    /// esmd, queues: what happens when `maximum_retry_attempts` is used up.
    pub on_exhausted: Option<OnExhausted>,
}

fn yes() -> bool {
    true
}

impl MappingConfig {
    pub fn family(&self) -> Family {
        self.source.family()
    }

    pub fn on_failure_destination(&self) -> Option<DestinationKind> {
        let d = self.destination_config.as_ref()?.on_failure.as_ref()?;
        DestinationKind::parse(&d.destination).ok()
    }

    pub fn filter_patterns(&self) -> Vec<String> {
        self.filter_criteria.as_ref().map(|f| f.filters.iter().map(|f| f.pattern.clone()).collect()).unwrap_or_default()
    }

    fn report_batch_item_failures(&self) -> bool {
        self.function_response_types.iter().any(|t| t == "ReportBatchItemFailures")
    }

    fn batch(&self) -> BatchSettings {
        BatchSettings {
            batch_size: self.batch_size.unwrap_or_else(|| self.source.default_batch_size()),
            window: Duration::from_secs_f64(self.maximum_batching_window_in_seconds.unwrap_or(0.0).clamp(0.0, 300.0)),
            max_payload_bytes: self.max_payload_bytes.unwrap_or(MAX_PAYLOAD_BYTES).min(MAX_PAYLOAD_BYTES),
        }
    }

    /// The engine settings of a stream mapping (call after validation).
    pub fn stream_settings(&self) -> Result<StreamSettings, String> {
        let starting_position = match self.starting_position {
            Some(StartingPosition::TrimHorizon) | None => StartFrom::TrimHorizon,
            Some(StartingPosition::Latest) => StartFrom::Latest,
            Some(StartingPosition::AtTimestamp) => StartFrom::AtTimestamp(
                self.starting_position_timestamp.as_ref().ok_or("starting_position_timestamp is required with AT_TIMESTAMP")?.to_ms()?,
            ),
        };
        Ok(StreamSettings {
            batch: self.batch(),
            parallelization_factor: self.parallelization_factor.unwrap_or(1),
            starting_position,
            maximum_record_age: self.maximum_record_age_in_seconds.filter(|s| *s >= 0).map(|s| Duration::from_secs(s as u64)),
            maximum_retry_attempts: self.maximum_retry_attempts.filter(|r| *r >= 0).map(|r| r as u32),
            bisect_batch_on_function_error: self.bisect_batch_on_function_error.unwrap_or(false),
            report_batch_item_failures: self.report_batch_item_failures(),
            tumbling_window: self.tumbling_window_in_seconds.filter(|s| *s > 0).map(Duration::from_secs),
            ..Default::default()
        })
    }

    /// The engine settings of a queue mapping (call after validation).
    pub fn queue_settings(&self) -> Result<QueueSettings, String> {
        Ok(QueueSettings {
            batch: self.batch(),
            maximum_concurrency: self.scaling_config.as_ref().and_then(|s| s.maximum_concurrency).unwrap_or(5),
            report_batch_item_failures: self.report_batch_item_failures(),
            maximum_retry_attempts: self.maximum_retry_attempts.filter(|r| *r >= 0).map(|r| r as u32),
            on_exhausted: match self.on_exhausted.unwrap_or_default() {
                OnExhausted::Release => QueueExhausted::Release,
                OnExhausted::Destination => QueueExhausted::Destination,
                OnExhausted::DeadLetter => QueueExhausted::DeadLetter,
            },
            ..Default::default()
        })
    }

    /// Checks every rule without IO; pushes one message per problem, each naming the
    /// mapping, the key and what is allowed.
    pub fn validate(&self, now_ms: i64, errors: &mut Vec<String>) {
        let mut err = |key: &str, msg: String| errors.push(format!("mapping {:?}: {key} {msg}", self.name));
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            err("name", format!("= {:?} must be non-empty and use only A-Z a-z 0-9 - _", self.name));
        }
        let stream = self.family() == Family::Stream;
        let queue_only = |key: &str| format!("applies to queue sources only (source type {:?} is a stream)", key);
        let stream_only = |t: &str| format!("applies to stream sources only (source type {t:?} is a queue)");
        let t = self.source.type_name();

        if let Some(b) = self.batch_size {
            if !(1..=10_000).contains(&b) {
                err("batch_size", format!("= {b} is out of range (1–10000)"));
            }
        }
        if let Some(w) = self.maximum_batching_window_in_seconds {
            if !(0.0..=300.0).contains(&w) {
                err("maximum_batching_window_in_seconds", format!("= {w} is out of range (0–300)"));
            }
        }
        if self.source.sqs_like() && self.batch_size.unwrap_or(10) > 10 && self.maximum_batching_window_in_seconds.unwrap_or(0.0) < 1.0 {
            err("batch_size", format!("= {} needs maximum_batching_window_in_seconds ≥ 1 (batch sizes over 10, as AWS requires for SQS)", self.batch_size.unwrap_or(0)));
        }
        if let Some(p) = self.max_payload_bytes {
            if !(1..=MAX_PAYLOAD_BYTES).contains(&p) {
                err("max_payload_bytes", format!("= {p} is out of range (1–{MAX_PAYLOAD_BYTES})"));
            }
        }
        for t in &self.function_response_types {
            if t != "ReportBatchItemFailures" {
                err("function_response_types", format!("contains {t:?}; the only allowed value is \"ReportBatchItemFailures\""));
            }
        }
        if let Some(r) = self.maximum_retry_attempts {
            if !(-1..=10_000).contains(&r) {
                err("maximum_retry_attempts", format!("= {r} is out of range (-1–10000)"));
            }
        }
        if let Some(d) = &self.destination_config {
            if let Some(of) = &d.on_failure {
                if let Err(e) = DestinationKind::parse(&of.destination) {
                    err("destination_config.on_failure.destination", format!("is invalid: {e}"));
                }
            }
        }
        let patterns = self.filter_patterns();
        if !patterns.is_empty() {
            if let Err(e) = esmd_filter::FilterCriteria::compile(&patterns) {
                err("filter_criteria", format!("is invalid: {e}"));
            }
        }
        let f = &self.function;
        if !(1..=900).contains(&f.timeout_seconds()) {
            err("function.timeout_seconds", format!("= {} is out of range (1–900)", f.timeout_seconds()));
        }
        if f.max_concurrency() == 0 {
            err("function.max_concurrency", "must be at least 1".into());
        }

        if stream {
            if let Some(p) = self.parallelization_factor {
                if !(1..=10).contains(&p) {
                    err("parallelization_factor", format!("= {p} is out of range (1–10)"));
                }
            }
            if let Some(a) = self.maximum_record_age_in_seconds {
                if a != -1 && !(60..=604_800).contains(&a) {
                    err("maximum_record_age_in_seconds", format!("= {a} is out of range (-1, or 60–604800)"));
                }
            }
            if let Some(w) = self.tumbling_window_in_seconds {
                if w > 900 {
                    err("tumbling_window_in_seconds", format!("= {w} is out of range (0–900)"));
                } else if w > 0 {
                    // Accepting it and ignoring it would hand a windowed function plain batches.
                    err("tumbling_window_in_seconds", format!("= {w}: tumbling windows are not supported in this build yet (only 0)"));
                }
            }
            match (self.starting_position, &self.starting_position_timestamp) {
                (None, _) => err("starting_position", "is required for stream sources (TRIM_HORIZON, LATEST or AT_TIMESTAMP)".into()),
                (Some(StartingPosition::AtTimestamp), None) => err("starting_position_timestamp", "is required with AT_TIMESTAMP".into()),
                (Some(StartingPosition::AtTimestamp), Some(ts)) => match ts.to_ms() {
                    Ok(ms) if ms > now_ms => err("starting_position_timestamp", "is in the future".into()),
                    Ok(_) => {}
                    Err(e) => err("starting_position_timestamp", e),
                },
                (Some(_), Some(_)) => err("starting_position_timestamp", "is only allowed with AT_TIMESTAMP".into()),
                _ => {}
            }
            if self.scaling_config.is_some() {
                err("scaling_config", queue_only(t));
            }
            if self.on_exhausted.is_some() {
                err("on_exhausted", queue_only(t));
            }
        } else {
            for (set, key) in [
                (self.parallelization_factor.is_some(), "parallelization_factor"),
                (self.starting_position.is_some(), "starting_position"),
                (self.starting_position_timestamp.is_some(), "starting_position_timestamp"),
                (self.maximum_record_age_in_seconds.is_some(), "maximum_record_age_in_seconds"),
                (self.bisect_batch_on_function_error.is_some(), "bisect_batch_on_function_error"),
                (self.tumbling_window_in_seconds.is_some(), "tumbling_window_in_seconds"),
            ] {
                if set {
                    err(key, stream_only(t));
                }
            }
            if let Some(c) = self.scaling_config.as_ref().and_then(|s| s.maximum_concurrency) {
                if !(2..=1000).contains(&c) {
                    err("scaling_config.maximum_concurrency", format!("= {c} is out of range (2–1000)"));
                }
            }
            if self.on_exhausted == Some(OnExhausted::Destination) && self.destination_config.as_ref().and_then(|d| d.on_failure.as_ref()).is_none() {
                err("on_exhausted", "= \"destination\" needs destination_config.on_failure.destination".into());
            }
        }
    }
}
