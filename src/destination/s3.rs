//! `arn:aws:s3:::<bucket>`: one object per failure, the failure record plus `payload` (the
//! event the function was invoked with), at AWS's key
//! `aws/lambda/<mapping-uuid>/<shardId>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>`.

use super::{Destination, DestinationError, Failure};
use async_trait::async_trait;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

pub struct S3Destination {
    client: aws_sdk_s3::Client,
    bucket: String,
    mapping_uuid: Uuid,
    arn: String,
}

impl S3Destination {
    /// Path-style addressing with an endpoint override: emulators on 127.0.0.1 have no
    /// `<bucket>.host` names.
    pub fn new(sdk: &aws_config::SdkConfig, arn: &str, bucket: &str, mapping_uuid: Uuid) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some()).build();
        S3Destination { client: aws_sdk_s3::Client::from_conf(config), bucket: bucket.to_string(), mapping_uuid, arn: arn.to_string() }
    }

    fn error(&self, message: impl std::fmt::Display) -> DestinationError {
        DestinationError { destination: self.arn.clone(), message: message.to_string() }
    }
}

/// AWS's object key for a failure of `shard` at `now`.
pub fn object_key(mapping_uuid: &Uuid, shard: &str, now: DateTime<Utc>, object_uuid: &Uuid) -> String {
    format!("aws/lambda/{mapping_uuid}/{shard}/{}-{object_uuid}", now.format("%Y/%m/%d/%Y-%m-%dT%H.%M.%S"))
}

#[async_trait]
impl Destination for S3Destination {
    async fn deliver(&self, failure: &Failure) -> Result<(), DestinationError> {
        let Value::Object(mut doc) = failure.record.clone() else {
            return Err(self.error("failure record is not an object"));
        };
        // The event is JSON; were it not, it still goes along as a string rather than be lost.
        let payload = serde_json::from_slice(&failure.payload).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&failure.payload).into_owned()));
        doc.insert("payload".into(), payload);
        let body = serde_json::to_vec(&doc).map_err(|e| self.error(e))?;
        let key = object_key(&self.mapping_uuid, failure.shard.as_str(), Utc::now(), &Uuid::new_v4());
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error(format!("PutObject: {}", DisplayErrorContext(&e))))?;
        Ok(())
    }

    fn describe(&self) -> &str {
        &self.arn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn key_has_aws_layout() {
        let m = Uuid::parse_str("6c1b4b8c-0000-4000-8000-000000000001").unwrap();
        let o = Uuid::parse_str("00000000-0000-4000-8000-0000000000ff").unwrap();
        let now = Utc.with_ymd_and_hms(2024, 3, 7, 9, 5, 1).unwrap();
        assert_eq!(
            object_key(&m, "shardId-000000000000", now, &o),
            "aws/lambda/6c1b4b8c-0000-4000-8000-000000000001/shardId-000000000000/2024/03/07/2024-03-07T09.05.01-00000000-0000-4000-8000-0000000000ff"
        );
    }
}
