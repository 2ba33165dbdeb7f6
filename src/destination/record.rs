//! Failure records in AWS's shape (see tests/fixtures/aws-recorded):
//!
//! ```json
//! {"requestContext":{"requestId":"…","functionArn":"…","condition":"RetryAttemptsExhausted","approximateInvokeCount":2},
//!  "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
//!  "version":"1.0","timestamp":"2019-11-14T00:38:06.021Z",
//!  "KinesisBatchInfo":{…}}
//! ```

use esmd_api::time::iso_millis;
use serde_json::{json, Map, Value};

/// Why a batch was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
    MaximumPayloadSizeExceeded,
    /// Kafka with a schema registry: the record names a schema the registry does not have.
    SchemaNotFound,
    /// Kafka with a schema registry: the record cannot be read or validated with its schema.
    DeserializationError,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
            Condition::MaximumPayloadSizeExceeded => "MaximumPayloadSizeExceeded",
            // AWS's own spelling for these two.
            Condition::SchemaNotFound => "SCHEMA_NOT_FOUND",
            Condition::DeserializationError => "DESERIALIZATION_ERROR",
        }
    }

    /// Why a source marked a record invalid.
    pub fn of_invalid(reason: esmd_api::InvalidReason) -> Condition {
        match reason {
            esmd_api::InvalidReason::SchemaNotFound => Condition::SchemaNotFound,
            esmd_api::InvalidReason::DeserializationError => Condition::DeserializationError,
        }
    }
}

/// The last invocation's answer, for `responseContext`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseContext {
    pub status_code: u16,
    pub executed_version: String,
    /// `None` after a partial batch response (AWS writes `null`).
    pub function_error: Option<String>,
}

pub struct FailureInfo<'a> {
    pub request_id: &'a str,
    pub function_arn: &'a str,
    pub condition: Condition,
    /// Invocations of the given-up records; AWS never reports less than 1.
    pub invocations: u32,
    /// `None` for conditions where the function did not answer (record age, payload size).
    pub response: Option<&'a ResponseContext>,
    pub batch_info: (String, Value),
    pub now_ms: i64,
}

pub fn failure_record(info: FailureInfo<'_>) -> Value {
    let mut out = Map::new();
    out.insert(
        "requestContext".into(),
        json!({
            "requestId": info.request_id,
            "functionArn": info.function_arn,
            "condition": info.condition.as_str(),
            "approximateInvokeCount": info.invocations.max(1),
        }),
    );
    if let Some(r) = info.response {
        out.insert(
            "responseContext".into(),
            json!({
                "statusCode": r.status_code,
                "executedVersion": r.executed_version,
                "functionError": r.function_error,
            }),
        );
    }
    out.insert("version".into(), json!("1.0"));
    out.insert("timestamp".into(), json!(iso_millis(info.now_ms)));
    out.insert(info.batch_info.0, info.batch_info.1);
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_matches_aws() {
        let resp = ResponseContext { status_code: 200, executed_version: "$LATEST".into(), function_error: Some("Unhandled".into()) };
        let v = failure_record(FailureInfo {
            request_id: "r",
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f",
            condition: Condition::RetryAttemptsExhausted,
            invocations: 2,
            response: Some(&resp),
            batch_info: ("KinesisBatchInfo".into(), json!({"batchSize": 1})),
            now_ms: 1_573_691_886_021,
        });
        assert_eq!(
            v.to_string(),
            r#"{"requestContext":{"requestId":"r","functionArn":"arn:aws:lambda:us-east-1:000000000000:function:f","condition":"RetryAttemptsExhausted","approximateInvokeCount":2},"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},"version":"1.0","timestamp":"2019-11-14T00:38:06.021Z","KinesisBatchInfo":{"batchSize":1}}"#
        );
    }

    #[test]
    fn record_age_has_no_response_context_and_counts_at_least_one() {
        let v = failure_record(FailureInfo {
            request_id: "r",
            function_arn: "f",
            condition: Condition::RecordAgeExceeded,
            invocations: 0,
            response: None,
            batch_info: ("KinesisBatchInfo".into(), json!({})),
            now_ms: 0,
        });
        assert!(v.get("responseContext").is_none());
        assert_eq!(v["requestContext"]["approximateInvokeCount"], 1);
        assert_eq!(v["requestContext"]["condition"], "RecordAgeExceeded");
    }
}
