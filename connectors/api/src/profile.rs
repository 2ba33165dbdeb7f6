//! What a source type implies for a mapping's parameters: its family, AWS's defaults for it,
//! and which parameters apply. Each connector states its own profile.

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
    /// An ordered log with AWS's stream defaults (batch 100, no window, every parameter).
    pub const fn stream(type_name: &'static str) -> Self {
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

    /// A queue: no stream-only parameters.
    pub const fn queue(type_name: &'static str) -> Self {
        SourceProfile { family: Family::Queue, supports_parallelization: false, supports_tumbling_window: false, supports_at_timestamp: false, ..SourceProfile::stream(type_name) }
    }

    /// SQS and its stand-in: batch 10 by default, 10 at most for FIFO, the window rule.
    pub const fn sqs_like(type_name: &'static str, fifo: bool) -> Self {
        SourceProfile {
            default_batch_size: 10,
            max_batch_size: if fifo { 10 } else { 10_000 },
            max_batch_size_reason: if fifo { Some("a FIFO queue") } else { None },
            batch_over_10_needs_window: true,
            supports_scaling_config: true,
            ..SourceProfile::queue(type_name)
        }
    }
}

/// Kafka: AWS's 0.5 s default window, no tumbling windows, `kafka://` destinations; the
/// parallelization factor is esmd's own (per-key order within a partition).
pub const KAFKA: SourceProfile = SourceProfile {
    default_window: Duration::from_millis(500),
    supports_tumbling_window: false,
    broker_destination: Some("kafka"),
    ..SourceProfile::stream("kafka")
};

/// Kinesis: AWS's stream defaults (batch 100, no window), every starting position.
pub const KINESIS: SourceProfile = SourceProfile::stream("kinesis");

/// DynamoDB Streams: as Kinesis, but AT_TIMESTAMP is refused (as CreateEventSourceMapping does).
pub const DYNAMODB_STREAMS: SourceProfile = SourceProfile { supports_at_timestamp: false, ..SourceProfile::stream("dynamodb_streams") };

/// RabbitMQ: AWS's MQ defaults (batch 100, 0.5 s window). AWS runs one consumer per mapping;
/// esmd runs up to `scaling_config.maximum_concurrency` batches unless the source is `ordered`.
pub const RABBITMQ: SourceProfile = SourceProfile {
    default_batch_size: 100,
    default_window: Duration::from_millis(500),
    supports_scaling_config: true,
    broker_destination: Some("rabbitmq"),
    ..SourceProfile::queue("rabbitmq")
};

/// SQS: batch 10 by default, 10 at most for FIFO queues.
pub const fn sqs(fifo: bool) -> SourceProfile {
    SourceProfile::sqs_like("sqs", fifo)
}

/// The profiles of the connector source types, whether or not this build has them: a mapping
/// of a type whose connector is left out is still checked against its type's rules.
pub fn known(type_name: &str) -> Option<SourceProfile> {
    Some(match type_name {
        "kafka" => KAFKA,
        "kinesis" => KINESIS,
        "dynamodb_streams" => DYNAMODB_STREAMS,
        "sqs" => sqs(false),
        "rabbitmq" => RABBITMQ,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_carry_aws_defaults() {
        let p = |t| known(t).unwrap();
        assert_eq!((p("kafka").default_batch_size, p("kafka").default_window), (100, Duration::from_millis(500)));
        assert_eq!((p("rabbitmq").default_batch_size, p("rabbitmq").default_window), (100, Duration::from_millis(500)));
        assert_eq!((p("sqs").default_batch_size, p("sqs").default_window), (10, Duration::ZERO));
        assert_eq!((p("kinesis").default_batch_size, p("dynamodb_streams").default_window), (100, Duration::ZERO));
        assert!(!p("dynamodb_streams").supports_at_timestamp);
        assert!(!p("kafka").supports_tumbling_window && p("kinesis").supports_tumbling_window);
        assert_eq!(p("rabbitmq").family, Family::Queue);
        assert_eq!(sqs(true).max_batch_size, 10);
        assert!(known("memory").is_none());
    }
}
