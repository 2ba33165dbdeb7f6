//! The raw pipeline's event encoder: AWS's Kafka event written by hand, one record at a time
//! straight into the batch's buffer, the way the least an ESM can do would write it.
//!
//! ```json
//! {"eventSource":"SelfManagedKafka","bootstrapServers":"127.0.0.1:9092","records":{"bench-0":[
//!   {"topic":"bench","partition":0,"offset":15,"timestamp":1545084650987,"timestampType":"CREATE_TIME",
//!    "key":"a2V5LTE=","value":"eyJuIjoxfSAg...","headers":[]}]}}
//! ```
//!
//! The same fields as esmd's events (`connectors/kafka/src/encode.rs`), so the function receives
//! the same bytes for the same batch; headers are always empty (the backlog has none).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

pub struct EventWriter {
    /// `{"eventSource":...,"records":{`: the part before the partition's name.
    prefix: Vec<u8>,
    /// `{"topic":"bench","partition":`: every record's fragment starts so.
    record_start: Vec<u8>,
    topic: String,
}

/// One message's fields, as the consumer hands them over.
pub struct Fields<'a> {
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds and `CREATE_TIME` / `LOG_APPEND_TIME`; `None`: `-1`, `NO_TIMESTAMP_TYPE`.
    pub timestamp: Option<(i64, &'static str)>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

impl EventWriter {
    pub fn new(bootstrap_servers: &str, topic: &str) -> Self {
        let quoted = |s: &str| serde_json::Value::String(s.to_string()).to_string();
        let prefix = format!(r#"{{"eventSource":"SelfManagedKafka","bootstrapServers":{},"records":{{"#, quoted(bootstrap_servers)).into_bytes();
        let record_start = format!(r#"{{"topic":{},"partition":"#, quoted(topic)).into_bytes();
        EventWriter { prefix, record_start, topic: topic.to_string() }
    }

    /// A buffer holding the event up to the first record of `partition`, with room for
    /// `capacity` bytes in all.
    pub fn start(&self, partition: i32, capacity: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(capacity.max(self.prefix.len() + 64));
        out.extend_from_slice(&self.prefix);
        out.push(b'"');
        // A topic name is [a-zA-Z0-9._-]: nothing to escape.
        out.extend_from_slice(self.topic.as_bytes());
        out.push(b'-');
        push_int(&mut out, partition as i64);
        out.extend_from_slice(b"\":[");
        out
    }

    /// The bytes one record adds, for sizing a batch's buffer up front.
    pub fn record_len(&self, f: &Fields<'_>) -> usize {
        // The comma, the other field names and quotes, the widest partition (11), offset and
        // timestamp (20 each) and timestamp type (17): about 165.
        self.record_start.len() + 170 + b64_len(f.key) + b64_len(f.value)
    }

    /// Appends one record; `first`: no comma before it.
    pub fn push(&self, out: &mut Vec<u8>, first: bool, f: &Fields<'_>) {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(&self.record_start);
        push_int(out, f.partition as i64);
        out.extend_from_slice(br#","offset":"#);
        push_int(out, f.offset);
        let (ts, ts_type) = f.timestamp.unwrap_or((-1, "NO_TIMESTAMP_TYPE"));
        out.extend_from_slice(br#","timestamp":"#);
        push_int(out, ts);
        out.extend_from_slice(br#","timestampType":""#);
        out.extend_from_slice(ts_type.as_bytes());
        out.push(b'"');
        // A null key or value is left out, as AWS does.
        if let Some(k) = f.key {
            out.extend_from_slice(br#","key":""#);
            push_base64(out, k);
            out.push(b'"');
        }
        if let Some(v) = f.value {
            out.extend_from_slice(br#","value":""#);
            push_base64(out, v);
            out.push(b'"');
        }
        out.extend_from_slice(br#","headers":[]}"#);
    }

    /// Closes the record list, the records object and the event.
    pub fn finish(out: &mut Vec<u8>) {
        out.extend_from_slice(b"]}}");
    }
}

fn b64_len(bytes: Option<&[u8]>) -> usize {
    bytes.map_or(0, |b| b.len().div_ceil(3) * 4)
}

/// Padded base64 written into the buffer itself: no intermediate string.
fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let written = B64.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
}

/// Decimal digits without `fmt` (three integers per record).
fn push_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The writer's output parses as JSON and holds what esmd's event would (checked in the smoke
/// run, once per drain, so a broken encoder cannot make the floor look fast).
pub fn self_check() {
    let w = EventWriter::new("127.0.0.1:9092", "bench");
    let f = Fields { partition: 3, offset: 42, timestamp: Some((1_700_000_000_000, "CREATE_TIME")), key: Some(b"key-1"), value: Some(b"{\"n\":1}") };
    let mut out = w.start(3, 0);
    w.push(&mut out, true, &f);
    w.push(&mut out, false, &Fields { offset: 43, key: None, timestamp: None, ..f });
    EventWriter::finish(&mut out);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("the raw pipeline's event is JSON");
    let records = &v["records"]["bench-3"];
    assert_eq!(v["eventSource"], "SelfManagedKafka");
    assert_eq!(v["bootstrapServers"], "127.0.0.1:9092");
    assert_eq!(records[0]["offset"], 42);
    assert_eq!(records[0]["timestamp"], 1_700_000_000_000i64);
    assert_eq!(records[0]["timestampType"], "CREATE_TIME");
    assert_eq!(records[0]["key"], B64.encode("key-1"));
    assert_eq!(records[0]["value"], B64.encode("{\"n\":1}"));
    assert_eq!(records[0]["headers"], serde_json::json!([]));
    assert_eq!((records[1]["offset"].clone(), records[1].get("key").is_none(), records[1]["timestamp"].clone()), (serde_json::json!(43), true, serde_json::json!(-1)));
}
