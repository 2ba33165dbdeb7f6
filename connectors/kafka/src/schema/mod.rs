//! Kafka records written with a schema registry's serializers (AWS's `SchemaRegistryConfig`):
//! the key and value a mapping names in `validate` are decoded with the schema their header
//! names, fetched once per id from the registry, and handed to the function as JSON or as
//! their own bytes ([`config::EventRecordFormat`]). Filters see the decoded JSON.
//!
//! - A schema the registry does not have, or a record its schema cannot read, makes the record
//!   invalid: it goes to the on-failure destination (retrying cannot help) and the partition
//!   goes on.
//! - A registry that cannot answer holds the partition: the record waits, the fetch is tried
//!   again with backoff, nothing is dropped or reordered.

pub mod config;
mod confluent;
pub mod format;
mod glue;
pub mod registry;
pub mod wire;

use config::{Attribute, EventRecordFormat, RegistryUri, SchemaRegistryConfig};
use esmd_api::{Invalid, InvalidReason, SourceCount, SourceCounters};
use format::{DataFormat, MessageSelection, Schema};
use registry::{FetchError, Registry};
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wire::SchemaRef;

/// Glue payloads are deflated by the producer; one never inflates past this (Kafka's own
/// message limit is far below it).
const MAX_INFLATED: u64 = 64 << 20;

/// Which header a mapping's records carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Confluent,
    Glue,
}

/// The schema a field was decoded with, as events name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaMeta {
    /// `None` when the schema could not be had.
    pub format: Option<DataFormat>,
    pub id: String,
}

/// A key or value decoded with its schema.
#[derive(Debug, PartialEq)]
pub struct DecodedField {
    /// `SOURCE`: the bytes after the schema id (for Protobuf still led by the message index, as
    /// AWS hands them on). `None` with `JSON`, where the event carries `json` itself.
    pub source: Option<Vec<u8>>,
    /// The JSON form, for filters.
    pub json: Vec<u8>,
    pub meta: SchemaMeta,
}

impl DecodedField {
    /// What the event carries (base64-encoded).
    pub fn event_bytes(&self) -> &[u8] {
        self.source.as_deref().unwrap_or(&self.json)
    }
}

#[derive(Debug, PartialEq)]
pub enum Outcome {
    Decoded(DecodedField),
    /// The record cannot be read with its schema, or names one the registry does not have.
    /// The schema id, when the header could be read, goes into the failure's event.
    Invalid(Invalid, Option<SchemaMeta>),
    /// The schema is not fetched yet: fetch it ([`SchemaDecoder::fetch`]) and decode again.
    Missing(SchemaRef),
}

enum Cached {
    Ready(Arc<Schema>),
    /// Not in the registry, or not a schema esmd can compile: every record naming it is invalid.
    Unusable(InvalidReason, String),
}

pub struct SchemaDecoder {
    config: SchemaRegistryConfig,
    framing: Framing,
    registry: Arc<dyn Registry>,
    cache: Mutex<HashMap<SchemaRef, Cached>>,
    counters: Arc<dyn SourceCounters>,
    /// Per-record counts, handed to `counters` once per read ([`Self::report`]): a metrics
    /// lookup per record would cost more than the decoding.
    hits: AtomicU64,
    failures: AtomicU64,
}

impl SchemaDecoder {
    pub fn new(config: &SchemaRegistryConfig, counters: Arc<dyn SourceCounters>) -> Result<SchemaDecoder, String> {
        let (framing, registry): (Framing, Arc<dyn Registry>) = match RegistryUri::parse(&config.uri).map_err(|e| format!("source.schema_registry.uri = {e}"))? {
            RegistryUri::Confluent { base } => (Framing::Confluent, Arc::new(confluent::Confluent::new(&base, config.basic_auth.clone(), config.tls.as_ref())?)),
            RegistryUri::Glue { arn, region, .. } => {
                let region = config.region.clone().unwrap_or(region);
                (Framing::Glue, Arc::new(glue::Glue::new(&arn, region, config.endpoint_url.clone())))
            }
        };
        Ok(Self::with_registry(config, framing, registry, counters))
    }

    fn with_registry(config: &SchemaRegistryConfig, framing: Framing, registry: Arc<dyn Registry>, counters: Arc<dyn SourceCounters>) -> SchemaDecoder {
        SchemaDecoder { config: config.clone(), framing, registry, cache: Mutex::new(HashMap::new()), counters, hits: AtomicU64::new(0), failures: AtomicU64::new(0) }
    }

    pub fn decodes(&self, attribute: Attribute) -> bool {
        self.config.decodes(attribute)
    }

    pub fn registry(&self) -> &str {
        self.registry.describe()
    }

    /// Decodes one key or value. Runs once per record: a cached schema costs a map lookup.
    pub fn decode(&self, bytes: &[u8]) -> Outcome {
        let framed = match self.framing {
            Framing::Confluent => wire::confluent(bytes),
            Framing::Glue => wire::glue(bytes),
        };
        let framed = match framed {
            Ok(f) => f,
            Err(e) => return self.invalid(InvalidReason::DeserializationError, e.to_string(), None),
        };
        let schema = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(&framed.schema) {
                None => return Outcome::Missing(framed.schema),
                Some(Cached::Unusable(reason, why)) => {
                    let (reason, why) = (*reason, format!("schema {}: {why}", framed.schema));
                    drop(cache);
                    // The format is the schema's, which is unknown: only the id is named.
                    return self.invalid(reason, why, Some(SchemaMeta { format: None, id: framed.schema.to_string() }));
                }
                Some(Cached::Ready(s)) => s.clone(),
            }
        };
        let meta = SchemaMeta { format: Some(schema.format), id: framed.schema.to_string() };
        let inflated;
        let body = if framed.compressed {
            let mut out = Vec::new();
            if let Err(e) = flate2::read::ZlibDecoder::new(framed.body).take(MAX_INFLATED).read_to_end(&mut out) {
                return self.invalid(InvalidReason::DeserializationError, format!("schema {}: the compressed record does not inflate: {e}", framed.schema), Some(meta));
            }
            inflated = out;
            &inflated[..]
        } else {
            framed.body
        };
        let selection = match self.framing {
            Framing::Confluent => MessageSelection::Indexes,
            Framing::Glue => MessageSelection::GlueIndex,
        };
        match schema.decode(body, selection) {
            Ok(json) => {
                let source = match self.config.event_record_format {
                    EventRecordFormat::Json => None,
                    EventRecordFormat::Source => Some(body.to_vec()),
                };
                Outcome::Decoded(DecodedField { source, json, meta })
            }
            Err(e) => self.invalid(InvalidReason::DeserializationError, format!("schema {} ({}): {e}", framed.schema, schema.format), Some(meta)),
        }
    }

    /// Hands what [`Self::decode`] counted to the mapping's metrics.
    pub fn report(&self) {
        for (count, what) in [(&self.hits, SourceCount::SchemaCacheHits), (&self.failures, SourceCount::SchemaDecodeFailures)] {
            let n = count.swap(0, Ordering::Relaxed);
            if n > 0 {
                self.counters.add(what, n);
            }
        }
    }

    fn invalid(&self, reason: InvalidReason, message: String, meta: Option<SchemaMeta>) -> Outcome {
        Outcome::Invalid(Invalid { reason, message }, meta)
    }

    /// Counts a record's outcomes once it is converted (a record that waited for a schema is
    /// decoded again, and counted then).
    pub fn count(&self, outcomes: &[&Option<Outcome>]) {
        for o in outcomes.iter().filter_map(|o| o.as_ref()) {
            match o {
                Outcome::Decoded(_) => self.hits.fetch_add(1, Ordering::Relaxed),
                Outcome::Invalid(..) => self.failures.fetch_add(1, Ordering::Relaxed),
                Outcome::Missing(_) => 0,
            };
        }
    }

    /// Fetches and compiles a schema into the cache. `Err` means the registry could not
    /// answer: the caller waits and tries again. A schema the registry does not have is cached
    /// as unusable (`Ok`): its records are invalid.
    pub async fn fetch(&self, schema: &SchemaRef) -> Result<(), String> {
        self.counters.add(SourceCount::SchemaFetches, 1);
        let cached = match self.registry.fetch(schema).await {
            Ok(f) => match Schema::compile(f.format, &f.definition) {
                Ok(s) => {
                    tracing::info!(registry = self.registry.describe(), schema = %schema, format = %f.format, "schema fetched");
                    Cached::Ready(s)
                }
                Err(e) => Cached::Unusable(InvalidReason::DeserializationError, e.to_string()),
            },
            Err(FetchError::NotFound(why)) => Cached::Unusable(InvalidReason::SchemaNotFound, format!("not in the registry: {why}")),
            Err(FetchError::Unavailable(why)) => {
                self.counters.add(SourceCount::SchemaFetchErrors, 1);
                return Err(format!("schema {schema} from {}: {why}", self.registry.describe()));
            }
        };
        if let Cached::Unusable(_, why) = &cached {
            tracing::warn!(registry = self.registry.describe(), schema = %schema, reason = %why, "schema unusable: records naming it go to the on-failure destination");
        }
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(schema.clone(), cached);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::format::Definition;
    use super::registry::Fetched;
    use super::*;
    use async_trait::async_trait;

    #[derive(Debug, Default)]
    struct Counts([AtomicU64; 4]);
    impl SourceCounters for Counts {
        fn add(&self, what: SourceCount, n: u64) {
            let i = match what {
                SourceCount::SchemaFetches => 0,
                SourceCount::SchemaFetchErrors => 1,
                SourceCount::SchemaCacheHits => 2,
                SourceCount::SchemaDecodeFailures => 3,
            };
            self.0[i].fetch_add(n, Ordering::Relaxed);
        }
    }
    impl Counts {
        fn get(&self) -> [u64; 4] {
            [0, 1, 2, 3].map(|i| self.0[i].load(Ordering::Relaxed))
        }
    }

    /// A registry table in memory: the decoder's own logic, not a registry's (the tests in
    /// tests/kafka_schema_registry.rs use real registries).
    struct Table {
        down: std::sync::atomic::AtomicBool,
    }
    #[async_trait]
    impl Registry for Table {
        async fn fetch(&self, schema: &SchemaRef) -> Result<Fetched, FetchError> {
            if self.down.load(Ordering::Relaxed) {
                return Err(FetchError::Unavailable("connection refused".into()));
            }
            match schema {
                SchemaRef::Confluent(1) => Ok(Fetched { format: DataFormat::Json, definition: Definition { text: r#"{"type":"object","required":["n"]}"#.into(), imports: Default::default() } }),
                SchemaRef::Confluent(2) => Ok(Fetched { format: DataFormat::Avro, definition: Definition { text: "{not avro".into(), imports: Default::default() } }),
                _ => Err(FetchError::NotFound("40403 Schema not found".into())),
            }
        }
        fn describe(&self) -> &str {
            "memory"
        }
    }

    fn decoder(format: &str) -> (SchemaDecoder, Arc<Counts>, Arc<Table>) {
        let config: SchemaRegistryConfig = serde_json::from_value(serde_json::json!({"uri": "http://127.0.0.1:1", "validate": ["VALUE"], "event_record_format": format})).unwrap();
        let counts = Arc::new(Counts::default());
        let table = Arc::new(Table { down: Default::default() });
        (SchemaDecoder::with_registry(&config, Framing::Confluent, table.clone(), counts.clone()), counts, table)
    }

    #[tokio::test]
    async fn a_schema_is_fetched_once_then_served_from_the_cache() {
        let (d, counts, table) = decoder("JSON");
        let record = b"\0\0\0\0\x01{\"n\":1}";
        assert_eq!(d.decode(record), Outcome::Missing(SchemaRef::Confluent(1)));
        table.down.store(true, Ordering::Relaxed);
        assert!(d.fetch(&SchemaRef::Confluent(1)).await.unwrap_err().contains("connection refused"));
        assert_eq!(d.decode(record), Outcome::Missing(SchemaRef::Confluent(1)), "an outage caches nothing");
        table.down.store(false, Ordering::Relaxed);
        d.fetch(&SchemaRef::Confluent(1)).await.unwrap();
        for _ in 0..3 {
            let decoded = Some(d.decode(record));
            d.count(&[&decoded, &None]);
            let Some(Outcome::Decoded(f)) = decoded else { panic!("decoded") };
            assert_eq!((f.event_bytes(), f.json.as_slice()), (&b"{\"n\":1}"[..], &b"{\"n\":1}"[..]));
            assert_eq!(f.meta, SchemaMeta { format: Some(DataFormat::Json), id: "1".into() });
        }
        assert_eq!(counts.get(), [2, 1, 0, 0], "per-record counts wait for the read's report");
        d.report();
        assert_eq!(counts.get(), [2, 1, 3, 0]);
    }

    #[tokio::test]
    async fn unknown_schemas_bad_schemas_and_bad_records_are_invalid() {
        let (d, counts, _) = decoder("SOURCE");
        d.fetch(&SchemaRef::Confluent(1)).await.unwrap();
        d.fetch(&SchemaRef::Confluent(2)).await.unwrap();
        d.fetch(&SchemaRef::Confluent(9)).await.unwrap();
        let why = |o: Outcome| {
            let o = Some(o);
            d.count(&[&o]);
            match o {
                Some(Outcome::Invalid(i, meta)) => (i.reason, i.message, meta.map(|m| (m.format, m.id))),
                other => panic!("{other:?}"),
            }
        };
        use InvalidReason::*;
        assert_eq!(why(d.decode(b"\0\0\0\0\x09{}")), (SchemaNotFound, "schema 9: not in the registry: 40403 Schema not found".into(), Some((None, "9".into()))));
        let (reason, message, meta) = why(d.decode(b"\0\0\0\0\x02{}"));
        assert!(message.starts_with("schema 2: the Avro schema does not parse"), "{message}");
        assert_eq!((reason, meta), (DeserializationError, Some((None, "2".into()))));
        let (reason, message, meta) = why(d.decode(b"\0\0\0\0\x01{}"));
        assert!(message.starts_with("schema 1 (JSON): does not match the JSON schema"), "{message}");
        assert_eq!((reason, meta), (DeserializationError, Some((Some(DataFormat::Json), "1".into()))));
        assert_eq!(
            why(d.decode(b"{\"n\":1}")),
            (DeserializationError, "the record does not start with a Confluent schema header (magic byte 0; it starts with 0x7b)".into(), None)
        );
        d.report();
        assert_eq!(counts.get()[3], 4);
        // SOURCE: the bytes after the schema id.
        let Outcome::Decoded(f) = d.decode(b"\0\0\0\0\x01{\"n\": 2}") else { panic!("decoded") };
        assert_eq!((f.event_bytes(), f.json.as_slice()), (&b"{\"n\": 2}"[..], &b"{\"n\": 2}"[..]));
    }
}
