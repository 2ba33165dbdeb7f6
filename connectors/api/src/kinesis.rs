//! Kinesis-shaped events: each record's fragment is the exact JSON AWS puts in a Kinesis
//! event's `Records` array, built once when the record is appended.

use crate::json::{push_str, records_event, RECORDS_ENVELOPE};
use base64::Engine as _;
use bytes::Bytes;
use crate::time::iso_millis;
use crate::{EventEncoder, ExtraFields, ItemId, Position, Record, ShardId};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Encodes records and events the way Lambda shapes them for a Kinesis stream.
#[derive(Debug, Clone)]
pub struct KinesisEncoding {
    stream_arn: String,
    /// Everything after `eventID`: the same for every record of the stream.
    tail: String,
}

impl KinesisEncoding {
    /// `region` and `account` go into the ARNs (`arn:aws:kinesis:<region>:<account>:stream/<name>`).
    pub fn new(region: &str, account: &str, stream_name: &str) -> Self {
        let stream_arn = format!("arn:aws:kinesis:{region}:{account}:stream/{stream_name}");
        Self::for_stream(region, &stream_arn, &format!("arn:aws:iam::{account}:role/esmd"))
    }

    /// A real stream: its ARN as given, and the role the events say invoked the function.
    pub fn for_stream(region: &str, stream_arn: &str, invoke_identity_arn: &str) -> Self {
        let mut tail = String::from(",\"eventName\":\"aws:kinesis:record\",\"invokeIdentityArn\":");
        push_str(&mut tail, invoke_identity_arn);
        tail.push_str(",\"awsRegion\":");
        push_str(&mut tail, region);
        tail.push_str(",\"eventSourceARN\":");
        push_str(&mut tail, stream_arn);
        tail.push('}');
        KinesisEncoding { stream_arn: stream_arn.to_string(), tail }
    }

    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// A complete record: position and item id are the sequence number, `encoded` its event
    /// fragment.
    pub fn record(&self, shard: &ShardId, sequence_number: Arc<str>, partition_key: Bytes, data: Bytes, arrival_ms: i64) -> Record {
        let encoded = self.fragment(shard, &sequence_number, &partition_key, &data, arrival_ms);
        Record {
            position: Position(sequence_number.clone()),
            partition_key,
            arrival_ms,
            data,
            encoded,
            item_id: ItemId::Str(sequence_number),
            receive_count: 0,
            invalid: None,
        }
    }

    /// The record's JSON inside the event, keys in the order AWS writes them.
    /// Partition keys are Unicode strings in Kinesis; other bytes are shown lossily.
    pub fn fragment(&self, shard: &ShardId, sequence_number: &str, partition_key: &[u8], data: &[u8], arrival_ms: i64) -> Bytes {
        let mut out = String::with_capacity(330 + data.len() * 4 / 3 + partition_key.len() + 2 * sequence_number.len() + self.tail.len());
        out.push_str("{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":");
        push_str(&mut out, &String::from_utf8_lossy(partition_key));
        out.push_str(",\"sequenceNumber\":");
        push_str(&mut out, sequence_number);
        out.push_str(",\"data\":\"");
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut out);
        out.push_str("\",\"approximateArrivalTimestamp\":");
        out.push_str(&epoch_seconds(arrival_ms));
        out.push_str("},\"eventSource\":\"aws:kinesis\",\"eventVersion\":\"1.0\",\"eventID\":");
        push_str(&mut out, &format!("{shard}:{sequence_number}"));
        out.push_str(&self.tail);
        Bytes::from(out)
    }
}

/// Seconds since the epoch with exactly three decimals (`1545084650.987`), as Kinesis events
/// spell `approximateArrivalTimestamp`. Written as text so whole seconds keep `.000` instead
/// of depending on float formatting.
/// The batch-info block Kinesis and DynamoDB Streams failure records share; they differ only
/// in how they spell the arrival times (`time`).
pub fn shard_batch_info(shard: &ShardId, records: &[Record], stream_arn: &str, time: fn(i64) -> String) -> Value {
    let (first, last) = (records.first(), records.last());
    let seq = |r: Option<&Record>| Value::from(r.map(|r| r.position.as_str()).unwrap_or_default());
    let at = |r: Option<&Record>| Value::from(r.map(|r| time(r.arrival_ms)).unwrap_or_default());
    let mut info = Map::new();
    info.insert("shardId".into(), Value::from(shard.as_str()));
    info.insert("startSequenceNumber".into(), seq(first));
    info.insert("endSequenceNumber".into(), seq(last));
    info.insert("approximateArrivalOfFirstRecord".into(), at(first));
    info.insert("approximateArrivalOfLastRecord".into(), at(last));
    info.insert("batchSize".into(), Value::from(records.len()));
    info.insert("streamArn".into(), Value::from(stream_arn));
    Value::Object(info)
}

pub fn epoch_seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

impl EventEncoder for KinesisEncoding {
    fn encode_event(&self, _shard: &ShardId, records: &[Record], extra: Option<&ExtraFields>) -> Vec<u8> {
        records_event(records, extra)
    }

    /// Excludes extra fields (tumbling-window state): the caller knows their size.
    fn envelope_size(&self) -> usize {
        RECORDS_ENVELOPE.len()
    }

    fn batch_info(&self, shard: &ShardId, records: &[Record]) -> (String, Value) {
        ("KinesisBatchInfo".into(), shard_batch_info(shard, records, &self.stream_arn, iso_millis))
    }

    /// The Kinesis record (the `kinesis` object of the event record, which is what Lambda
    /// matches patterns such as `{"data": {...}}` against) with `data` decoded and parsed.
    /// `None` when the data is not JSON: Lambda then drops the record for any `data` pattern,
    /// and Kinesis mappings filter on nothing but `data`.
    fn filter_target(&self, record: &Record) -> Option<Value> {
        let data: Value = serde_json::from_slice(&record.data).ok()?;
        let mut target = Map::new();
        target.insert("kinesisSchemaVersion".into(), Value::from("1.0"));
        target.insert("partitionKey".into(), Value::from(String::from_utf8_lossy(&record.partition_key)));
        target.insert("sequenceNumber".into(), Value::from(record.position.as_str()));
        target.insert("data".into(), data);
        let seconds = serde_json::Number::from_f64(record.arrival_ms as f64 / 1000.0).map_or(Value::Null, Value::Number);
        target.insert("approximateArrivalTimestamp".into(), seconds);
        Some(Value::Object(target))
    }

    fn event_source_arn(&self) -> &str {
        &self.stream_arn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc() -> KinesisEncoding {
        KinesisEncoding::new("us-east-1", "111111111111", "orders")
    }

    fn rec(seq: &str, data: &'static [u8], arrival_ms: i64) -> Record {
        enc().record(&ShardId::new("shardId-000000000000"), seq.into(), Bytes::from_static(b"pk"), Bytes::from_static(data), arrival_ms)
    }

    #[test]
    fn fragment_is_the_aws_record_byte_for_byte() {
        let r = rec("000000000000000000001", b"hello", 1_545_084_650_987);
        assert_eq!(
            std::str::from_utf8(&r.encoded).unwrap(),
            concat!(
                r#"{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"pk","sequenceNumber":"000000000000000000001","#,
                r#""data":"aGVsbG8=","approximateArrivalTimestamp":1545084650.987},"eventSource":"aws:kinesis","#,
                r#""eventVersion":"1.0","eventID":"shardId-000000000000:000000000000000000001","eventName":"aws:kinesis:record","#,
                r#""invokeIdentityArn":"arn:aws:iam::111111111111:role/esmd","awsRegion":"us-east-1","#,
                r#""eventSourceARN":"arn:aws:kinesis:us-east-1:111111111111:stream/orders"}"#
            )
        );
        assert_eq!(r.item_id, ItemId::Str("000000000000000000001".into()));
        assert_eq!(r.position.as_str(), "000000000000000000001");
    }

    #[test]
    fn arrival_keeps_three_decimals() {
        assert_eq!(epoch_seconds(1_545_084_650_000), "1545084650.000");
        assert_eq!(epoch_seconds(1_545_084_650_020), "1545084650.020");
        assert_eq!(epoch_seconds(-1_500), "-1.500");
        assert_eq!(epoch_seconds(0), "0.000");
    }

    #[test]
    fn event_wraps_fragments() {
        let a = rec("1", b"a", 0);
        let b = rec("2", b"b", 0);
        let ev = enc().encode_event(&ShardId::new("s"), &[a.clone(), b.clone()], None);
        let v: Value = serde_json::from_slice(&ev).unwrap();
        assert_eq!(v["Records"][1]["kinesis"]["sequenceNumber"], "2");
        assert_eq!(ev.len(), enc().envelope_size() + a.encoded.len() + b.encoded.len() + 1);
    }

    #[test]
    fn batch_info_in_aws_key_order() {
        let (key, info) = enc().batch_info(&ShardId::new("shardId-000000000000"), &[rec("1", b"a", 1_573_691_886_021), rec("2", b"b", 1_573_691_887_000)]);
        assert_eq!(key, "KinesisBatchInfo");
        assert_eq!(
            info.to_string(),
            concat!(
                r#"{"shardId":"shardId-000000000000","startSequenceNumber":"1","endSequenceNumber":"2","#,
                r#""approximateArrivalOfFirstRecord":"2019-11-14T00:38:06.021Z","approximateArrivalOfLastRecord":"2019-11-14T00:38:07.000Z","#,
                r#""batchSize":2,"streamArn":"arn:aws:kinesis:us-east-1:111111111111:stream/orders"}"#
            )
        );
    }

    #[test]
    fn filter_sees_decoded_json_data_only() {
        let target = enc().filter_target(&rec("7", br#"{"event_type":"function_1"}"#, 1_000)).unwrap();
        assert_eq!(target["data"], json!({"event_type": "function_1"}));
        assert_eq!(target["partitionKey"], "pk");
        assert_eq!(target["sequenceNumber"], "7");
        assert_eq!(target["approximateArrivalTimestamp"], json!(1.0));
        assert!(enc().filter_target(&rec("8", b"not json", 0)).is_none());
    }
}
