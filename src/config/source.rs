//! `[mappings.source]`: where records come from, selected by `type`.
//!
//! Each source type has its own struct and a [`SourceProfile`]: whether it is a stream or a
//! queue, its AWS defaults, and which parameters apply. Adding a connector (kafka, rabbitmq,
//! sqs, kinesis, dynamodb_streams) means: a config struct in the connector crate (serde,
//! `deny_unknown_fields`, credentials as [`super::Secret`]), a variant of [`SourceConfig`], an arm
//! in [`SourceConfig::parse`], [`SourceConfig::profile`] and [`SourceConfig::validate`], and
//! removing its name from [`PLANNED`]. The planned types already have their profiles, so the
//! parameter rules of their example configs are checked today.

use super::error::Issue;
use super::parse::{deserialize_at, join};
use super::validate::{check_name, range};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The two families of DESIGN §2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Ordered logs: Kinesis, DynamoDB Streams, Kafka, the memory stream.
    Stream,
    /// Queues: SQS, RabbitMQ, the memory queue.
    Queue,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Stream => "stream",
            Family::Queue => "queue",
        }
    }
}

/// What a source type implies for the mapping's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceProfile {
    /// The `type` value.
    pub type_name: &'static str,
    pub family: Family,
    /// AWS: 100 for Kinesis, DynamoDB, Kafka, MQ; 10 for SQS.
    pub default_batch_size: u32,
    /// 10000, except SQS FIFO: 10.
    pub max_batch_size: u32,
    /// Why the maximum is lower than 10000, for the message (`"a FIFO queue"`).
    pub max_batch_size_reason: Option<&'static str>,
    /// AWS: 0, except Kafka and MQ: 500 ms.
    pub default_window: Duration,
    /// SQS's rule: a batch_size above 10 needs a batching window of at least 1 s.
    pub batch_over_10_needs_window: bool,
    pub supports_at_timestamp: bool,
    pub supports_parallelization: bool,
    /// Kinesis and DynamoDB only.
    pub supports_tumbling_window: bool,
    /// `scaling_config.maximum_concurrency` (SQS; RabbitMQ too, beyond AWS's one consumer).
    pub supports_scaling_config: bool,
    /// A destination kind (`kafka`, `rabbitmq`) that only works on this source's own broker.
    pub broker_destination: Option<&'static str>,
}

impl SourceProfile {
    const fn stream(type_name: &'static str) -> Self {
        SourceProfile {
            type_name,
            family: Family::Stream,
            default_batch_size: 100,
            max_batch_size: 10_000,
            max_batch_size_reason: None,
            default_window: Duration::ZERO,
            batch_over_10_needs_window: false,
            supports_at_timestamp: true,
            supports_parallelization: true,
            supports_tumbling_window: true,
            supports_scaling_config: false,
            broker_destination: None,
        }
    }

    const fn queue(type_name: &'static str) -> Self {
        SourceProfile { family: Family::Queue, supports_parallelization: false, supports_tumbling_window: false, supports_at_timestamp: false, ..SourceProfile::stream(type_name) }
    }

    /// SQS and its stand-in: batch 10 by default, 10 at most for FIFO, the window rule.
    const fn sqs_like(type_name: &'static str, fifo: bool) -> Self {
        SourceProfile {
            default_batch_size: 10,
            max_batch_size: if fifo { 10 } else { 10_000 },
            max_batch_size_reason: if fifo { Some("a FIFO queue") } else { None },
            batch_over_10_needs_window: true,
            supports_scaling_config: true,
            ..SourceProfile::queue(type_name)
        }
    }

    /// The profile of a source type that has no connector in this build yet.
    pub fn planned(type_name: &str) -> Option<SourceProfile> {
        Some(match type_name {
            "kafka" => KAFKA,
            "kinesis" => KINESIS,
            "dynamodb_streams" => DYNAMODB_STREAMS,
            "sqs" => SourceProfile::sqs_like("sqs", false),
            "rabbitmq" => RABBITMQ,
            _ => return None,
        })
    }
}

/// RabbitMQ: AWS's MQ defaults (batch 100, 0.5 s window). AWS runs one consumer per mapping;
/// esmd runs up to `scaling_config.maximum_concurrency` batches unless the source is `ordered`.
const RABBITMQ: SourceProfile = SourceProfile {
    default_batch_size: 100,
    default_window: Duration::from_millis(500),
    supports_scaling_config: true,
    broker_destination: Some("rabbitmq"),
    ..SourceProfile::queue("rabbitmq")
};

/// Kafka: AWS's 0.5 s default window, no tumbling windows, `kafka://` destinations; the
/// parallelization factor is esmd's own (per-key order within a partition).
const KAFKA: SourceProfile = SourceProfile {
    default_window: Duration::from_millis(500),
    supports_tumbling_window: false,
    broker_destination: Some("kafka"),
    ..SourceProfile::stream("kafka")
};

/// Kinesis: AWS's stream defaults (batch 100, no window), every starting position.
const KINESIS: SourceProfile = SourceProfile::stream("kinesis");

/// DynamoDB Streams: as Kinesis, but AT_TIMESTAMP is refused (as CreateEventSourceMapping does).
const DYNAMODB_STREAMS: SourceProfile = SourceProfile { supports_at_timestamp: false, ..SourceProfile::stream("dynamodb_streams") };

/// Connector source types and whether this build has them (cargo features).
const CONNECTORS: &[(&str, bool)] = &[
    ("kafka", cfg!(feature = "kafka")),
    ("rabbitmq", cfg!(feature = "rabbitmq")),
    ("sqs", cfg!(feature = "sqs")),
    ("kinesis", cfg!(feature = "kinesis")),
    ("dynamodb_streams", cfg!(feature = "dynamodb-streams")),
];

/// Source types with a profile but no connector in this build.
pub fn planned() -> Vec<&'static str> {
    CONNECTORS.iter().filter(|(_, built)| !built).map(|(t, _)| *t).collect()
}

/// Source types this build can run.
pub fn available() -> Vec<&'static str> {
    ["memory", "memory_queue"].into_iter().chain(CONNECTORS.iter().filter(|(_, built)| *built).map(|(t, _)| *t)).collect()
}

#[derive(Clone, Debug, PartialEq)]
pub enum SourceConfig {
    /// `type = "memory"`: an in-memory, Kinesis-shaped stream.
    Memory(MemorySource),
    /// `type = "memory_queue"`: an in-memory, SQS-shaped queue.
    MemoryQueue(MemoryQueueSource),
    /// `type = "kafka"`: a topic read by a consumer group.
    #[cfg(feature = "kafka")]
    Kafka(Box<esmd_kafka::KafkaSourceConfig>),
    /// `type = "rabbitmq"`: one queue, consumed with manual acks.
    #[cfg(feature = "rabbitmq")]
    RabbitMq(Box<esmd_rabbitmq::RabbitMqSourceConfig>),
    /// `type = "sqs"`: one SQS queue, long-polled.
    #[cfg(feature = "sqs")]
    Sqs(Box<esmd_sqs::SqsSourceConfig>),
    /// `type = "kinesis"`: a Kinesis data stream.
    #[cfg(feature = "kinesis")]
    Kinesis(Box<esmd_kinesis::KinesisSourceConfig>),
    /// `type = "dynamodb_streams"`: a DynamoDB table's stream.
    #[cfg(feature = "dynamodb-streams")]
    DynamoDbStreams(Box<esmd_dynamodb_streams::DynamoDbStreamsSourceConfig>),
}

/// `type = "memory"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySource {
    /// Appears in the stand-in stream ARN (`arn:aws:kinesis:<region>:<account>:stream/<name>`).
    pub stream_name: String,
    #[serde(default = "one")]
    pub shards: usize,
    /// Records written before the mapping starts (demo and load tests).
    #[serde(default)]
    pub seed: Option<Seed>,
}

/// `seed = { records, record_bytes, keys, poison_every }`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    pub records: usize,
    /// Size of each record's data.
    #[serde(default = "default_record_bytes")]
    pub record_bytes: usize,
    /// Distinct partition keys, spread over the shards.
    #[serde(default = "default_keys")]
    pub keys: usize,
    /// Every Nth record is poison (the demo function fails batches holding one); 0 = none.
    #[serde(default)]
    pub poison_every: usize,
}

/// `type = "memory_queue"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryQueueSource {
    /// SQS naming: FIFO queue names end in `.fifo`.
    pub queue_name: String,
    #[serde(default)]
    pub fifo: bool,
    #[serde(default = "default_visibility")]
    pub visibility_timeout_seconds: u64,
}

fn one() -> usize {
    1
}
fn default_record_bytes() -> usize {
    100
}
fn default_keys() -> usize {
    100
}
fn default_visibility() -> u64 {
    30
}

/// What a `[mappings.source]` table turned out to be.
pub(crate) enum ParsedSource {
    Available(SourceConfig),
    /// A known type whose connector is not in this build: the mapping's parameters can still
    /// be checked against its profile.
    Planned(SourceProfile),
    /// The table is wrong; when its type is known, the mapping's parameters can still be
    /// checked against that type's profile.
    Broken(Issue, Option<SourceProfile>),
}

impl SourceConfig {
    pub fn type_name(&self) -> &'static str {
        self.profile().type_name
    }

    pub fn family(&self) -> Family {
        self.profile().family
    }

    pub fn profile(&self) -> SourceProfile {
        match self {
            SourceConfig::Memory(_) => SourceProfile::stream("memory"),
            SourceConfig::MemoryQueue(q) => SourceProfile::sqs_like("memory_queue", q.fifo),
            #[cfg(feature = "kafka")]
            SourceConfig::Kafka(_) => KAFKA,
            #[cfg(feature = "rabbitmq")]
            SourceConfig::RabbitMq(_) => RABBITMQ,
            #[cfg(feature = "sqs")]
            SourceConfig::Sqs(q) => SourceProfile::sqs_like("sqs", q.is_fifo()),
            #[cfg(feature = "kinesis")]
            SourceConfig::Kinesis(_) => KINESIS,
            #[cfg(feature = "dynamodb-streams")]
            SourceConfig::DynamoDbStreams(_) => DYNAMODB_STREAMS,
        }
    }

    /// Reads a source table found at absolute path `at`.
    pub(crate) fn parse(value: Value, at: &str) -> ParsedSource {
        let (type_name, rest) = match super::parse::split_tagged(value, at, None) {
            Ok(split) => split,
            Err(issue) => return ParsedSource::Broken(issue, None),
        };
        let fifo = rest.get("fifo").and_then(Value::as_bool).unwrap_or(false)
            || rest.get("queue_url").and_then(Value::as_str).is_some_and(|u| u.trim_end_matches('/').ends_with(".fifo"));
        let parsed = match type_name.as_str() {
            "memory" => (deserialize_at(rest, at).map(SourceConfig::Memory), SourceProfile::stream("memory")),
            "memory_queue" => (deserialize_at(rest, at).map(SourceConfig::MemoryQueue), SourceProfile::sqs_like("memory_queue", fifo)),
            #[cfg(feature = "kafka")]
            "kafka" => (deserialize_at(rest, at).map(|k| SourceConfig::Kafka(Box::new(k))), KAFKA),
            #[cfg(feature = "rabbitmq")]
            "rabbitmq" => (deserialize_at(rest, at).map(|r| SourceConfig::RabbitMq(Box::new(r))), RABBITMQ),
            #[cfg(feature = "sqs")]
            "sqs" => (deserialize_at(rest, at).map(|q| SourceConfig::Sqs(Box::new(q))), SourceProfile::sqs_like("sqs", fifo)),
            #[cfg(feature = "kinesis")]
            "kinesis" => (deserialize_at(rest, at).map(|k| SourceConfig::Kinesis(Box::new(k))), KINESIS),
            #[cfg(feature = "dynamodb-streams")]
            "dynamodb_streams" => (deserialize_at(rest, at).map(|d| SourceConfig::DynamoDbStreams(Box::new(d))), DYNAMODB_STREAMS),
            other => {
                return match SourceProfile::planned(other) {
                    Some(profile) => ParsedSource::Planned(profile),
                    None => ParsedSource::Broken(
                        super::parse::keyed(
                            &join(at, "type"),
                            format!("unknown source type {other:?} (available: {}; planned: {})", available().join(", "), planned().join(", ")),
                        ),
                        None,
                    ),
                };
            }
        };
        match parsed {
            (Ok(source), _) => ParsedSource::Available(source),
            (Err(issue), profile) => ParsedSource::Broken(issue, Some(profile)),
        }
    }

    /// Rules of the source's own keys. Paths are relative to the mapping.
    pub(crate) fn validate(&self, issues: &mut Vec<Issue>) {
        match self {
            SourceConfig::Memory(s) => {
                // Kinesis stream naming, since the name ends up in a Kinesis-shaped ARN.
                check_name(issues, "source.stream_name", &s.stream_name, 128, "A-Za-z0-9_.-", |c| c.is_ascii_alphanumeric() || "_.-".contains(c));
                range(issues, "source.shards", s.shards as i128, 1, 1024);
                if let Some(seed) = &s.seed {
                    range(issues, "source.seed.records", seed.records as i128, 0, 10_000_000);
                    // Kinesis' record limit.
                    range(issues, "source.seed.record_bytes", seed.record_bytes as i128, 1, 1_048_576);
                    range(issues, "source.seed.keys", seed.keys as i128, 1, 1_000_000);
                }
            }
            SourceConfig::MemoryQueue(q) => {
                check_name(issues, "source.queue_name", &q.queue_name, 80, "A-Za-z0-9_-, plus .fifo", |c| c.is_ascii_alphanumeric() || "_-.".contains(c));
                let base = q.queue_name.strip_suffix(".fifo").unwrap_or(&q.queue_name);
                if base.contains('.') {
                    issues.push(Issue::new("source.queue_name", format!("source.queue_name = {:?}: only a final \".fifo\" may contain a dot", q.queue_name)));
                }
                match (q.fifo, q.queue_name.ends_with(".fifo")) {
                    (true, false) => issues.push(Issue::new(
                        "source.queue_name",
                        format!("source.queue_name = {:?}: a FIFO queue's name ends in \".fifo\" (as in SQS)", q.queue_name),
                    )),
                    (false, true) => issues.push(Issue::new(
                        "source.fifo",
                        format!("source.queue_name = {:?} ends in \".fifo\": set source.fifo = true", q.queue_name),
                    )),
                    _ => {}
                }
                // SQS' range.
                range(issues, "source.visibility_timeout_seconds", q.visibility_timeout_seconds as i128, 0, 43_200);
            }
            #[cfg(feature = "kafka")]
            SourceConfig::Kafka(k) => issues.extend(k.validate().into_iter().map(|i| Issue::new(&i.path, i.message))),
            #[cfg(feature = "rabbitmq")]
            SourceConfig::RabbitMq(r) => issues.extend(r.validate().into_iter().map(|i| Issue::new(&i.path, i.message))),
            #[cfg(feature = "sqs")]
            SourceConfig::Sqs(q) => issues.extend(q.validate().into_iter().map(|i| Issue::new(&i.path, i.message))),
            #[cfg(feature = "kinesis")]
            SourceConfig::Kinesis(k) => issues.extend(k.validate().into_iter().map(|i| Issue::new(&i.path, i.message))),
            #[cfg(feature = "dynamodb-streams")]
            SourceConfig::DynamoDbStreams(d) => issues.extend(d.validate().into_iter().map(|i| Issue::new(&i.path, i.message))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<SourceConfig, Issue> {
        match SourceConfig::parse(v, "mappings[0].source") {
            ParsedSource::Available(s) => Ok(s),
            ParsedSource::Broken(issue, _) => Err(issue),
            ParsedSource::Planned(p) => panic!("planned {p:?}"),
        }
    }

    #[test]
    fn defaults() {
        let SourceConfig::Memory(m) = parse(json!({"type": "memory", "stream_name": "s"})).unwrap() else { panic!() };
        assert_eq!(m, MemorySource { stream_name: "s".into(), shards: 1, seed: None });
        let SourceConfig::MemoryQueue(q) = parse(json!({"type": "memory_queue", "queue_name": "q"})).unwrap() else { panic!() };
        assert_eq!(q, MemoryQueueSource { queue_name: "q".into(), fifo: false, visibility_timeout_seconds: 30 });
        let SourceConfig::Memory(m) = parse(json!({"type": "memory", "stream_name": "s", "seed": {"records": 5}})).unwrap() else { panic!() };
        assert_eq!(m.seed, Some(Seed { records: 5, record_bytes: 100, keys: 100, poison_every: 0 }));
    }

    #[test]
    fn profiles_carry_aws_defaults() {
        let memory = parse(json!({"type": "memory", "stream_name": "s"})).unwrap().profile();
        assert_eq!((memory.family, memory.default_batch_size, memory.default_window), (Family::Stream, 100, Duration::ZERO));
        let queue = parse(json!({"type": "memory_queue", "queue_name": "q"})).unwrap().profile();
        assert_eq!((queue.family, queue.default_batch_size, queue.max_batch_size), (Family::Queue, 10, 10_000));
        assert!(queue.batch_over_10_needs_window);
        let fifo = parse(json!({"type": "memory_queue", "queue_name": "q.fifo", "fifo": true})).unwrap().profile();
        assert_eq!(fifo.max_batch_size, 10);

        let p = |t| SourceProfile::planned(t).unwrap();
        assert_eq!((p("kafka").default_batch_size, p("kafka").default_window), (100, Duration::from_millis(500)));
        assert_eq!((p("rabbitmq").default_batch_size, p("rabbitmq").default_window), (100, Duration::from_millis(500)));
        assert_eq!((p("sqs").default_batch_size, p("sqs").default_window), (10, Duration::ZERO));
        assert_eq!((p("kinesis").default_batch_size, p("dynamodb_streams").default_window), (100, Duration::ZERO));
        assert!(!p("dynamodb_streams").supports_at_timestamp);
        assert!(!p("kafka").supports_tumbling_window && p("kinesis").supports_tumbling_window);
        assert_eq!(p("rabbitmq").family, Family::Queue);
        assert!(planned().iter().chain(available().iter().skip(2)).all(|t| SourceProfile::planned(t).is_some()));
        assert!(SourceProfile::planned("memory").is_none());
    }

    #[test]
    fn unknown_keys_and_types_name_the_path() {
        let e = parse(json!({"type": "memory", "stream_name": "s", "shard": 2})).unwrap_err();
        assert_eq!(e.path, "mappings[0].source.shard");
        assert!(e.message.starts_with("source.shard: unknown field `shard`"), "{}", e.message);
        let e = parse(json!({"type": "memory", "stream_name": "s", "seed": {"records": 1, "poison": 3}})).unwrap_err();
        assert_eq!(e.path, "mappings[0].source.seed.poison");
        let e = parse(json!({"type": "mqtt"})).unwrap_err();
        assert_eq!(e.path, "mappings[0].source.type");
        assert!(e.message.contains("unknown source type \"mqtt\"") && e.message.contains("memory_queue"), "{}", e.message);
        let e = parse(json!({"stream_name": "s"})).unwrap_err();
        assert!(e.message.contains("type"), "{}", e.message);
        #[cfg(not(feature = "kinesis"))]
        assert!(matches!(SourceConfig::parse(json!({"type": "kinesis", "stream_arn": "a"}), "s"), ParsedSource::Planned(p) if p.type_name == "kinesis"));
        #[cfg(feature = "sqs")]
        assert!(matches!(
            SourceConfig::parse(json!({"type": "sqs", "queue_url": "http://h/1/q.fifo", "x": 1}), "s"),
            ParsedSource::Broken(_, Some(p)) if p.max_batch_size == 10
        ));
        // A broken kafka table still tells its profile (AWS's 0.5 s window).
        #[cfg(feature = "kafka")]
        assert!(matches!(
            SourceConfig::parse(json!({"type": "kafka", "topic": "t"}), "s"),
            ParsedSource::Broken(_, Some(p)) if p.default_window == Duration::from_millis(500)
        ));
        // A broken table of a known type still tells its profile.
        assert!(matches!(
            SourceConfig::parse(json!({"type": "memory_queue", "fifo": true, "x": 1}), "s"),
            ParsedSource::Broken(_, Some(p)) if p.max_batch_size == 10
        ));
    }

    #[test]
    fn own_rules() {
        let check = |v: Value| {
            let mut issues = Vec::new();
            parse(v).unwrap().validate(&mut issues);
            issues.into_iter().map(|i| i.message).collect::<Vec<_>>()
        };
        assert!(check(json!({"type": "memory", "stream_name": "s", "shards": 4, "seed": {"records": 10}})).is_empty());
        assert_eq!(check(json!({"type": "memory", "stream_name": "s", "shards": 0})), ["source.shards = 0 is out of range (1–1024)"]);
        assert!(check(json!({"type": "memory", "stream_name": "a b"}))[0].contains("source.stream_name"));
        assert_eq!(check(json!({"type": "memory", "stream_name": "s", "seed": {"records": 1, "keys": 0}})), ["source.seed.keys = 0 is out of range (1–1000000)"]);
        assert!(check(json!({"type": "memory_queue", "queue_name": "q.fifo", "fifo": true})).is_empty());
        assert!(check(json!({"type": "memory_queue", "queue_name": "q", "fifo": true}))[0].contains("ends in \".fifo\""));
        assert!(check(json!({"type": "memory_queue", "queue_name": "q.fifo"}))[0].contains("source.fifo = true"));
        assert_eq!(
            check(json!({"type": "memory_queue", "queue_name": "q", "visibility_timeout_seconds": 50000})),
            ["source.visibility_timeout_seconds = 50000 is out of range (0–43200)"]
        );
    }
}
