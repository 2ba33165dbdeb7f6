//! AWS's RabbitMQ event shape:
//!
//! ```json
//! {"eventSource":"aws:rmq","eventSourceArn":"arn:aws:mq:us-west-2:111122223333:broker:test:b-1",
//!  "rmqMessagesByQueue":{"test::/":[{"basicProperties":{"contentType":"text/plain",
//!    "contentEncoding":null,"headers":{"header1":{"bytes":[118,97,108,117,101,49]},"n":10},
//!    "deliveryMode":1,"priority":34,"correlationId":null,"replyTo":null,"expiration":"60000",
//!    "messageId":null,"timestamp":"Jan 1, 1970, 12:33:41 AM","type":null,"userId":"u",
//!    "appId":null,"clusterId":null,"bodySize":80},"redelivered":false,"data":"eyJ0..."}]}}
//! ```
//!
//! Every property is written, `null` when the publisher left it out. Header strings are byte
//! arrays (`{"bytes":[...]}`), as the Java client AWS uses hands them over.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use esmd_api::{EventEncoder, ExtraFields, ItemId, Position, Record, ShardId};
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use serde_json::{json, Map, Value};
use std::fmt::Write;

pub struct RmqEncoding {
    arn: String,
    /// `queue::vhost`, as events and failure records name the queue.
    queue_key: String,
    /// `{"eventSource":"aws:rmq","eventSourceArn":...,"rmqMessagesByQueue":{"q::/":[`
    prefix: String,
}

/// One delivery as the encoder needs it.
pub struct RawDelivery<'a> {
    pub properties: &'a BasicProperties,
    pub body: &'a [u8],
    pub redelivered: bool,
}

const SUFFIX: &str = "]}}";

impl RmqEncoding {
    pub fn new(broker_arn: &str, queue: &str, virtual_host: &str) -> Self {
        let queue_key = format!("{queue}::{virtual_host}");
        let mut prefix = String::from(r#"{"eventSource":"aws:rmq","eventSourceArn":"#);
        push_str(&mut prefix, broker_arn);
        prefix.push_str(r#","rmqMessagesByQueue":{"#);
        push_str(&mut prefix, &queue_key);
        prefix.push_str(":[");
        RmqEncoding { arn: broker_arn.to_string(), queue_key, prefix }
    }

    /// The stand-in broker ARN for a broker that is not Amazon MQ.
    pub fn stand_in_arn(region: &str, account: &str, host: &str, port: u16) -> String {
        let name: String = host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
        format!("arn:aws:mq:{region}:{account}:broker:{name}:b-{port}")
    }

    pub fn queue_key(&self) -> &str {
        &self.queue_key
    }

    /// Turns a delivery into a [`Record`] with its fragment encoded once. `position` is how the
    /// source finds the delivery again to settle it.
    pub fn record(&self, d: &RawDelivery<'_>, position: Position, receive_count: u32, received_ms: i64) -> Record {
        let p = d.properties;
        let mut s = String::with_capacity(400 + d.body.len() * 4 / 3);
        s.push_str(r#"{"basicProperties":{"contentType":"#);
        opt_str(&mut s, p.content_type().as_ref().map(|v| v.as_str()));
        s.push_str(r#","contentEncoding":"#);
        opt_str(&mut s, p.content_encoding().as_ref().map(|v| v.as_str()));
        s.push_str(r#","headers":"#);
        match p.headers() {
            Some(h) => table(&mut s, h),
            None => s.push_str("null"),
        }
        s.push_str(r#","deliveryMode":"#);
        opt_num(&mut s, p.delivery_mode().map(u64::from));
        s.push_str(r#","priority":"#);
        opt_num(&mut s, p.priority().map(u64::from));
        s.push_str(r#","correlationId":"#);
        opt_str(&mut s, p.correlation_id().as_ref().map(|v| v.as_str()));
        s.push_str(r#","replyTo":"#);
        opt_str(&mut s, p.reply_to().as_ref().map(|v| v.as_str()));
        s.push_str(r#","expiration":"#);
        opt_str(&mut s, p.expiration().as_ref().map(|v| v.as_str()));
        s.push_str(r#","messageId":"#);
        opt_str(&mut s, p.message_id().as_ref().map(|v| v.as_str()));
        s.push_str(r#","timestamp":"#);
        let sent_ms = p.timestamp().and_then(|t| i64::try_from(t).ok()).and_then(|t| t.checked_mul(1000));
        opt_str(&mut s, sent_ms.map(esmd_api::time::java_medium).as_deref());
        s.push_str(r#","type":"#);
        opt_str(&mut s, p.kind().as_ref().map(|v| v.as_str()));
        s.push_str(r#","userId":"#);
        opt_str(&mut s, p.user_id().as_ref().map(|v| v.as_str()));
        s.push_str(r#","appId":"#);
        opt_str(&mut s, p.app_id().as_ref().map(|v| v.as_str()));
        s.push_str(r#","clusterId":"#);
        opt_str(&mut s, p.cluster_id().as_ref().map(|v| v.as_str()));
        let _ = write!(s, r#","bodySize":{}}},"redelivered":{},"data":""#, d.body.len(), d.redelivered);
        B64.encode_string(d.body, &mut s);
        s.push_str("\"}");
        let message_id = p.message_id().as_ref().map(|v| v.as_str()).unwrap_or("");
        Record {
            position,
            partition_key: Bytes::new(),
            // AMQP timestamps are whole seconds and optional: the receive time when absent.
            arrival_ms: sent_ms.filter(|&t| t > 0).unwrap_or(received_ms),
            data: Bytes::copy_from_slice(d.body),
            encoded: Bytes::from(s),
            item_id: ItemId::Str(message_id.into()),
            receive_count,
            invalid: None,
        }
    }

    fn event_len(&self, records: &[Record]) -> usize {
        let fragments: usize = records.iter().map(|r| r.encoded.len()).sum();
        self.prefix.len() + fragments + records.len().saturating_sub(1) + SUFFIX.len()
    }
}

impl EventEncoder for RmqEncoding {
    fn encode_event(&self, _shard: &ShardId, records: &[Record], _extra: Option<&ExtraFields>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.event_len(records));
        out.extend_from_slice(self.prefix.as_bytes());
        esmd_api::write_fragments(&mut out, records);
        out.extend_from_slice(SUFFIX.as_bytes());
        out
    }

    fn envelope_size(&self) -> usize {
        self.prefix.len() + SUFFIX.len()
    }

    /// AWS sends RabbitMQ failures nowhere; this `RabbitMQBatchInfo` is esmd's, for its
    /// on-failure destinations. Messages without a `messageId` are listed as `null`.
    fn batch_info(&self, _shard: &ShardId, records: &[Record]) -> (String, Value) {
        let ids: Vec<Value> = records
            .iter()
            .map(|r| match &r.item_id {
                ItemId::Str(s) if !s.is_empty() => Value::from(&**s),
                _ => Value::Null,
            })
            .collect();
        let info = json!({
            "eventSourceArn": self.arn,
            "queue": self.queue_key,
            "batchSize": records.len(),
            "payloadSize": self.event_len(records),
            "messageIds": ids,
        });
        ("RabbitMQBatchInfo".into(), info)
    }

    /// The message as the function sees it, with `data` decoded: parsed JSON when it is JSON,
    /// else the UTF-8 string; left out when it is neither, so a pattern on `data` never matches.
    fn filter_target(&self, record: &Record) -> Option<Value> {
        let mut target: Map<String, Value> = serde_json::from_slice(&record.encoded).ok()?;
        target.remove("data");
        if let Ok(text) = std::str::from_utf8(&record.data) {
            let data = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
            target.insert("data".into(), data);
        }
        Some(Value::Object(target))
    }

    fn event_source_arn(&self) -> &str {
        &self.arn
    }
}

fn push_str(out: &mut String, s: &str) {
    // serde_json's escaping, written into the string directly.
    let _ = write!(out, "{}", Value::String(s.to_string()));
}

fn opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_str(out, s),
        None => out.push_str("null"),
    }
}

fn opt_num(out: &mut String, n: Option<u64>) {
    match n {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
}

fn table(out: &mut String, t: &FieldTable) {
    out.push('{');
    for (i, (k, v)) in t.inner().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, k.as_str());
        out.push(':');
        value(out, v);
    }
    out.push('}');
}

fn bytes(out: &mut String, b: &[u8]) {
    out.push_str(r#"{"bytes":["#);
    for (i, byte) in b.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{byte}");
    }
    out.push_str("]}");
}

/// A header value the way AWS's Java side serializes it: strings as byte arrays, numbers as
/// numbers, tables as objects.
fn value(out: &mut String, v: &AMQPValue) {
    let _ = match v {
        AMQPValue::Boolean(b) => write!(out, "{b}"),
        AMQPValue::ShortShortInt(n) => write!(out, "{n}"),
        AMQPValue::ShortShortUInt(n) => write!(out, "{n}"),
        AMQPValue::ShortInt(n) => write!(out, "{n}"),
        AMQPValue::ShortUInt(n) => write!(out, "{n}"),
        AMQPValue::LongInt(n) => write!(out, "{n}"),
        AMQPValue::LongUInt(n) => write!(out, "{n}"),
        AMQPValue::LongLongInt(n) => write!(out, "{n}"),
        AMQPValue::Timestamp(n) => write!(out, "{n}"),
        AMQPValue::Float(f) => write!(out, "{}", json!(f)),
        AMQPValue::Double(f) => write!(out, "{}", json!(f)),
        AMQPValue::DecimalValue(d) => write!(out, "{}", json!(f64::from(d.value) / 10f64.powi(i32::from(d.scale)))),
        AMQPValue::ShortString(s) => {
            bytes(out, s.as_str().as_bytes());
            Ok(())
        }
        AMQPValue::LongString(s) => {
            bytes(out, s.as_bytes());
            Ok(())
        }
        AMQPValue::ByteArray(b) => {
            bytes(out, b.as_slice());
            Ok(())
        }
        AMQPValue::FieldArray(a) => {
            out.push('[');
            for (i, item) in a.as_slice().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value(out, item);
            }
            out.push(']');
            Ok(())
        }
        AMQPValue::FieldTable(t) => {
            table(out, t);
            Ok(())
        }
        AMQPValue::Void => {
            out.push_str("null");
            Ok(())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{LongString, ShortString};

    /// AWS's documented example event (Lambda developer guide, "Using Lambda with Amazon MQ"),
    /// rebuilt from its message.
    #[test]
    fn event_matches_aws_example() {
        let enc = RmqEncoding::new("arn:aws:mq:us-west-2:111122223333:broker:pizzaBroker:b-9bcfa592-423a-4942-879d-eb284b418fc8", "pizzaQueue", "/");
        let mut headers = FieldTable::default();
        headers.insert(ShortString::from("header1"), AMQPValue::LongString(LongString::from("value1")));
        headers.insert(ShortString::from("header2"), AMQPValue::LongString(LongString::from("value2")));
        headers.insert(ShortString::from("numberInHeader"), AMQPValue::LongInt(10));
        let props = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_headers(headers)
            .with_delivery_mode(1)
            .with_priority(34)
            .with_expiration("60000".into())
            .with_timestamp(2021)
            .with_user_id("AIDACKCEVSQ6C2EXAMPLE".into());
        let body = br#"{"timeout":0,"data":"CZrmf0Gw8Ov4bqLQxD4E"}"#;
        let r = enc.record(&RawDelivery { properties: &props, body, redelivered: false }, Position::new("1:1"), 0, 5);
        let event: Value = serde_json::from_slice(&enc.encode_event(&ShardId::new("pizzaQueue::/"), std::slice::from_ref(&r), None)).unwrap();
        let expected = json!({
          "eventSource": "aws:rmq",
          "eventSourceArn": "arn:aws:mq:us-west-2:111122223333:broker:pizzaBroker:b-9bcfa592-423a-4942-879d-eb284b418fc8",
          "rmqMessagesByQueue": {
            "pizzaQueue::/": [{
              "basicProperties": {
                "contentType": "text/plain",
                "contentEncoding": null,
                "headers": {
                  "header1": {"bytes": [118, 97, 108, 117, 101, 49]},
                  "header2": {"bytes": [118, 97, 108, 117, 101, 50]},
                  "numberInHeader": 10
                },
                "deliveryMode": 1,
                "priority": 34,
                "correlationId": null,
                "replyTo": null,
                "expiration": "60000",
                "messageId": null,
                "timestamp": "Jan 1, 1970, 12:33:41 AM",
                "type": null,
                "userId": "AIDACKCEVSQ6C2EXAMPLE",
                "appId": null,
                "clusterId": null,
                "bodySize": body.len()
              },
              "redelivered": false,
              "data": "eyJ0aW1lb3V0IjowLCJkYXRhIjoiQ1pybWYwR3c4T3Y0YnFMUXhENEUifQ=="
            }]
          }
        });
        assert_eq!(event, expected);
        // Key order is AWS's too, not only the values.
        assert_eq!(serde_json::to_string(&event).unwrap(), serde_json::to_string(&expected).unwrap());
        assert_eq!(r.arrival_ms, 2_021_000);
        assert_eq!(r.item_id, ItemId::Str("".into()));
        assert_eq!(enc.encode_event(&ShardId::new("x"), &[r.clone(), r.clone()], None).len(), enc.event_len(&[r.clone(), r]));
    }

    #[test]
    fn bare_message_and_header_types() {
        let enc = RmqEncoding::new("arn:aws:mq:r:a:broker:b:b-1", "q", "v");
        let mut nested = FieldTable::default();
        nested.insert(ShortString::from("k"), AMQPValue::Boolean(true));
        let mut headers = FieldTable::default();
        headers.insert(ShortString::from("a"), AMQPValue::FieldArray(vec![AMQPValue::LongLongInt(-1), AMQPValue::Void].into()));
        headers.insert(ShortString::from("t"), AMQPValue::FieldTable(nested));
        headers.insert(ShortString::from("x-delivery-count"), AMQPValue::LongLongInt(3));
        let props = BasicProperties::default().with_headers(headers).with_message_id("m-1".into());
        let r = enc.record(&RawDelivery { properties: &props, body: b"", redelivered: true }, Position::new("1:7"), 3, 42);
        let v: Value = serde_json::from_slice(&r.encoded).unwrap();
        assert_eq!(v["basicProperties"]["headers"], json!({"a": [-1, null], "t": {"k": true}, "x-delivery-count": 3}));
        assert_eq!((v["redelivered"].clone(), v["data"].clone(), v["basicProperties"]["timestamp"].clone()), (json!(true), json!(""), Value::Null));
        assert_eq!((r.arrival_ms, r.receive_count), (42, 3));
        assert_eq!(r.item_id, ItemId::Str("m-1".into()));
        let (key, info) = enc.batch_info(&ShardId::new("q::v"), std::slice::from_ref(&r));
        assert_eq!(key, "RabbitMQBatchInfo");
        assert_eq!(info["queue"], "q::v");
        assert_eq!(info["messageIds"], json!(["m-1"]));
    }

    #[test]
    fn filters_see_decoded_data() {
        let enc = RmqEncoding::new("arn", "q", "/");
        let props = BasicProperties::default();
        let rec = |body: &[u8]| enc.record(&RawDelivery { properties: &props, body, redelivered: false }, Position::new("1:1"), 0, 0);
        assert_eq!(enc.filter_target(&rec(br#"{"kind":"order"}"#)).unwrap()["data"], json!({"kind": "order"}));
        assert_eq!(enc.filter_target(&rec(b"plain")).unwrap()["data"], json!("plain"));
        assert!(enc.filter_target(&rec(&[0xff, 0xfe])).unwrap().get("data").is_none());
        assert_eq!(enc.filter_target(&rec(b"x")).unwrap()["basicProperties"]["bodySize"], 1);
    }
}
