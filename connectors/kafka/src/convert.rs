//! A Kafka message as a [`Record`]: its event fragment encoded once, the key and value decoded
//! through the schema registry when the mapping has one.

use crate::encode::{KafkaEncoding, Part, RawMessage, SchemaParts};
use crate::schema::config::Attribute;
use crate::schema::wire::SchemaRef;
use crate::schema::{Outcome, SchemaDecoder};
use esmd_api::Record;
use rdkafka::message::{Headers, Message};
use rdkafka::Timestamp;
use std::sync::Arc;

pub(crate) struct Converter {
    pub encoding: Arc<KafkaEncoding>,
    /// Set with `schema_registry`: decodes keys and values.
    pub schema: Option<Arc<SchemaDecoder>>,
}

impl Converter {
    /// The message as a record, or the schema it names that is not fetched yet. `partition` is
    /// the partition's name (`topic-N`), shared by every record's item id.
    pub fn convert<M: Message>(&self, m: &M, partition: &Arc<str>) -> Result<Record, SchemaRef> {
        let timestamp = match m.timestamp() {
            Timestamp::CreateTime(t) => Some((t, "CREATE_TIME")),
            Timestamp::LogAppendTime(t) => Some((t, "LOG_APPEND_TIME")),
            Timestamp::NotAvailable => None,
        };
        let headers = m.headers().map(|h| h.iter().map(|h| (h.key, h.value)).collect()).unwrap_or_default();
        let message = RawMessage { topic: m.topic(), partition: m.partition(), offset: m.offset(), timestamp, key: m.key(), value: m.payload(), headers };
        let Some(decoder) = &self.schema else {
            return Ok(self.encoding.record_in(&message, partition));
        };
        // A null key or value (a tombstone) has nothing to validate and passes as it is.
        let decode = |attribute, bytes: Option<&[u8]>| bytes.filter(|_| decoder.decodes(attribute)).map(|b| decoder.decode(b));
        let (key, value) = (decode(Attribute::Key, message.key), decode(Attribute::Value, message.value));
        for outcome in [&key, &value].into_iter().flatten() {
            if let Outcome::Missing(schema) = outcome {
                return Err(schema.clone());
            }
        }
        decoder.count(&[&key, &value]);
        let parts = SchemaParts { key: part(&key), value: part(&value) };
        let mut record = self.encoding.record_with(&message, partition, &parts);
        // The key's reason first: it is the first thing AWS validates.
        record.invalid = [&key, &value].into_iter().find_map(|o| match o {
            Some(Outcome::Invalid(why, _)) => Some(Arc::new(why.clone())),
            _ => None,
        });
        Ok(record)
    }
}

/// What the event carries of one decoded (or undecodable) key or value.
fn part(outcome: &Option<Outcome>) -> Part<'_> {
    match outcome {
        Some(Outcome::Decoded(d)) => Part { replaced: Some(d.event_bytes()), json: Some(&d.json), meta: Some(&d.meta) },
        // As read, with the schema id where the header named one.
        Some(Outcome::Invalid(_, meta)) => Part { replaced: None, json: None, meta: meta.as_ref() },
        Some(Outcome::Missing(_)) | None => Part::default(),
    }
}
