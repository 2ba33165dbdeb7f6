//! An SQS message as an esmd [`Record`] whose fragment is the record AWS puts in the event.

use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName as Attr};
use base64::Engine as _;
use bytes::Bytes;
use esmd_api::{ItemId, Position, Record};
use esmd_api::json::quoted as json_string;
use esmd_api::sqs::{Delivery, SqsEncoding};
use serde_json::{Map, Value};

/// `None` when SQS left out a field every received message has (id, receipt handle).
pub fn record_from_message(encoding: &SqsEncoding, m: &Message) -> Option<Record> {
    let message_id = m.message_id()?;
    let receipt_handle = m.receipt_handle()?;
    let body = m.body().unwrap_or_default();
    let attrs = m.attributes();
    let attr = |name: Attr| attrs.and_then(|a| a.get(&name)).map(String::as_str);
    let number = |name: Attr| attr(name).and_then(|v| v.parse::<i64>().ok());
    let receive_count = number(Attr::ApproximateReceiveCount).unwrap_or(1).clamp(1, i64::from(u32::MAX)) as u32;
    let sent_ms = number(Attr::SentTimestamp).unwrap_or(0);
    let first_receive_ms = number(Attr::ApproximateFirstReceiveTimestamp).unwrap_or(sent_ms);
    let group = attr(Attr::MessageGroupId);
    let fifo = if encoding.is_fifo() {
        Some((attr(Attr::SequenceNumber).unwrap_or_default(), group.unwrap_or_default(), attr(Attr::MessageDeduplicationId).unwrap_or_default()))
    } else {
        None
    };
    let attributes_json = m.message_attributes().filter(|a| !a.is_empty()).map(message_attributes_json);
    let quoted_body = json_string(body);
    let delivery = Delivery {
        message_id,
        receipt_handle,
        quoted_body: &quoted_body,
        md5_of_body: m.md5_of_body().unwrap_or_default(),
        receive_count,
        sent_ms,
        first_receive_ms,
        fifo,
        sender_id: attr(Attr::SenderId),
        message_attributes: attributes_json.as_deref().map(|a| (a, m.md5_of_message_attributes().unwrap_or_default())),
    };
    Some(Record {
        position: Position::new(receipt_handle),
        partition_key: group.map(|g| Bytes::copy_from_slice(g.as_bytes())).unwrap_or_default(),
        arrival_ms: sent_ms,
        data: Bytes::copy_from_slice(body.as_bytes()),
        encoded: encoding.fragment(&delivery),
        item_id: ItemId::Str(message_id.into()),
        receive_count: receive_count - 1,
        invalid: None,
    })
}

/// `messageAttributes` as Lambda writes them: lower-case keys, both list keys always present,
/// binary values base64. Sorted by name: SQS returns them unordered.
fn message_attributes_json(attributes: &std::collections::HashMap<String, MessageAttributeValue>) -> String {
    let b64 = |b: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(b));
    let mut names: Vec<&String> = attributes.keys().collect();
    names.sort();
    let mut out = Map::new();
    for name in names {
        let a = &attributes[name];
        let mut v = Map::new();
        if let Some(s) = a.string_value() {
            v.insert("stringValue".into(), Value::from(s));
        }
        if let Some(b) = a.binary_value() {
            v.insert("binaryValue".into(), b64(b.as_ref()));
        }
        v.insert("stringListValues".into(), Value::from(a.string_list_values().to_vec()));
        v.insert("binaryListValues".into(), Value::Array(a.binary_list_values().iter().map(|b| b64(b.as_ref())).collect()));
        v.insert("dataType".into(), Value::from(a.data_type()));
        out.insert(name.clone(), Value::Object(v));
    }
    Value::Object(out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::primitives::Blob;

    fn message(fifo: bool) -> Message {
        builder(fifo).build()
    }

    fn builder(fifo: bool) -> aws_sdk_sqs::types::builders::MessageBuilder {
        let mut b = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body("{\"a\":1}")
            .md5_of_body("md5b")
            .attributes(Attr::ApproximateReceiveCount, "3")
            .attributes(Attr::SentTimestamp, "1000")
            .attributes(Attr::SenderId, "AIDA")
            .attributes(Attr::ApproximateFirstReceiveTimestamp, "1500");
        if fifo {
            b = b
                .attributes(Attr::SequenceNumber, "18")
                .attributes(Attr::MessageGroupId, "g1")
                .attributes(Attr::MessageDeduplicationId, "d1");
        }
        b
    }

    #[test]
    fn standard_record() {
        let enc = SqsEncoding::new("us-east-1", "123456789012", "q", false);
        let r = record_from_message(&enc, &message(false)).unwrap();
        assert_eq!((r.receive_count, r.arrival_ms, r.partition_key.is_empty()), (2, 1000, true));
        assert_eq!(r.position.as_str(), "rh-1");
        let v: Value = serde_json::from_slice(&r.encoded).unwrap();
        assert_eq!(v["body"], "{\"a\":1}");
        assert_eq!(v["attributes"]["SenderId"], "AIDA");
        assert_eq!(v["attributes"]["ApproximateReceiveCount"], "3");
        assert_eq!(v["messageAttributes"], serde_json::json!({}));
        assert_eq!(v["md5OfMessageAttributes"], Value::Null);
        assert_eq!(v["eventSourceARN"], "arn:aws:sqs:us-east-1:123456789012:q");
    }

    #[test]
    fn fifo_record_keys_its_group() {
        let enc = SqsEncoding::new("us-east-1", "123456789012", "q.fifo", true);
        let r = record_from_message(&enc, &message(true)).unwrap();
        assert_eq!(&r.partition_key[..], b"g1");
        let v: Value = serde_json::from_slice(&r.encoded).unwrap();
        assert_eq!((v["attributes"]["SequenceNumber"].as_str(), v["attributes"]["MessageGroupId"].as_str()), (Some("18"), Some("g1")));
        assert_eq!(v["attributes"]["MessageDeduplicationId"], "d1");
    }

    #[test]
    fn message_attributes_in_lambdas_shape() {
        let enc = SqsEncoding::new("us-east-1", "123456789012", "q", false);
        let m = builder(false)
            .message_attributes("WeeksOn", MessageAttributeValue::builder().data_type("Number").string_value("6").build().unwrap())
            .message_attributes("Pic", MessageAttributeValue::builder().data_type("Binary").binary_value(Blob::new(b"hi".to_vec())).build().unwrap())
            .md5_of_message_attributes("md5a")
            .build();
        let v: Value = serde_json::from_slice(&record_from_message(&enc, &m).unwrap().encoded).unwrap();
        assert_eq!(
            v["messageAttributes"],
            serde_json::json!({
                "Pic": {"binaryValue": "aGk=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
                "WeeksOn": {"stringValue": "6", "stringListValues": [], "binaryListValues": [], "dataType": "Number"}
            })
        );
        assert_eq!(v["md5OfMessageAttributes"], "md5a");
        let keys: Vec<&String> = v["messageAttributes"]["WeeksOn"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["stringValue", "stringListValues", "binaryListValues", "dataType"]);
    }

    #[test]
    fn missing_ids_yield_nothing() {
        let enc = SqsEncoding::new("us-east-1", "1", "q", false);
        assert!(record_from_message(&enc, &Message::builder().body("x").build()).is_none());
    }
}
