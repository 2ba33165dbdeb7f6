//! CloudFormation and SAM templates: `AWS::Lambda::EventSourceMapping` resources and the
//! event-source-mapping `Events` of `AWS::Serverless::Function` resources (`sam`). Values stay
//! raw here; the conversion resolves each key it uses, so an intrinsic in a key that is left out
//! anyway is no error.

use super::convert::{Definition, Prop};
use super::document::join;
use super::error::Severity;
use super::model::Said;
use super::sam;
use serde_json::Value;

/// What a template holds.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub definitions: Vec<Definition>,
    pub said: Vec<Said>,
    pub errors: Vec<(String, String)>,
}

impl Scan {
    pub fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.said.push(Said { severity: Severity::Warning, path: path.into(), message: message.into() });
    }

    pub fn note(&mut self, path: &str, message: impl Into<String>) {
        self.said.push(Said { severity: Severity::Note, path: path.into(), message: message.into() });
    }
}

pub(crate) fn scan(root: &Value) -> Scan {
    let mut scan = Scan::default();
    let Some(Value::Object(resources)) = root.get("Resources") else {
        scan.errors.push(("Resources".into(), "a template needs a Resources table".into()));
        return scan;
    };
    let globals = root.get("Globals").and_then(|g| g.get("Function"));
    for (id, resource) in resources {
        let at = join("Resources", id);
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default();
        if !matches!(kind, "AWS::Lambda::EventSourceMapping" | "AWS::Serverless::Function") {
            continue;
        }
        if let Some(condition) = resource.get("Condition") {
            let name = condition.as_str().map_or_else(|| condition.to_string(), str::to_string);
            scan.warn(&join(&at, "Condition"), format!("CloudFormation creates this resource only when condition {name} holds; imported as if it does"));
        }
        match kind {
            "AWS::Lambda::EventSourceMapping" => match resource.get("Properties") {
                Some(Value::Object(props)) => {
                    let base = join(&at, "Properties");
                    let props = props.iter().map(|(k, v)| Prop { key: k.clone(), value: v.clone(), path: join(&base, k) }).collect();
                    scan.definitions.push(Definition { origin: at.clone(), name_hint: Some(id.clone()), props, ..Definition::default() });
                }
                _ => scan.errors.push((join(&at, "Properties"), "expected the mapping's properties (EventSourceArn, FunctionName, ...)".into())),
            },
            _ => sam::events(id, resource, globals, &mut scan),
        }
    }
    if scan.definitions.is_empty() && scan.errors.is_empty() {
        scan.errors.push((
            "Resources".into(),
            "no AWS::Lambda::EventSourceMapping resources and no AWS::Serverless::Function Events of type SQS, Kinesis, DynamoDB, MSK, SelfManagedKafka or MQ".into(),
        ));
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_mapping_resources() {
        let s = scan(&json!({"Resources": {
            "Queue": {"Type": "AWS::SQS::Queue"},
            "M": {"Type": "AWS::Lambda::EventSourceMapping", "Condition": "IsProd", "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]}, "FunctionName": "f"}}
        }}));
        assert_eq!(s.definitions.len(), 1);
        assert_eq!(s.definitions[0].name_hint.as_deref(), Some("M"));
        assert_eq!(s.definitions[0].props[0].path, "Resources.M.Properties.EventSourceArn");
        assert_eq!(s.said[0].path, "Resources.M.Condition");
        let s = scan(&json!({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}));
        assert!(s.errors[0].1.starts_with("no AWS::Lambda::EventSourceMapping"));
        let s = scan(&json!({"Resources": {"M": {"Type": "AWS::Lambda::EventSourceMapping"}}}));
        assert_eq!(s.errors[0].0, "Resources.M.Properties");
    }
}
