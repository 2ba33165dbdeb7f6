//! The raw consumer: the read-only ceiling. A child of the bench (`--raw-consumer`): one
//! rdkafka `StreamConsumer` in a fresh group reads every record and touches its payload, and
//! commits nothing and sends nothing. It is what the client library alone costs on this machine.
//!
//! It prints `ready` once subscribed and `done <span> <longest gap> <its end>` (seconds) once it
//! has read the backlog (span: first record received to last), then waits to be killed, so the
//! bench reads its CPU time and peak memory while it still exists.

use super::super::child::{self, Helper, READY};
use super::TOPIC;
use esmd_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use esmd_kafka::rdkafka::message::Message;
use std::time::{Duration, Instant};

pub const FLAG: &str = "--raw-consumer";

/// The child's main.
pub fn run_child(args: &[String]) -> ! {
    let (bootstrap, group) = (child::arg(args, "--bootstrap"), child::arg(args, "--group"));
    let records: usize = child::parsed(args, "--records");
    super::super::runtime().block_on(async move {
        let consumer: StreamConsumer = super::consumer_config(&bootstrap, &group).create().expect("the raw consumer");
        consumer.subscribe(&[TOPIC]).expect("subscribe");
        child::say(READY);
        let (mut seen, mut touched) = (0usize, 0u64);
        let (mut first, mut last, mut gap, mut gap_end) = (None, None::<Instant>, Duration::ZERO, Duration::ZERO);
        while seen < records {
            let m = match consumer.recv().await {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("raw consumer: {e}");
                    continue;
                }
            };
            let now = Instant::now();
            let start = *first.get_or_insert(now);
            if let Some(l) = last {
                if now - l > gap {
                    (gap, gap_end) = (now - l, now - start);
                }
            }
            last = Some(now);
            touched += m.payload().map_or(0, |p| p.len() as u64);
            seen += 1;
        }
        let span = match (first, last) {
            (Some(f), Some(l)) => l - f,
            _ => Duration::ZERO,
        };
        assert!(touched > 0 || records == 0, "the raw consumer read no payload");
        child::say(&format!("done {} {} {}", span.as_secs_f64(), gap.as_secs_f64(), gap_end.as_secs_f64()));
        std::future::pending::<()>().await;
    });
    std::process::exit(0)
}

/// A running raw consumer, subscribed.
pub async fn start(bootstrap: &str, group: &str, records: usize) -> Helper {
    let args = ["--bootstrap", bootstrap, "--group", group, "--records", &records.to_string()].map(str::to_string);
    let mut helper = Helper::spawn(FLAG, &args);
    let line = helper.line(Duration::from_secs(60)).await;
    assert_eq!(line, READY, "the raw consumer's first line");
    helper
}

/// Waits for the consumer's `done` line: (first record to last, longest gap between records,
/// when it ended).
pub async fn done(helper: &mut Helper, timeout: Duration) -> (Duration, Duration, Duration) {
    let line = helper.line(timeout).await;
    let secs: Vec<f64> = line.strip_prefix("done ").unwrap_or_else(|| panic!("the raw consumer said {line:?}")).split(' ').filter_map(|s| s.parse().ok()).collect();
    match secs[..] {
        [span, gap, end] => (Duration::from_secs_f64(span), Duration::from_secs_f64(gap), Duration::from_secs_f64(end)),
        _ => panic!("the raw consumer said {line:?}"),
    }
}
