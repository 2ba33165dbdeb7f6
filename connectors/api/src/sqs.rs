//! SQS-shaped events: each delivery's fragment is the exact JSON AWS puts in an SQS event's
//! `Records` array. Receipt handle and receive count change per delivery, so the fragment is
//! built at receive time from parts prepared once at send time.
//!
//! The SQS connector (connectors/sqs) and the in-memory queue (connectors/memory) build their
//! records with this one [`SqsEncoding`], so both produce byte-identical events.

use crate::json::{push_str, records_event, RECORDS_ENVELOPE};
use bytes::Bytes;
use crate::{EventEncoder, ExtraFields, Record, ShardId};
use serde_json::{Map, Value};

/// Encodes records and events the way Lambda shapes them for an SQS queue.
#[derive(Debug, Clone)]
pub struct SqsEncoding {
    queue_arn: String,
    sender_id: String,
    fifo: bool,
    /// Everything after `md5OfBody`: the same for every message of the queue.
    tail: String,
}

/// One delivery of one message, as the fragment needs it.
pub struct Delivery<'a> {
    pub message_id: &'a str,
    pub receipt_handle: &'a str,
    /// The body already written as a JSON string literal.
    pub quoted_body: &'a str,
    pub md5_of_body: &'a str,
    /// 1 on the first delivery, as `ApproximateReceiveCount`.
    pub receive_count: u32,
    pub sent_ms: i64,
    pub first_receive_ms: i64,
    /// FIFO only: (SequenceNumber, MessageGroupId, MessageDeduplicationId).
    pub fifo: Option<(&'a str, &'a str, &'a str)>,
    /// `SenderId`; `None`: the encoding's account (the in-memory queue has no senders).
    pub sender_id: Option<&'a str>,
    /// `messageAttributes` already written as a JSON object, and `md5OfMessageAttributes`;
    /// `None`: `{}` and no md5 (AWS writes the md5 only when the message has attributes).
    pub message_attributes: Option<(&'a str, &'a str)>,
}

impl SqsEncoding {
    /// `account` doubles as the `SenderId` (the sender's principal id on AWS).
    pub fn new(region: &str, account: &str, queue_name: &str, fifo: bool) -> Self {
        let queue_arn = format!("arn:aws:sqs:{region}:{account}:{queue_name}");
        let mut tail = String::from(",\"eventSource\":\"aws:sqs\",\"eventSourceARN\":");
        push_str(&mut tail, &queue_arn);
        tail.push_str(",\"awsRegion\":");
        push_str(&mut tail, region);
        tail.push('}');
        SqsEncoding { queue_arn, sender_id: account.to_string(), fifo, tail }
    }

    pub fn queue_arn(&self) -> &str {
        &self.queue_arn
    }

    pub fn is_fifo(&self) -> bool {
        self.fifo
    }

    /// The delivery's JSON inside the event, keys (and attributes) in the order AWS writes them.
    pub fn fragment(&self, d: &Delivery<'_>) -> Bytes {
        let mut out = String::with_capacity(480 + d.quoted_body.len() + d.receipt_handle.len() + self.tail.len());
        out.push_str("{\"messageId\":");
        push_str(&mut out, d.message_id);
        out.push_str(",\"receiptHandle\":");
        push_str(&mut out, d.receipt_handle);
        out.push_str(",\"body\":");
        out.push_str(d.quoted_body);
        out.push_str(",\"attributes\":{\"ApproximateReceiveCount\":\"");
        out.push_str(&d.receive_count.to_string());
        out.push_str("\",\"SentTimestamp\":\"");
        out.push_str(&d.sent_ms.to_string());
        out.push('"');
        if let Some((sequence_number, group_id, _)) = d.fifo {
            out.push_str(",\"SequenceNumber\":");
            push_str(&mut out, sequence_number);
            out.push_str(",\"MessageGroupId\":");
            push_str(&mut out, group_id);
        }
        out.push_str(",\"SenderId\":");
        push_str(&mut out, d.sender_id.unwrap_or(&self.sender_id));
        if let Some((_, _, dedup_id)) = d.fifo {
            out.push_str(",\"MessageDeduplicationId\":");
            push_str(&mut out, dedup_id);
        }
        out.push_str(",\"ApproximateFirstReceiveTimestamp\":\"");
        out.push_str(&d.first_receive_ms.to_string());
        out.push_str("\"},\"messageAttributes\":");
        match d.message_attributes {
            Some((attributes, md5)) => {
                out.push_str(attributes);
                out.push_str(",\"md5OfMessageAttributes\":");
                push_str(&mut out, md5);
            }
            // AWS writes the key with null (recorded: test_sqs_event_source_mapping).
            None => out.push_str("{},\"md5OfMessageAttributes\":null"),
        }
        out.push_str(",\"md5OfBody\":");
        push_str(&mut out, d.md5_of_body);
        out.push_str(&self.tail);
        Bytes::from(out)
    }
}

impl EventEncoder for SqsEncoding {
    fn encode_event(&self, _shard: &ShardId, records: &[Record], extra: Option<&ExtraFields>) -> Vec<u8> {
        records_event(records, extra)
    }

    fn envelope_size(&self) -> usize {
        RECORDS_ENVELOPE.len()
    }

    /// AWS writes no batch info for SQS (its failures go to the queue's own redrive policy);
    /// this `SQSBatchInfo` is esmd's, for its on-failure destinations.
    fn batch_info(&self, _shard: &ShardId, records: &[Record]) -> (String, Value) {
        let ids: Vec<Value> = records.iter().map(|r| r.item_id.to_json()).collect();
        let mut info = Map::new();
        info.insert("queueArn".into(), Value::from(self.queue_arn.as_str()));
        info.insert("batchSize".into(), Value::from(records.len()));
        info.insert("messageIds".into(), Value::Array(ids));
        ("SQSBatchInfo".into(), Value::Object(info))
    }

    /// The SQS record with `body` parsed when it is JSON and left a string otherwise, as
    /// Lambda matches SQS filter patterns.
    fn filter_target(&self, record: &Record) -> Option<Value> {
        let mut target: Value = serde_json::from_slice(&record.encoded).ok()?;
        if let (Ok(body), Some(obj)) = (serde_json::from_slice::<Value>(&record.data), target.as_object_mut()) {
            obj.insert("body".into(), body);
        }
        Some(target)
    }

    fn event_source_arn(&self) -> &str {
        &self.queue_arn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::quoted;
    use crate::{ItemId, Position};
    use serde_json::json;

    fn delivery<'a>(quoted_body: &'a str, fifo: Option<(&'a str, &'a str, &'a str)>) -> Delivery<'a> {
        Delivery {
            message_id: "m-1",
            receipt_handle: "rh-1",
            quoted_body,
            md5_of_body: "0123",
            receive_count: 2,
            sent_ms: 1_573_251_510_774,
            first_receive_ms: 1_573_251_510_800,
            fifo,
            sender_id: None,
            message_attributes: None,
        }
    }

    fn record(encoded: Bytes, body: &'static str) -> Record {
        Record {
            position: Position::new("rh-1"),
            partition_key: Bytes::new(),
            arrival_ms: 0,
            data: Bytes::from_static(body.as_bytes()),
            encoded,
            item_id: ItemId::Str("m-1".into()),
            receive_count: 1,
            invalid: None,
        }
    }

    #[test]
    fn standard_fragment_byte_for_byte() {
        let enc = SqsEncoding::new("us-east-1", "111111111111", "q", false);
        let body = quoted("{\"a\": 1}");
        assert_eq!(
            std::str::from_utf8(&enc.fragment(&delivery(&body, None))).unwrap(),
            concat!(
                r#"{"messageId":"m-1","receiptHandle":"rh-1","body":"{\"a\": 1}","attributes":{"ApproximateReceiveCount":"2","#,
                r#""SentTimestamp":"1573251510774","SenderId":"111111111111","ApproximateFirstReceiveTimestamp":"1573251510800"},"#,
                r#""messageAttributes":{},"md5OfMessageAttributes":null,"md5OfBody":"0123","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:111111111111:q","#,
                r#""awsRegion":"us-east-1"}"#
            )
        );
    }

    #[test]
    fn message_attributes_and_their_md5_sit_before_md5_of_body() {
        let enc = SqsEncoding::new("us-east-1", "111111111111", "q", false);
        let body = quoted("x");
        let mut d = delivery(&body, None);
        d.sender_id = Some("AIDAEXAMPLE");
        d.message_attributes = Some((r#"{"a":{"stringValue":"1","stringListValues":[],"binaryListValues":[],"dataType":"Number"}}"#, "abc"));
        let v: Value = serde_json::from_slice(&enc.fragment(&d)).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfMessageAttributes", "md5OfBody", "eventSource", "eventSourceARN", "awsRegion"]
        );
        assert_eq!(v["attributes"]["SenderId"], "AIDAEXAMPLE");
        assert_eq!(v["messageAttributes"]["a"]["dataType"], "Number");
    }

    #[test]
    fn fifo_attributes_in_aws_order() {
        let enc = SqsEncoding::new("us-east-1", "111111111111", "q.fifo", true);
        let body = quoted("x");
        let frag = enc.fragment(&delivery(&body, Some(("00000000000000000001", "g", "d"))));
        let v: Value = serde_json::from_slice(&frag).unwrap();
        let keys: Vec<&String> = v["attributes"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SequenceNumber",
                "MessageGroupId",
                "SenderId",
                "MessageDeduplicationId",
                "ApproximateFirstReceiveTimestamp"
            ]
        );
    }

    #[test]
    fn filter_target_parses_json_bodies_only() {
        let enc = SqsEncoding::new("us-east-1", "1", "q", false);
        let json_body = quoted(r#"{"k":"v"}"#);
        let t = enc.filter_target(&record(enc.fragment(&delivery(&json_body, None)), r#"{"k":"v"}"#)).unwrap();
        assert_eq!(t["body"], json!({"k": "v"}));
        assert_eq!(t["attributes"]["ApproximateReceiveCount"], "2");
        let text_body = quoted("plain text");
        let t = enc.filter_target(&record(enc.fragment(&delivery(&text_body, None)), "plain text")).unwrap();
        assert_eq!(t["body"], "plain text");
    }

    #[test]
    fn batch_info_names_the_messages() {
        let enc = SqsEncoding::new("us-east-1", "1", "q", false);
        let r = record(Bytes::new(), "");
        let (key, info) = enc.batch_info(&ShardId::new("q"), &[r.clone(), r]);
        assert_eq!(key, "SQSBatchInfo");
        assert_eq!(info.to_string(), r#"{"queueArn":"arn:aws:sqs:us-east-1:1:q","batchSize":2,"messageIds":["m-1","m-1"]}"#);
    }
}
