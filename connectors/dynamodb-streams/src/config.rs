//! `[mappings.source]` with `type = "dynamodb_streams"`.

use esmd_api::config::ConfigIssue;
use serde::Deserialize;

/// A DynamoDB table's stream (AWS: `EventSourceArn`, the table's `LatestStreamArn`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoDbStreamsSourceConfig {
    /// `arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>`.
    pub stream_arn: String,
    /// Default: the ARN's region.
    #[serde(default)]
    pub region: Option<String>,
    /// An endpoint override (LocalStack, moto, DynamoDB Local). Default: the SDK's.
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

/// The parts of a DynamoDB stream ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamArn {
    pub region: String,
    pub account: String,
    pub table: String,
    pub label: String,
}

impl StreamArn {
    pub fn parse(arn: &str) -> Result<Self, String> {
        const SHAPE: &str = "expected arn:<partition>:dynamodb:<region>:<account>:table/<table>/stream/<label>";
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else { return Err(SHAPE.into()) };
        let mut path = resource.splitn(4, '/');
        let (kind, table, stream, label) = (path.next(), path.next(), path.next(), path.next());
        match (kind, table, stream, label) {
            (Some("table"), Some(table), Some("stream"), Some(label))
                if prefix == "arn" && service == "dynamodb" && !partition.is_empty() && !region.is_empty() && !account.is_empty() && !table.is_empty() && !label.is_empty() =>
            {
                Ok(StreamArn { region: region.into(), account: account.into(), table: table.into(), label: label.into() })
            }
            _ => Err(SHAPE.into()),
        }
    }
}

impl DynamoDbStreamsSourceConfig {
    /// Rules serde cannot express. Paths start at `source.`.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        let mut issue = |key: &str, message: String| out.push(ConfigIssue { path: format!("source.{key}"), message: format!("source.{key}{message}") });
        match StreamArn::parse(&self.stream_arn) {
            Err(why) => issue("stream_arn", format!(" = {:?}: {why}", self.stream_arn)),
            Ok(arn) => {
                if let Some(region) = self.region.as_ref().filter(|r| **r != arn.region) {
                    issue("region", format!(" = {region:?} differs from the stream ARN's region {:?}", arn.region));
                }
            }
        }
        if let Some(url) = &self.endpoint_url {
            esmd_aws::check_endpoint_url(&mut out, "source.endpoint_url", url);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(v: serde_json::Value) -> Vec<String> {
        let c: DynamoDbStreamsSourceConfig = serde_json::from_value(v).unwrap();
        c.validate().into_iter().map(|i| i.message).collect()
    }

    #[test]
    fn stream_arn_rules() {
        let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000";
        assert!(messages(json!({"stream_arn": arn})).is_empty());
        assert_eq!(
            StreamArn::parse(arn).unwrap(),
            StreamArn { region: "us-east-1".into(), account: "123456789012".into(), table: "orders".into(), label: "2024-01-01T00:00:00.000".into() }
        );
        assert!(messages(json!({"stream_arn": "arn:aws:dynamodb:us-east-1:1:table/orders"}))[0].starts_with("source.stream_arn = "));
        assert!(messages(json!({"stream_arn": arn, "region": "eu-west-1"}))[0].starts_with("source.region"));
        assert!(messages(json!({"stream_arn": arn, "endpoint_url": "localhost:8000"}))[0].starts_with("source.endpoint_url"));
        assert!(serde_json::from_value::<DynamoDbStreamsSourceConfig>(json!({"stream_arn": arn, "stream_name": "x"})).is_err());
        assert!(serde_json::from_value::<DynamoDbStreamsSourceConfig>(json!({})).is_err());
    }
}
