//! `[mappings.source]` with `type = "kinesis"`.

use esmd_api::config::ConfigIssue;
use serde::Deserialize;

/// A Kinesis data stream (AWS: `EventSourceArn`). Name it by ARN or, in the default account,
/// by name.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisSourceConfig {
    /// `arn:aws:kinesis:<region>:<account>:stream/<name>`.
    #[serde(default)]
    pub stream_arn: Option<String>,
    #[serde(default)]
    pub stream_name: Option<String>,
    /// Default: the ARN's region, else `[aws] region`.
    #[serde(default)]
    pub region: Option<String>,
    /// An endpoint override (kinesis-local, LocalStack, moto). Default: the SDK's.
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

/// The parts of a Kinesis stream ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
}

impl StreamArn {
    pub fn parse(arn: &str) -> Result<Self, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err("expected arn:<partition>:kinesis:<region>:<account>:stream/<name>".into());
        };
        let name = resource.strip_prefix("stream/").unwrap_or_default();
        if prefix != "arn" || service != "kinesis" || region.is_empty() || account.is_empty() || name.is_empty() || partition.is_empty() {
            return Err("expected arn:<partition>:kinesis:<region>:<account>:stream/<name>".into());
        }
        Ok(StreamArn { partition: partition.into(), region: region.into(), account: account.into(), name: name.into() })
    }
}

/// Kinesis' stream naming rule.
pub fn valid_stream_name(name: &str) -> bool {
    (1..=128).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl KinesisSourceConfig {
    /// Rules serde cannot express. Paths start at `source.`.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        let mut issue = |key: &str, message: String| out.push(ConfigIssue { path: format!("source.{key}"), message: format!("source.{key}{message}") });
        match (&self.stream_arn, &self.stream_name) {
            (None, None) => issue("stream_arn", " is missing: name the stream by stream_arn or stream_name".into()),
            (Some(_), Some(_)) => issue("stream_name", ": give stream_arn or stream_name, not both".into()),
            (Some(arn), None) => {
                if let Err(why) = StreamArn::parse(arn) {
                    issue("stream_arn", format!(" = {arn:?}: {why}"));
                } else if let (Ok(parsed), Some(region)) = (StreamArn::parse(arn), &self.region) {
                    if parsed.region != *region {
                        issue("region", format!(" = {region:?} differs from the stream ARN's region {:?}", parsed.region));
                    }
                }
            }
            (None, Some(name)) => {
                if !valid_stream_name(name) {
                    issue("stream_name", format!(" = {name:?}: 1–128 characters of A-Za-z0-9_.-"));
                }
            }
        }
        if let Some(url) = &self.endpoint_url {
            esmd_aws::check_endpoint_url(&mut out, "source.endpoint_url", url);
        }
        out
    }

    /// The stream's name (from the ARN when named by ARN).
    pub fn name(&self) -> Option<String> {
        match (&self.stream_arn, &self.stream_name) {
            (Some(arn), _) => StreamArn::parse(arn).ok().map(|a| a.name),
            (None, name) => name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(v: serde_json::Value) -> Vec<String> {
        let c: KinesisSourceConfig = serde_json::from_value(v).unwrap();
        c.validate().into_iter().map(|i| i.message).collect()
    }

    #[test]
    fn names_by_arn_or_name() {
        assert!(messages(json!({"stream_arn": "arn:aws:kinesis:eu-west-1:111111111111:stream/orders"})).is_empty());
        assert!(messages(json!({"stream_name": "orders", "endpoint_url": "http://127.0.0.1:4567"})).is_empty());
        assert_eq!(messages(json!({})), ["source.stream_arn is missing: name the stream by stream_arn or stream_name"]);
        assert_eq!(messages(json!({"stream_arn": "arn:aws:kinesis:r:1:stream/a", "stream_name": "a"})), ["source.stream_name: give stream_arn or stream_name, not both"]);
        assert!(messages(json!({"stream_arn": "arn:aws:sqs:r:1:q"}))[0].starts_with("source.stream_arn = \"arn:aws:sqs:r:1:q\""));
        assert!(messages(json!({"stream_name": "a b"}))[0].starts_with("source.stream_name"));
        assert!(messages(json!({"stream_name": "a", "endpoint_url": "127.0.0.1"}))[0].starts_with("source.endpoint_url"));
        assert!(messages(json!({"stream_arn": "arn:aws:kinesis:eu-west-1:1:stream/a", "region": "us-east-1"}))[0].starts_with("source.region"));
        let c: KinesisSourceConfig = serde_json::from_value(json!({"stream_arn": "arn:aws:kinesis:eu-west-1:1:stream/a"})).unwrap();
        assert_eq!(c.name().as_deref(), Some("a"));
        assert!(serde_json::from_value::<KinesisSourceConfig>(json!({"stream_name": "a", "shards": 1})).is_err());
    }
}
