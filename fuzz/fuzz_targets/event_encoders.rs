//! Every connector's event encoder with arbitrary bytes and text in keys, values, headers and
//! attributes: each record fragment, each whole event (with arbitrary tumbling-window extra
//! fields), each filter target and each failure record's batch info must be valid JSON that
//! says what went in. The encoders write most of that JSON by hand (connectors/api/src/json.rs,
//! connectors/kafka/src/encode.rs, connectors/rabbitmq/src/encode.rs), so this is where an
//! escaping slip would show.
//!
//! Covered, through the functions the connectors build records with:
//! - Kafka: `KafkaEncoding::record` from a `RawMessage` (what `source.rs` makes of librdkafka's
//!   message), self-managed and MSK;
//! - RabbitMQ: `RmqEncoding::record` from lapin's `BasicProperties` (every property, nested
//!   header tables and arrays);
//! - SQS: `esmd_sqs::record_from_message` from the SDK's `Message` (system attributes, message
//!   attributes), standard and FIFO;
//! - Kinesis: `KinesisEncoding::record` (shared with the in-memory log);
//! - DynamoDB Streams: `DynamoDbEncoding::record` from the SDK's stream record, typed images;
//! - memory: `MemoryLog` appends and `MemoryQueue` sends, received as the engine receives them.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use esmd_api::kinesis::KinesisEncoding;
use esmd_api::sqs::SqsEncoding;
use esmd_api::{EventEncoder, ExtraFields, Position, QueueSource, Record, ShardId};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Nesting past this is cut to a leaf: serde_json refuses to read JSON deeper than 128 levels,
/// and the encoders nest a few levels of their own around what they are given.
const MAX_DEPTH: usize = 24;

// ---------------------------------------------------------------------------------------------
// Input

#[derive(Arbitrary, Debug)]
enum Input {
    Kafka(KafkaInput),
    Rabbit(RabbitInput),
    Sqs(SqsInput),
    Kinesis(KinesisInput),
    Dynamo(DynamoInput),
    MemoryLog(MemoryLogInput),
    MemoryQueue(MemoryQueueInput),
}

#[derive(Arbitrary, Debug)]
struct Fuzzed {
    input: Input,
    /// Tumbling-window fields (`window`, `state`, ...) for the events that carry them.
    extra: Option<Vec<(String, Json)>>,
}

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

#[derive(Arbitrary, Debug)]
struct KafkaInput {
    msk_arn: Option<String>,
    bootstrap_servers: String,
    topic: String,
    partition: i32,
    messages: Vec<KafkaMessage>,
}

#[derive(Arbitrary, Debug)]
struct KafkaMessage {
    /// A message of another topic than the mapping's (the encoder quotes it itself then).
    other_topic: Option<String>,
    offset: i64,
    timestamp: Option<(i64, bool)>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

#[derive(Arbitrary, Debug)]
struct RabbitInput {
    broker_arn: String,
    queue: String,
    virtual_host: String,
    deliveries: Vec<RabbitDelivery>,
}

#[derive(Arbitrary, Debug)]
struct RabbitDelivery {
    properties: RabbitProperties,
    body: Vec<u8>,
    redelivered: bool,
    position: String,
    receive_count: u32,
    received_ms: i64,
}

#[derive(Arbitrary, Debug)]
struct RabbitProperties {
    content_type: Option<String>,
    content_encoding: Option<String>,
    headers: Option<Vec<(String, Amqp)>>,
    delivery_mode: Option<u8>,
    priority: Option<u8>,
    correlation_id: Option<String>,
    reply_to: Option<String>,
    expiration: Option<String>,
    message_id: Option<String>,
    timestamp: Option<u64>,
    kind: Option<String>,
    user_id: Option<String>,
    app_id: Option<String>,
    cluster_id: Option<String>,
}

/// lapin's `AMQPValue`, every variant.
#[derive(Arbitrary, Debug)]
enum Amqp {
    Boolean(bool),
    ShortShortInt(i8),
    ShortShortUInt(u8),
    ShortInt(i16),
    ShortUInt(u16),
    LongInt(i32),
    LongUInt(u32),
    LongLongInt(i64),
    Float(f32),
    Double(f64),
    Decimal(u8, u32),
    ShortString(String),
    LongString(Vec<u8>),
    FieldArray(Vec<Amqp>),
    Timestamp(u64),
    FieldTable(Vec<(String, Amqp)>),
    ByteArray(Vec<u8>),
    Void,
}

#[derive(Arbitrary, Debug)]
struct SqsInput {
    region: String,
    account: String,
    queue: String,
    fifo: bool,
    messages: Vec<SqsMessage>,
}

#[derive(Arbitrary, Debug)]
struct SqsMessage {
    message_id: Option<String>,
    receipt_handle: Option<String>,
    body: Option<String>,
    md5_of_body: Option<String>,
    attributes: Vec<(SystemAttribute, String)>,
    message_attributes: Vec<(String, SqsAttribute)>,
    md5_of_message_attributes: Option<String>,
}

#[derive(Arbitrary, Debug)]
enum SystemAttribute {
    ApproximateReceiveCount,
    SentTimestamp,
    ApproximateFirstReceiveTimestamp,
    SenderId,
    SequenceNumber,
    MessageGroupId,
    MessageDeduplicationId,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct SqsAttribute {
    data_type: String,
    string_value: Option<String>,
    binary_value: Option<Vec<u8>>,
    string_list_values: Vec<String>,
    binary_list_values: Vec<Vec<u8>>,
}

#[derive(Arbitrary, Debug)]
struct KinesisInput {
    region: String,
    stream_arn: String,
    invoke_identity_arn: String,
    shard: String,
    records: Vec<(String, Vec<u8>, Vec<u8>, i64)>,
}

#[derive(Arbitrary, Debug)]
struct DynamoInput {
    region: String,
    stream_arn: String,
    now_ms: i64,
    records: Vec<DynamoRecord>,
}

#[derive(Arbitrary, Debug)]
struct DynamoRecord {
    event_id: Option<String>,
    event_name: Option<String>,
    aws_region: Option<String>,
    user_identity: Option<(Option<String>, Option<String>)>,
    block: Option<DynamoBlock>,
}

#[derive(Arbitrary, Debug)]
struct DynamoBlock {
    created_s: Option<i64>,
    keys: Option<Vec<(String, Attribute)>>,
    new_image: Option<Vec<(String, Attribute)>>,
    old_image: Option<Vec<(String, Attribute)>>,
    sequence_number: Option<String>,
    size_bytes: Option<i64>,
    stream_view_type: Option<String>,
}

/// DynamoDB's `AttributeValue`, every variant.
#[derive(Arbitrary, Debug)]
enum Attribute {
    S(String),
    N(String),
    B(Vec<u8>),
    Bool(bool),
    Null(bool),
    Ss(Vec<String>),
    Ns(Vec<String>),
    Bs(Vec<Vec<u8>>),
    L(Vec<Attribute>),
    M(Vec<(String, Attribute)>),
}

#[derive(Arbitrary, Debug)]
struct MemoryLogInput {
    stream_name: String,
    shards: u8,
    records: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Arbitrary, Debug)]
struct MemoryQueueInput {
    name: String,
    fifo: bool,
    messages: Vec<(Vec<u8>, Option<String>)>,
}

// ---------------------------------------------------------------------------------------------
// Checks shared by every encoder

fn json_value(j: &Json, depth: usize) -> Value {
    match j {
        _ if depth >= MAX_DEPTH => Value::Null,
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Int(n) => json!(n),
        // NaN and infinities have no JSON: serde_json makes them null.
        Json::Float(f) => json!(f),
        Json::Str(s) => Value::String(s.clone()),
        Json::Arr(items) => Value::Array(items.iter().map(|i| json_value(i, depth + 1)).collect()),
        Json::Obj(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), json_value(v, depth + 1))).collect()),
    }
}

/// JSON equality, floats within a rounding error: serde_json reads a float back only to its
/// best effort (no `float_roundtrip`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            x == y || (x - y).abs() <= f64::EPSILON * 4.0 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().zip(y).all(|((kx, x), (ky, y))| kx == ky && same(x, y)),
        _ => a == b,
    }
}

fn parse(what: &str, bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{what} is not valid JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// Encodes the batch as the engine does and checks what every event shape shares; returns the
/// parsed event.
fn event(enc: &dyn EventEncoder, shard: &ShardId, records: &[Record], extra: Option<&ExtraFields>, envelope_bound: bool) -> Value {
    for r in records {
        let fragment = parse("a record fragment", &r.encoded);
        assert!(fragment.is_object(), "a fragment that is not an object: {fragment}");
        if let Some(target) = enc.filter_target(r) {
            // What the filter matches: it must serialize back (no NaN, no broken strings).
            let _ = serde_json::to_vec(&target).expect("filter target serializes");
        }
    }
    let bytes = enc.encode_event(shard, records, extra);
    let v = parse("an event", &bytes);
    assert!(v.is_object(), "an event that is not an object: {v}");
    if extra.is_none() && envelope_bound {
        // The batcher closes a batch at the payload limit from these sizes, unencoded.
        let bound = enc.envelope_size() + records.iter().map(Record::event_size).sum::<usize>();
        assert!(bytes.len() <= bound, "event of {} bytes over its estimate of {bound}", bytes.len());
    }
    if let Some(extra) = extra {
        for (k, want) in extra {
            let got = v.get(k).unwrap_or_else(|| panic!("extra field {k:?} missing: {v}"));
            assert!(same(got, want), "extra field {k:?}: {got} for {want}");
        }
    }
    let (key, info) = enc.batch_info(shard, records);
    assert!(!key.is_empty());
    parse("a batch info", serde_json::to_string(&info).expect("batch info serializes").as_bytes());
    let _ = enc.event_source_arn();
    v
}

fn records_array<'a>(v: &'a Value, n: usize) -> &'a Vec<Value> {
    let a = v["Records"].as_array().unwrap_or_else(|| panic!("no Records array: {v}"));
    assert_eq!(a.len(), n);
    a
}

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap_or_else(|| panic!("not a base64 string: {v}"))).expect("valid base64")
}

// ---------------------------------------------------------------------------------------------
// The connectors

fn kafka(input: &KafkaInput) {
    use esmd_kafka::{partition_name, EventSource, KafkaEncoding, RawMessage};
    let source = match &input.msk_arn {
        Some(arn) => EventSource::Msk { cluster_arn: arn.clone() },
        None => EventSource::SelfManaged,
    };
    let enc = KafkaEncoding::new(source, &input.bootstrap_servers, &input.topic);
    let records: Vec<Record> = input
        .messages
        .iter()
        .map(|m| {
            let raw = RawMessage {
                topic: m.other_topic.as_deref().unwrap_or(&input.topic),
                partition: input.partition,
                offset: m.offset,
                timestamp: m.timestamp.map(|(t, create)| (t, if create { "CREATE_TIME" } else { "LOG_APPEND_TIME" })),
                key: m.key.as_deref(),
                value: m.value.as_deref(),
                headers: m.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect(),
            };
            enc.record(&raw)
        })
        .collect();
    let shard = ShardId::new(partition_name(&input.topic, input.partition));
    // `envelope_size` assumes a real topic name: at most 249 of `[A-Za-z0-9._-]`.
    let real_topic = input.topic.len() <= 249 && input.topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    let v = event(&enc, &shard, &records, None, real_topic);
    let got = v["records"][shard.as_str()].as_array().unwrap_or_else(|| panic!("no records under {shard}: {v}"));
    assert_eq!(got.len(), records.len());
    for (m, r) in input.messages.iter().zip(got) {
        assert_eq!(r["topic"], m.other_topic.as_deref().unwrap_or(&input.topic));
        assert_eq!(r["partition"], input.partition);
        assert_eq!(r["offset"], m.offset);
        assert_eq!(r.get("key").map(b64), m.key.clone());
        assert_eq!(r.get("value").map(b64), m.value.clone());
        let headers: Vec<(String, Option<Vec<u8>>)> = r["headers"]
            .as_array()
            .expect("headers array")
            .iter()
            .map(|h| {
                let (k, v) = h.as_object().and_then(|o| o.iter().next()).expect("one key per header");
                let bytes = v.as_array().map(|a| a.iter().map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()).expect("a byte")).collect());
                (k.clone(), bytes)
            })
            .collect();
        assert_eq!(headers, m.headers);
    }
    let (_, info) = enc.batch_info(&shard, &records);
    assert_eq!(info["payloadSize"], enc.encode_event(&shard, &records, None).len());
}

fn short(s: &Option<String>) -> Option<esmd_rabbitmq::lapin::types::ShortString> {
    s.as_ref().and_then(|s| esmd_rabbitmq::lapin::types::ShortString::try_new(s.clone()).ok())
}

fn amqp(v: &Amqp, depth: usize) -> esmd_rabbitmq::lapin::types::AMQPValue {
    use esmd_rabbitmq::lapin::types::{AMQPValue as V, DecimalValue, LongString};
    match v {
        _ if depth >= MAX_DEPTH => V::Void,
        Amqp::Boolean(b) => V::Boolean(*b),
        Amqp::ShortShortInt(n) => V::ShortShortInt(*n),
        Amqp::ShortShortUInt(n) => V::ShortShortUInt(*n),
        Amqp::ShortInt(n) => V::ShortInt(*n),
        Amqp::ShortUInt(n) => V::ShortUInt(*n),
        Amqp::LongInt(n) => V::LongInt(*n),
        Amqp::LongUInt(n) => V::LongUInt(*n),
        Amqp::LongLongInt(n) => V::LongLongInt(*n),
        Amqp::Float(f) => V::Float(*f),
        Amqp::Double(f) => V::Double(*f),
        Amqp::Decimal(scale, value) => V::DecimalValue(DecimalValue { scale: *scale, value: *value }),
        Amqp::ShortString(s) => short(&Some(s.clone())).map_or(V::Void, V::ShortString),
        Amqp::LongString(b) => V::LongString(LongString::from(b.clone())),
        Amqp::FieldArray(items) => V::FieldArray(items.iter().map(|i| amqp(i, depth + 1)).collect::<Vec<_>>().into()),
        Amqp::Timestamp(t) => V::Timestamp(*t),
        Amqp::FieldTable(fields) => V::FieldTable(table(fields, depth + 1)),
        Amqp::ByteArray(b) => V::ByteArray(b.clone().into()),
        Amqp::Void => V::Void,
    }
}

fn table(fields: &[(String, Amqp)], depth: usize) -> esmd_rabbitmq::lapin::types::FieldTable {
    let mut t = esmd_rabbitmq::lapin::types::FieldTable::default();
    for (k, v) in fields {
        if let Some(k) = short(&Some(k.clone())) {
            t.insert(k, amqp(v, depth));
        }
    }
    t
}

fn rabbit(input: &RabbitInput) {
    use esmd_rabbitmq::lapin::BasicProperties;
    use esmd_rabbitmq::{RawDelivery, RmqEncoding};
    let enc = RmqEncoding::new(&input.broker_arn, &input.queue, &input.virtual_host);
    let mut records = Vec::new();
    for d in &input.deliveries {
        let p = &d.properties;
        let mut props = BasicProperties::default();
        if let Some(v) = short(&p.content_type) {
            props = props.with_content_type(v);
        }
        if let Some(v) = short(&p.content_encoding) {
            props = props.with_content_encoding(v);
        }
        if let Some(h) = &p.headers {
            props = props.with_headers(table(h, 0));
        }
        if let Some(v) = p.delivery_mode {
            props = props.with_delivery_mode(v);
        }
        if let Some(v) = p.priority {
            props = props.with_priority(v);
        }
        if let Some(v) = short(&p.correlation_id) {
            props = props.with_correlation_id(v);
        }
        if let Some(v) = short(&p.reply_to) {
            props = props.with_reply_to(v);
        }
        if let Some(v) = short(&p.expiration) {
            props = props.with_expiration(v);
        }
        if let Some(v) = short(&p.message_id) {
            props = props.with_message_id(v);
        }
        if let Some(v) = p.timestamp {
            props = props.with_timestamp(v);
        }
        if let Some(v) = short(&p.kind) {
            props = props.with_type(v);
        }
        if let Some(v) = short(&p.user_id) {
            props = props.with_user_id(v);
        }
        if let Some(v) = short(&p.app_id) {
            props = props.with_app_id(v);
        }
        if let Some(v) = short(&p.cluster_id) {
            props = props.with_cluster_id(v);
        }
        let raw = RawDelivery { properties: &props, body: &d.body, redelivered: d.redelivered };
        let r = enc.record(&raw, Position::new(d.position.as_str()), d.receive_count, d.received_ms);
        let fragment = parse("a RabbitMQ fragment", &r.encoded);
        assert_eq!(b64(&fragment["data"]), d.body);
        assert_eq!(fragment["basicProperties"]["bodySize"], d.body.len());
        assert_eq!(fragment["redelivered"], d.redelivered);
        assert_eq!(fragment["basicProperties"]["headers"].is_null(), p.headers.is_none());
        if let Some(id) = short(&p.message_id) {
            assert_eq!(fragment["basicProperties"]["messageId"], id.as_str());
        }
        records.push(r);
    }
    let shard = ShardId::new(enc.queue_key());
    let v = event(&enc, &shard, &records, None, true);
    assert_eq!(v["eventSource"], "aws:rmq");
    assert_eq!(v["rmqMessagesByQueue"][enc.queue_key()].as_array().map(Vec::len), Some(records.len()));
    let (_, info) = enc.batch_info(&shard, &records);
    assert_eq!(info["payloadSize"], enc.encode_event(&shard, &records, None).len());
}

fn sqs(input: &SqsInput, extra: Option<&ExtraFields>) {
    use aws_sdk_sqs::primitives::Blob;
    use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName as Attr};
    let enc = SqsEncoding::new(&input.region, &input.account, &input.queue, input.fifo);
    let mut records = Vec::new();
    let mut bodies = Vec::new();
    for m in &input.messages {
        let mut b = Message::builder();
        if let Some(v) = &m.message_id {
            b = b.message_id(v);
        }
        if let Some(v) = &m.receipt_handle {
            b = b.receipt_handle(v);
        }
        if let Some(v) = &m.body {
            b = b.body(v);
        }
        if let Some(v) = &m.md5_of_body {
            b = b.md5_of_body(v);
        }
        if let Some(v) = &m.md5_of_message_attributes {
            b = b.md5_of_message_attributes(v);
        }
        for (name, value) in &m.attributes {
            let name = match name {
                SystemAttribute::ApproximateReceiveCount => Attr::ApproximateReceiveCount,
                SystemAttribute::SentTimestamp => Attr::SentTimestamp,
                SystemAttribute::ApproximateFirstReceiveTimestamp => Attr::ApproximateFirstReceiveTimestamp,
                SystemAttribute::SenderId => Attr::SenderId,
                SystemAttribute::SequenceNumber => Attr::SequenceNumber,
                SystemAttribute::MessageGroupId => Attr::MessageGroupId,
                SystemAttribute::MessageDeduplicationId => Attr::MessageDeduplicationId,
                SystemAttribute::Other(other) => Attr::from(other.as_str()),
            };
            b = b.attributes(name, value);
        }
        for (name, a) in &m.message_attributes {
            let mut v = MessageAttributeValue::builder().data_type(&a.data_type);
            if let Some(s) = &a.string_value {
                v = v.string_value(s);
            }
            if let Some(bin) = &a.binary_value {
                v = v.binary_value(Blob::new(bin.clone()));
            }
            for s in &a.string_list_values {
                v = v.string_list_values(s);
            }
            for bin in &a.binary_list_values {
                v = v.binary_list_values(Blob::new(bin.clone()));
            }
            if let Ok(v) = v.build() {
                b = b.message_attributes(name, v);
            }
        }
        let message = b.build();
        let Some(r) = esmd_sqs::record_from_message(&enc, &message) else {
            assert!(m.message_id.is_none() || m.receipt_handle.is_none(), "a message with both ids made no record");
            continue;
        };
        let fragment = parse("an SQS fragment", &r.encoded);
        assert_eq!(fragment["messageId"], m.message_id.as_deref().unwrap_or_default());
        assert_eq!(fragment["receiptHandle"], m.receipt_handle.as_deref().unwrap_or_default());
        assert_eq!(fragment["body"], m.body.as_deref().unwrap_or_default());
        assert!(fragment["messageAttributes"].is_object());
        bodies.push(m.body.clone().unwrap_or_default());
        records.push(r);
    }
    let v = event(&enc, &ShardId::new(input.queue.as_str()), &records, extra, true);
    for (r, body) in records_array(&v, records.len()).iter().zip(&bodies) {
        assert_eq!(&r["body"], body);
        assert_eq!(r["eventSource"], "aws:sqs");
    }
}

fn kinesis(input: &KinesisInput, extra: Option<&ExtraFields>) {
    let enc = KinesisEncoding::for_stream(&input.region, &input.stream_arn, &input.invoke_identity_arn);
    let shard = ShardId::new(input.shard.as_str());
    let records: Vec<Record> = input
        .records
        .iter()
        .map(|(seq, key, data, arrival)| enc.record(&shard, Arc::from(seq.as_str()), Bytes::copy_from_slice(key), Bytes::copy_from_slice(data), *arrival))
        .collect();
    let v = event(&enc, &shard, &records, extra, true);
    for ((seq, key, data, _), r) in input.records.iter().zip(records_array(&v, records.len())) {
        assert_eq!(r["kinesis"]["sequenceNumber"], seq.as_str());
        assert_eq!(r["kinesis"]["partitionKey"], String::from_utf8_lossy(key).as_ref());
        assert_eq!(&b64(&r["kinesis"]["data"]), data);
        assert_eq!(r["eventID"], format!("{}:{seq}", input.shard));
        assert_eq!(r["eventSourceARN"], input.stream_arn.as_str());
    }
}

fn attribute(a: &Attribute, depth: usize) -> aws_sdk_dynamodbstreams::types::AttributeValue {
    use aws_sdk_dynamodbstreams::primitives::Blob;
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    match a {
        _ if depth >= MAX_DEPTH => A::Null(true),
        Attribute::S(s) => A::S(s.clone()),
        Attribute::N(s) => A::N(s.clone()),
        Attribute::B(b) => A::B(Blob::new(b.clone())),
        Attribute::Bool(b) => A::Bool(*b),
        Attribute::Null(b) => A::Null(*b),
        Attribute::Ss(s) => A::Ss(s.clone()),
        Attribute::Ns(s) => A::Ns(s.clone()),
        Attribute::Bs(bs) => A::Bs(bs.iter().map(|b| Blob::new(b.clone())).collect()),
        Attribute::L(l) => A::L(l.iter().map(|a| attribute(a, depth + 1)).collect()),
        Attribute::M(m) => A::M(image(m, depth + 1)),
    }
}

fn image(fields: &[(String, Attribute)], depth: usize) -> HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue> {
    fields.iter().map(|(k, v)| (k.clone(), attribute(v, depth))).collect()
}

fn dynamo(input: &DynamoInput, extra: Option<&ExtraFields>) {
    use aws_sdk_dynamodbstreams::primitives::DateTime;
    use aws_sdk_dynamodbstreams::types::{Identity, OperationType, Record as StreamRecord, StreamRecord as Block, StreamViewType};
    let enc = esmd_dynamodb_streams::DynamoDbEncoding::new(&input.region, &input.stream_arn);
    let mut records = Vec::new();
    for r in &input.records {
        let mut b = StreamRecord::builder();
        if let Some(v) = &r.event_id {
            b = b.event_id(v);
        }
        if let Some(v) = &r.event_name {
            b = b.event_name(OperationType::from(v.as_str()));
        }
        if let Some(v) = &r.aws_region {
            b = b.aws_region(v);
        }
        if let Some((kind, principal)) = &r.user_identity {
            let mut i = Identity::builder();
            if let Some(v) = kind {
                i = i.r#type(v);
            }
            if let Some(v) = principal {
                i = i.principal_id(v);
            }
            b = b.user_identity(i.build());
        }
        if let Some(block) = &r.block {
            let mut s = Block::builder()
                .set_keys(block.keys.as_deref().map(|k| image(k, 0)))
                .set_new_image(block.new_image.as_deref().map(|k| image(k, 0)))
                .set_old_image(block.old_image.as_deref().map(|k| image(k, 0)));
            if let Some(t) = block.created_s {
                s = s.approximate_creation_date_time(DateTime::from_secs(t));
            }
            if let Some(v) = &block.sequence_number {
                s = s.sequence_number(v);
            }
            if let Some(v) = block.size_bytes {
                s = s.size_bytes(v);
            }
            if let Some(v) = &block.stream_view_type {
                s = s.stream_view_type(StreamViewType::from(v.as_str()));
            }
            b = b.dynamodb(s.build());
        }
        let Some(record) = enc.record(&b.build(), input.now_ms) else {
            assert!(r.block.as_ref().is_none_or(|b| b.sequence_number.is_none()), "a record with a sequence number was dropped");
            continue;
        };
        let fragment = parse("a DynamoDB fragment", &record.encoded);
        parse("a DynamoDB record's keys", &record.partition_key);
        parse("a DynamoDB record's data", &record.data);
        assert_eq!(fragment["eventSource"], "aws:dynamodb");
        assert_eq!(fragment["dynamodb"]["SequenceNumber"], record.position.as_str());
        records.push(record);
    }
    let v = event(&enc, &ShardId::new("shardId-00000001"), &records, extra, true);
    records_array(&v, records.len());
}

fn memory_log(input: &MemoryLogInput, extra: Option<&ExtraFields>) {
    use esmd_memory::{MemoryLog, MemoryLogOptions};
    let log = MemoryLog::new(MemoryLogOptions { stream_name: input.stream_name.clone(), shards: usize::from(input.shards % 8) + 1, ..Default::default() });
    for (key, data) in &input.records {
        log.append(key, Bytes::copy_from_slice(data));
    }
    let enc = log.encoding();
    let mut total = 0;
    for shard in log.shards() {
        let records = log.records(&shard);
        total += records.len();
        let v = event(&*enc, &shard, &records, extra, true);
        for (r, got) in records.iter().zip(records_array(&v, records.len())) {
            assert_eq!(b64(&got["kinesis"]["data"]), r.data.to_vec());
            assert_eq!(got["kinesis"]["partitionKey"], String::from_utf8_lossy(&r.partition_key).as_ref());
        }
    }
    assert_eq!(total, input.records.len());
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime"))
}

fn memory_queue(input: &MemoryQueueInput, extra: Option<&ExtraFields>) {
    use esmd_memory::{MemoryQueue, MemoryQueueOptions};
    let queue = MemoryQueue::new(MemoryQueueOptions { name: input.name.clone(), fifo: input.fifo, ..Default::default() });
    for (body, group) in &input.messages {
        queue.send(Bytes::copy_from_slice(body), group.as_deref());
    }
    let enc = queue.encoder();
    let mut received = 0;
    runtime().block_on(async {
        // FIFO hands out one batch per group at a time: receive until nothing comes.
        for _ in 0..=input.messages.len() {
            let records = queue.receive(10, Duration::ZERO).await.expect("the memory queue receives");
            if records.is_empty() {
                break;
            }
            received += records.len();
            let v = event(&*enc, &queue.queue_id(), &records, extra, true);
            for (r, got) in records.iter().zip(records_array(&v, records.len())) {
                assert_eq!(got["body"], String::from_utf8_lossy(&r.data).as_ref());
                assert_eq!(got["attributes"]["ApproximateReceiveCount"], "1");
            }
            queue.ack(&records).await.expect("ack");
        }
    });
    assert_eq!(received, input.messages.len(), "messages sent but never received");
}

fuzz_target!(|f: Fuzzed| {
    let extra: Option<ExtraFields> = f.extra.as_ref().map(|fields| {
        let mut m = Map::new();
        // The engine's extras (`window`, `state`, `shardId`, ...) never name the records.
        for (k, v) in fields.iter().filter(|(k, _)| k != "Records") {
            m.insert(k.clone(), json_value(v, 1));
        }
        m
    });
    match &f.input {
        Input::Kafka(i) => kafka(i),
        Input::Rabbit(i) => rabbit(i),
        Input::Sqs(i) => sqs(i, extra.as_ref()),
        Input::Kinesis(i) => kinesis(i, extra.as_ref()),
        Input::Dynamo(i) => dynamo(i, extra.as_ref()),
        Input::MemoryLog(i) => memory_log(i, extra.as_ref()),
        Input::MemoryQueue(i) => memory_queue(i, extra.as_ref()),
    }
});
