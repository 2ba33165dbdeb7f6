//! `[mappings.source]` with `type = "sqs"`.

use esmd_api::config::ConfigIssue;
use serde::Deserialize;

/// An SQS source: one queue (AWS: the mapping's `EventSourceArn`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqsSourceConfig {
    /// `https://sqs.<region>.amazonaws.com/<account>/<queue>` (or an emulator's URL with the
    /// same path). FIFO queues end in `.fifo`.
    pub queue_url: String,
    /// Default: the SDK's chain (AWS_REGION, profile), then the region in the queue URL's host,
    /// then `us-east-1` when `endpoint_url` is set.
    #[serde(default)]
    pub region: Option<String>,
    /// An emulator (LocalStack, moto, ElasticMQ). Credentials still come from the SDK's chain.
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

/// The parts of a queue URL esmd needs: the account and name for the queue's ARN, and the
/// region when the host says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrl {
    pub account: String,
    pub name: String,
    /// From `sqs.<region>.amazonaws.com` (or the legacy `<region>.queue.amazonaws.com`).
    pub region: Option<String>,
}

impl QueueUrl {
    pub fn parse(url: &str) -> Result<QueueUrl, String> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| format!("{url:?} is not a queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>)"))?;
        let (host, path) = rest.split_once('/').ok_or_else(|| format!("{url:?} has no /<account>/<queue> path"))?;
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let [account, name] = parts[..] else {
            return Err(format!("{url:?}: the path must be /<account>/<queue>"));
        };
        if account.is_empty() || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("{url:?}: {account:?} is not an account id"));
        }
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        if base.is_empty() || name.len() > 80 || !base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("{url:?}: a queue name is 1–80 characters of [A-Za-z0-9_-], FIFO queues ending in \".fifo\""));
        }
        let host = host.split(':').next().unwrap_or(host);
        let labels: Vec<&str> = host.split('.').collect();
        let region = match labels[..] {
            ["sqs", region, "amazonaws", ..] => Some(region.to_string()),
            [region, "queue", "amazonaws", ..] => Some(region.to_string()),
            _ => None,
        };
        Ok(QueueUrl { account: account.to_string(), name: name.to_string(), region })
    }

    pub fn is_fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }
}

impl SqsSourceConfig {
    /// Whether the queue is FIFO (its name ends in `.fifo`): FIFO mappings take batches of 10
    /// at most.
    pub fn is_fifo(&self) -> bool {
        QueueUrl::parse(&self.queue_url).is_ok_and(|u| u.is_fifo())
    }

    /// Rules without IO; paths relative to the mapping.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if let Err(e) = QueueUrl::parse(&self.queue_url) {
            issues.push(ConfigIssue { path: "source.queue_url".into(), message: format!("source.queue_url: {e}") });
        }
        if let Some(r) = &self.region {
            esmd_aws::check_region(&mut issues, "source.region", r);
        }
        if let Some(u) = &self.endpoint_url {
            esmd_aws::check_endpoint_url(&mut issues, "source.endpoint_url", u);
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aws_and_emulator_urls() {
        let u = QueueUrl::parse("https://sqs.eu-west-1.amazonaws.com/123456789012/jobs").unwrap();
        assert_eq!(u, QueueUrl { account: "123456789012".into(), name: "jobs".into(), region: Some("eu-west-1".into()) });
        let u = QueueUrl::parse("http://127.0.0.1:5000/123456789012/jobs.fifo").unwrap();
        assert_eq!((u.region.as_deref(), u.is_fifo()), (None, true));
        assert_eq!(QueueUrl::parse("https://us-east-2.queue.amazonaws.com/1/q").unwrap().region.as_deref(), Some("us-east-2"));
    }

    #[test]
    fn rejects_what_is_not_a_queue_url() {
        for (url, why) in [
            ("sqs://q", "not a queue URL"),
            ("http://h", "no /<account>/<queue>"),
            ("http://h/q", "/<account>/<queue>"),
            ("http://h/abc/q", "not an account id"),
            ("http://h/1/a.b", "queue name"),
            ("http://h/1/.fifo", "queue name"),
        ] {
            let e = QueueUrl::parse(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn validate_names_the_key() {
        let c = SqsSourceConfig { queue_url: "x".into(), region: Some("EU".into()), endpoint_url: Some("localhost:4566".into()) };
        let paths: Vec<String> = c.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(paths, ["source.queue_url", "source.region", "source.endpoint_url"]);
        let ok = SqsSourceConfig { queue_url: "http://127.0.0.1:5000/000000000000/q".into(), region: None, endpoint_url: None };
        assert!(ok.validate().is_empty());
    }
}
