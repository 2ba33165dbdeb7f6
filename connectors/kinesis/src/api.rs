//! [`KinesisApi`]: ListShards, GetShardIterator and GetRecords through aws-sdk-kinesis.

use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use bytes::Bytes;
use esmd_api::kinesis::KinesisEncoding;
use esmd_api::time::now_ms;
use esmd_api::{ShardId, ShardInfo, SourceError, StartFrom};
use esmd_aws::stream::{source_error, Call, Page, ShardApi};
use esmd_aws::{all_pages, AwsClientConfig, LazyClient};
use std::sync::Arc;

pub struct KinesisApi {
    client: LazyClient<Client>,
    stream_name: String,
    encoding: Arc<KinesisEncoding>,
}

impl KinesisApi {
    pub(crate) fn new(client: AwsClientConfig, stream_name: String, encoding: Arc<KinesisEncoding>) -> Self {
        KinesisApi { client: LazyClient::new(client, Client::new), stream_name, encoding }
    }

    async fn client(&self) -> &Client {
        self.client.get().await
    }
}

#[async_trait::async_trait]
impl ShardApi for KinesisApi {
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        let client = self.client().await;
        all_pages(|token| async move {
            // AWS refuses StreamName together with NextToken.
            let request = match &token {
                Some(t) => client.list_shards().next_token(t),
                None => client.list_shards().stream_name(&self.stream_name),
            };
            let out = request.send().await.map_err(|e| source_error(Call::ListShards, &format!("ListShards {}", self.stream_name), e))?;
            let shards = out
                .shards()
                .iter()
                .map(|s| {
                    let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()].into_iter().flatten().map(ShardId::new).collect();
                    ShardInfo { id: ShardId::new(s.shard_id()), parents }
                })
                .collect();
            Ok((shards, out.next_token().map(str::to_owned)))
        })
        .await
    }

    async fn shard_iterator(&self, shard: &ShardId, from: &StartFrom) -> Result<String, SourceError> {
        let request = self.client().await.get_shard_iterator().stream_name(&self.stream_name).shard_id(shard.as_str());
        let request = match from {
            StartFrom::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            StartFrom::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            StartFrom::AtTimestamp(ms) => request.shard_iterator_type(ShardIteratorType::AtTimestamp).timestamp(DateTime::from_millis(*ms)),
            StartFrom::After(p) => request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).starting_sequence_number(p.as_str()),
        };
        let out = request.send().await.map_err(|e| source_error(Call::ShardIterator, &format!("GetShardIterator {shard}"), e))?;
        out.shard_iterator()
            .map(str::to_string)
            .ok_or_else(|| SourceError::transient(format!("GetShardIterator {shard}: the answer has no ShardIterator")))
    }

    async fn get_records(&self, shard: &ShardId, iterator: &str, limit: usize) -> Result<Page, SourceError> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let out = self
            .client()
            .await
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .map_err(|e| source_error(Call::GetRecords, &format!("GetRecords {shard}"), e))?;
        let records = out
            .records()
            .iter()
            .map(|r| {
                // Kinesis always sets the arrival time; a record without one counts as new
                // rather than as expired.
                let arrival_ms = r.approximate_arrival_timestamp().and_then(|t| t.to_millis().ok()).unwrap_or_else(now_ms);
                let key = Bytes::copy_from_slice(r.partition_key().unwrap_or_default().as_bytes());
                let data = Bytes::copy_from_slice(r.data().as_ref());
                self.encoding.record(shard, r.sequence_number().into(), key, data, arrival_ms)
            })
            .collect();
        let behind_ms = out.millis_behind_latest().map(|ms| u64::try_from(ms).unwrap_or(0));
        Ok(Page { records, next_iterator: out.next_shard_iterator().map(str::to_string), behind_ms })
    }
}
