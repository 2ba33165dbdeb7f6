//! AWS's Kafka event shape:
//!
//! ```json
//! {"eventSource":"SelfManagedKafka","bootstrapServers":"b1:9092,b2:9092",
//!  "records":{"mytopic-0":[{"topic":"mytopic","partition":0,"offset":15,"timestamp":1545084650987,
//!    "timestampType":"CREATE_TIME","key":"cmVjb3JkS2V5","value":"eyJrZXkiOiJ2YWx1ZSJ9",
//!    "headers":[{"headerKey":[104,101,97,100,101,114,86,97,108,117,101]}]}]}}
//! ```
//!
//! MSK adds `"eventSourceArn"` after `"eventSource":"aws:kafka"`. A null key or value is left
//! out of the record, as AWS does; header values are arrays of byte values.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use esmd_api::time::iso_millis;
use esmd_api::{EventEncoder, ExtraFields, ItemId, Position, Record, ShardId};
use serde_json::{json, Map, Value};
use crate::schema::SchemaMeta;
use std::fmt::Write;
use std::sync::Arc;

/// One Kafka message, as the connector hands it to the encoder.
pub struct RawMessage<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds, and `CREATE_TIME` / `LOG_APPEND_TIME`; `None` when the broker has none.
    pub timestamp: Option<(i64, &'static str)>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// What a schema registry made of a message's key and value ([`crate::schema`]).
#[derive(Clone, Copy, Default)]
pub struct SchemaParts<'a> {
    pub key: Part<'a>,
    pub value: Part<'a>,
}

/// One decoded (or undecodable) key or value.
#[derive(Clone, Copy, Default)]
pub struct Part<'a> {
    /// What the event carries instead of the bytes as read: the JSON, or the bytes after the
    /// schema id.
    pub replaced: Option<&'a [u8]>,
    /// The JSON form: what filters see of a value.
    pub json: Option<&'a [u8]>,
    /// The schema, for `keySchemaMetadata` / `valueSchemaMetadata`.
    pub meta: Option<&'a SchemaMeta>,
}

/// Where the events say they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventSource {
    /// `"eventSource":"SelfManagedKafka"`.
    SelfManaged,
    /// `"eventSource":"aws:kafka"` with the MSK cluster's ARN.
    Msk { cluster_arn: String },
}

pub struct KafkaEncoding {
    source: EventSource,
    bootstrap_servers: String,
    /// `{"eventSource":...,"bootstrapServers":...,"records":{` — the part before the key.
    prefix: String,
    /// What failure records call `eventSourceArn` (self-managed: a stand-in naming the topic).
    arn: String,
    /// The mapping's topic, also as a JSON string: every record names it.
    topic: String,
    quoted_topic: String,
}

impl KafkaEncoding {
    pub fn new(source: EventSource, bootstrap_servers: &str, topic: &str) -> Self {
        let mut prefix = String::from("{");
        let arn = match &source {
            EventSource::SelfManaged => {
                prefix.push_str(r#""eventSource":"SelfManagedKafka","#);
                format!("kafka://{bootstrap_servers}/{topic}")
            }
            EventSource::Msk { cluster_arn } => {
                let _ = write!(prefix, r#""eventSource":"aws:kafka","eventSourceArn":{},"#, json_str(cluster_arn));
                cluster_arn.clone()
            }
        };
        let _ = write!(prefix, r#""bootstrapServers":{},"records":{{"#, json_str(bootstrap_servers));
        KafkaEncoding { source, bootstrap_servers: bootstrap_servers.to_string(), prefix, arn, topic: topic.to_string(), quoted_topic: json_str(topic) }
    }

    pub fn event_source(&self) -> &EventSource {
        &self.source
    }

    /// Turns a message into a [`Record`], encoding its event fragment once.
    pub fn record(&self, m: &RawMessage<'_>) -> Record {
        self.record_in(m, &Arc::from(partition_name(m.topic, m.partition)))
    }

    /// [`Self::record`] for a reader that keeps its partition's name (`topic-N`), so a record
    /// costs no allocation for it. Runs once per message, so it writes the fragment into one
    /// buffer sized up front, base64 straight into it, integers without `fmt`.
    pub fn record_in(&self, m: &RawMessage<'_>, partition: &Arc<str>) -> Record {
        self.record_with(m, partition, &SchemaParts::default())
    }

    /// [`Self::record_in`] with what a schema registry decoded: the key and value the event
    /// carries, their schemas after the headers (AWS's order), the value's JSON for filters.
    pub fn record_with(&self, m: &RawMessage<'_>, partition: &Arc<str>, schema: &SchemaParts<'_>) -> Record {
        let key = schema.key.replaced.or(m.key);
        let value = schema.value.replaced.or(m.value);
        let (ts, ts_type) = m.timestamp.unwrap_or((-1, "NO_TIMESTAMP_TYPE"));
        let mut ints = itoa::Buffer::new();
        let topic: std::borrow::Cow<'_, str> = if m.topic == self.topic { self.quoted_topic.as_str().into() } else { json_str(m.topic).into() };
        let headers: Vec<(String, Option<&[u8]>)> = m.headers.iter().map(|(k, v)| (json_str(k), *v)).collect();
        // `{k:[b,b,...]},` or `{k:null},`: at most 4 bytes per header byte.
        let headers_len: usize = headers.iter().map(|(k, v)| k.len() + 4 + v.map_or(4, |b| b.len() * 4 + 2)).sum();
        let metas = [("keySchemaMetadata", schema.key.meta), ("valueSchemaMetadata", schema.value.meta)];
        let metas_len: usize = metas.iter().filter_map(|(name, meta)| meta.map(|m| name.len() + m.id.len() + META_FIXED)).sum();
        let capacity = FRAGMENT_FIXED + topic.len() + b64_len(key) + b64_len(value) + headers_len + metas_len;
        let mut s: Vec<u8> = Vec::with_capacity(capacity);
        s.extend_from_slice(br#"{"topic":"#);
        s.extend_from_slice(topic.as_bytes());
        s.extend_from_slice(br#","partition":"#);
        s.extend_from_slice(ints.format(m.partition).as_bytes());
        s.extend_from_slice(br#","offset":"#);
        let offset = ints.format(m.offset);
        s.extend_from_slice(offset.as_bytes());
        let position = Position::new(offset);
        s.extend_from_slice(br#","timestamp":"#);
        s.extend_from_slice(ints.format(ts).as_bytes());
        s.extend_from_slice(br#","timestampType":""#);
        s.extend_from_slice(ts_type.as_bytes());
        s.push(b'"');
        if let Some(k) = key {
            s.extend_from_slice(br#","key":""#);
            push_base64(&mut s, k);
            s.push(b'"');
        }
        if let Some(v) = value {
            s.extend_from_slice(br#","value":""#);
            push_base64(&mut s, v);
            s.push(b'"');
        }
        s.extend_from_slice(br#","headers":["#);
        for (i, (k, v)) in headers.iter().enumerate() {
            if i > 0 {
                s.push(b',');
            }
            s.push(b'{');
            s.extend_from_slice(k.as_bytes());
            s.push(b':');
            match v {
                None => s.extend_from_slice(b"null"),
                Some(bytes) => {
                    s.push(b'[');
                    for (j, b) in bytes.iter().enumerate() {
                        if j > 0 {
                            s.push(b',');
                        }
                        s.extend_from_slice(ints.format(*b).as_bytes());
                    }
                    s.push(b']');
                }
            }
            s.push(b'}');
        }
        s.push(b']');
        for (name, meta) in metas {
            let Some(meta) = meta else { continue };
            // Ids are decimal numbers or UUIDs: nothing to escape.
            let _ = write!(WriteBytes(&mut s), r#","{name}":{{"schemaId":"{}""#, meta.id);
            if let Some(format) = meta.format {
                let _ = write!(WriteBytes(&mut s), r#","dataFormat":"{}""#, format.as_str());
            }
            s.push(b'}');
        }
        s.push(b'}');
        debug_assert!(s.len() <= capacity, "fragment of {} bytes outgrew its estimate of {capacity}", s.len());
        let arrival_ms = if ts >= 0 { ts } else { esmd_api::time::now_ms() };
        Record {
            position,
            partition_key: m.key.map(Bytes::copy_from_slice).unwrap_or_default(),
            arrival_ms,
            // Only a schema registry's JSON is kept: filters decode a plain value from the
            // fragment when they need it, so an unfiltered mapping copies no payload twice.
            data: schema.value.json.map(Bytes::copy_from_slice).unwrap_or_default(),
            encoded: Bytes::from(s),
            item_id: ItemId::KafkaOffset { partition: partition.clone(), offset: m.offset },
            receive_count: 0,
            invalid: None,
        }
    }
}

/// The most a fragment holds besides the topic, key, value and headers: field names, quotes
/// and the widest partition (11), offset and timestamp (20 each) and timestamp type (17).
/// Sized so the buffer never grows: growing copied every record a second time.
const FRAGMENT_FIXED: usize = r#"{"topic":,"partition":,"offset":,"timestamp":,"timestampType":"","key":"","value":"","headers":[]}"#.len() + 11 + 20 + 20 + 17;

/// A schema metadata object besides its name and id: `,"":{"schemaId":"","dataFormat":"PROTOBUF"}`.
const META_FIXED: usize = r#","":{"schemaId":"","dataFormat":"PROTOBUF"}"#.len();

/// `fmt::Write` into a byte buffer.
struct WriteBytes<'a>(&'a mut Vec<u8>);

impl Write for WriteBytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Length of the padded base64 of `bytes` (0 for none).
fn b64_len(bytes: Option<&[u8]>) -> usize {
    bytes.map_or(0, |b| b.len().div_ceil(3) * 4)
}

/// Appends the padded base64 of `bytes`, encoded in place (no intermediate buffer).
fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    base64_simd::STANDARD.encode_append(bytes, out);
}

impl KafkaEncoding {
    /// The exact length of the event [`EventEncoder::encode_event`] writes for these records,
    /// whose partition key is already quoted: prefix, key, `:[`, fragments and commas, `]}}`.
    fn event_len(&self, quoted_key: &str, records: &[Record]) -> usize {
        let fragments: usize = records.iter().map(|r| r.encoded.len()).sum();
        self.prefix.len() + quoted_key.len() + 2 + fragments + records.len().saturating_sub(1) + 3
    }
}

/// `topic-N`: how AWS names a partition in events, responses and failure records.
pub fn partition_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

fn json_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The offset a record's position spells.
pub fn offset_of(position: &Position) -> Option<i64> {
    position.as_str().parse().ok()
}

impl EventEncoder for KafkaEncoding {
    fn encode_event(&self, shard: &ShardId, records: &[Record], _extra: Option<&ExtraFields>) -> Vec<u8> {
        let key = json_str(shard.as_str());
        let mut out = Vec::with_capacity(self.event_len(&key, records));
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b":[");
        esmd_api::write_fragments(&mut out, records);
        out.extend_from_slice(b"]}}");
        out
    }

    fn envelope_size(&self) -> usize {
        // prefix + "topic-N" key (topic ≤ 249 chars, quoted) + `:[` + `]}}`
        self.prefix.len() + 249 + 16 + 5
    }

    fn batch_info(&self, shard: &ShardId, records: &[Record]) -> (String, Value) {
        let payload_size = self.event_len(&json_str(shard.as_str()), records);
        let mut info = Map::new();
        info.insert("batchSize".into(), json!(records.len()));
        info.insert("eventSourceArn".into(), json!(self.arn));
        info.insert("bootstrapServers".into(), json!(self.bootstrap_servers));
        info.insert("payloadSize".into(), json!(payload_size));
        let mut records_info = Map::new();
        if let (Some(first), Some(last)) = (records.first(), records.last()) {
            records_info.insert(
                shard.to_string(),
                json!({
                    "firstRecordOffset": first.position.as_str(),
                    "lastRecordOffset": last.position.as_str(),
                    "firstRecordTimestamp": iso_millis(first.arrival_ms),
                    "lastRecordTimestamp": iso_millis(last.arrival_ms),
                }),
            );
        }
        info.insert("recordsInfo".into(), Value::Object(records_info));
        ("KafkaBatchInfo".into(), Value::Object(info))
    }

    /// The record as the function sees it, with `value` decoded: parsed JSON when it is JSON,
    /// else the UTF-8 string. A value that is not UTF-8 is left out, so a pattern on `value`
    /// never matches it.
    fn filter_target(&self, record: &Record) -> Option<Value> {
        let mut target: Map<String, Value> = serde_json::from_slice(&record.encoded).ok()?;
        let value = match (target.remove("value"), record.data.is_empty()) {
            (_, false) => record.data.to_vec(),
            (Some(Value::String(b64)), true) => B64.decode(b64).ok()?,
            // A null value: nothing for a pattern on `value` to match.
            (_, true) => return Some(Value::Object(target)),
        };
        if let Ok(text) = std::str::from_utf8(&value) {
            let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
            target.insert("value".into(), value);
        }
        Some(Value::Object(target))
    }

    fn event_source_arn(&self) -> &str {
        &self.arn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(enc: &KafkaEncoding) -> Record {
        enc.record(&RawMessage {
            topic: "mytopic",
            partition: 0,
            offset: 15,
            timestamp: Some((1545084650987, "CREATE_TIME")),
            key: Some(b"recordKey"),
            value: Some(br#"{"key":"value"}"#),
            headers: vec![("headerKey", Some(b"headerValue"))],
        })
    }

    /// AWS's documented self-managed Kafka event, byte for byte.
    #[test]
    fn event_matches_aws_example() {
        let enc = KafkaEncoding::new(EventSource::SelfManaged, "b-2.demo:9092,b-1.demo:9092", "mytopic");
        let r = sample(&enc);
        let event = enc.encode_event(&ShardId::new("mytopic-0"), std::slice::from_ref(&r), None);
        let expected = r#"{"eventSource":"SelfManagedKafka","bootstrapServers":"b-2.demo:9092,b-1.demo:9092","records":{"mytopic-0":[{"topic":"mytopic","partition":0,"offset":15,"timestamp":1545084650987,"timestampType":"CREATE_TIME","key":"cmVjb3JkS2V5","value":"eyJrZXkiOiJ2YWx1ZSJ9","headers":[{"headerKey":[104,101,97,100,101,114,86,97,108,117,101]}]}]}}"#;
        assert_eq!(std::str::from_utf8(&event).unwrap(), expected);
        assert!(event.len() <= enc.envelope_size() + r.event_size());
        assert_eq!(r.item_id.to_json(), json!({"partition": "mytopic-0", "offset": 15}));
        assert_eq!(r.arrival_ms, 1545084650987);
        assert_eq!(&r.partition_key[..], b"recordKey");
    }

    #[test]
    fn base64_in_place_matches_the_standard_encoding_at_every_length() {
        // Lengths around the SIMD blocks (12, 24, 48 bytes in) and their tails, appended after
        // what the buffer already holds.
        let data: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for n in 0..data.len() {
            let mut out = b"prefix".to_vec();
            push_base64(&mut out, &data[..n]);
            assert_eq!(out.len(), 6 + b64_len(Some(&data[..n])), "length {n}");
            assert_eq!(&out[6..], B64.encode(&data[..n]).as_bytes(), "length {n}");
        }
    }

    #[test]
    fn msk_names_its_cluster_and_null_key_and_value_are_left_out() {
        let arn = "arn:aws:kafka:us-east-1:123456789012:cluster/c/abc";
        let enc = KafkaEncoding::new(EventSource::Msk { cluster_arn: arn.into() }, "b:9092", "t");
        let r = enc.record(&RawMessage { topic: "t", partition: 3, offset: 7, timestamp: None, key: None, value: None, headers: vec![("h", None)] });
        let event: Value = serde_json::from_slice(&enc.encode_event(&ShardId::new("t-3"), std::slice::from_ref(&r), None)).unwrap();
        assert_eq!(event["eventSource"], "aws:kafka");
        assert_eq!(event["eventSourceArn"], arn);
        let rec = &event["records"]["t-3"][0];
        assert!(rec.get("key").is_none() && rec.get("value").is_none());
        assert_eq!(rec["headers"], json!([{"h": null}]));
        assert_eq!(rec["timestampType"], "NO_TIMESTAMP_TYPE");
        assert!(r.partition_key.is_empty());
        assert_eq!(enc.event_source_arn(), arn);
    }

    /// The hand-written fragment is JSON equal to what serde_json makes of the same message,
    /// for empty, binary and non-multiple-of-3 payloads and header keys that need escaping.
    #[test]
    fn fragment_is_the_json_of_the_message() {
        let enc = KafkaEncoding::new(EventSource::SelfManaged, "b:9092", "t");
        let values: [&[u8]; 5] = [b"", b"a", b"ab", b"abc", &[0, 0xff, 0x80, 0x22, 0x5c, 10, 13]];
        for (i, v) in values.into_iter().enumerate() {
            let m = RawMessage {
                topic: "t",
                partition: 7,
                offset: i64::MAX - i as i64,
                timestamp: Some((-5, "LOG_APPEND_TIME")),
                key: Some(v),
                value: Some(v),
                headers: vec![("k\"\\\n\u{1}é", Some(v)), ("", None)],
            };
            let r = enc.record(&m);
            let got: Value = serde_json::from_slice(&r.encoded).unwrap();
            let want = json!({
                "topic": "t", "partition": 7, "offset": m.offset, "timestamp": -5, "timestampType": "LOG_APPEND_TIME",
                "key": B64.encode(v), "value": B64.encode(v),
                "headers": [{"k\"\\\n\u{1}é": v}, {"": null}],
            });
            assert_eq!(got, want, "value {v:?}");
            assert_eq!(r.position.as_str(), m.offset.to_string());
            assert!(r.data.is_empty(), "the value is in the fragment only");
        }
    }

    #[test]
    fn batch_info_follows_aws_shape() {
        let enc = KafkaEncoding::new(EventSource::SelfManaged, "b:9092", "mytopic");
        let a = sample(&enc);
        let (key, info) = enc.batch_info(&ShardId::new("mytopic-0"), &[a.clone(), a]);
        assert_eq!(key, "KafkaBatchInfo");
        assert_eq!(info["batchSize"], 2);
        assert_eq!(info["bootstrapServers"], "b:9092");
        assert_eq!(info["eventSourceArn"], "kafka://b:9092/mytopic");
        let ri = &info["recordsInfo"]["mytopic-0"];
        assert_eq!(ri["firstRecordOffset"], "15");
        assert_eq!(ri["firstRecordTimestamp"], "2018-12-17T22:10:50.987Z");
        let event = enc.encode_event(&ShardId::new("mytopic-0"), &[sample(&enc), sample(&enc)], None);
        assert_eq!(info["payloadSize"].as_u64().unwrap() as usize, event.len());
    }

    /// A schema registry's parts: the event carries the decoded value and names both schemas
    /// after the headers, filters see the JSON, the lane key stays the key as read.
    #[test]
    fn decoded_parts_replace_the_bytes_and_name_their_schemas() {
        use crate::schema::format::DataFormat;
        use crate::schema::SchemaMeta;
        let enc = KafkaEncoding::new(EventSource::SelfManaged, "b:9092", "t");
        let value_meta = SchemaMeta { format: Some(DataFormat::Avro), id: "7".into() };
        let key_meta = SchemaMeta { format: None, id: "b7b4a7f0-0d8e-4f32-9c3b-1f2e3d4c5b6a".into() };
        let parts = SchemaParts {
            key: Part { replaced: None, json: None, meta: Some(&key_meta) },
            value: Part { replaced: Some(br#"{"n":1}"#), json: Some(br#"{"n":1}"#), meta: Some(&value_meta) },
        };
        let m = RawMessage { topic: "t", partition: 0, offset: 3, timestamp: None, key: Some(b"\0raw"), value: Some(b"\0\0\0\0\x07\x02"), headers: vec![("h", Some(b"v"))] };
        let r = enc.record_with(&m, &Arc::from("t-0"), &parts);
        let text = std::str::from_utf8(&r.encoded).unwrap();
        assert!(
            text.ends_with(r#""headers":[{"h":[118]}],"keySchemaMetadata":{"schemaId":"b7b4a7f0-0d8e-4f32-9c3b-1f2e3d4c5b6a"},"valueSchemaMetadata":{"schemaId":"7","dataFormat":"AVRO"}}"#),
            "{text}"
        );
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["value"], B64.encode(br#"{"n":1}"#));
        assert_eq!(v["key"], B64.encode(b"\0raw"));
        assert_eq!(enc.filter_target(&r).unwrap()["value"], json!({"n": 1}));
        assert_eq!(&r.partition_key[..], b"\0raw");
    }

    #[test]
    fn filters_see_the_decoded_value() {
        let enc = KafkaEncoding::new(EventSource::SelfManaged, "b:9092", "mytopic");
        let t = enc.filter_target(&sample(&enc)).unwrap();
        assert_eq!(t["value"], json!({"key": "value"}));
        assert_eq!(t["topic"], "mytopic");
        let plain = enc.record(&RawMessage { topic: "t", partition: 0, offset: 1, timestamp: None, key: None, value: Some(b"hello"), headers: vec![] });
        assert_eq!(enc.filter_target(&plain).unwrap()["value"], "hello");
        let binary = enc.record(&RawMessage { topic: "t", partition: 0, offset: 1, timestamp: None, key: None, value: Some(&[0xff, 0xfe]), headers: vec![] });
        assert!(enc.filter_target(&binary).unwrap().get("value").is_none());
    }
}
