//! `--set PATH=VALUE` (a value the input lacks or cannot give, at the key path a message
//! named) and `--parameter NAME=VALUE` (a template parameter or pseudo-parameter, like
//! `aws cloudformation deploy --parameter-overrides`).

use serde_json::{Map, Value};

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// `--set PATH=VALUE`.
#[derive(Clone, Debug, PartialEq)]
pub struct Set {
    /// As written, for messages.
    pub path: String,
    pub(crate) segments: Vec<Segment>,
    pub value: Value,
}

/// `--parameter NAME=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub value: String,
}

/// Reads `PATH=VALUE`. VALUE is JSON when it reads as JSON (`10`, `true`, `["a","b"]`,
/// `{"Pattern": "..."}`), else the text itself, so ARNs and names need no quotes.
pub fn parse_set(arg: &str) -> Result<Set, String> {
    let (path, text) = arg.split_once('=').ok_or("expected PATH=VALUE (PATH as the message names it, like Resources.M.Properties.EventSourceArn)")?;
    let segments = parse_path(path)?;
    let value = serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_string()));
    Ok(Set { path: path.to_string(), segments, value })
}

/// Reads `NAME=VALUE`.
pub fn parse_parameter(arg: &str) -> Result<Parameter, String> {
    let (name, value) = arg.split_once('=').ok_or("expected NAME=VALUE (a template parameter, or AWS::Region, AWS::AccountId, ...)")?;
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == ':');
    if !valid {
        return Err(format!("{name:?} is not a parameter name (letters and digits; pseudo-parameters like AWS::Region)"));
    }
    Ok(Parameter { name: name.to_string(), value: value.to_string() })
}

/// `a.b[2].c` → keys and indexes.
pub(crate) fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if key.is_empty() && (segments.is_empty() || rest.is_empty()) {
            return Err(format!("{path:?} is not a key path (keys separated by dots, [n] for list items)"));
        }
        if !key.is_empty() {
            segments.push(Segment::Key(key.to_string()));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']').ok_or_else(|| format!("{path:?}: `[` without `]`"))?;
            let n = inner[..close].parse::<usize>().map_err(|_| format!("{path:?}: {:?} is not a list index", &inner[..close]))?;
            segments.push(Segment::Index(n));
            rest = &inner[close + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("{path:?} is not a key path"));
        }
    }
    Ok(segments)
}

/// Whether `set` is meant for this input: its first key is already there.
pub(crate) fn applies_to(root: &Value, set: &Set) -> bool {
    match set.segments.first() {
        Some(Segment::Key(k)) => root.get(k).is_some(),
        _ => false,
    }
}

/// Puts `set.value` at its path, creating missing tables on the way (a SAM function's
/// `FunctionName` is usually absent, and that is what `--set` supplies).
pub(crate) fn apply(root: &mut Value, set: &Set) -> Result<(), String> {
    let Some((last, parents)) = set.segments.split_last() else {
        return Err("empty path".into());
    };
    let mut node = root;
    let mut walked = String::new();
    for segment in parents {
        node = match segment {
            Segment::Key(k) => {
                walked = super::document::join(&walked, k);
                let Value::Object(map) = node else { return Err(format!("{walked} is inside a value that is not a table")) };
                map.entry(k.clone()).or_insert_with(|| Value::Object(Map::new()))
            }
            Segment::Index(i) => {
                walked = super::document::index(&walked, *i);
                let Value::Array(items) = node else { return Err(format!("{walked}: not a list")) };
                let len = items.len();
                items.get_mut(*i).ok_or_else(|| format!("{walked}: the list has {len} items"))?
            }
        };
    }
    match (last, node) {
        (Segment::Key(k), Value::Object(map)) => {
            map.insert(k.clone(), set.value.clone());
            Ok(())
        }
        (Segment::Index(i), Value::Array(items)) => {
            let len = items.len();
            let slot = items.get_mut(*i).ok_or_else(|| format!("{}: the list has {len} items", set.path))?;
            *slot = set.value.clone();
            Ok(())
        }
        _ => Err(format!("{}: its parent is not a {}", set.path, if matches!(last, Segment::Key(_)) { "table" } else { "list" })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_read_keys_and_indexes() {
        assert_eq!(
            parse_path("Resources.M.Properties.Topics[0]").unwrap(),
            vec![Segment::Key("Resources".into()), Segment::Key("M".into()), Segment::Key("Properties".into()), Segment::Key("Topics".into()), Segment::Index(0)]
        );
        assert_eq!(parse_path("EventSourceMappings[1].BatchSize").unwrap()[1], Segment::Index(1));
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[x]").is_err());
        assert!(parse_path("a[1").is_err());
        assert!(parse_path("").is_err());
    }

    #[test]
    fn values_are_json_or_text() {
        assert_eq!(parse_set("A.B=10").unwrap().value, json!(10));
        assert_eq!(parse_set("A=[\"x\"]").unwrap().value, json!(["x"]));
        assert_eq!(parse_set("A=arn:aws:sqs:us-east-1:123456789012:q").unwrap().value, json!("arn:aws:sqs:us-east-1:123456789012:q"));
        // Only the first `=` splits: values may hold more.
        assert_eq!(parse_set("A=a=b").unwrap().value, json!("a=b"));
        assert!(parse_set("no-equals").is_err());
        assert_eq!(parse_parameter("AWS::Region=eu-west-1").unwrap(), Parameter { name: "AWS::Region".into(), value: "eu-west-1".into() });
        assert!(parse_parameter("a b=1").is_err());
    }

    #[test]
    fn apply_replaces_or_creates() {
        let mut root = json!({"Resources": {"F": {"Properties": {"Events": {"E": {"Properties": {"Queue": {"Fn::GetAtt": ["Q", "Arn"]}}}}}}}});
        let set = parse_set("Resources.F.Properties.Events.E.Properties.Queue=arn:aws:sqs:us-east-1:123456789012:q").unwrap();
        assert!(applies_to(&root, &set));
        apply(&mut root, &set).unwrap();
        assert_eq!(root["Resources"]["F"]["Properties"]["Events"]["E"]["Properties"]["Queue"], json!("arn:aws:sqs:us-east-1:123456789012:q"));
        apply(&mut root, &parse_set("Resources.F.Properties.FunctionName=orders").unwrap()).unwrap();
        assert_eq!(root["Resources"]["F"]["Properties"]["FunctionName"], json!("orders"));

        let mut list = json!({"EventSourceMappings": [{"BatchSize": 1}]});
        apply(&mut list, &parse_set("EventSourceMappings[0].BatchSize=5").unwrap()).unwrap();
        assert_eq!(list["EventSourceMappings"][0]["BatchSize"], json!(5));
        assert!(apply(&mut list, &parse_set("EventSourceMappings[3].BatchSize=5").unwrap()).unwrap_err().contains("has 1 items"));
        assert!(!applies_to(&list, &parse_set("Resources.X=1").unwrap()));
    }
}
