//! DynamoDB tables with streams on moto, driven with raw JSON requests (moto checks no
//! signature), so the tests need no DynamoDB SDK crate.

use serde_json::{json, Value};
use std::time::Duration;

pub struct DynamoDb {
    http: reqwest::Client,
    endpoint: String,
}

impl DynamoDb {
    /// `endpoint`: a moto server's.
    pub fn new(endpoint: &str) -> Self {
        DynamoDb { http: reqwest::Client::builder().no_proxy().build().unwrap(), endpoint: endpoint.to_string() }
    }

    /// One DynamoDB API call (`action`: CreateTable, PutItem, ...); panics unless it succeeds.
    pub async fn call(&self, action: &str, body: Value) -> Value {
        let response = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDB_20120810.{action}"))
            .header("x-amz-date", "20250101T000000Z")
            .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
            .body(body.to_string())
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "DynamoDB {action} answered {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A table keyed by `pk` (string) with a stream of `view` (KEYS_ONLY, NEW_IMAGE, OLD_IMAGE,
    /// NEW_AND_OLD_IMAGES); returns the stream's ARN.
    pub async fn create_table_with_stream(&self, table: &str, view: &str) -> String {
        let r = self
            .call(
                "CreateTable",
                json!({
                    "TableName": table,
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "StreamSpecification": {"StreamEnabled": true, "StreamViewType": view}
                }),
            )
            .await;
        r["TableDescription"]["LatestStreamArn"].as_str().unwrap_or_else(|| panic!("no stream ARN in {r}")).to_string()
    }

    pub async fn put(&self, table: &str, item: Value) {
        self.call("PutItem", json!({"TableName": table, "Item": item})).await;
    }

    pub async fn delete(&self, table: &str, key: Value) {
        self.call("DeleteItem", json!({"TableName": table, "Key": key})).await;
    }
}
