//! The headers serializers put before a record's bytes to say which schema wrote them.
//!
//! - Confluent: magic byte `0`, the schema id as a 4-byte big-endian integer, then (Protobuf
//!   only) the path of the message type within the schema's file: a zigzag varint count and
//!   that many zigzag varint indexes, with a single `0` byte standing for `[0]`, the first
//!   top-level message.
//! - AWS Glue: header version `3`, a compression byte (`0` none, `5` zlib), the schema
//!   version's UUID in 16 bytes; the rest is the payload, deflated when compressed.

use std::fmt;

/// Which registered schema a record names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SchemaRef {
    /// A Confluent schema id.
    Confluent(u32),
    /// A Glue schema version id.
    Glue(uuid::Uuid),
}

impl fmt::Display for SchemaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaRef::Confluent(id) => write!(f, "{id}"),
            SchemaRef::Glue(id) => write!(f, "{id}"),
        }
    }
}

/// A record's bytes split at the end of its header.
#[derive(Debug, PartialEq, Eq)]
pub struct Framed<'a> {
    pub schema: SchemaRef,
    /// Glue only: the payload is zlib-deflated.
    pub compressed: bool,
    /// What follows the schema reference: for Confluent Protobuf the message indexes still
    /// lead it (see [`message_indexes`]), since only the schema's type tells whether they are there.
    pub body: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the record is {0} bytes, shorter than a schema registry header")]
    TooShort(usize),
    #[error("the record does not start with a Confluent schema header (magic byte 0; it starts with {0:#04x})")]
    NotConfluent(u8),
    #[error("the record does not start with a Glue schema header (version byte 3; it starts with {0:#04x})")]
    NotGlue(u8),
    #[error("unknown Glue compression byte {0}")]
    GlueCompression(u8),
    #[error("the Protobuf message indexes are malformed")]
    MessageIndexes,
}

pub const CONFLUENT_MAGIC: u8 = 0;
pub const GLUE_VERSION: u8 = 3;
const GLUE_NONE: u8 = 0;
const GLUE_ZLIB: u8 = 5;

pub fn confluent(bytes: &[u8]) -> Result<Framed<'_>, WireError> {
    let (head, body) = bytes.split_first_chunk::<5>().ok_or(WireError::TooShort(bytes.len()))?;
    if head[0] != CONFLUENT_MAGIC {
        return Err(WireError::NotConfluent(head[0]));
    }
    let id = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    Ok(Framed { schema: SchemaRef::Confluent(id), compressed: false, body })
}

pub fn glue(bytes: &[u8]) -> Result<Framed<'_>, WireError> {
    let (head, body) = bytes.split_first_chunk::<18>().ok_or(WireError::TooShort(bytes.len()))?;
    if head[0] != GLUE_VERSION {
        return Err(WireError::NotGlue(head[0]));
    }
    let compressed = match head[1] {
        GLUE_NONE => false,
        GLUE_ZLIB => true,
        other => return Err(WireError::GlueCompression(other)),
    };
    let mut id = [0u8; 16];
    id.copy_from_slice(&head[2..18]);
    Ok(Framed { schema: SchemaRef::Glue(uuid::Uuid::from_bytes(id)), compressed, body })
}

/// Confluent Protobuf: the message type's index path and the message's bytes after it.
pub fn message_indexes(body: &[u8]) -> Result<(Vec<usize>, &[u8]), WireError> {
    let mut rest = body;
    let count = zigzag(&mut rest)?;
    if count == 0 {
        return Ok((vec![0], rest));
    }
    // Each index takes at least a byte: a count past what is left is garbage, not an allocation.
    if count < 0 || count as usize > rest.len() {
        return Err(WireError::MessageIndexes);
    }
    let mut path = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let i = zigzag(&mut rest)?;
        path.push(usize::try_from(i).map_err(|_| WireError::MessageIndexes)?);
    }
    Ok((path, rest))
}

/// Glue Protobuf: the message index (an unsigned varint) and the message's bytes after it.
pub fn uvarint(body: &[u8]) -> Result<(u64, &[u8]), WireError> {
    let mut rest = body;
    let v = varint(&mut rest)?;
    Ok((v, rest))
}

/// A zigzag-encoded varint of at most 64 bits, taken off the front of `buf`.
fn zigzag(buf: &mut &[u8]) -> Result<i64, WireError> {
    let value = varint(buf)?;
    Ok((value >> 1) as i64 ^ -((value & 1) as i64))
}

/// An unsigned varint of at most 64 bits, taken off the front of `buf`.
fn varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or(WireError::MessageIndexes)?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError::MessageIndexes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confluent_header_names_the_schema_id() {
        let f = confluent(&[0, 0, 0, 1, 2, b'x']).unwrap();
        assert_eq!(f.schema, SchemaRef::Confluent(258));
        assert_eq!(f.body, b"x");
        assert_eq!(confluent(&[0, 0, 0, 1]), Err(WireError::TooShort(4)));
        assert_eq!(confluent(b"{\"a\":1}"), Err(WireError::NotConfluent(b'{')));
    }

    #[test]
    fn glue_header_names_the_version_and_compression() {
        let id = uuid::Uuid::parse_str("b7b4a7f0-0d8e-4f32-9c3b-1f2e3d4c5b6a").unwrap();
        let mut bytes = vec![3, 0];
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(b"body");
        let f = glue(&bytes).unwrap();
        assert_eq!((f.schema, f.compressed, f.body), (SchemaRef::Glue(id), false, &b"body"[..]));
        bytes[1] = 5;
        assert!(glue(&bytes).unwrap().compressed);
        bytes[1] = 1;
        assert_eq!(glue(&bytes), Err(WireError::GlueCompression(1)));
        bytes[0] = 0;
        assert_eq!(glue(&bytes), Err(WireError::NotGlue(0)));
        assert_eq!(glue(&bytes[..10]), Err(WireError::TooShort(10)));
    }

    #[test]
    fn message_indexes_as_confluent_writes_them() {
        // [0] is the single byte 0.
        assert_eq!(message_indexes(&[0, 0xaa]).unwrap(), (vec![0], &[0xaa][..]));
        // [1]: count 1 (zigzag 2), index 1 (zigzag 2).
        assert_eq!(message_indexes(&[2, 2, 0xaa]).unwrap(), (vec![1], &[0xaa][..]));
        // [0, 2]: count 2 (4), 0 (0), 2 (4).
        assert_eq!(message_indexes(&[4, 0, 4]).unwrap(), (vec![0, 2], &[][..]));
        // Index 100 needs two bytes: zigzag 200 = 0xc8 0x01.
        assert_eq!(message_indexes(&[2, 0xc8, 0x01]).unwrap().0, vec![100]);
        assert_eq!(message_indexes(&[]), Err(WireError::MessageIndexes));
        assert_eq!(message_indexes(&[1]), Err(WireError::MessageIndexes), "a negative count");
        assert_eq!(message_indexes(&[0xfe, 0x01, 2]), Err(WireError::MessageIndexes), "more indexes than bytes");
        assert_eq!(message_indexes(&[0xff; 11]), Err(WireError::MessageIndexes), "a varint past 64 bits");
        assert_eq!(uvarint(&[0x96, 0x01, 7]).unwrap(), (150, &[7][..]));
        assert_eq!(uvarint(&[0x80]), Err(WireError::MessageIndexes));
    }
}
