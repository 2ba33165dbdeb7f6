//! [`StreamSource`]: an [`OrderedSource`] over any [`ShardApi`].

use super::{PollingReader, ReaderOptions, ShardApi};
use async_trait::async_trait;
use esmd_api::{EventEncoder, OrderedSource, ShardId, ShardInfo, ShardReader, SourceError, StartFrom};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a [`StreamSource`] behaves; the defaults differ per service.
#[derive(Clone, Debug)]
pub struct StreamSourceOptions {
    /// Metric label and log name (`kinesis`, `dynamodb_streams`).
    pub kind: &'static str,
    /// Wait after an empty read (AWS: Kinesis about 1 s, DynamoDB Streams 250 ms).
    pub idle_poll_interval: Duration,
    /// How often ListShards / DescribeStream runs to find new shards.
    pub discovery_interval: Duration,
    pub reader: ReaderOptions,
}

pub struct StreamSource<A> {
    api: Arc<A>,
    encoder: Arc<dyn EventEncoder>,
    options: StreamSourceOptions,
    /// The shards of the first discovery. A shard born later (a split or merge while esmd runs)
    /// is read from its first record whatever `starting_position` says: LATEST there would skip
    /// what producers wrote to it while its parents were drained.
    initial: Mutex<Option<HashSet<ShardId>>>,
}

impl<A: ShardApi> StreamSource<A> {
    pub fn new(api: A, encoder: Arc<dyn EventEncoder>, options: StreamSourceOptions) -> Self {
        StreamSource { api: Arc::new(api), encoder, options, initial: Mutex::new(None) }
    }

    pub fn api(&self) -> &A {
        &self.api
    }

    fn start_for(&self, shard: &ShardId, from: StartFrom) -> StartFrom {
        match from {
            StartFrom::Latest | StartFrom::AtTimestamp(_) => {
                let initial = self.initial.lock().unwrap_or_else(|e| e.into_inner());
                match &*initial {
                    Some(first) if !first.contains(shard) => StartFrom::TrimHorizon,
                    _ => from,
                }
            }
            other => other,
        }
    }
}

#[async_trait]
impl<A: ShardApi> OrderedSource for StreamSource<A> {
    fn kind(&self) -> &'static str {
        self.options.kind
    }

    fn encoder(&self) -> Arc<dyn EventEncoder> {
        self.encoder.clone()
    }

    async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
        let shards = self.api.list_shards().await?;
        let mut initial = self.initial.lock().unwrap_or_else(|e| e.into_inner());
        if initial.is_none() {
            *initial = Some(shards.iter().map(|s| s.id.clone()).collect());
        }
        Ok(shards)
    }

    async fn open(&self, shard: &ShardInfo, from: StartFrom) -> Result<Box<dyn ShardReader>, SourceError> {
        let from = self.start_for(&shard.id, from);
        let reader = PollingReader::open(self.api.clone(), shard.id.clone(), from, self.options.reader.clone()).await?;
        Ok(Box::new(reader))
    }

    fn idle_poll_interval(&self) -> Duration {
        self.options.idle_poll_interval
    }

    fn discovery_interval(&self) -> Duration {
        self.options.discovery_interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Page;
    use esmd_api::{Record, ShardId};
    use serde_json::Value;
    use std::sync::Mutex as StdMutex;

    struct Api {
        shards: StdMutex<Vec<&'static str>>,
        asked: StdMutex<Vec<(String, StartFrom)>>,
    }

    #[async_trait]
    impl ShardApi for Api {
        async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
            Ok(self.shards.lock().unwrap().iter().map(|s| ShardInfo { id: ShardId::new(*s), parents: vec![] }).collect())
        }
        async fn shard_iterator(&self, shard: &ShardId, from: &StartFrom) -> Result<String, SourceError> {
            self.asked.lock().unwrap().push((shard.to_string(), from.clone()));
            Ok("i".into())
        }
        async fn get_records(&self, _: &ShardId, _: &str, _: usize) -> Result<Page, SourceError> {
            Ok(Page::default())
        }
    }

    struct NoEncoder;
    impl EventEncoder for NoEncoder {
        fn encode_event(&self, _: &ShardId, _: &[Record], _: Option<&esmd_api::ExtraFields>) -> Vec<u8> {
            Vec::new()
        }
        fn envelope_size(&self) -> usize {
            0
        }
        fn batch_info(&self, _: &ShardId, _: &[Record]) -> (String, Value) {
            (String::new(), Value::Null)
        }
        fn filter_target(&self, _: &Record) -> Option<Value> {
            None
        }
        fn event_source_arn(&self) -> &str {
            ""
        }
    }

    #[tokio::test]
    async fn shards_born_after_the_first_discovery_start_at_their_first_record() {
        let api = Api { shards: StdMutex::new(vec!["a"]), asked: StdMutex::default() };
        let options = StreamSourceOptions { kind: "t", idle_poll_interval: Duration::ZERO, discovery_interval: Duration::ZERO, reader: ReaderOptions::default() };
        let source = StreamSource::new(api, Arc::new(NoEncoder), options);
        let shards = source.list_shards().await.unwrap();
        source.open(&shards[0], StartFrom::Latest).await.unwrap();
        source.api().shards.lock().unwrap().push("b");
        let shards = source.list_shards().await.unwrap();
        source.open(&shards[1], StartFrom::Latest).await.unwrap();
        source.open(&shards[1], StartFrom::AtTimestamp(5)).await.unwrap();
        let after = StartFrom::After(esmd_api::Position::new("7"));
        source.open(&shards[1], after.clone()).await.unwrap();
        assert_eq!(
            *source.api().asked.lock().unwrap(),
            [("a".into(), StartFrom::Latest), ("b".into(), StartFrom::TrimHorizon), ("b".into(), StartFrom::TrimHorizon), ("b".into(), after)]
        );
    }
}
