//! `aws lambda get-event-source-mapping` (one object) and `list-event-source-mappings`
//! (`{"EventSourceMappings": [...]}`) output: the API's own names, no intrinsics.

use super::convert::{Definition, Prop};
use super::document::{index, join, Kind};
use super::model::Said;
use serde_json::Value;

/// The definitions in an answer, and what the answer itself says (a truncated page).
pub(crate) fn definitions(root: &Value, kind: Kind) -> Result<(Vec<Definition>, Vec<Said>), (String, String)> {
    let mut said = Vec::new();
    let defs = match kind {
        Kind::List => {
            let Some(Value::Array(items)) = root.get("EventSourceMappings") else {
                return Err(("EventSourceMappings".into(), "expected a list of event source mappings".into()));
            };
            if root.get("NextMarker").is_some_and(|m| !m.is_null()) {
                said.push(Said {
                    severity: super::error::Severity::Warning,
                    path: "NextMarker".into(),
                    message: "this is one page of a longer list (--max-items): the mappings on the other pages are not in it".into(),
                });
            }
            items.iter().enumerate().map(|(i, item)| one(item, &index("EventSourceMappings", i))).collect::<Result<_, _>>()?
        }
        _ => vec![one(root, "")?],
    };
    Ok((defs, said))
}

fn one(item: &Value, origin: &str) -> Result<Definition, (String, String)> {
    let Value::Object(fields) = item else {
        return Err((origin.to_string(), format!("expected an event source mapping object, found {item}")));
    };
    let props = fields.iter().map(|(k, v)| Prop { key: k.clone(), value: v.clone(), path: join(origin, k) }).collect();
    Ok(Definition { origin: origin.to_string(), props, ..Definition::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_or_a_list() {
        let (defs, said) = definitions(&json!({"UUID": "u", "BatchSize": 10}), Kind::One).unwrap();
        assert_eq!((defs.len(), said.len()), (1, 0));
        assert_eq!(defs[0].props[1].path, "BatchSize");
        let (defs, said) = definitions(&json!({"EventSourceMappings": [{"UUID": "a"}, {"UUID": "b"}], "NextMarker": "m"}), Kind::List).unwrap();
        assert_eq!(defs[1].props[0].path, "EventSourceMappings[1].UUID");
        assert_eq!(said[0].path, "NextMarker");
        assert!(definitions(&json!({"EventSourceMappings": [1]}), Kind::List).is_err());
        assert!(definitions(&json!({"EventSourceMappings": {}}), Kind::List).is_err());
    }
}
