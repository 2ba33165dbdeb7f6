//! The parameter table: every key of an AWS event source mapping (API names, which
//! CloudFormation shares; SAM's own names are renamed before they get here), what esmd makes
//! of it, and the conversion of its value. Pure: no input, no output.

use super::model::text;
use super::source::SourceKind;
use serde_json::Value;

/// How a parameter's value is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Int,
    /// Seconds; esmd allows fractions.
    Number,
    Bool,
    /// `TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`.
    Position,
    /// Epoch seconds (CloudFormation, CLI v1) or ISO 8601 (CLI v2) → RFC 3339.
    Timestamp,
    /// `["ReportBatchItemFailures"]`.
    ResponseTypes,
    /// `{"Filters": [{"Pattern": "..."}]}`.
    Filters,
    /// `{"OnFailure": {"Destination": "..."}, "OnSuccess": {...}}`.
    Destination,
    /// `{"MaximumConcurrency": n}`.
    Scaling,
}

/// Which sources a parameter means something for (AWS's rules, which esmd's validation
/// shares).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Applies {
    All,
    /// Kinesis, DynamoDB Streams, Kafka (MSK and self-managed).
    Streams,
    /// Kinesis and DynamoDB Streams only.
    KinesisDynamoDb,
    /// SQS; RabbitMQ too in esmd (AWS runs one consumer per MQ mapping).
    Queues,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Treatment {
    /// A `[[mappings]]` key of the same meaning.
    Param { key: &'static str, shape: Shape, applies: Applies },
    /// `UUID` → `uuid` (S3 failure objects are keyed by it, so they keep AWS's prefix).
    Uuid,
    /// `Enabled` → `enabled`.
    Enabled,
    /// `State` (API answers) → `enabled`.
    State,
    /// `FunctionName` / `FunctionArn` → `[mappings.function]`.
    Function,
    /// Read into `[mappings.source]` (see `source`).
    Source,
    /// Not supported by esmd: the reason, for the warning.
    Unsupported(&'static str),
    /// Read-only fields of an API answer: the mapping's state, not its configuration.
    Status,
}

use Applies::*;
use Shape::*;
use Treatment::*;

pub(crate) const TABLE: &[(&str, Treatment)] = &[
    ("BatchSize", Param { key: "batch_size", shape: Int, applies: All }),
    ("MaximumBatchingWindowInSeconds", Param { key: "maximum_batching_window_in_seconds", shape: Number, applies: All }),
    ("StartingPosition", Param { key: "starting_position", shape: Position, applies: Streams }),
    ("StartingPositionTimestamp", Param { key: "starting_position_timestamp", shape: Timestamp, applies: Streams }),
    ("ParallelizationFactor", Param { key: "parallelization_factor", shape: Int, applies: Streams }),
    ("MaximumRecordAgeInSeconds", Param { key: "maximum_record_age_in_seconds", shape: Int, applies: Streams }),
    ("MaximumRetryAttempts", Param { key: "maximum_retry_attempts", shape: Int, applies: Streams }),
    ("BisectBatchOnFunctionError", Param { key: "bisect_batch_on_function_error", shape: Bool, applies: Streams }),
    ("DestinationConfig", Param { key: "destination_config", shape: Destination, applies: Streams }),
    ("FunctionResponseTypes", Param { key: "function_response_types", shape: ResponseTypes, applies: All }),
    ("FilterCriteria", Param { key: "filter_criteria", shape: Filters, applies: All }),
    ("TumblingWindowInSeconds", Param { key: "tumbling_window_in_seconds", shape: Int, applies: KinesisDynamoDb }),
    ("ScalingConfig", Param { key: "scaling_config", shape: Scaling, applies: Queues }),
    ("UUID", Uuid),
    ("Enabled", Enabled),
    ("State", State),
    ("FunctionName", Function),
    ("FunctionArn", Function),
    ("EventSourceArn", Source),
    ("Topics", Source),
    ("Queues", Source),
    ("SourceAccessConfigurations", Source),
    ("SelfManagedEventSource", Source),
    ("AmazonManagedKafkaEventSourceConfig", Source),
    ("SelfManagedKafkaEventSourceConfig", Source),
    // SAM's flat names for the two above.
    ("KafkaBootstrapServers", Source),
    ("ConsumerGroupId", Source),
    ("KMSKeyArn", Unsupported("AWS encrypts the filter criteria with this key; esmd keeps them in its config file")),
    ("KmsKeyArn", Unsupported("AWS encrypts the filter criteria with this key; esmd keeps them in its config file")),
    ("MetricsConfig", Unsupported("esmd always serves its metrics at /metrics (Prometheus); there is no CloudWatch metrics selection")),
    ("ProvisionedPollerConfig", Unsupported("provisioned pollers size AWS's poller fleet; esmd's throughput comes from parallelization_factor (streams) and scaling_config (queues)")),
    ("LoggingConfig", Unsupported("AWS's system log level of the mapping; esmd's log level is RUST_LOG")),
    ("Tags", Unsupported("esmd mappings have no tags")),
    // SAM's flat name for the Kafka configs' SchemaRegistryConfig.
    ("SchemaRegistryConfig", Source),
    ("DocumentDBEventSourceConfig", Unsupported("esmd has no DocumentDB source")),
    ("DynamicPolicyName", Unsupported("SAM uses it to write the function's IAM policy; esmd has no policy to write")),
    ("SecretsManagerKmsKeyId", Unsupported("SAM uses it to write the function's IAM policy; esmd has no policy to write")),
    ("EventSourceMappingArn", Status),
    ("LastModified", Status),
    ("LastProcessingResult", Status),
    ("StateTransitionReason", Status),
    ("FilterCriteriaError", Status),
    ("ResponseMetadata", Status),
];

pub(crate) fn treatment(key: &str) -> Option<Treatment> {
    TABLE.iter().find(|(k, _)| *k == key).map(|(_, t)| *t)
}

pub(crate) fn applies(a: Applies, kind: SourceKind) -> bool {
    match a {
        All => true,
        Streams => kind.is_stream(),
        KinesisDynamoDb => matches!(kind, SourceKind::Kinesis | SourceKind::DynamoDb),
        Queues => matches!(kind, SourceKind::Sqs | SourceKind::RabbitMq),
    }
}

/// AWS's "off" value of a parameter: an API answer lists it for every mapping, so leaving it
/// out where it does not apply loses nothing.
pub(crate) fn says_nothing(key: &str, value: &Value) -> bool {
    let empty_object = |v: &Value| v.as_object().is_some_and(|m| m.values().all(|v| v.is_null() || v.as_object().is_some_and(|m| m.is_empty())));
    match (key, value) {
        (_, Value::Null) => true,
        ("ParallelizationFactor", v) => v.as_i64() == Some(1),
        ("MaximumRecordAgeInSeconds" | "MaximumRetryAttempts", v) => v.as_i64() == Some(-1),
        ("BisectBatchOnFunctionError", v) => v.as_bool() == Some(false),
        ("TumblingWindowInSeconds", v) => v.as_i64() == Some(0),
        ("FunctionResponseTypes" | "Topics" | "Queues" | "SourceAccessConfigurations", v) => v.as_array().is_some_and(Vec::is_empty),
        ("DestinationConfig" | "ScalingConfig", v) => empty_object(v),
        ("FilterCriteria", v) => v.get("Filters").and_then(Value::as_array).is_none_or(Vec::is_empty),
        _ => false,
    }
}

/// A parameter's value in esmd's terms.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Converted {
    Value(toml::Value),
    Patterns(Vec<String>),
    Destinations { on_failure: Option<String>, on_success: Option<String> },
    /// An empty list or table: nothing to write.
    Nothing,
}

pub(crate) fn convert(shape: Shape, value: &Value) -> Result<Converted, String> {
    Ok(match shape {
        Int => Converted::Value(toml::Value::Integer(int(value)?)),
        Number => {
            let n = number(value)?;
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Converted::Value(toml::Value::Integer(n as i64))
            } else {
                Converted::Value(toml::Value::Float(n))
            }
        }
        Bool => Converted::Value(toml::Value::Boolean(boolean(value)?)),
        Position => {
            let s = value.as_str().ok_or_else(|| format!("expected TRIM_HORIZON, LATEST or AT_TIMESTAMP, found {value}"))?;
            if !matches!(s, "TRIM_HORIZON" | "LATEST" | "AT_TIMESTAMP") {
                return Err(format!("{s:?} is not TRIM_HORIZON, LATEST or AT_TIMESTAMP"));
            }
            Converted::Value(text(s))
        }
        Timestamp => Converted::Value(toml::Value::String(timestamp(value)?)),
        ResponseTypes => {
            let items = strings(value)?;
            if items.is_empty() {
                Converted::Nothing
            } else {
                Converted::Value(toml::Value::Array(items.iter().map(|s| text(s)).collect()))
            }
        }
        Filters => {
            let filters = match value.get("Filters") {
                None | Some(Value::Null) => return Ok(Converted::Nothing),
                Some(Value::Array(items)) => items,
                Some(other) => return Err(format!("Filters: expected a list, found {other}")),
            };
            let mut patterns = Vec::with_capacity(filters.len());
            for (i, filter) in filters.iter().enumerate() {
                match filter.get("Pattern") {
                    Some(Value::String(p)) => patterns.push(p.clone()),
                    // A template may write the pattern as YAML; AWS stores its JSON text.
                    Some(p @ Value::Object(_)) => patterns.push(p.to_string()),
                    _ => return Err(format!("Filters[{i}]: expected {{\"Pattern\": \"<JSON text>\"}}, found {filter}")),
                }
            }
            if patterns.is_empty() {
                Converted::Nothing
            } else {
                Converted::Patterns(patterns)
            }
        }
        Destination => {
            let target = |key: &str| -> Result<Option<String>, String> {
                match value.get(key).and_then(|d| d.get("Destination")) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) if s.is_empty() => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(other) => Err(format!("{key}.Destination: expected an ARN, found {other}")),
                }
            };
            let (on_failure, on_success) = (target("OnFailure")?, target("OnSuccess")?);
            if on_failure.is_none() && on_success.is_none() {
                Converted::Nothing
            } else {
                Converted::Destinations { on_failure, on_success }
            }
        }
        Scaling => match value.get("MaximumConcurrency") {
            None | Some(Value::Null) => Converted::Nothing,
            Some(n) => {
                let mut table = toml::Table::new();
                table.insert("maximum_concurrency".into(), toml::Value::Integer(int(n).map_err(|e| format!("MaximumConcurrency: {e}"))?));
                Converted::Value(toml::Value::Table(table))
            }
        },
    })
}

/// Integers; CloudFormation passes `!Ref` of a Number parameter as text.
pub(crate) fn int(value: &Value) -> Result<i64, String> {
    let n = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| format!("expected a whole number, found {value}"))
}

fn number(value: &Value) -> Result<f64, String> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    };
    n.ok_or_else(|| format!("expected a number, found {value}"))
}

fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(format!("expected true or false, found {other}")),
    }
}

pub(crate) fn strings(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!("expected text, found {other}")),
            })
            .collect(),
        other => Err(format!("expected a list, found {other}")),
    }
}

fn timestamp(value: &Value) -> Result<String, String> {
    use chrono::{DateTime, SecondsFormat, Utc};
    let from_seconds = |s: f64| -> Result<String, String> {
        if !(s.is_finite() && (0.0..=253_402_300_799.0).contains(&s)) {
            return Err(format!("{s} is not a time (epoch seconds)"));
        }
        DateTime::<Utc>::from_timestamp_millis((s * 1000.0).round() as i64)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            .ok_or_else(|| format!("{s} is not a time (epoch seconds)"))
    };
    match value {
        Value::Number(n) => from_seconds(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(seconds) => from_seconds(seconds),
            Err(_) => DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::AutoSi, true))
                .map_err(|e| format!("{s:?} is not an ISO 8601 time with an offset nor epoch seconds: {e}")),
        },
        other => Err(format!("expected epoch seconds or an ISO 8601 time, found {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(shape: Shape, v: Value) -> toml::Value {
        match convert(shape, &v) {
            Ok(Converted::Value(t)) => t,
            other => panic!("{v}: {other:?}"),
        }
    }

    #[test]
    fn every_key_is_in_the_table_once() {
        for (i, (key, _)) in TABLE.iter().enumerate() {
            assert!(TABLE[..i].iter().all(|(k, _)| k != key), "{key} twice");
        }
        assert_eq!(treatment("BatchSize"), Some(Param { key: "batch_size", shape: Int, applies: All }));
        assert_eq!(treatment("FunctionArn"), Some(Function));
        assert!(matches!(treatment("ProvisionedPollerConfig"), Some(Unsupported(_))));
        assert_eq!(treatment("Nope"), None);
        // esmd's keys exist: each one is a field of the mapping parameters.
        let keys: Vec<&str> = TABLE.iter().filter_map(|(_, t)| if let Param { key, .. } = t { Some(*key) } else { None }).collect();
        assert_eq!(keys.len(), 13);
    }

    #[test]
    fn which_sources_a_parameter_applies_to() {
        assert!(applies(Streams, SourceKind::Msk) && applies(Streams, SourceKind::Kinesis) && !applies(Streams, SourceKind::Sqs));
        assert!(applies(KinesisDynamoDb, SourceKind::DynamoDb) && !applies(KinesisDynamoDb, SourceKind::SelfManagedKafka));
        assert!(applies(Queues, SourceKind::RabbitMq) && !applies(Queues, SourceKind::Kinesis));
        assert!(says_nothing("ParallelizationFactor", &json!(1)) && !says_nothing("ParallelizationFactor", &json!(2)));
        assert!(says_nothing("DestinationConfig", &json!({"OnFailure": {}})));
        assert!(!says_nothing("DestinationConfig", &json!({"OnFailure": {"Destination": "arn:aws:sqs:r:1:q"}})));
        assert!(says_nothing("FunctionResponseTypes", &json!([])) && says_nothing("MaximumRetryAttempts", &json!(-1)));
        assert!(says_nothing("FilterCriteria", &json!({})) && !says_nothing("BatchSize", &json!(10)));
    }

    #[test]
    fn values_convert() {
        assert_eq!(value(Int, json!(10)), toml::Value::Integer(10));
        assert_eq!(value(Int, json!("25")), toml::Value::Integer(25));
        assert_eq!(value(Int, json!(5.0)), toml::Value::Integer(5));
        assert!(convert(Int, &json!(1.5)).is_err());
        assert_eq!(value(Number, json!(2)), toml::Value::Integer(2));
        assert_eq!(value(Number, json!(0.5)), toml::Value::Float(0.5));
        assert_eq!(value(Bool, json!("True")), toml::Value::Boolean(true));
        assert!(convert(Bool, &json!("yes")).is_err());
        assert_eq!(value(Position, json!("LATEST")), toml::Value::String("LATEST".into()));
        assert!(convert(Position, &json!("EARLIEST")).unwrap_err().contains("not TRIM_HORIZON"));
        assert_eq!(value(Timestamp, json!(1704067200)), toml::Value::String("2024-01-01T00:00:00Z".into()));
        assert_eq!(value(Timestamp, json!(1704067200.5)), toml::Value::String("2024-01-01T00:00:00.500Z".into()));
        assert_eq!(value(Timestamp, json!("2024-01-01T01:00:00+01:00")), toml::Value::String("2024-01-01T00:00:00Z".into()));
        assert!(convert(Timestamp, &json!("yesterday")).is_err());
        assert_eq!(convert(ResponseTypes, &json!([])).unwrap(), Converted::Nothing);
        assert_eq!(value(ResponseTypes, json!(["ReportBatchItemFailures"])), toml::Value::Array(vec![toml::Value::String("ReportBatchItemFailures".into())]));
    }

    #[test]
    fn structures_convert() {
        assert_eq!(
            convert(Filters, &json!({"Filters": [{"Pattern": "{\"body\": {\"a\": [1]}}"}, {"Pattern": {"data": {"b": ["x"]}}}]})).unwrap(),
            Converted::Patterns(vec!["{\"body\": {\"a\": [1]}}".into(), "{\"data\":{\"b\":[\"x\"]}}".into()])
        );
        assert_eq!(convert(Filters, &json!({"Filters": []})).unwrap(), Converted::Nothing);
        assert!(convert(Filters, &json!({"Filters": [{"pattern": "x"}]})).is_err());
        assert_eq!(
            convert(Destination, &json!({"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}, "OnSuccess": {}})).unwrap(),
            Converted::Destinations { on_failure: Some("arn:aws:sqs:us-east-1:123456789012:dlq".into()), on_success: None }
        );
        assert_eq!(convert(Destination, &json!({"OnFailure": {}})).unwrap(), Converted::Nothing);
        let mut t = toml::Table::new();
        t.insert("maximum_concurrency".into(), toml::Value::Integer(20));
        assert_eq!(value(Scaling, json!({"MaximumConcurrency": 20})), toml::Value::Table(t));
        assert_eq!(convert(Scaling, &json!({})).unwrap(), Converted::Nothing);
    }
}
