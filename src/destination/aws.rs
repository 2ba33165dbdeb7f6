//! What the AWS destinations (`arn:aws:sqs`, `arn:aws:sns`, `arn:aws:s3`) share: the SDK
//! configuration (built by `esmd_aws`: credentials from the default chain, the region of the
//! ARN, an optional endpoint override for emulators) and fitting a failure record under a
//! message size limit.

use esmd_aws::{AwsClientConfig, SdkConfig};
use serde_json::Value;

/// Region used when neither the ARN (S3 ARNs have none), the SDK chain nor the config names
/// one: emulators accept any region, and so does S3's global endpoint.
const FALLBACK_REGION: &str = "us-east-1";

/// The SDK configuration of an AWS destination: credentials from the default chain, the ARN's
/// `region` (none for S3), `destination_config.on_failure.endpoint_url` for emulators.
pub async fn sdk_config(region: Option<&str>, endpoint_url: Option<&str>) -> SdkConfig {
    AwsClientConfig::new(region.map(str::to_owned), endpoint_url.map(str::to_owned)).load_or(FALLBACK_REGION).await
}

/// The failure record as JSON of at most `limit` bytes. Records over the limit (an SQS batch
/// of thousands of messages lists every messageId) keep every field, but the arrays in them are
/// cut to a prefix that fits, and `"truncated": true` is added at the top level, so a consumer
/// knows the list is incomplete. `None` when even that does not fit.
pub fn fit_record(record: &Value, limit: usize) -> Option<String> {
    let text = record.to_string();
    if text.len() <= limit {
        return Some(text);
    }
    let mut keep = longest_array(record);
    while keep > 0 {
        keep /= 2;
        let mut cut = record.clone();
        truncate_arrays(&mut cut, keep);
        if let Value::Object(o) = &mut cut {
            o.insert("truncated".into(), Value::Bool(true));
        }
        let text = cut.to_string();
        if text.len() <= limit {
            return Some(text);
        }
    }
    None
}

fn longest_array(v: &Value) -> usize {
    match v {
        Value::Array(a) => a.len().max(a.iter().map(longest_array).max().unwrap_or(0)),
        Value::Object(o) => o.values().map(longest_array).max().unwrap_or(0),
        _ => 0,
    }
}

fn truncate_arrays(v: &mut Value, keep: usize) {
    match v {
        Value::Array(a) => {
            a.truncate(keep);
            a.iter_mut().for_each(|x| truncate_arrays(x, keep));
        }
        Value::Object(o) => o.values_mut().for_each(|x| truncate_arrays(x, keep)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn small_records_are_untouched() {
        let r = json!({"a": [1, 2, 3]});
        assert_eq!(fit_record(&r, 100).unwrap(), r.to_string());
    }

    #[test]
    fn long_lists_are_cut_and_marked() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("id-{i:036}")).collect();
        let r = json!({"requestContext": {"condition": "RetryAttemptsExhausted"}, "SQSBatchInfo": {"batchSize": 10_000, "messageIds": ids}});
        let text = fit_record(&r, 256 * 1024).unwrap();
        assert!(text.len() <= 256 * 1024);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["truncated"], true);
        assert_eq!(v["SQSBatchInfo"]["batchSize"], 10_000);
        let kept = v["SQSBatchInfo"]["messageIds"].as_array().unwrap();
        assert!(!kept.is_empty() && kept.len() < 10_000);
        assert_eq!(kept[0], "id-000000000000000000000000000000000000");
    }

    #[test]
    fn hopeless_records_are_refused() {
        assert!(fit_record(&json!({"s": "x".repeat(1000)}), 100).is_none());
    }
}
