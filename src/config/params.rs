//! AWS's event source mapping parameters (CreateEventSourceMapping, in snake_case) plus
//! esmd's extras: the keys of a `[[mappings]]` table beside `name`, `source` and `function`.
//! A leaf of the config module: the rules (`validate`) and the mapping (`mapping`) read it.

use crate::engine::settings::QueueExhausted;
use esmd_api::destination::DestinationKind;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// AWS's event source mapping parameters (CreateEventSourceMapping, in snake_case) plus esmd's
/// extras. `None` = not in the file: the source's default applies (see the resolved settings).
/// Numbers are read wide so an out-of-range value gets a range message, not a type error.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingParams {
    /// 1–10000 (SQS FIFO: 10). Default 100; SQS 10.
    pub batch_size: Option<i64>,
    /// 0–300 s. Default 0; Kafka and MQ 0.5 s.
    pub maximum_batching_window_in_seconds: Option<f64>,
    /// Streams: 1–10, default 1.
    pub parallelization_factor: Option<i64>,
    /// Streams: required.
    pub starting_position: Option<StartingPosition>,
    /// With AT_TIMESTAMP: RFC 3339 text (or a TOML datetime), or epoch seconds.
    pub starting_position_timestamp: Option<StartingPositionTimestamp>,
    /// Streams: -1 (never) or 60–604800. Default -1.
    pub maximum_record_age_in_seconds: Option<i64>,
    /// -1 (until the record expires) to 10000. Default -1. On queues (beyond AWS) it counts
    /// deliveries before `on_exhausted` applies.
    pub maximum_retry_attempts: Option<i64>,
    /// Streams. Default false.
    pub bisect_batch_on_function_error: Option<bool>,
    /// `[]` or `["ReportBatchItemFailures"]`.
    pub function_response_types: Option<Vec<FunctionResponseType>>,
    /// Up to 10 patterns of up to 4096 characters, ORed.
    pub filter_criteria: Option<FilterCriteriaConfig>,
    pub destination_config: Option<DestinationConfig>,
    /// Kinesis, DynamoDB: 0–900. Default 0 (off); only 0 until the engine runs windows.
    pub tumbling_window_in_seconds: Option<i64>,
    /// Queues (SQS): `maximum_concurrency` 2–1000.
    pub scaling_config: Option<ScalingConfig>,
    /// esmd: largest encoded event, at most 6 MB (the synchronous invoke limit).
    pub max_payload_bytes: Option<i64>,
    /// esmd, queues: what happens to a message whose retries are used up. Default `release`.
    pub on_exhausted: Option<OnExhausted>,
    /// esmd: at most this many invocations per second for the whole mapping (every shard,
    /// lane and retry counted). Default: no limit.
    pub max_invocations_per_second: Option<f64>,
    /// esmd, streams: bytes of records read and not yet finished, across all the mapping's
    /// shards. Default: `engine::settings::default_read_ahead` of the batch size and the
    /// function's concurrency.
    pub max_read_ahead_bytes: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    AtTimestamp,
}

impl StartingPosition {
    pub fn as_str(self) -> &'static str {
        match self {
            StartingPosition::TrimHorizon => "TRIM_HORIZON",
            StartingPosition::Latest => "LATEST",
            StartingPosition::AtTimestamp => "AT_TIMESTAMP",
        }
    }
}

/// Milliseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartingPositionTimestamp(pub i64);

impl<'de> Deserialize<'de> for StartingPositionTimestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(deserializer)?;
        let seconds = match &value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    let t = chrono::DateTime::parse_from_rfc3339(s.trim()).map_err(|e| {
                        D::Error::custom(format!("{s:?} is not an RFC 3339 timestamp with a UTC offset (like 2024-05-01T00:00:00Z) nor epoch seconds: {e}"))
                    })?;
                    return Ok(StartingPositionTimestamp(t.timestamp_millis()));
                }
            },
            other => return Err(D::Error::custom(format!("expected RFC 3339 text or epoch seconds, found {other}"))),
        };
        match seconds {
            // Up to year ~9999; anything beyond is a typo (milliseconds given as seconds?).
            Some(s) if s.is_finite() && (0.0..=253_402_300_799.0).contains(&s) => Ok(StartingPositionTimestamp((s * 1000.0).round() as i64)),
            _ => Err(D::Error::custom(format!("{value} is not a time: epoch seconds must be between 0 and 253402300799"))),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum FunctionResponseType {
    ReportBatchItemFailures,
}

/// `filter_criteria = { filters = [ { pattern = "..." } ] }`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterCriteriaConfig {
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    pub pattern: FilterPattern,
}

/// An EventBridge pattern as JSON text. The file may give it as a string (as AWS's API does)
/// or as a table, which is turned into its JSON text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterPattern(pub String);

impl<'de> Deserialize<'de> for FilterPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(deserializer)? {
            Value::String(s) => Ok(FilterPattern(s)),
            table @ Value::Object(_) => Ok(FilterPattern(table.to_string())),
            other => Err(D::Error::custom(format!("expected a JSON pattern (text or table), found {other}"))),
        }
    }
}

/// `destination_config = { on_failure = { destination = "..." } }`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    #[serde(default)]
    pub on_failure: Option<OnFailureConfig>,
}

#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnFailureConfig {
    pub destination: DestinationKind,
    /// The broker of a `rabbitmq://` destination when it is not the source's own (any
    /// mapping may send its failures to RabbitMQ). Kept as written: the connector that
    /// delivers there reads and checks it.
    #[serde(default)]
    pub connection: Option<Value>,
    /// An emulator (LocalStack, moto) serving an `arn:aws:sqs`, `arn:aws:sns` or
    /// `arn:aws:s3` destination, like `function.endpoint_url` for a Lambda function.
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

impl std::fmt::Debug for OnFailureConfig {
    // By hand: `connection` is kept as written, so its password is a plain string here.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let connection = self.connection.as_ref().map(|c| {
            let mut c = c.clone();
            if let Some(password) = c.get_mut("password") {
                *password = Value::String("***".into());
            }
            c
        });
        f.debug_struct("OnFailureConfig")
            .field("destination", &self.destination)
            .field("connection", &connection)
            .field("endpoint_url", &self.endpoint_url)
            .finish()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingConfig {
    #[serde(default)]
    pub maximum_concurrency: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExhausted {
    /// Back to the queue; its redrive/dead-letter policy decides (AWS's behaviour).
    Release,
    /// A failure record to destination_config.on_failure, then ack.
    Destination,
    /// Reject without requeue, to the queue's dead-letter exchange.
    DeadLetter,
}

impl OnExhausted {
    pub fn as_str(self) -> &'static str {
        match self {
            OnExhausted::Release => "release",
            OnExhausted::Destination => "destination",
            OnExhausted::DeadLetter => "dead_letter",
        }
    }
}

impl From<OnExhausted> for QueueExhausted {
    fn from(value: OnExhausted) -> Self {
        match value {
            OnExhausted::Release => QueueExhausted::Release,
            OnExhausted::Destination => QueueExhausted::Destination,
            OnExhausted::DeadLetter => QueueExhausted::DeadLetter,
        }
    }
}

impl MappingParams {
    pub fn on_failure_destination(&self) -> Option<&DestinationKind> {
        self.destination_config.as_ref()?.on_failure.as_ref().map(|f| &f.destination)
    }

    pub fn report_batch_item_failures(&self) -> bool {
        self.function_response_types.as_ref().is_some_and(|t| t.contains(&FunctionResponseType::ReportBatchItemFailures))
    }
}

