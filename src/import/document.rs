//! Input text to a JSON tree, and what kind of AWS definition the tree is.
//!
//! JSON is read as JSON (better error positions); anything else as YAML. YAML short-form
//! intrinsics (`!Ref X`, `!GetAtt A.B`, `!Sub ...`) become their long form (`{"Ref": "X"}`,
//! `{"Fn::GetAtt": ["A", "B"]}`, `{"Fn::Sub": ...}`) so the rest of the import handles one
//! form; the [`Style`] remembers how to show them again in messages.

use serde_json::{Map, Number, Value};

/// How the input writes intrinsic functions, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    /// `!GetAtt Orders.Arn`
    Yaml,
    /// `{"Fn::GetAtt": ["Orders", "Arn"]}`
    Json,
}

#[derive(Debug)]
pub(crate) struct Document {
    pub root: Value,
    pub style: Style,
}

/// What the input holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `aws lambda get-event-source-mapping` (or create/update's answer): one mapping.
    One,
    /// `aws lambda list-event-source-mappings`: `{"EventSourceMappings": [...]}`.
    List,
    /// A CloudFormation or SAM template.
    Template,
}

/// Parses `text`; the error is a whole sentence with the line where the format tells it.
pub(crate) fn parse(text: &str) -> Result<Document, String> {
    let body = text.trim_start_matches('\u{feff}');
    if body.trim_start().starts_with(['{', '[']) {
        let root = serde_json::from_str::<Value>(body).map_err(|e| format!("JSON syntax, line {} column {}: {e}", e.line(), e.column()))?;
        return Ok(Document { root, style: Style::Json });
    }
    let yaml = serde_norway::from_str::<serde_norway::Value>(body).map_err(|e| match e.location() {
        Some(at) => format!("YAML syntax, line {}: {e}", at.line()),
        None => format!("YAML syntax: {e}"),
    })?;
    let root = from_yaml(yaml, "")?;
    Ok(Document { root, style: Style::Yaml })
}

/// Tells the three kinds apart by their top-level keys.
pub(crate) fn kind(root: &Value) -> Result<Kind, String> {
    let Value::Object(top) = root else {
        return Err("expected a JSON/YAML object: a get-event-source-mapping or list-event-source-mappings answer, or a CloudFormation/SAM template".into());
    };
    if top.contains_key("Resources") || top.contains_key("AWSTemplateFormatVersion") || top.contains_key("Transform") {
        return Ok(Kind::Template);
    }
    if top.contains_key("EventSourceMappings") {
        return Ok(Kind::List);
    }
    const MAPPING_KEYS: &[&str] = &["UUID", "EventSourceArn", "FunctionArn", "FunctionName", "EventSourceMappingArn", "SelfManagedEventSource"];
    if MAPPING_KEYS.iter().any(|k| top.contains_key(*k)) {
        return Ok(Kind::One);
    }
    Err("not an event source mapping: expected get-event-source-mapping output (UUID, EventSourceArn, FunctionArn, ...), list-event-source-mappings output (EventSourceMappings) or a CloudFormation/SAM template (Resources)".into())
}

fn from_yaml(value: serde_norway::Value, path: &str) -> Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                Value::Number(Number::from_f64(f).ok_or_else(|| format!("{}: {n} is not a number JSON can hold", shown(path)))?)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().enumerate().map(|(i, v)| from_yaml(v, &index(path, i))).collect::<Result<_, _>>()?),
        Y::Mapping(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Y::String(s) => s,
                    // YAML allows `1: x` and `true: x`; CloudFormation keys are text.
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(format!("{}: a key must be text, found {other:?}", shown(path))),
                };
                let child = join(path, &key);
                map.insert(key, from_yaml(v, &child)?);
            }
            Value::Object(map)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let arg = from_yaml(tagged.value, path)?;
            long_form(name, arg)
        }
    })
}

/// `!Name arg` → CloudFormation's long form.
fn long_form(name: &str, arg: Value) -> Value {
    let (key, arg) = match (name, arg) {
        ("Ref", arg) => ("Ref".to_string(), arg),
        ("Condition", arg) => ("Condition".to_string(), arg),
        // The short form `!GetAtt Resource.Attribute` splits at the first dot (attributes such
        // as `Endpoint.Address` keep theirs).
        ("GetAtt", Value::String(s)) => {
            let parts = match s.split_once('.') {
                Some((resource, attribute)) => vec![Value::from(resource), Value::from(attribute)],
                None => vec![Value::from(s)],
            };
            ("Fn::GetAtt".to_string(), Value::Array(parts))
        }
        (other, arg) => (format!("Fn::{other}"), arg),
    };
    let mut map = Map::new();
    map.insert(key, arg);
    Value::Object(map)
}

/// `join("a", "b") == "a.b"`, `join("", "b") == "b"`.
pub(crate) fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

/// `index("a", 2) == "a[2]"`.
pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

fn shown(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_form_intrinsics_become_long_form() {
        let doc = parse("A: !Ref Env\nB: !GetAtt Orders.Arn\nC: !Sub 'arn:${AWS::Partition}:sqs'\nD: !GetAtt [Db, Endpoint.Address]\nE: !Join ['', [a, !Ref X]]\nF: !Condition IsProd\nG: !GetAtt Db.Endpoint.Address\n").unwrap();
        assert_eq!(doc.style, Style::Yaml);
        assert_eq!(
            doc.root,
            json!({
                "A": {"Ref": "Env"},
                "B": {"Fn::GetAtt": ["Orders", "Arn"]},
                "C": {"Fn::Sub": "arn:${AWS::Partition}:sqs"},
                "D": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
                "E": {"Fn::Join": ["", ["a", {"Ref": "X"}]]},
                "F": {"Condition": "IsProd"},
                "G": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
            })
        );
    }

    #[test]
    fn json_stays_json_and_errors_have_lines() {
        let doc = parse("{\"UUID\": \"u\"}").unwrap();
        assert_eq!((doc.style, kind(&doc.root).unwrap()), (Style::Json, Kind::One));
        assert!(parse("{\n\"a\": }").unwrap_err().starts_with("JSON syntax, line 2"));
        assert!(parse("a: [1,\nb: 2").unwrap_err().starts_with("YAML syntax"));
        // YAML numbers and booleans as keys are read as text.
        assert_eq!(parse("1: a\ntrue: b\n").unwrap().root, json!({"1": "a", "true": "b"}));
    }

    #[test]
    fn kinds() {
        assert_eq!(kind(&json!({"EventSourceMappings": []})).unwrap(), Kind::List);
        assert_eq!(kind(&json!({"Resources": {}})).unwrap(), Kind::Template);
        assert_eq!(kind(&json!({"AWSTemplateFormatVersion": "2010-09-09"})).unwrap(), Kind::Template);
        assert_eq!(kind(&json!({"EventSourceArn": "arn:aws:sqs:r:1:q"})).unwrap(), Kind::One);
        assert!(kind(&json!({"Functions": []})).unwrap_err().contains("not an event source mapping"));
        assert!(kind(&json!([1])).is_err());
    }
}
