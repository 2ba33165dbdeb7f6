//! AWS's `aws:dynamodb` event records and `DDBStreamBatchInfo` failure records.

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record as StreamRecord};
use base64::Engine as _;
use bytes::Bytes;
use esmd_api::json::{records_event, RECORDS_ENVELOPE};
use esmd_api::kinesis::shard_batch_info;
use esmd_api::time::iso_seconds;
use esmd_api::{EventEncoder, ExtraFields, ItemId, Position, Record, ShardId};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Encodes one stream's records the way Lambda shapes them.
#[derive(Debug, Clone)]
pub struct DynamoDbEncoding {
    stream_arn: String,
    region: String,
}

impl DynamoDbEncoding {
    pub fn new(region: &str, stream_arn: &str) -> Self {
        DynamoDbEncoding { stream_arn: stream_arn.into(), region: region.into() }
    }

    /// The engine's record for a stream record: position and item id are the sequence number,
    /// the partition key is the item's key attributes (canonical JSON, so every change of one
    /// item lands in the same lane), `data` is the `dynamodb` block.
    pub fn record(&self, r: &StreamRecord, now_ms: i64) -> Option<Record> {
        let stream = r.dynamodb()?;
        let seq = stream.sequence_number()?;
        // DynamoDB Streams gives whole seconds.
        let created_s = stream.approximate_creation_date_time().map(|t| t.secs()).unwrap_or(now_ms.div_euclid(1000));
        let keys = stream.keys().map(image).unwrap_or_else(|| Value::Object(Map::new()));
        let mut block = Map::new();
        block.insert("ApproximateCreationDateTime".into(), Value::from(created_s));
        block.insert("Keys".into(), keys.clone());
        if let Some(new) = stream.new_image() {
            block.insert("NewImage".into(), image(new));
        }
        if let Some(old) = stream.old_image() {
            block.insert("OldImage".into(), image(old));
        }
        block.insert("SequenceNumber".into(), Value::from(seq));
        block.insert("SizeBytes".into(), Value::from(stream.size_bytes().unwrap_or(0)));
        if let Some(view) = stream.stream_view_type() {
            block.insert("StreamViewType".into(), Value::from(view.as_str()));
        }
        let block = Value::Object(block);

        let mut out = Map::new();
        out.insert("eventID".into(), Value::from(r.event_id().unwrap_or_default()));
        out.insert("eventName".into(), Value::from(r.event_name().map(|n| n.as_str()).unwrap_or_default()));
        out.insert("eventVersion".into(), Value::from("1.1"));
        out.insert("eventSource".into(), Value::from("aws:dynamodb"));
        out.insert("awsRegion".into(), Value::from(r.aws_region().unwrap_or(&self.region)));
        out.insert("dynamodb".into(), block.clone());
        // TTL deletions say who removed the item.
        if let Some(who) = r.user_identity() {
            let mut identity = Map::new();
            identity.insert("type".into(), Value::from(who.r#type().unwrap_or_default()));
            identity.insert("principalId".into(), Value::from(who.principal_id().unwrap_or_default()));
            out.insert("userIdentity".into(), Value::Object(identity));
        }
        out.insert("eventSourceARN".into(), Value::from(self.stream_arn.as_str()));

        let seq: std::sync::Arc<str> = seq.into();
        Some(Record {
            position: Position(seq.clone()),
            partition_key: Bytes::from(keys.to_string()),
            arrival_ms: created_s.saturating_mul(1000),
            data: Bytes::from(block.to_string()),
            encoded: Bytes::from(Value::Object(out).to_string()),
            item_id: ItemId::Str(seq),
            receive_count: 0,
            invalid: None,
        })
    }
}

/// An item image in DynamoDB's JSON (`{"attr": {"S": "x"}}`), attributes sorted by name so the
/// same key always serializes the same way.
pub fn image(attributes: &HashMap<String, AttributeValue>) -> Value {
    let sorted: BTreeMap<&String, &AttributeValue> = attributes.iter().collect();
    Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), attribute(v))).collect())
}

/// One attribute value with its type tag.
pub fn attribute(v: &AttributeValue) -> Value {
    let b64 = |b: &aws_sdk_dynamodbstreams::primitives::Blob| Value::from(base64::engine::general_purpose::STANDARD.encode(b.as_ref()));
    let (tag, value) = match v {
        AttributeValue::S(s) => ("S", Value::from(s.as_str())),
        AttributeValue::N(n) => ("N", Value::from(n.as_str())),
        AttributeValue::B(b) => ("B", b64(b)),
        AttributeValue::Bool(b) => ("BOOL", Value::from(*b)),
        AttributeValue::Null(b) => ("NULL", Value::from(*b)),
        AttributeValue::Ss(s) => ("SS", Value::from(s.clone())),
        AttributeValue::Ns(s) => ("NS", Value::from(s.clone())),
        AttributeValue::Bs(bs) => ("BS", Value::Array(bs.iter().map(b64).collect())),
        AttributeValue::L(l) => ("L", Value::Array(l.iter().map(attribute).collect())),
        AttributeValue::M(m) => ("M", image(m)),
        // A type newer than this SDK: kept visible rather than dropped.
        _ => ("UNKNOWN", Value::Null),
    };
    let mut o = Map::new();
    o.insert(tag.into(), value);
    Value::Object(o)
}

impl EventEncoder for DynamoDbEncoding {
    fn encode_event(&self, _shard: &ShardId, records: &[Record], extra: Option<&ExtraFields>) -> Vec<u8> {
        records_event(records, extra)
    }

    fn envelope_size(&self) -> usize {
        RECORDS_ENVELOPE.len()
    }

    /// As Kinesis' batch info, with timestamps in whole seconds (as AWS writes them).
    fn batch_info(&self, shard: &ShardId, records: &[Record]) -> (String, Value) {
        ("DDBStreamBatchInfo".into(), shard_batch_info(shard, records, &self.stream_arn, iso_seconds))
    }

    /// The record as the event carries it: patterns match `eventName`, `dynamodb.NewImage...`
    /// with DynamoDB's typed values (numbers are strings there).
    fn filter_target(&self, record: &Record) -> Option<Value> {
        serde_json::from_slice(&record.encoded).ok()
    }

    fn event_source_arn(&self) -> &str {
        &self.stream_arn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::primitives::{Blob, DateTime};
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord as Block, StreamViewType};
    use serde_json::json;

    fn enc() -> DynamoDbEncoding {
        DynamoDbEncoding::new("us-east-1", "arn:aws:dynamodb:us-east-1:111111111111:table/t/stream/label")
    }

    fn stream_record() -> StreamRecord {
        StreamRecord::builder()
            .event_id("e1")
            .event_name(OperationType::Modify)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("us-east-1")
            .dynamodb(
                Block::builder()
                    .approximate_creation_date_time(DateTime::from_secs(1_657_720_081))
                    .keys("pk", AttributeValue::S("a".into()))
                    .new_image("pk", AttributeValue::S("a".into()))
                    .new_image("n", AttributeValue::N("2".into()))
                    .new_image("b", AttributeValue::B(Blob::new("foobar")))
                    .new_image("m", AttributeValue::M(HashMap::from([("l".to_string(), AttributeValue::L(vec![AttributeValue::Bool(true), AttributeValue::Null(true)]))])))
                    .old_image("pk", AttributeValue::S("a".into()))
                    .old_image("ns", AttributeValue::Ns(vec!["1".into()]))
                    .sequence_number("100")
                    .size_bytes(70)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build(),
            )
            .build()
    }

    #[test]
    fn record_in_aws_order_with_typed_images() {
        let r = enc().record(&stream_record(), 0).unwrap();
        assert_eq!(
            std::str::from_utf8(&r.encoded).unwrap(),
            concat!(
                r#"{"eventID":"e1","eventName":"MODIFY","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1","#,
                r#""dynamodb":{"ApproximateCreationDateTime":1657720081,"Keys":{"pk":{"S":"a"}},"#,
                r#""NewImage":{"b":{"B":"Zm9vYmFy"},"m":{"M":{"l":{"L":[{"BOOL":true},{"NULL":true}]}}},"n":{"N":"2"},"pk":{"S":"a"}},"#,
                r#""OldImage":{"ns":{"NS":["1"]},"pk":{"S":"a"}},"SequenceNumber":"100","SizeBytes":70,"StreamViewType":"NEW_AND_OLD_IMAGES"},"#,
                r#""eventSourceARN":"arn:aws:dynamodb:us-east-1:111111111111:table/t/stream/label"}"#
            )
        );
        assert_eq!(r.position.as_str(), "100");
        assert_eq!(r.item_id, ItemId::Str("100".into()));
        assert_eq!(r.arrival_ms, 1_657_720_081_000);
        assert_eq!(&r.partition_key[..], br#"{"pk":{"S":"a"}}"#);
    }

    #[test]
    fn batch_info_uses_whole_seconds() {
        let r = enc().record(&stream_record(), 0).unwrap();
        let (key, info) = enc().batch_info(&ShardId::new("shardId-1"), &[r.clone(), r]);
        assert_eq!(key, "DDBStreamBatchInfo");
        assert_eq!(info["approximateArrivalOfFirstRecord"], "2022-07-13T13:48:01Z");
        assert_eq!(info["batchSize"], 2);
    }

    #[test]
    fn filters_see_the_raw_record() {
        let r = enc().record(&stream_record(), 0).unwrap();
        let t = enc().filter_target(&r).unwrap();
        assert_eq!(t["eventName"], "MODIFY");
        assert_eq!(t["dynamodb"]["NewImage"]["n"], json!({"N": "2"}));
    }
}
