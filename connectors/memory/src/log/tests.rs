use super::*;
use esmd_api::ReadBatch;
use std::collections::HashSet;
use std::time::Instant;

fn log(shards: usize) -> MemoryLog {
    MemoryLog::new(MemoryLogOptions { stream_name: "s".into(), shards, ..Default::default() })
}

/// The shard as discovery lists it (with parents).
fn info(log: &MemoryLog, id: &ShardId) -> ShardInfo {
    let topology = read(&log.inner.topology);
    let shard = topology.get(id).unwrap();
    ShardInfo { id: shard.id.clone(), parents: shard.parents.clone() }
}

async fn open(log: &MemoryLog, id: &ShardId, from: StartFrom) -> Box<dyn ShardReader> {
    log.open(&info(log, id), from).await.unwrap()
}

fn data(batch: &ReadBatch) -> Vec<String> {
    batch.records.iter().map(|r| String::from_utf8_lossy(&r.data).into_owned()).collect()
}

#[tokio::test]
async fn keys_route_stably_and_keep_their_order() {
    let log = log(4);
    let mut by_shard: std::collections::HashMap<ShardId, Vec<String>> = Default::default();
    for i in 0..400 {
        let key = format!("key-{}", i % 40);
        let (shard, _) = log.append(key.as_bytes(), format!("{key}/{i}"));
        assert_eq!(shard, log.route(key.as_bytes()));
        by_shard.entry(shard).or_default().push(format!("{key}/{i}"));
    }
    // Forty keys spread over all four shards.
    assert_eq!(by_shard.len(), 4);
    for (shard, expected) in &by_shard {
        assert_eq!(log.len(shard), expected.len());
        let mut reader = open(&log, shard, StartFrom::TrimHorizon).await;
        let mut got = Vec::new();
        loop {
            let batch = reader.read(7).await.unwrap();
            if batch.records.is_empty() {
                break;
            }
            assert!(batch.records.len() <= 7);
            got.extend(data(&batch));
        }
        assert_eq!(&got, expected);
    }
}

#[tokio::test]
async fn sequence_numbers_are_unique_and_grow_along_each_shard() {
    let log = log(3);
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    log.append(format!("{p}-{i}").as_bytes(), "x");
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut seen = HashSet::new();
    for shard in log.shards() {
        let records = log.records(&shard);
        for pair in records.windows(2) {
            assert!(pair[0].position.as_str() < pair[1].position.as_str());
        }
        for r in &records {
            assert_eq!(r.position.as_str().len(), 21);
            assert!(seen.insert(r.position.clone()));
        }
    }
    assert_eq!(seen.len(), 2000);
}

#[tokio::test]
async fn start_positions() {
    let log = log(1);
    let shard = log.shards()[0].clone();
    let t0 = now_ms();
    let p1 = log.append_to(&shard, b"k", "old", Some(t0 - 60_000)).unwrap();
    log.append_to(&shard, b"k", "mid", Some(t0 - 30_000)).unwrap();
    log.append_to(&shard, b"k", "new", Some(t0)).unwrap();

    assert_eq!(data(&open(&log, &shard, StartFrom::TrimHorizon).await.read(10).await.unwrap()), ["old", "mid", "new"]);
    assert_eq!(data(&open(&log, &shard, StartFrom::After(p1.clone())).await.read(10).await.unwrap()), ["mid", "new"]);
    assert_eq!(data(&open(&log, &shard, StartFrom::AtTimestamp(t0 - 30_000)).await.read(10).await.unwrap()), ["mid", "new"]);
    assert_eq!(data(&open(&log, &shard, StartFrom::AtTimestamp(t0 + 1)).await.read(10).await.unwrap()), Vec::<String>::new());

    let mut latest = open(&log, &shard, StartFrom::Latest).await;
    log.append(b"k", "after-open");
    assert_eq!(data(&latest.read(10).await.unwrap()), ["after-open"]);

    // A position past the end resumes at the end; garbage is refused.
    let mut after_all = open(&log, &shard, StartFrom::After(Position::new("999999999999999999999"))).await;
    assert!(after_all.read(10).await.unwrap().records.is_empty());
    let err = log.open(&info(&log, &shard), StartFrom::After(Position::new("not-a-seq"))).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::Fatal);
    let err = log.open(&ShardInfo { id: ShardId::new("nope"), parents: vec![] }, StartFrom::TrimHorizon).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn backlog_and_behind() {
    let log = log(1);
    let shard = log.shards()[0].clone();
    let old = now_ms() - 10_000;
    for i in 0..5 {
        log.append_to(&shard, b"k", format!("{i}"), Some(old)).unwrap();
    }
    let mut reader = open(&log, &shard, StartFrom::TrimHorizon).await;
    let batch = reader.read(2).await.unwrap();
    assert_eq!(batch.backlog, Some(3));
    assert!(batch.behind_ms.unwrap() >= 10_000);
    assert!(!batch.end_of_shard);
    let batch = reader.read(10).await.unwrap();
    assert_eq!(batch.records.len(), 3);
    assert_eq!((batch.backlog, batch.behind_ms), (Some(0), Some(0)));
}

#[tokio::test]
async fn split_closes_parent_and_children_list_it() {
    let log = log(1);
    let parent = log.shards()[0].clone();
    for i in 0..10 {
        log.append(format!("k{i}").as_bytes(), format!("before-{i}"));
    }
    let mut reader = open(&log, &parent, StartFrom::TrimHorizon).await;
    assert_eq!(reader.read(4).await.unwrap().records.len(), 4);

    let [a, b] = log.split_shard(&parent).unwrap();
    assert_eq!(log.open_shards(), vec![a.clone(), b.clone()]);
    let listed = log.list_shards().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[1], ShardInfo { id: a.clone(), parents: vec![parent.clone()] });
    assert_eq!(listed[2], ShardInfo { id: b.clone(), parents: vec![parent.clone()] });

    // New records go to the children, never to the closed parent.
    for i in 0..20 {
        let (shard, _) = log.append(format!("k{i}").as_bytes(), "after");
        assert!(shard == a || shard == b);
    }
    assert_eq!(log.len(&parent), 10);
    assert_eq!(log.append_to(&parent, b"k", "x", None), Err(MemoryError::ShardClosed(parent.clone())));

    // The parent's reader drains the rest, then sees the end (without waiting).
    let batch = reader.read(100).await.unwrap();
    assert_eq!(batch.records.len(), 6);
    assert!(batch.end_of_shard);
    let started = Instant::now();
    let batch = reader.read(100).await.unwrap();
    assert!(batch.records.is_empty() && batch.end_of_shard);
    assert!(started.elapsed() < READ_LONG_POLL);
    // A reader opened at LATEST on a closed shard is done at once.
    assert!(open(&log, &parent, StartFrom::Latest).await.read(1).await.unwrap().end_of_shard);

    let child = log.merge_shards(&b, &a).unwrap();
    assert_eq!(log.list_shards().await.unwrap()[3], ShardInfo { id: child.clone(), parents: vec![b, a] });
    assert_eq!(log.open_shards(), vec![child.clone()]);
    assert_eq!(log.append(b"anything", "x").0, child);
}

#[tokio::test]
async fn closing_wakes_a_waiting_reader() {
    let log = log(1);
    let shard = log.shards()[0].clone();
    let mut reader = open(&log, &shard, StartFrom::TrimHorizon).await;
    let splitter = {
        let (log, shard) = (log.clone(), shard.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            log.split_shard(&shard).unwrap();
        })
    };
    // The first read may time out before the split; the shard's end is seen right after.
    let mut batch = reader.read(10).await.unwrap();
    if !batch.end_of_shard {
        batch = reader.read(10).await.unwrap();
    }
    assert!(batch.end_of_shard);
    splitter.await.unwrap();
}

#[tokio::test]
async fn caught_up_read_long_polls_and_wakes_on_append() {
    let log = log(1);
    let shard = log.shards()[0].clone();
    let mut reader = open(&log, &shard, StartFrom::TrimHorizon).await;

    let started = Instant::now();
    let batch = reader.read(10).await.unwrap();
    assert!(batch.records.is_empty() && !batch.end_of_shard);
    assert!(started.elapsed() >= READ_LONG_POLL - Duration::from_millis(5), "waited {:?}", started.elapsed());

    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            log.append(b"k", "hello");
        })
    };
    let started = Instant::now();
    let batch = reader.read(10).await.unwrap();
    assert_eq!(data(&batch), ["hello"]);
    // Woken by the append, not by the timeout.
    assert!(started.elapsed() < READ_LONG_POLL, "took {:?}", started.elapsed());
    writer.await.unwrap();
}

#[tokio::test]
async fn injected_read_failures_are_transient() {
    let log = log(1);
    let shard = log.shards()[0].clone();
    log.append(b"k", "x");
    let mut reader = open(&log, &shard, StartFrom::TrimHorizon).await;
    log.fail_next_reads(2);
    for _ in 0..2 {
        let err = reader.read(10).await.err().unwrap();
        assert_eq!(err.kind, ErrorKind::Transient);
    }
    assert_eq!(data(&reader.read(10).await.unwrap()), ["x"]);
}

#[tokio::test]
async fn records_are_kinesis_records() {
    let log = MemoryLog::new(MemoryLogOptions { stream_name: "orders".into(), shards: 1, region: "eu-west-1".into(), account: "111111111111".into() });
    let (shard, pos) = log.append(b"pk", r#"{"a":1}"#);
    let record = &log.records(&shard)[0];
    let v: serde_json::Value = serde_json::from_slice(&record.encoded).unwrap();
    assert_eq!(v["eventID"], format!("{shard}:{pos}"));
    assert_eq!(v["kinesis"]["partitionKey"], "pk");
    assert_eq!(v["eventSourceARN"], "arn:aws:kinesis:eu-west-1:111111111111:stream/orders");
    assert_eq!(&record.partition_key[..], b"pk");
    assert_eq!(record.item_id, esmd_api::ItemId::Str(pos.0.clone()));
    assert_eq!(log.kind(), "memory");
    assert_eq!(log.idle_poll_interval(), Duration::ZERO);
    assert_eq!(OrderedSource::encoder(&log).event_source_arn(), log.stream_arn());
}
