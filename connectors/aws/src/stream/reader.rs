//! [`PollingReader`]: one shard read through GetRecords, iterator by iterator.

use super::{ShardApi, GET_RECORDS_LIMIT};
use async_trait::async_trait;
use esmd_api::{ErrorKind, ReadBatch, ShardId, ShardReader, SourceError, StartFrom};
use std::sync::Arc;

/// How a [`PollingReader`] reads.
#[derive(Clone, Debug)]
pub struct ReaderOptions {
    /// Empty pages read back to back while the service says the reader is behind
    /// (`MillisBehindLatest` > 0: a gap in the shard, not the end of it) before the engine's
    /// idle wait applies. Keeps a reader crossing an empty stretch from waiting a second per page.
    pub max_empty_pages: u32,
    /// Test hook: every Nth read fails as if the service had answered ExpiredIteratorException,
    /// without calling it. 0 = never. Neither moto nor kinesis-local expires iterators within a
    /// test's time (AWS: after 5 minutes), and the engine's renewal is what is under test.
    pub expire_iterator_every_reads: u32,
    /// Records asked for per GetRecords, at least (the engine may ask for more). Lambda reads
    /// as much as a call gives: a shard allows about 5 calls a second, so small reads would
    /// cap a shard's throughput whatever the batch size.
    pub records_per_read: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions { max_empty_pages: 5, expire_iterator_every_reads: 0, records_per_read: GET_RECORDS_LIMIT }
    }
}

/// Reads one shard in order. `iterator == None` after the last page of a closed shard.
pub struct PollingReader<A> {
    api: Arc<A>,
    shard: ShardId,
    iterator: Option<String>,
    /// The position asked for was trimmed away: the first read reports it, so the engine
    /// decides where to go (and counts it) instead of this reader skipping silently.
    trimmed: Option<SourceError>,
    options: ReaderOptions,
    reads: u64,
}

impl<A: ShardApi> PollingReader<A> {
    /// Gets an iterator at `from`.
    pub async fn open(api: Arc<A>, shard: ShardId, from: StartFrom, options: ReaderOptions) -> Result<Self, SourceError> {
        let (iterator, trimmed) = match api.shard_iterator(&shard, &from).await {
            Ok(it) => (Some(it), None),
            Err(e) if e.kind == ErrorKind::Trimmed => (None, Some(e)),
            Err(e) => return Err(e),
        };
        Ok(PollingReader { api, shard, iterator, trimmed, options, reads: 0 })
    }
}

#[async_trait]
impl<A: ShardApi> ShardReader for PollingReader<A> {
    async fn read(&mut self, max_records: usize) -> Result<ReadBatch, SourceError> {
        if let Some(e) = self.trimmed.take() {
            return Err(e);
        }
        let Some(mut iterator) = self.iterator.clone() else {
            return Ok(ReadBatch { end_of_shard: true, ..Default::default() });
        };
        self.reads += 1;
        let every = u64::from(self.options.expire_iterator_every_reads);
        #[allow(clippy::manual_is_multiple_of)] // is_multiple_of is newer than the workspace's rust-version
        let expire = every > 0 && self.reads % every == 0;
        if expire {
            return Err(SourceError::new(ErrorKind::IteratorExpired, format!("shard {}: iterator expired (injected by the test hook)", self.shard)));
        }
        let limit = max_records.max(self.options.records_per_read).clamp(1, GET_RECORDS_LIMIT);
        let mut empty = 0;
        loop {
            let page = self.api.get_records(&self.shard, &iterator, limit).await?;
            self.iterator = page.next_iterator;
            let behind = page.behind_ms.unwrap_or(0) > 0;
            match &self.iterator {
                Some(next) if page.records.is_empty() && behind && empty < self.options.max_empty_pages => {
                    empty += 1;
                    iterator = next.clone();
                }
                _ => {
                    return Ok(ReadBatch { records: page.records, end_of_shard: self.iterator.is_none(), behind_ms: page.behind_ms, backlog: None });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Page;
    use bytes::Bytes;
    use esmd_api::{ItemId, Position, Record, ShardInfo};
    use std::sync::Mutex;

    /// Pages by iterator: iterator "i" returns pages[i] and points at "i+1"; the last page ends
    /// the shard.
    struct Script {
        pages: Vec<(Vec<&'static str>, u64)>,
        calls: Mutex<Vec<String>>,
        trimmed: bool,
    }

    fn rec(seq: &str) -> Record {
        Record {
            position: Position::new(seq),
            partition_key: Bytes::new(),
            arrival_ms: 0,
            data: Bytes::new(),
            encoded: Bytes::new(),
            item_id: ItemId::Str(seq.into()),
            receive_count: 0,
            invalid: None,
        }
    }

    #[async_trait]
    impl ShardApi for Script {
        async fn list_shards(&self) -> Result<Vec<ShardInfo>, SourceError> {
            Ok(vec![])
        }
        async fn shard_iterator(&self, _: &ShardId, _: &StartFrom) -> Result<String, SourceError> {
            if self.trimmed {
                return Err(SourceError::new(ErrorKind::Trimmed, "trimmed"));
            }
            Ok("0".into())
        }
        async fn get_records(&self, _: &ShardId, iterator: &str, _: usize) -> Result<Page, SourceError> {
            self.calls.lock().unwrap().push(iterator.to_string());
            let i: usize = iterator.parse().unwrap();
            let (seqs, behind) = &self.pages[i];
            let next = (i + 1 < self.pages.len()).then(|| (i + 1).to_string());
            Ok(Page { records: seqs.iter().map(|s| rec(s)).collect(), next_iterator: next, behind_ms: Some(*behind) })
        }
    }

    async fn reader(pages: Vec<(Vec<&'static str>, u64)>, options: ReaderOptions) -> (Arc<Script>, PollingReader<Script>) {
        let api = Arc::new(Script { pages, calls: Mutex::default(), trimmed: false });
        let r = PollingReader::open(api.clone(), ShardId::new("s"), StartFrom::TrimHorizon, options).await.unwrap();
        (api, r)
    }

    #[tokio::test]
    async fn skips_empty_pages_while_behind_and_ends_with_the_shard() {
        let (api, mut r) = reader(vec![(vec![], 5000), (vec![], 4000), (vec!["1", "2"], 0), (vec![], 0), (vec!["3"], 0)], ReaderOptions::default()).await;
        let b = r.read(100).await.unwrap();
        assert_eq!(b.records.iter().map(|r| r.position.as_str()).collect::<Vec<_>>(), ["1", "2"]);
        assert!(!b.end_of_shard);
        // Caught up and empty: returned as is, so the engine waits its idle interval.
        let b = r.read(100).await.unwrap();
        assert!(b.records.is_empty() && !b.end_of_shard && b.behind_ms == Some(0));
        let b = r.read(100).await.unwrap();
        assert_eq!(b.records.len(), 1);
        assert!(b.end_of_shard, "no next iterator: the shard is closed and read");
        assert!(r.read(100).await.unwrap().end_of_shard);
        assert_eq!(*api.calls.lock().unwrap(), ["0", "1", "2", "3", "4"]);
    }

    #[tokio::test]
    async fn empty_pages_while_behind_are_bounded() {
        let pages = (0..10).map(|_| (vec![], 1000)).collect();
        let (api, mut r) = reader(pages, ReaderOptions { max_empty_pages: 3, ..Default::default() }).await;
        assert!(r.read(10).await.unwrap().records.is_empty());
        assert_eq!(api.calls.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn the_test_hook_expires_every_nth_read_without_calling() {
        let pages = (0..10).map(|_| (vec!["x"], 0)).collect();
        let (api, mut r) = reader(pages, ReaderOptions { expire_iterator_every_reads: 2, ..Default::default() }).await;
        assert!(r.read(10).await.is_ok());
        assert_eq!(r.read(10).await.unwrap_err().kind, ErrorKind::IteratorExpired);
        assert!(r.read(10).await.is_ok());
        assert_eq!(api.calls.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_trimmed_start_is_reported_by_the_first_read() {
        let api = Arc::new(Script { pages: vec![], calls: Mutex::default(), trimmed: true });
        let mut r = PollingReader::open(api, ShardId::new("s"), StartFrom::After(Position::new("1")), ReaderOptions::default()).await.unwrap();
        assert_eq!(r.read(10).await.unwrap_err().kind, ErrorKind::Trimmed);
    }
}
