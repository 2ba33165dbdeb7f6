//! A registered schema, compiled once, and what decoding a record with it gives: the record as
//! JSON (for the function when `event_record_format = "JSON"`, and for filters) and its bytes
//! without any schema framing (for `"SOURCE"`).
//!
//! JSON shapes: Avro as apache-avro writes a value as JSON (unions unwrapped, enums as their
//! symbol, `bytes` and `fixed` as arrays of byte values, like Kafka headers in AWS's events);
//! Protobuf in the canonical proto3 JSON mapping (lowerCamelCase names, 64-bit integers as
//! strings, `bytes` as base64, fields at their default left out); JSON Schema records as they are.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// AWS's `dataFormat` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataFormat {
    Avro,
    Protobuf,
    Json,
}

impl DataFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::Avro => "AVRO",
            DataFormat::Protobuf => "PROTOBUF",
            DataFormat::Json => "JSON",
        }
    }

    /// Confluent's `schemaType` (absent means Avro) and Glue's `DataFormat`.
    pub fn parse(name: Option<&str>) -> Result<DataFormat, SchemaError> {
        match name.map(str::to_ascii_uppercase).as_deref() {
            None | Some("AVRO") => Ok(DataFormat::Avro),
            Some("PROTOBUF") => Ok(DataFormat::Protobuf),
            Some("JSON") => Ok(DataFormat::Json),
            Some(other) => Err(SchemaError(format!("unsupported schema type {other:?} (AVRO, PROTOBUF or JSON)"))),
        }
    }
}

impl fmt::Display for DataFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A schema the registry handed back that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

/// A record its schema cannot read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// How a Protobuf record says which message type of the schema's file wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageSelection {
    /// Confluent: the index path ([`super::wire::message_indexes`]).
    Indexes,
    /// Glue: one unsigned varint, the type's place among all the file's message types (nested
    /// ones too) sorted by full name.
    GlueIndex,
}

/// The schema as registered: its definition and, for Protobuf, the files it imports by name.
#[derive(Clone, Debug, Default)]
pub struct Definition {
    pub text: String,
    /// Imported `.proto` files (Confluent references), by import name.
    pub imports: BTreeMap<String, String>,
}

/// A compiled schema.
pub struct Schema {
    pub format: DataFormat,
    kind: Kind,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schema({})", self.format)
    }
}

enum Kind {
    /// The schema and the named types its references define.
    Avro(apache_avro::Schema, Vec<apache_avro::Schema>),
    Protobuf(prost_reflect::FileDescriptor),
    Json(Box<jsonschema::Validator>),
}


/// The name the root file of a Protobuf schema is compiled as (imports are named by the schema).
const ROOT_PROTO: &str = "__esmd_schema__.proto";

impl Schema {
    pub fn compile(format: DataFormat, definition: &Definition) -> Result<Arc<Schema>, SchemaError> {
        let kind = match format {
            DataFormat::Avro => {
                let bad = |e: apache_avro::Error| SchemaError(format!("the Avro schema does not parse: {e}"));
                if definition.imports.is_empty() {
                    Kind::Avro(apache_avro::Schema::parse_str(&definition.text).map_err(bad)?, Vec::new())
                } else {
                    let (schema, named) = apache_avro::Schema::parse_str_with_list(&definition.text, definition.imports.values()).map_err(bad)?;
                    Kind::Avro(schema, named)
                }
            }
            DataFormat::Protobuf => Kind::Protobuf(compile_proto(definition)?),
            DataFormat::Json => {
                let schema: serde_json::Value = serde_json::from_str(&definition.text).map_err(|e| SchemaError(format!("the JSON schema is not JSON: {e}")))?;
                Kind::Json(Box::new(jsonschema::validator_for(&schema).map_err(|e| SchemaError(format!("the JSON schema is not valid: {e}")))?))
            }
        };
        Ok(Arc::new(Schema { format, kind }))
    }

    /// Decodes (and validates) `body`, a record's bytes after the schema id, to JSON text.
    pub fn decode(&self, body: &[u8], selection: MessageSelection) -> Result<Vec<u8>, DecodeError> {
        match &self.kind {
            Kind::Avro(schema, named) => {
                let mut reader = body;
                let builder = apache_avro::reader::datum::GenericDatumReader::builder(schema);
                let datum_reader = if named.is_empty() {
                    builder.build()
                } else {
                    builder.writer_schemata(named.iter().chain([schema]).collect()).and_then(|b| b.build())
                };
                let value = datum_reader
                    .and_then(|r| r.read_value(&mut reader))
                    .map_err(|e| DecodeError(format!("not an Avro record of this schema: {e}")))?;
                if !reader.is_empty() {
                    return Err(DecodeError(format!("{} bytes left after the Avro record", reader.len())));
                }
                let json = serde_json::Value::try_from(value).map_err(|e| DecodeError(format!("the Avro record has no JSON form: {e}")))?;
                serde_json::to_vec(&json).map_err(|e| DecodeError(e.to_string()))
            }
            Kind::Protobuf(file) => {
                let (message, bytes) = match selection {
                    MessageSelection::Indexes => {
                        let (path, rest) = super::wire::message_indexes(body).map_err(|e| DecodeError(e.to_string()))?;
                        (message_at(file, &path)?, rest)
                    }
                    MessageSelection::GlueIndex => {
                        let (index, rest) = super::wire::uvarint(body).map_err(|e| DecodeError(e.to_string()))?;
                        (glue_message(file, index)?, rest)
                    }
                };
                let name = message.full_name().to_string();
                let decoded = prost_reflect::DynamicMessage::decode(message, bytes).map_err(|e| DecodeError(format!("not a Protobuf {name}: {e}")))?;
                // Field names as the schema spells them (AWS's JSON), not lowerCamelCase.
                let options = prost_reflect::SerializeOptions::new().use_proto_field_name(true);
                let mut json = Vec::new();
                decoded
                    .serialize_with_options(&mut serde_json::Serializer::new(&mut json), &options)
                    .map_err(|e| DecodeError(format!("the Protobuf {name} has no JSON form: {e}")))?;
                Ok(json)
            }
            Kind::Json(validator) => {
                let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| DecodeError(format!("not JSON: {e}")))?;
                if let Some(e) = validator.iter_errors(&value).next() {
                    let at = e.instance_path().to_string();
                    return Err(DecodeError(format!("does not match the JSON schema at {:?}: {e}", if at.is_empty() { "/" } else { &at })));
                }
                Ok(body.to_vec())
            }
        }
    }
}

/// The message type at a Confluent index path: top-level type `path[0]`, then nested types.
fn message_at(file: &prost_reflect::FileDescriptor, path: &[usize]) -> Result<prost_reflect::MessageDescriptor, DecodeError> {
    let missing = || DecodeError(format!("the Protobuf schema has no message type at index path {path:?}"));
    let (first, rest) = path.split_first().ok_or_else(missing)?;
    let mut message = file.messages().nth(*first).ok_or_else(missing)?;
    for i in rest {
        let child = message.child_messages().nth(*i);
        message = child.ok_or_else(missing)?;
    }
    Ok(message)
}

/// Glue's message index: the file's message types, nested ones included, sorted by full name.
fn glue_message(file: &prost_reflect::FileDescriptor, index: u64) -> Result<prost_reflect::MessageDescriptor, DecodeError> {
    let mut all = Vec::new();
    let mut pending: Vec<prost_reflect::MessageDescriptor> = file.messages().collect();
    while let Some(m) = pending.pop() {
        pending.extend(m.child_messages());
        all.push(m);
    }
    all.sort_by(|a, b| a.full_name().cmp(b.full_name()));
    usize::try_from(index).ok().and_then(|i| all.get(i).cloned()).ok_or_else(|| DecodeError(format!("the Protobuf schema has no message type at Glue index {index}")))
}

/// A `.proto` schema and its imports, from memory; well-known types (`google/protobuf/*.proto`)
/// are built in.
fn compile_proto(definition: &Definition) -> Result<prost_reflect::FileDescriptor, SchemaError> {
    struct Memory(BTreeMap<String, String>);
    impl protox::file::FileResolver for Memory {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            match self.0.get(name) {
                Some(source) => protox::file::File::from_source(name, source),
                None => Err(protox::Error::file_not_found(name)),
            }
        }
    }
    let mut files = definition.imports.clone();
    files.insert(ROOT_PROTO.to_string(), definition.text.clone());
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(Memory(files));
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.open_file(ROOT_PROTO).map_err(|e| SchemaError(format!("the Protobuf schema does not compile: {e}")))?;
    compiler.descriptor_pool().get_file_by_name(ROOT_PROTO).ok_or_else(|| SchemaError("the Protobuf schema compiled to nothing".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn def(text: &str) -> Definition {
        Definition { text: text.into(), imports: BTreeMap::new() }
    }

    fn json_of(d: &[u8]) -> Value {
        serde_json::from_slice(d).unwrap()
    }

    const AVRO: &str = r#"{"type":"record","name":"Order","fields":[
        {"name":"id","type":"long"},{"name":"item","type":"string"},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"state","type":{"type":"enum","name":"State","symbols":["NEW","PAID"]}},
        {"name":"raw","type":"bytes"}]}"#;

    #[test]
    fn avro_records_become_plain_json() {
        let schema = Schema::compile(DataFormat::Avro, &def(AVRO)).unwrap();
        // id 7 (zigzag 14), "ab", union branch 1 "x", enum 1, bytes [1, 2].
        let body = [14, 4, b'a', b'b', 2, 2, b'x', 2, 4, 1, 2];
        let d = schema.decode(&body, MessageSelection::Indexes).unwrap();
        assert_eq!(json_of(&d), json!({"id": 7, "item": "ab", "note": "x", "state": "PAID", "raw": [1, 2]}));
        assert!(schema.decode(&body[..3], MessageSelection::Indexes).is_err(), "a cut record");
        let mut long = body.to_vec();
        long.push(0);
        assert_eq!(schema.decode(&long, MessageSelection::Indexes).unwrap_err().0, "1 bytes left after the Avro record");
        assert!(Schema::compile(DataFormat::Avro, &def("{\"type\":\"nope\"}")).is_err());
    }

    const PROTO: &str = r#"syntax = "proto3";
        package shop;
        import "google/protobuf/timestamp.proto";
        message Other { string x = 1; }
        message Order {
          int64 id = 1; string item = 2; google.protobuf.Timestamp at = 3;
          message Line { int32 line_qty = 1; }
          repeated Line lines = 4;
        }"#;

    #[test]
    fn protobuf_records_follow_the_index_path_and_the_proto3_json_mapping() {
        let schema = Schema::compile(DataFormat::Protobuf, &def(PROTO)).unwrap();
        // Order is the second top-level message: indexes [1] = 2, 2; then id 5, item "ab", lines [{qty 3}].
        let body = [2, 2, 0x08, 5, 0x12, 2, b'a', b'b', 0x22, 2, 0x08, 3];
        let d = schema.decode(&body, MessageSelection::Indexes).unwrap();
        assert_eq!(json_of(&d), json!({"id": "5", "item": "ab", "lines": [{"line_qty": 3}]}));
        // [1, 0] is Order.Line.
        let line = schema.decode(&[4, 2, 0, 0x08, 9], MessageSelection::Indexes).unwrap();
        assert_eq!(json_of(&line), json!({"line_qty": 9}));
        assert!(schema.decode(&[2, 8, 0x08, 5], MessageSelection::Indexes).unwrap_err().0.contains("no message type at index path [4]"));
        assert!(schema.decode(&[0, 0x0a, 9, b'y'], MessageSelection::Indexes).unwrap_err().0.starts_with("not a Protobuf shop.Other"));
        // Glue: by full name, shop.Order (0), shop.Order.Line (1), shop.Other (2).
        assert_eq!(json_of(&schema.decode(&[2, 0x0a, 1, b'y'], MessageSelection::GlueIndex).unwrap()), json!({"x": "y"}));
        assert_eq!(json_of(&schema.decode(&[1, 0x08, 4], MessageSelection::GlueIndex).unwrap()), json!({"line_qty": 4}));
        assert!(schema.decode(&[3], MessageSelection::GlueIndex).unwrap_err().0.contains("no message type at Glue index 3"));
    }

    #[test]
    fn avro_references_define_named_types() {
        let mut d = def(r#"{"type":"record","name":"Order","fields":[{"name":"who","type":"shop.Customer"}]}"#);
        assert!(Schema::compile(DataFormat::Avro, &d).is_err());
        d.imports.insert("shop.Customer".into(), r#"{"type":"record","name":"Customer","namespace":"shop","fields":[{"name":"name","type":"string"}]}"#.into());
        let schema = Schema::compile(DataFormat::Avro, &d).unwrap();
        assert_eq!(json_of(&schema.decode(&[2, b'z'], MessageSelection::Indexes).unwrap()), json!({"who": {"name": "z"}}));
    }

    #[test]
    fn protobuf_imports_come_from_the_schema_references() {
        let mut d = def("syntax = \"proto3\"; import \"common.proto\"; message A { common.Id id = 1; }");
        assert!(Schema::compile(DataFormat::Protobuf, &d).unwrap_err().0.contains("common.proto"));
        d.imports.insert("common.proto".into(), "syntax = \"proto3\"; package common; message Id { string v = 1; }".into());
        let schema = Schema::compile(DataFormat::Protobuf, &d).unwrap();
        assert_eq!(json_of(&schema.decode(&[0, 0x0a, 3, 0x0a, 1, b'k'], MessageSelection::Indexes).unwrap()), json!({"id": {"v": "k"}}));
    }

    #[test]
    fn json_schema_records_are_validated() {
        let schema = Schema::compile(DataFormat::Json, &def(r#"{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}"#)).unwrap();
        let d = schema.decode(br#"{"n":1}"#, MessageSelection::Indexes).unwrap();
        assert_eq!(d, br#"{"n":1}"#);
        let e = schema.decode(br#"{"n":"one"}"#, MessageSelection::Indexes).unwrap_err();
        assert!(e.0.starts_with("does not match the JSON schema at \"/n\""), "{e}");
        assert!(schema.decode(b"{", MessageSelection::Indexes).unwrap_err().0.starts_with("not JSON"));
        assert!(Schema::compile(DataFormat::Json, &def(r#"{"type":"nope"}"#)).is_err());
    }

    #[test]
    fn formats_are_named_as_aws_and_confluent_name_them() {
        assert_eq!(DataFormat::parse(None).unwrap(), DataFormat::Avro);
        assert_eq!(DataFormat::parse(Some("PROTOBUF")).unwrap(), DataFormat::Protobuf);
        assert_eq!(DataFormat::parse(Some("json")).unwrap().as_str(), "JSON");
        assert!(DataFormat::parse(Some("XML")).is_err());
    }
}
