//! Draining an SQS backlog through moto: esmd against a raw receive + delete loop, one run.
//!
//! Needs moto (`scripts/test-deps.sh`, or `$ESMD_MOTO_SERVER`); started on a free 127.0.0.1
//! port. Before each row a fresh standard queue gets N messages of 256 bytes. "raw" runs loops
//! of ReceiveMessage (10, long poll) + DeleteMessageBatch until every message is deleted;
//! "esmd" runs a mapping over its queue (batch 100, 1 s window) into the no-op HTTP function (a
//! process of its own, `noop.rs`) on 127.0.0.1 until the function has seen every message and
//! the queue is empty. Clocks run from the start of the first receive (raw) or the first
//! function request (esmd) to the last delete (raw) or the queue being empty (esmd).

use super::noop::NoopFunction;
use super::moto::MotoServer;
use super::table::Drain;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};
use esmd::engine::settings::{BatchSettings, QueueSettings};
use esmd::status::StatusRegistry;
use esmd::supervisor::QueueMapping;
use esmd_api::QueueSource;
use esmd_sqs::{SqsOptions, SqsSource, SqsSourceConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const BODY_BYTES: usize = 256;

pub fn raw_row(loops: usize) -> String {
    format!("raw ReceiveMessage(10) + DeleteMessageBatch, {loops} loop(s)")
}

pub fn esmd_row(batch: usize, concurrency: usize) -> String {
    format!("esmd batch {batch} (1 s window), maximum_concurrency {concurrency}")
}

/// One raw row per entry of `raw_loops` (concurrent loops), one esmd row per
/// `(batch, maximum_concurrency)`; each on a fresh queue of `n` messages.
pub async fn drain(n: usize, raw_loops: &[usize], configs: &[(usize, usize)]) -> Drain {
    let moto = MotoServer::start().await;
    println!("backlog: {n} messages of {BODY_BYTES} B per row, moto at {}\n", moto.endpoint());
    let mut rows = Vec::new();
    for &loops in raw_loops {
        let url = seed(&moto, &format!("raw-{loops}"), n).await;
        rows.push((raw_row(loops), raw(&moto, &url, n, loops).await));
    }
    for &(batch, concurrency) in configs {
        let url = seed(&moto, &format!("esmd-{batch}-{concurrency}"), n).await;
        rows.push((esmd_row(batch, concurrency), esmd(&moto, &url, n, batch, concurrency).await));
    }
    Drain { n, unit: "messages", vs: format!("vs raw {} loop{}", raw_loops[0], if raw_loops[0] == 1 { "" } else { "s" }), rows }
}

/// A fresh queue holding `n` messages.
async fn seed(moto: &MotoServer, name: &str, n: usize) -> String {
    let url = moto.create_queue(name, &[("VisibilityTimeout", "300")]).await;
    let client = moto.sqs_client();
    let mut sends = tokio::task::JoinSet::new();
    for chunk_start in (0..n).step_by(10) {
        let entries: Vec<SendMessageBatchRequestEntry> = (chunk_start..(chunk_start + 10).min(n))
            .map(|j| {
                let mut body = format!("{{\"n\":{j}}}");
                body.push_str(&" ".repeat(BODY_BYTES.saturating_sub(body.len())));
                SendMessageBatchRequestEntry::builder().id(format!("e{j}")).message_body(body).build().expect("entry")
            })
            .collect();
        let request = client.send_message_batch().queue_url(&url).set_entries(Some(entries));
        sends.spawn(async move { request.send().await.expect("seed") });
        while sends.len() >= 8 {
            sends.join_next().await;
        }
    }
    while sends.join_next().await.is_some() {}
    url
}

/// `loops` concurrent receive + delete loops until `n` messages are deleted.
async fn raw(moto: &MotoServer, url: &str, n: usize, loops: usize) -> Duration {
    let client = moto.sqs_client();
    let deleted = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..loops {
        let (client, url, deleted) = (client.clone(), url.to_owned(), deleted.clone());
        workers.spawn(async move {
            while (deleted.load(Ordering::Relaxed) as usize) < n {
                let out = client.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(1).send().await.expect("receive");
                if out.messages().is_empty() {
                    continue;
                }
                let entries: Vec<DeleteMessageBatchRequestEntry> = out
                    .messages()
                    .iter()
                    .enumerate()
                    .map(|(i, m)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(m.receipt_handle().unwrap_or_default()).build().expect("entry"))
                    .collect();
                let done = client.delete_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.expect("delete");
                deleted.fetch_add(done.successful().len() as u64, Ordering::Relaxed);
            }
        });
    }
    while workers.join_next().await.is_some() {}
    start.elapsed()
}

async fn esmd(moto: &MotoServer, queue_url: &str, n: usize, batch_size: usize, concurrency: usize) -> Duration {
    let function = NoopFunction::start("\"messageId\":").await;
    let config = SqsSourceConfig { queue_url: queue_url.into(), region: None, endpoint_url: Some(moto.endpoint()) };
    let source = Arc::new(SqsSource::connect_with(SqsOptions { config, maximum_concurrency: concurrency }, &moto.sdk_config()).await.expect("source"));
    let registry = StatusRegistry::default();
    let stop = CancellationToken::new();
    let ctx = super::mapping_ctx("bench", "sqs", &function.url, 64, source.encoder(), &registry, stop.child_token());
    let settings = QueueSettings {
        batch: BatchSettings { batch_size, window: Duration::from_secs(1), ..Default::default() },
        maximum_concurrency: concurrency,
        ..Default::default()
    };
    let handle = tokio::spawn(QueueMapping { ctx: Arc::new(ctx), settings: Arc::new(settings), source }.run());
    function.wait_count(n, Duration::from_secs(3600)).await;
    // Every message reached the function; the clock stops when the queue is empty (the deletes).
    let all_seen = function.since_first().await;
    let mut said = false;
    loop {
        let counts = moto.queue_counts(queue_url).await;
        if counts == (0, 0) {
            break;
        }
        // A queue that stays non-empty long after the function saw everything is worth a word.
        if !said && function.since_first().await > all_seen + Duration::from_secs(10) {
            said = true;
            let status = serde_json::to_string(&registry.snapshot()).unwrap_or_default();
            eprintln!("  (the function saw all {n} ({} received) after {:.1} s; 10 s later the queue still holds {counts:?} (visible, in flight); status: {status})", function.count().await, all_seen.as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = function.since_first().await;
    stop.cancel();
    let _ = handle.await;
    elapsed
}
