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
        self.call_api("DynamoDB_20120810", action, body).await
    }

    /// One DynamoDB Streams API call (DescribeStream, GetShardIterator, GetRecords): the same
    /// endpoint, told apart by the target prefix.
    pub async fn stream_call(&self, action: &str, body: Value) -> Value {
        self.call_api("DynamoDBStreams_20120810", action, body).await
    }

    /// Every record of a stream, shard by shard, from TRIM_HORIZON to the end of what is there.
    pub async fn stream_records(&self, stream_arn: &str) -> Vec<Value> {
        let described = self.stream_call("DescribeStream", json!({"StreamArn": stream_arn})).await;
        let mut records = Vec::new();
        for shard in described["StreamDescription"]["Shards"].as_array().into_iter().flatten() {
            let it = self
                .stream_call("GetShardIterator", json!({"StreamArn": stream_arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}))
                .await;
            let mut iterator = it["ShardIterator"].clone();
            while iterator.is_string() {
                let page = self.stream_call("GetRecords", json!({"ShardIterator": iterator, "Limit": 1000})).await;
                let got = page["Records"].as_array().cloned().unwrap_or_default();
                if got.is_empty() {
                    break;
                }
                records.extend(got);
                iterator = page["NextShardIterator"].clone();
            }
        }
        records
    }

    async fn call_api(&self, prefix: &str, action: &str, body: Value) -> Value {
        let response = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("{prefix}.{action}"))
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
        self.create_keyed_table(table, &[("pk", "S", "HASH")], view).await
    }

    /// A table with the key attributes `keys` (name, attribute type, key type) and a stream of
    /// `view`; returns the stream's ARN.
    pub async fn create_keyed_table(&self, table: &str, keys: &[(&str, &str, &str)], view: &str) -> String {
        let definitions: Vec<Value> = keys.iter().map(|(name, ty, _)| json!({"AttributeName": name, "AttributeType": ty})).collect();
        let schema: Vec<Value> = keys.iter().map(|(name, _, key)| json!({"AttributeName": name, "KeyType": key})).collect();
        let r = self
            .call(
                "CreateTable",
                json!({
                    "TableName": table,
                    "AttributeDefinitions": definitions,
                    "KeySchema": schema,
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
