//! The backlog: librdkafka's mock cluster in the bench's process, seeded once, read by every run
//! in a fresh consumer group. The clients are other processes; they reach the mock over TCP on
//! 127.0.0.1, as they would a broker, and the mock serves their group joins, fetches, offset
//! commits and offset fetches.
//!
//! The mock is made as esmd's `EmbeddedKafka` makes it, but through a producer's
//! `test.mock.num.brokers`, so the bench holds the cluster's handle and can set the broker's
//! `group.initial.rebalance.delay.ms` to 0: the mock's default, 3 s, was idle time before every
//! one of the drain's dozens of group joins (outside the clocks, but not outside the smoke run).

use super::{PARTITIONS_MAX, TOPIC, VALUE_BYTES};
use esmd_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use esmd_kafka::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use esmd_kafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use esmd_kafka::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Cluster {
    /// Owns the mock cluster: it lives as long as this producer.
    producer: BaseProducer,
    pub bootstrap: String,
    pub partitions: i32,
    /// Each partition's end after seeding: a group is done when it has committed these.
    pub high: Vec<i64>,
}

impl Cluster {
    /// A mock cluster of one broker with `records` messages of 1 KB (1000 keys, spread over the
    /// partitions round-robin) in `partitions` partitions.
    pub fn seed(records: usize, partitions: i32) -> Cluster {
        assert!((1..=PARTITIONS_MAX).contains(&partitions), "1–{PARTITIONS_MAX} partitions");
        let producer: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            // What esmd's producer batches with (connectors/kafka/src/producer.rs), so the mock
            // stores message sets of the size a real producer's would be.
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .expect("a producer with a mock cluster");
        let bootstrap = {
            let mock = producer.client().mock_cluster().expect("the producer's mock cluster");
            mock.create_topic(TOPIC, partitions, 1).expect("create the topic");
            mock.bootstrap_servers()
        };
        no_initial_rebalance_delay(&producer);
        let mut value = Vec::with_capacity(VALUE_BYTES);
        for i in 0..records {
            let key = format!("key-{}", i % 1000);
            value.clear();
            value.extend_from_slice(format!("{{\"n\":{i}}}").as_bytes());
            value.resize(VALUE_BYTES, b' ');
            let partition = (i % partitions as usize) as i32;
            loop {
                match producer.send(BaseRecord::to(TOPIC).partition(partition).key(key.as_bytes()).payload(&value)) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => panic!("seeding: {e}"),
                }
            }
        }
        producer.flush(Duration::from_secs(120)).expect("seeding: flush");
        let (low, high): (Vec<i64>, Vec<i64>) = {
            let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("consumer");
            (0..partitions).map(|p| c.fetch_watermarks(TOPIC, p, Duration::from_secs(10)).expect("watermarks")).unzip()
        };
        assert_eq!(high.iter().sum::<i64>() as usize, records, "every seeded record is in the topic");
        // The mock keeps at most 5 MB and 100,000 messages per partition and silently trims the
        // oldest beyond that.
        assert!(low.iter().all(|&l| l == 0), "the mock cluster trimmed the backlog (5 MB per partition): use fewer records or more partitions");
        Cluster { producer, bootstrap, partitions, high }
    }

    /// Watches `group`'s committed offsets.
    pub fn watch(&self, group: &str) -> CommitWatcher {
        let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &self.bootstrap).set("group.id", group).create().expect("consumer");
        CommitWatcher { consumer: Arc::new(consumer), partitions: self.partitions, high: Arc::new(self.high.clone()) }
    }
}

/// SAFETY: the handle is the producer's own mock cluster (non-null: checked by `mock_cluster`
/// above) and lives as long as the producer, which is borrowed for the call; the setter takes
/// the cluster's lock.
#[allow(unsafe_code)]
fn no_initial_rebalance_delay(producer: &BaseProducer) {
    use esmd_kafka::rdkafka::bindings::{rd_kafka_handle_mock_cluster, rd_kafka_mock_group_initial_rebalance_delay_ms};
    unsafe {
        let mock = rd_kafka_handle_mock_cluster(producer.client().native_ptr());
        assert!(!mock.is_null(), "the producer has a mock cluster");
        rd_kafka_mock_group_initial_rebalance_delay_ms(mock, 0);
    }
}

/// A group member that never joins: it only asks the coordinator for the group's offsets.
pub struct CommitWatcher {
    consumer: Arc<BaseConsumer>,
    partitions: i32,
    high: Arc<Vec<i64>>,
}

impl CommitWatcher {
    /// Partitions whose committed offset is the partition's end.
    pub async fn committed(&self) -> usize {
        let (c, partitions, high) = (self.consumer.clone(), self.partitions, self.high.clone());
        tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            for p in 0..partitions {
                tpl.add_partition(TOPIC, p);
            }
            let Ok(got) = c.committed_offsets(tpl, Duration::from_secs(10)) else { return 0 };
            (0..partitions).filter(|&p| matches!(got.find_partition(TOPIC, p).map(|e| e.offset()), Some(Offset::Offset(o)) if o == high[p as usize])).count()
        })
        .await
        .expect("join")
    }

    /// Polls until every partition is committed to its end; after `timeout`, says how far the
    /// group got.
    pub async fn wait_all(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let done = self.committed().await;
            if done == self.partitions as usize {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("{done} of {} partitions committed to their end within {timeout:?}", self.partitions));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
