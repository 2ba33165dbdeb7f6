//! The raw pipeline: the floor of the job, what any correct Kafka ESM must at least do. A child
//! of the bench (`--raw-pipeline`): one rdkafka `StreamConsumer` in a group, records batched per
//! partition up to the batch size, each batch written as AWS's Kafka event by a minimal encoder
//! (`event.rs`) and POSTed to the function with a pooled reqwest client, at most `concurrency`
//! requests in flight and at most `lanes` batches per partition; after each response the
//! partition's offset is committed (async) up to its lowest unfinished batch.
//!
//! What it leaves out, because a drain of one group member into a function that always answers
//! 200 never needs it: rebalances (one member), retries beyond sending a batch again, per-key
//! order across lanes, filters, destinations, metrics, status, checkpoints of its own.
//!
//! Batches close at the batch size, or short of it when they reach the partition's end (its high
//! watermark as librdkafka last saw it, no request to the broker): the fewest requests a drain
//! can make, so the least work. A partition whose end is not known yet closes what it has when
//! nothing more is ready to read. Reading stops while `concurrency` batches are closed but not
//! sent: then librdkafka's own queue fills and it stops fetching, so memory stays bounded by the
//! batches being filled, the batches waiting, and those in flight.

use super::super::child::{self, Helper, READY};
use super::event::{EventWriter, Fields};
use super::TOPIC;
use esmd_kafka::rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use esmd_kafka::rdkafka::message::{BorrowedMessage, Message};
use esmd_kafka::rdkafka::{Offset, Timestamp, TopicPartitionList};
use std::collections::VecDeque;
use std::ffi::CString;
use std::time::Duration;
use tokio::sync::mpsc;

pub const FLAG: &str = "--raw-pipeline";

pub struct Options {
    pub bootstrap: String,
    pub group: String,
    pub url: String,
    pub batch: usize,
    pub lanes: usize,
    pub concurrency: usize,
}

impl Options {
    fn args(&self) -> Vec<String> {
        let flags = [
            ("--bootstrap", self.bootstrap.clone()),
            ("--group", self.group.clone()),
            ("--url", self.url.clone()),
            ("--batch", self.batch.to_string()),
            ("--lanes", self.lanes.to_string()),
            ("--concurrency", self.concurrency.to_string()),
        ];
        flags.into_iter().flat_map(|(k, v)| [k.to_string(), v]).collect()
    }

    fn parse(args: &[String]) -> Self {
        Options {
            bootstrap: child::arg(args, "--bootstrap"),
            group: child::arg(args, "--group"),
            url: child::arg(args, "--url"),
            batch: child::parsed(args, "--batch"),
            lanes: child::parsed(args, "--lanes"),
            concurrency: child::parsed(args, "--concurrency"),
        }
    }
}

/// Starts the pipeline as a child; returns once it has subscribed. It runs until killed: the
/// bench decides it is done from the group's committed offsets.
pub async fn start(options: &Options) -> Helper {
    let mut helper = Helper::spawn(FLAG, &options.args());
    let line = helper.line(Duration::from_secs(60)).await;
    assert_eq!(line, READY, "the raw pipeline's first line");
    helper
}

/// The child's main.
pub fn run_child(args: &[String]) -> ! {
    let options = Options::parse(args);
    super::super::runtime().block_on(run(options));
    std::process::exit(0)
}

struct Batch {
    partition: i32,
    start: i64,
    /// The offset after the batch's last record: what is committed once it is done.
    end: i64,
    records: usize,
    body: Vec<u8>,
}

#[derive(Default)]
struct Partition {
    filling: Option<Batch>,
    /// Closed, waiting for a lane and a request slot.
    ready: VecDeque<Batch>,
    in_flight: usize,
    /// Every closed batch not yet committed past, in offset order: (start, end, finished).
    open: VecDeque<(i64, i64, bool)>,
    /// In [`State::waiting`].
    queued: bool,
}

/// A batch's response arrived.
struct Finished {
    partition: i32,
    start: i64,
}

struct State {
    writer: EventWriter,
    http: reqwest::Client,
    url: reqwest::Url,
    batch: usize,
    lanes: usize,
    concurrency: usize,
    /// By partition number.
    partitions: Vec<Partition>,
    /// Partitions with ready batches, oldest first: fair across partitions.
    waiting: VecDeque<i32>,
    ready: usize,
    in_flight: usize,
    finished: mpsc::UnboundedSender<Finished>,
    /// Something happened since the last look at the partly filled batches.
    dirty: bool,
    topic: CString,
}

async fn run(o: Options) {
    let consumer: StreamConsumer = super::consumer_config(&o.bootstrap, &o.group).create().expect("the raw pipeline's consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    // As esmd's HTTP invoker builds its client (src/invoke/http.rs).
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(o.concurrency)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let (finished, mut done) = mpsc::unbounded_channel();
    let mut s = State {
        writer: EventWriter::new(&o.bootstrap, TOPIC),
        http,
        url: o.url.parse().expect("--url"),
        batch: o.batch.max(1),
        lanes: o.lanes.max(1),
        concurrency: o.concurrency.max(1),
        partitions: Vec::new(),
        waiting: VecDeque::new(),
        ready: 0,
        in_flight: 0,
        finished,
        dirty: false,
        topic: CString::new(TOPIC).expect("a topic name without NUL"),
    };
    child::say(READY);
    loop {
        let reading = s.ready < s.concurrency;
        // `biased`: responses first (they free lanes and slots), then messages; the last branch
        // runs only when neither is ready, i.e. when nothing more is there to read right now.
        let look = s.dirty && reading;
        tokio::select! {
            biased;
            Some(f) = done.recv() => s.finish(f, &consumer),
            m = consumer.recv(), if reading => match m {
                Ok(m) => s.add(&m, &consumer),
                Err(e) => eprintln!("raw pipeline: consumer error: {e}"),
            },
            _ = std::future::ready(()), if look => s.close_unknown_ends(&consumer),
        }
    }
}

impl State {
    fn partition(&mut self, p: i32) -> &mut Partition {
        let i = usize::try_from(p).expect("a partition number");
        if self.partitions.len() <= i {
            self.partitions.resize_with(i + 1, Partition::default);
        }
        &mut self.partitions[i]
    }

    fn add(&mut self, m: &BorrowedMessage<'_>, consumer: &StreamConsumer) {
        let timestamp = match m.timestamp() {
            Timestamp::CreateTime(t) => Some((t, "CREATE_TIME")),
            Timestamp::LogAppendTime(t) => Some((t, "LOG_APPEND_TIME")),
            Timestamp::NotAvailable => None,
        };
        let f = Fields { partition: m.partition(), offset: m.offset(), timestamp, key: m.key(), value: m.payload() };
        let capacity = self.writer.record_len(&f) * self.batch + 64;
        let i = m.partition();
        self.partition(i);
        let writer = &self.writer;
        let part = &mut self.partitions[i as usize];
        let batch = part.filling.get_or_insert_with(|| Batch { partition: i, start: f.offset, end: f.offset, records: 0, body: writer.start(i, capacity) });
        writer.push(&mut batch.body, batch.records == 0, &f);
        batch.records += 1;
        batch.end = f.offset + 1;
        self.dirty = true;
        let (records, end) = (batch.records, batch.end);
        if records >= self.batch || high_watermark(consumer, &self.topic, i).is_some_and(|high| end >= high) {
            self.close(i);
            self.dispatch();
        }
    }

    /// Moves the partition's filling batch to its ready ones.
    fn close(&mut self, p: i32) {
        let part = &mut self.partitions[p as usize];
        let Some(mut batch) = part.filling.take() else { return };
        EventWriter::finish(&mut batch.body);
        part.open.push_back((batch.start, batch.end, false));
        part.ready.push_back(batch);
        self.ready += 1;
        if !part.queued {
            part.queued = true;
            self.waiting.push_back(p);
        }
    }

    /// Nothing more to read right now: a partition whose end librdkafka does not know yet, with
    /// a lane free, sends what it has while request slots are free.
    fn close_unknown_ends(&mut self, consumer: &StreamConsumer) {
        self.dirty = false;
        let mut slots = self.concurrency.saturating_sub(self.in_flight + self.ready);
        for p in 0..self.partitions.len() {
            if slots == 0 {
                break;
            }
            let part = &self.partitions[p];
            if part.filling.is_some() && part.ready.is_empty() && part.in_flight < self.lanes && high_watermark(consumer, &self.topic, p as i32).is_none() {
                self.close(p as i32);
                slots -= 1;
            }
        }
        self.dispatch();
    }

    /// Sends ready batches while request slots are free, each partition within its lanes.
    fn dispatch(&mut self) {
        let mut misses = 0;
        while self.in_flight < self.concurrency && misses < self.waiting.len() {
            let Some(p) = self.waiting.pop_front() else { break };
            let part = &mut self.partitions[p as usize];
            if part.in_flight >= self.lanes {
                self.waiting.push_back(p);
                misses += 1;
                continue;
            }
            misses = 0;
            let Some(batch) = part.ready.pop_front() else {
                part.queued = false;
                continue;
            };
            part.in_flight += 1;
            if part.ready.is_empty() {
                part.queued = false;
            } else {
                self.waiting.push_back(p);
            }
            self.in_flight += 1;
            self.ready -= 1;
            self.send(batch);
        }
    }

    fn send(&self, batch: Batch) {
        let (http, url, finished) = (self.http.clone(), self.url.clone(), self.finished.clone());
        tokio::spawn(async move {
            let body = bytes::Bytes::from(batch.body);
            loop {
                let sent = http.post(url.clone()).header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone()).send().await;
                match sent {
                    // The body is read so the connection goes back to the pool.
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        break;
                    }
                    Ok(r) => eprintln!("raw pipeline: the function answered {}; sending the batch again", r.status()),
                    Err(e) => eprintln!("raw pipeline: POST failed ({e}); sending the batch again"),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = finished.send(Finished { partition: batch.partition, start: batch.start });
        });
    }

    /// A response: the batch is done; the partition's offset moves up to its lowest unfinished
    /// batch, and is committed when it moved.
    fn finish(&mut self, f: Finished, consumer: &StreamConsumer) {
        self.in_flight -= 1;
        self.dirty = true;
        let part = &mut self.partitions[f.partition as usize];
        part.in_flight -= 1;
        if let Some(entry) = part.open.iter_mut().find(|e| e.0 == f.start) {
            entry.2 = true;
        }
        let mut commit = None;
        while let Some(&(_, end, true)) = part.open.front() {
            part.open.pop_front();
            commit = Some(end);
        }
        if let Some(offset) = commit {
            let mut tpl = TopicPartitionList::new();
            if let Err(e) = tpl.add_partition_offset(TOPIC, f.partition, Offset::Offset(offset)) {
                eprintln!("raw pipeline: offset {offset}: {e}");
            } else if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
                eprintln!("raw pipeline: commit: {e}");
            }
        }
        self.dispatch();
    }
}

/// The partition's end as librdkafka last saw it in a fetch response (no request to the broker);
/// `None` before the first.
fn high_watermark(consumer: &StreamConsumer, topic: &CString, partition: i32) -> Option<i64> {
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the consumer's handle is alive for the call (borrowed), the topic is a valid C
    // string, and librdkafka only writes the two out-parameters (as connectors/kafka/src/source.rs
    // calls it).
    #[allow(unsafe_code)]
    let err = unsafe { esmd_kafka::rdkafka::bindings::rd_kafka_get_watermark_offsets(consumer.client().native_ptr(), topic.as_ptr(), partition, &mut low, &mut high) };
    (err == esmd_kafka::rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}
