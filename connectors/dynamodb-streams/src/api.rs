//! [`DynamoDbStreamsApi`]: DescribeStream, GetShardIterator and GetRecords through
//! aws-sdk-dynamodbstreams.

use crate::encode::DynamoDbEncoding;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_dynamodbstreams::Client;
use esmd_api::time::now_ms;
use esmd_api::{ShardId, ShardInfo, SourceError, StartFrom};
use esmd_aws::stream::{source_error, Call, Page, ShardApi};
use esmd_aws::{all_pages, AwsClientConfig, LazyClient};
use std::sync::Arc;

/// DynamoDB Streams hands out at most 1000 records per GetRecords.
pub const GET_RECORDS_LIMIT: usize = 1000;

pub struct DynamoDbStreamsApi {
    client: LazyClient<Client>,
    stream_arn: String,
    encoding: Arc<DynamoDbEncoding>,
}

impl DynamoDbStreamsApi {
    pub(crate) fn new(client: AwsClientConfig, stream_arn: String, encoding: Arc<DynamoDbEncoding>) -> Self {
        DynamoDbStreamsApi { client: LazyClient::new(client, Client::new), stream_arn, encoding }
    }

    async fn client(&self) -> &Client {
        self.client.get().await
    }
}

#[async_trait::async_trait]
impl ShardApi for DynamoDbStreamsApi {
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        let client = self.client().await;
        all_pages(|start| async move {
            let out = client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start)
                .send()
                .await
                .map_err(|e| source_error(Call::ListShards, "DescribeStream", e))?;
            let Some(description) = out.stream_description() else { return Ok((Vec::new(), None)) };
            let shards = description
                .shards()
                .iter()
                .filter_map(|s| Some(ShardInfo { id: ShardId::new(s.shard_id()?), parents: s.parent_shard_id().map(ShardId::new).into_iter().collect() }))
                .collect();
            Ok((shards, description.last_evaluated_shard_id().map(str::to_owned)))
        })
        .await
    }

    async fn shard_iterator(&self, shard: &ShardId, from: &StartFrom) -> Result<String, SourceError> {
        let request = self.client().await.get_shard_iterator().stream_arn(&self.stream_arn).shard_id(shard.as_str());
        let request = match from {
            StartFrom::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            StartFrom::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            // Refused at config validation, as AWS does; never reached from a valid config.
            StartFrom::AtTimestamp(_) => {
                return Err(SourceError::fatal("DynamoDB Streams has no AT_TIMESTAMP starting position"));
            }
            StartFrom::After(p) => request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(p.as_str()),
        };
        let out = request.send().await.map_err(|e| source_error(Call::ShardIterator, &format!("GetShardIterator {shard}"), e))?;
        out.shard_iterator()
            .map(str::to_string)
            .ok_or_else(|| SourceError::transient(format!("GetShardIterator {shard}: the answer has no ShardIterator")))
    }

    async fn get_records(&self, shard: &ShardId, iterator: &str, limit: usize) -> Result<Page, SourceError> {
        let limit = i32::try_from(limit.min(GET_RECORDS_LIMIT)).unwrap_or(1000);
        let out = self
            .client()
            .await
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .map_err(|e| source_error(Call::GetRecords, &format!("GetRecords {shard}"), e))?;
        let now = now_ms();
        let records = out.records().iter().filter_map(|r| self.encoding.record(r, now)).collect();
        Ok(Page { records, next_iterator: out.next_shard_iterator().map(str::to_string), behind_ms: None })
    }
}
