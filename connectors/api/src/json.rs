//! Hand-written JSON for the hot path: record fragments are built once per record and events
//! are concatenations of fragments, so neither goes through a `serde_json::Value`.

use crate::{ExtraFields, Record};

/// Appends `s` as a JSON string literal, escaped exactly as serde_json does (the tests check)
/// but without its fallible writer API.
pub fn push_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        plain = i + 1;
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// The text of a JSON string literal.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_str(&mut out, s);
    out
}

/// `{"Records":[f1,f2,...],"extra1":...}`: the event shape Kinesis, DynamoDB and SQS share.
pub fn records_event(records: &[Record], extra: Option<&ExtraFields>) -> Vec<u8> {
    let size = RECORDS_ENVELOPE.len() + records.iter().map(Record::event_size).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"{\"Records\":[");
    crate::write_fragments(&mut out, records);
    out.push(b']');
    for (k, v) in extra.into_iter().flatten() {
        out.push(b',');
        out.extend_from_slice(quoted(k).as_bytes());
        out.push(b':');
        out.extend_from_slice(v.to_string().as_bytes());
    }
    out.push(b'}');
    out
}

/// What [`records_event`] adds around the fragments when there are no extra fields.
pub const RECORDS_ENVELOPE: &str = "{\"Records\":[]}";

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use crate::{ItemId, Position};
    use serde_json::json;

    fn rec(encoded: &'static str) -> Record {
        Record {
            position: Position::new("1"),
            partition_key: Bytes::new(),
            arrival_ms: 0,
            data: Bytes::new(),
            encoded: Bytes::from_static(encoded.as_bytes()),
            item_id: ItemId::Str("1".into()),
            receive_count: 0,
            invalid: None,
        }
    }

    #[test]
    fn escapes_strings_like_serde_json() {
        assert_eq!(quoted("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\u0001é""#);
        let all: String = (0u8..0x80).map(char::from).chain("é€😀/".chars()).collect();
        for s in [all.as_str(), "", "plain", "\u{7f}\u{1f}\u{0}", "end\\"] {
            assert_eq!(quoted(s), serde_json::Value::from(s).to_string(), "{s:?}");
        }
    }

    #[test]
    fn event_is_fragments_then_extras() {
        let extra = json!({"window": {"start": "x"}, "isFinalInvokeForWindow": false});
        let extra = extra.as_object().cloned();
        let out = records_event(&[rec(r#"{"a":1}"#), rec(r#"{"b":2}"#)], extra.as_ref());
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"Records":[{"a":1},{"b":2}],"window":{"start":"x"},"isFinalInvokeForWindow":false}"#
        );
        assert_eq!(records_event(&[], None), RECORDS_ENVELOPE.as_bytes());
    }
}
