use super::*;
use serde_json::Value;
use std::time::Instant as StdInstant;

fn queue(visibility_ms: u64, fifo: bool) -> MemoryQueue {
    MemoryQueue::new(MemoryQueueOptions {
        name: if fifo { "q.fifo".into() } else { "q".into() },
        visibility_timeout: Duration::from_millis(visibility_ms),
        fifo,
        ..Default::default()
    })
}

fn bodies(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| String::from_utf8_lossy(&r.data).into_owned()).collect()
}

fn json(r: &Record) -> Value {
    serde_json::from_slice(&r.encoded).unwrap()
}

const NOW: Duration = Duration::ZERO;
const LONG: Duration = Duration::from_secs(5);

#[tokio::test]
async fn received_messages_hide_and_come_back_with_counts() {
    let q = queue(100, false);
    let id = q.send("one", None);
    q.send("two", None);
    let first = q.receive(10, NOW).await.unwrap();
    assert_eq!(bodies(&first), ["one", "two"]);
    assert_eq!(first[0].item_id, esmd_api::ItemId::Str(id.clone()));
    assert!(first.iter().all(|r| r.receive_count == 0));
    assert_eq!(json(&first[0])["attributes"]["ApproximateReceiveCount"], "1");
    assert_eq!(json(&first[0])["receiptHandle"], first[0].position.as_str());
    assert_eq!((q.visible_len(), q.in_flight_len()), (0, 2));
    assert!(q.receive(10, NOW).await.unwrap().is_empty());

    // Nobody deletes them: the visibility timeout brings them back, and the long poll
    // notices without a send.
    let started = StdInstant::now();
    let again = q.receive(10, LONG).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(bodies(&again), ["one", "two"]);
    assert!(again.iter().all(|r| r.receive_count == 1));
    assert_eq!(json(&again[0])["attributes"]["ApproximateReceiveCount"], "2");
    assert_eq!(
        json(&again[0])["attributes"]["ApproximateFirstReceiveTimestamp"],
        json(&first[0])["attributes"]["ApproximateFirstReceiveTimestamp"]
    );
    assert_ne!(again[0].position, first[0].position);

    q.ack(&again).await.unwrap();
    assert_eq!((q.visible_len(), q.in_flight_len(), q.acked_count()), (0, 0, 2));
}

#[tokio::test]
async fn release_returns_at_once_or_after_the_delay() {
    let q = queue(60_000, false);
    q.send("m", None);
    let r = q.receive(1, NOW).await.unwrap();
    q.release(&r, None).await.unwrap();
    let r = q.receive(1, NOW).await.unwrap();
    assert_eq!(r[0].receive_count, 1);

    q.release(&r, Some(Duration::from_millis(300))).await.unwrap();
    assert_eq!((q.visible_len(), q.in_flight_len(), q.delayed_len()), (0, 0, 1));
    assert!(q.receive(1, NOW).await.unwrap().is_empty());
    let r = q.receive(1, LONG).await.unwrap();
    assert_eq!((bodies(&r), r[0].receive_count), (vec!["m".to_string()], 2));
}

#[tokio::test]
async fn a_stale_receipt_handle_settles_nothing() {
    let q = queue(50, false);
    q.send("m", None);
    let old = q.receive(1, NOW).await.unwrap();
    let new = q.receive(1, LONG).await.unwrap();
    assert_eq!(new[0].receive_count, 1);

    // The first delivery timed out; its handle must not touch the second one.
    q.ack(&old).await.unwrap();
    q.release(&old, None).await.unwrap();
    q.dead_letter(&old).await.unwrap();
    assert_eq!((q.in_flight_len(), q.acked_count(), q.stale_count()), (1, 0, 3));
    assert!(q.dead_letters().is_empty());

    q.ack(&new).await.unwrap();
    assert_eq!((q.in_flight_len(), q.acked_count()), (0, 1));
    // Settling twice is stale too.
    q.ack(&new).await.unwrap();
    assert_eq!((q.acked_count(), q.stale_count()), (1, 4));
}

#[tokio::test]
async fn foreign_receipt_handles_fail_but_the_rest_is_done() {
    let q = queue(60_000, false);
    q.send("m", None);
    let mut records = q.receive(1, NOW).await.unwrap();
    let mut foreign = records[0].clone();
    foreign.position = esmd_api::Position::new("not-a-handle");
    records.push(foreign);
    let err = q.ack(&records).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Fatal);
    assert_eq!(q.acked_count(), 1);
}

#[tokio::test]
async fn extend_keeps_messages_hidden() {
    let q = queue(100, false);
    q.send("m", None);
    let r = q.receive(1, NOW).await.unwrap();
    q.extend(&r, Duration::from_secs(60)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!((q.visible_len(), q.in_flight_len()), (0, 1));
    // The extended delivery is still the current one.
    q.ack(&r).await.unwrap();
    assert_eq!(q.acked_count(), 1);
}

#[tokio::test]
async fn dead_letters_are_kept_for_inspection() {
    let q = queue(60_000, false);
    q.send("bad", None);
    q.send("good", None);
    let r = q.receive(10, NOW).await.unwrap();
    q.dead_letter(&r[..1]).await.unwrap();
    q.ack(&r[1..]).await.unwrap();
    assert_eq!(bodies(&q.dead_letters()), ["bad"]);
    assert_eq!((q.visible_len(), q.in_flight_len(), q.acked_count()), (0, 0, 1));
}

#[tokio::test]
async fn long_poll_wakes_on_send() {
    let q = queue(60_000, false);
    let sender = {
        let q = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            q.send("late", None);
        })
    };
    let started = StdInstant::now();
    let r = q.receive(10, LONG).await.unwrap();
    assert_eq!(bodies(&r), ["late"]);
    assert!(started.elapsed() < Duration::from_secs(2));
    sender.await.unwrap();

    let started = StdInstant::now();
    assert!(q.receive(10, Duration::from_millis(30)).await.unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(25));
}

#[tokio::test]
async fn a_cancelled_receive_loses_nothing() {
    let q = queue(60_000, false);
    let waiting = tokio::time::timeout(Duration::from_millis(20), q.receive(10, LONG)).await;
    assert!(waiting.is_err());
    q.send("m", None);
    assert_eq!(q.visible_len(), 1);
}

#[tokio::test]
async fn injected_receive_failures_are_transient() {
    let q = queue(60_000, false);
    q.send("m", None);
    q.fail_next_receives(1);
    assert_eq!(q.receive(10, NOW).await.unwrap_err().kind, ErrorKind::Transient);
    assert_eq!(q.receive(10, NOW).await.unwrap().len(), 1);
}

#[tokio::test]
async fn fifo_hands_out_a_group_only_when_none_of_it_is_in_flight() {
    let q = queue(60_000, true);
    for (body, group) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("a3", "a"), ("b2", "b")] {
        q.send(body, Some(group));
    }
    assert!(q.ordered_groups());
    let a = q.receive(1, NOW).await.unwrap();
    assert_eq!(bodies(&a), ["a1"]);
    assert_eq!(&a[0].partition_key[..], b"a");
    // Group a is blocked by a1; b comes whole, in order.
    let b = q.receive(10, NOW).await.unwrap();
    assert_eq!(bodies(&b), ["b1", "b2"]);
    assert!(q.receive(10, NOW).await.unwrap().is_empty());

    // a1 done: the rest of a follows, in order.
    q.ack(&a).await.unwrap();
    let rest = q.receive(10, NOW).await.unwrap();
    assert_eq!(bodies(&rest), ["a2", "a3"]);

    // a2 fails and goes back (with a3 after it): a restarts at a2.
    q.release(&rest, None).await.unwrap();
    let retry = q.receive(10, NOW).await.unwrap();
    assert_eq!(bodies(&retry), ["a2", "a3"]);
    assert_eq!(retry[0].receive_count, 1);

    // A release delay keeps the group blocked until the message is back.
    q.release(&retry[..1], Some(Duration::from_millis(200))).await.unwrap();
    q.ack(&retry[1..]).await.unwrap();
    q.send("a4", Some("a"));
    assert!(q.receive(10, NOW).await.unwrap().is_empty());
    let back = q.receive(10, LONG).await.unwrap();
    assert_eq!(bodies(&back), ["a2", "a4"]);
}

#[tokio::test]
async fn fifo_records_carry_group_sequence_and_dedup_ids() {
    let q = queue(60_000, true);
    let id = q.send("x", None);
    let r = q.receive(1, NOW).await.unwrap();
    let attrs = &json(&r[0])["attributes"];
    assert_eq!(attrs["MessageGroupId"], DEFAULT_FIFO_GROUP);
    assert_eq!(attrs["MessageDeduplicationId"], &*id);
    assert_eq!(attrs["SequenceNumber"].as_str().unwrap().len(), 20);
    assert_eq!(&r[0].partition_key[..], DEFAULT_FIFO_GROUP.as_bytes());
}

#[tokio::test]
async fn standard_queue_records_are_sqs_records() {
    let q = MemoryQueue::new(MemoryQueueOptions { name: "orders".into(), region: "eu-west-1".into(), account: "111111111111".into(), ..Default::default() });
    q.send(r#"{"k":1}"#, Some("ignored"));
    let r = q.receive(1, NOW).await.unwrap();
    let v = json(&r[0]);
    assert_eq!(v["body"], r#"{"k":1}"#);
    assert_eq!(v["md5OfBody"], "e59138f35192e320088b83d28388d6bb");
    assert_eq!(v["eventSourceARN"], "arn:aws:sqs:eu-west-1:111111111111:orders");
    assert!(v["attributes"].get("MessageGroupId").is_none());
    assert_eq!(&r[0].partition_key[..], b"ignored");
    assert_eq!((q.kind(), q.queue_id().as_str()), ("memory-queue", "orders"));
    assert_eq!(q.visibility_timeout(), Some(Duration::from_secs(30)));
    assert!(!q.ordered_groups());
}
