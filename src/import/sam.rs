//! SAM's `AWS::Serverless::Function` `Events`: the event-source-mapping types become mapping
//! definitions under the API's names (SAM's `Queue`, `Stream` and `Broker` are the
//! `EventSourceArn`; its flat `KafkaBootstrapServers` and `ConsumerGroupId` the table knows).
//! The function is the enclosing one: its `FunctionName`, and its `AutoPublishAlias`, which SAM
//! points the mapping at.

use super::convert::{Definition, Prop};
use super::document::join;
use super::template::Scan;
use serde_json::Value;

/// SAM event types that SAM turns into an `AWS::Lambda::EventSourceMapping`.
const MAPPING_TYPES: &[&str] = &["SQS", "Kinesis", "DynamoDB", "MSK", "SelfManagedKafka", "MQ"];

/// SAM's name for a key, as the API names it.
fn api_name(key: &str) -> &str {
    match key {
        "Queue" | "Stream" | "Broker" => "EventSourceArn",
        other => other,
    }
}

pub(crate) fn events(id: &str, resource: &Value, globals: Option<&Value>, scan: &mut Scan) {
    let at = join("Resources", id);
    let props = join(&at, "Properties");
    let Some(Value::Object(events)) = resource.get("Properties").and_then(|p| p.get("Events")) else { return };
    let function_path = join(&props, "FunctionName");
    let function = resource.get("Properties").and_then(|p| p.get("FunctionName")).map(|v| Prop { key: "FunctionName".into(), value: v.clone(), path: function_path.clone() });
    let qualifier = match resource.get("Properties").and_then(|p| p.get("AutoPublishAlias")) {
        Some(v) => Some(Prop { key: "AutoPublishAlias".into(), value: v.clone(), path: join(&props, "AutoPublishAlias") }),
        None => globals.and_then(|g| g.get("AutoPublishAlias")).map(|v| Prop { key: "AutoPublishAlias".into(), value: v.clone(), path: "Globals.Function.AutoPublishAlias".into() }),
    };
    for (name, event) in events {
        let event_path = join(&join(&props, "Events"), name);
        let kind = event.get("Type").and_then(Value::as_str).unwrap_or_default();
        if kind == "DocumentDB" {
            scan.warn(&event_path, "a DocumentDB event: esmd has no DocumentDB source; not imported");
            continue;
        }
        if !MAPPING_TYPES.contains(&kind) {
            scan.note(&event_path, format!("the {kind} event is not an event source mapping: not imported"));
            continue;
        }
        let base = join(&event_path, "Properties");
        let mut definition = Definition { origin: event_path.clone(), name_hint: Some(format!("{id}-{name}")), qualifier: qualifier.clone(), ..Definition::default() };
        if let Some(Value::Object(fields)) = event.get("Properties") {
            definition.props = fields.iter().map(|(k, v)| Prop { key: api_name(k).to_string(), value: v.clone(), path: join(&base, k) }).collect();
        }
        match &function {
            Some(f) => definition.props.push(f.clone()),
            None => {
                definition.function_missing = Some((
                    function_path.clone(),
                    format!("{id} has no FunctionName: CloudFormation names the function when it creates it (<stack>-{id}-<random>); pass the deployed name with --set {function_path}=NAME"),
                ))
            }
        }
        scan.definitions.push(definition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mapping_events_become_definitions() {
        let function = json!({"Type": "AWS::Serverless::Function", "Properties": {
            "FunctionName": "orders",
            "AutoPublishAlias": "live",
            "Events": {
                "Queue": {"Type": "SQS", "Properties": {"Queue": "arn:aws:sqs:us-east-1:123456789012:q", "BatchSize": 10}},
                "Api": {"Type": "Api", "Properties": {"Path": "/", "Method": "get"}},
                "Kafka": {"Type": "SelfManagedKafka", "Properties": {"KafkaBootstrapServers": ["k:9092"], "Topics": ["t"], "ConsumerGroupId": "g"}}
            }
        }});
        let mut scan = Scan::default();
        events("Fn", &function, None, &mut scan);
        assert_eq!(scan.definitions.len(), 2);
        let sqs = &scan.definitions[0];
        assert_eq!(sqs.name_hint.as_deref(), Some("Fn-Queue"));
        assert_eq!((sqs.props[0].key.as_str(), sqs.props[0].path.as_str()), ("EventSourceArn", "Resources.Fn.Properties.Events.Queue.Properties.Queue"));
        assert_eq!(sqs.props.last().map(|p| p.path.as_str()), Some("Resources.Fn.Properties.FunctionName"));
        assert_eq!(sqs.qualifier.as_ref().map(|q| q.value.clone()), Some(json!("live")));
        assert_eq!(scan.definitions[1].props[0].key, "KafkaBootstrapServers");
        assert_eq!(scan.said[0].path, "Resources.Fn.Properties.Events.Api");
    }

    #[test]
    fn a_function_without_a_name_says_how_to_give_it() {
        let function = json!({"Type": "AWS::Serverless::Function", "Properties": {"Events": {"S": {"Type": "Kinesis", "Properties": {"Stream": "arn:aws:kinesis:us-east-1:1:stream/s"}}}}});
        let mut scan = Scan::default();
        events("Fn", &function, Some(&json!({"AutoPublishAlias": "prod"})), &mut scan);
        let (path, message) = scan.definitions[0].function_missing.clone().unwrap();
        assert_eq!(path, "Resources.Fn.Properties.FunctionName");
        assert!(message.contains("--set Resources.Fn.Properties.FunctionName=NAME"), "{message}");
        assert_eq!(scan.definitions[0].qualifier.as_ref().map(|q| q.path.as_str()), Some("Globals.Function.AutoPublishAlias"));
    }
}
