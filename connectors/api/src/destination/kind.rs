//! `destination_config.on_failure.destination`: where given-up batches are described.
//!
//! Every form AWS and esmd know is parsed here so a typo fails at load, whichever connectors
//! this build has; which of them it can deliver to is the wiring's business (it rejects the
//! others with "not supported in this build", using [`DestinationKind::kind`]).

use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;

/// A parsed on-failure destination.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum DestinationKind {
    /// `file:///abs/path.jsonl`, `file:relative/path.jsonl` or `file://relative/path.jsonl`
    /// (relative to the working directory):
    /// one failure record per line.
    File(PathBuf),
    /// `arn:aws:sqs:<region>:<account>:<queue>` (standard queues only: AWS rejects FIFO).
    Sqs { arn: String, region: String, account: String, queue: String },
    /// `arn:aws:sns:<region>:<account>:<topic>` (standard topics only).
    Sns { arn: String, region: String, account: String, topic: String },
    /// `arn:aws:s3:::<bucket>`: the failure record plus the whole event.
    S3 { arn: String, bucket: String },
    /// `kafka://<topic>`: a topic of the source's own cluster, one message per failed record.
    Kafka { topic: String },
    /// `rabbitmq://<exchange>/<routing-key>` on the source's broker or the one in
    /// `on_failure.connection`; an empty exchange is
    /// the default exchange (`rabbitmq:///<queue>`).
    RabbitMq { exchange: String, routing_key: String },
}

impl DestinationKind {
    /// Short name of the kind: `file`, `sqs`, `sns`, `s3`, `kafka`, `rabbitmq`.
    pub fn kind(&self) -> &'static str {
        match self {
            DestinationKind::File(_) => "file",
            DestinationKind::Sqs { .. } => "sqs",
            DestinationKind::Sns { .. } => "sns",
            DestinationKind::S3 { .. } => "s3",
            DestinationKind::Kafka { .. } => "kafka",
            DestinationKind::RabbitMq { .. } => "rabbitmq",
        }
    }

    pub fn parse(text: &str) -> Result<DestinationKind, String> {
        if let Some(rest) = text.strip_prefix("file:") {
            return parse_file(rest);
        }
        if let Some(topic) = text.strip_prefix("kafka://") {
            if topic.is_empty() || topic.len() > 249 || !topic.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return Err(format!("kafka://{topic}: a Kafka topic is 1–249 characters of [A-Za-z0-9._-]"));
            }
            return Ok(DestinationKind::Kafka { topic: topic.to_string() });
        }
        if let Some(rest) = text.strip_prefix("rabbitmq://") {
            let (exchange, routing_key) = rest.split_once('/').unwrap_or((rest, ""));
            if exchange.is_empty() && routing_key.is_empty() {
                return Err("rabbitmq:// needs an exchange and/or a routing key: rabbitmq://<exchange>/<routing-key>".into());
            }
            return Ok(DestinationKind::RabbitMq { exchange: exchange.to_string(), routing_key: routing_key.to_string() });
        }
        if text.starts_with("arn:") {
            return parse_arn(text);
        }
        Err(format!("{text:?} is not a destination: use file:///path.jsonl, file:path, arn:aws:sqs:…, arn:aws:sns:…, arn:aws:s3:::bucket, kafka://topic or rabbitmq://exchange/routing-key"))
    }
}

fn parse_file(rest: &str) -> Result<DestinationKind, String> {
    // file:///abs and file://localhost/abs (RFC 8089), file:/abs, file:relative, and
    // file://relative (as the README and older examples write it: esmd writes local files
    // only, so there is no host to name and the rest is read as a relative path).
    let path = match rest.strip_prefix("//") {
        Some(after) => after.strip_prefix("localhost").filter(|p| p.starts_with('/')).unwrap_or(after),
        None => rest,
    };
    if path.is_empty() {
        return Err("file: destination without a path (file:///absolute/path.jsonl or file:relative/path.jsonl)".into());
    }
    Ok(DestinationKind::File(PathBuf::from(path)))
}

fn parse_arn(text: &str) -> Result<DestinationKind, String> {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [_, partition, service, region, account, resource] = parts[..] else {
        return Err(format!("{text:?} is not an ARN (arn:<partition>:<service>:<region>:<account>:<resource>)"));
    };
    if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
        return Err(format!("{text:?}: unknown ARN partition {partition:?} (aws, aws-cn, aws-us-gov)"));
    }
    let regional = |what: &str| -> Result<(), String> {
        if region.is_empty() || !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(format!("{text:?}: an {what} ARN needs a region"));
        }
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("{text:?}: an {what} ARN needs a 12-digit account id"));
        }
        if resource.is_empty() || resource.len() > 256 || !resource.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
            return Err(format!("{text:?}: the {what} name must be 1–256 characters of [A-Za-z0-9_.-]"));
        }
        if resource.ends_with(".fifo") {
            return Err(format!("{text:?}: FIFO {what} destinations are not supported (AWS rejects them too)"));
        }
        Ok(())
    };
    match service {
        "sqs" => {
            regional("SQS")?;
            Ok(DestinationKind::Sqs { arn: text.into(), region: region.into(), account: account.into(), queue: resource.into() })
        }
        "sns" => {
            regional("SNS")?;
            Ok(DestinationKind::Sns { arn: text.into(), region: region.into(), account: account.into(), topic: resource.into() })
        }
        "s3" => {
            let bucket_ok = (3..=63).contains(&resource.len())
                && resource.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
                && resource.starts_with(|c: char| c.is_ascii_alphanumeric())
                && resource.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !region.is_empty() || !account.is_empty() || !bucket_ok {
                return Err(format!("{text:?}: an S3 destination is arn:aws:s3:::<bucket> (bucket: 3–63 characters of [a-z0-9.-])"));
            }
            Ok(DestinationKind::S3 { arn: text.into(), bucket: resource.into() })
        }
        other => Err(format!("{text:?}: {other} ARNs cannot be failure destinations (sqs, sns, s3)")),
    }
}

impl TryFrom<String> for DestinationKind {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        DestinationKind::parse(&text)
    }
}

impl fmt::Display for DestinationKind {
    /// The destination as written in a config file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestinationKind::File(path) if path.is_absolute() => write!(f, "file://{}", path.display()),
            DestinationKind::File(path) => write!(f, "file:{}", path.display()),
            DestinationKind::Sqs { arn, .. } | DestinationKind::Sns { arn, .. } | DestinationKind::S3 { arn, .. } => f.write_str(arn),
            DestinationKind::Kafka { topic } => write!(f, "kafka://{topic}"),
            DestinationKind::RabbitMq { exchange, routing_key } => write!(f, "rabbitmq://{exchange}/{routing_key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> DestinationKind {
        DestinationKind::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn parses_every_kind() {
        assert_eq!(ok("file:///var/esmd/failures.jsonl"), DestinationKind::File("/var/esmd/failures.jsonl".into()));
        assert_eq!(ok("file://localhost/tmp/f.jsonl"), DestinationKind::File("/tmp/f.jsonl".into()));
        assert_eq!(ok("file:failures/out.jsonl"), DestinationKind::File("failures/out.jsonl".into()));
        assert_eq!(ok("file:/abs.jsonl"), DestinationKind::File("/abs.jsonl".into()));
        assert_eq!(ok("file://./esmd-state/f.jsonl"), DestinationKind::File("./esmd-state/f.jsonl".into()));
        assert_eq!(ok("file://state/f.jsonl"), DestinationKind::File("state/f.jsonl".into()));
        assert_eq!(
            ok("arn:aws:sqs:us-east-1:123456789012:dlq"),
            DestinationKind::Sqs { arn: "arn:aws:sqs:us-east-1:123456789012:dlq".into(), region: "us-east-1".into(), account: "123456789012".into(), queue: "dlq".into() }
        );
        assert_eq!(ok("arn:aws:sns:eu-west-1:123456789012:alerts").kind(), "sns");
        assert_eq!(ok("arn:aws:s3:::my-bucket"), DestinationKind::S3 { arn: "arn:aws:s3:::my-bucket".into(), bucket: "my-bucket".into() });
        assert_eq!(ok("kafka://orders-failures"), DestinationKind::Kafka { topic: "orders-failures".into() });
        assert_eq!(ok("rabbitmq://failures/orders.dead"), DestinationKind::RabbitMq { exchange: "failures".into(), routing_key: "orders.dead".into() });
        assert_eq!(ok("rabbitmq:///dlq"), DestinationKind::RabbitMq { exchange: String::new(), routing_key: "dlq".into() });
        let kinds: Vec<_> = ["file:x", "arn:aws:sqs:us-east-1:123456789012:q", "arn:aws:sns:us-east-1:123456789012:t", "arn:aws:s3:::bkt", "kafka://t", "rabbitmq://e/k"]
            .iter()
            .map(|t| ok(t).kind())
            .collect();
        assert_eq!(kinds, ["file", "sqs", "sns", "s3", "kafka", "rabbitmq"]);
    }

    #[test]
    fn round_trips_through_display() {
        for text in ["file:///a/b.jsonl", "file:rel.jsonl", "arn:aws:s3:::bkt", "kafka://t", "rabbitmq://e/k", "arn:aws:sqs:us-east-1:123456789012:q"] {
            assert_eq!(ok(text).to_string(), text);
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        for (text, reason) in [
            ("http://x", "is not a destination"),
            ("file:", "without a path"),
            ("file://", "without a path"),
            ("arn:aws:sqs:us-east-1:123:q", "12-digit account"),
            ("arn:aws:sqs:us-east-1:123456789012:q.fifo", "FIFO"),
            ("arn:aws:sns:us-east-1:123456789012:t.fifo", "FIFO"),
            ("arn:aws:lambda:us-east-1:123456789012:function:f", "cannot be failure destinations"),
            ("arn:aws:s3:us-east-1:123456789012:bkt", "arn:aws:s3:::<bucket>"),
            ("arn:aws:s3:::B", "arn:aws:s3:::<bucket>"),
            ("arn:foo:sqs:us-east-1:123456789012:q", "partition"),
            ("arn:aws:sqs", "is not an ARN"),
            ("kafka://", "Kafka topic"),
            ("kafka://a b", "Kafka topic"),
            ("rabbitmq://", "exchange"),
        ] {
            let err = DestinationKind::parse(text).expect_err(text);
            assert!(err.contains(reason), "{text}: {err}");
        }
    }
}
