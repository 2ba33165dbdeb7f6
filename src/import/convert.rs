//! One AWS mapping definition (API names, values possibly intrinsics) → one esmd mapping,
//! following the table: every key is imported, refused with a warning, or known to be state.

use super::intrinsic::Resolve;
use super::model::{text, Build};
use super::source::{self, Classified, Inputs, SourceKind};
use super::table::{self, Converted, Treatment};
use serde_json::Value;
use std::collections::HashSet;

/// A key of a definition: its AWS name (as the table knows it), raw value and input path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Prop {
    pub key: String,
    pub value: Value,
    pub path: String,
}

/// A mapping as an input defines it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Definition {
    /// `EventSourceMappings[2]`, `Resources.OrdersMapping`, `Resources.Fn.Properties.Events.Orders`.
    pub origin: String,
    /// The template's name for it (logical id, function-event); otherwise one is made from
    /// the function and the source.
    pub name_hint: Option<String>,
    pub props: Vec<Prop>,
    /// Said when there is no function name (a SAM function without `FunctionName`).
    pub function_missing: Option<(String, String)>,
    /// SAM's `AutoPublishAlias`: the mapping invokes that alias.
    pub qualifier: Option<Prop>,
}

/// A converted definition; `skipped` when its source has no esmd equivalent.
pub(crate) struct Outcome {
    pub build: Build,
    pub skipped: bool,
}

/// Mapping names already taken in this output.
#[derive(Default)]
pub(crate) struct Names(HashSet<String>);

impl Names {
    /// `wanted` made a valid esmd name (`A-Za-z0-9_-`, 1–64), with `-2`, `-3`, ... when taken.
    pub fn unique(&mut self, wanted: &str) -> String {
        let mut base: String = wanted.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect();
        while base.contains("--") {
            base = base.replace("--", "-");
        }
        let mut base = base.trim_matches('-').to_string();
        if base.is_empty() {
            base = "mapping".into();
        }
        base.truncate(64);
        let mut name = base.clone();
        let mut n = 2;
        while self.0.contains(&name) {
            let suffix = format!("-{n}");
            let mut stem = base.clone();
            stem.truncate(64 - suffix.len());
            name = format!("{stem}{suffix}");
            n += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

struct Converter<'a> {
    def: &'a Definition,
    resolver: &'a dyn Resolve,
    b: Build,
}

impl Converter<'_> {
    fn prop(&self, key: &str) -> Option<&Prop> {
        self.def.props.iter().find(|p| p.key == key)
    }

    /// The resolved value; `None` when absent, `AWS::NoValue`, or unresolvable (recorded).
    fn resolved(&mut self, prop: &Prop) -> Option<Value> {
        match self.resolver.resolve(&prop.value, &prop.path) {
            Ok(v) => v,
            Err(unresolved) => {
                for u in unresolved {
                    self.b.error(&u.path, u.message);
                }
                None
            }
        }
    }

    fn get(&mut self, key: &str) -> Option<(Value, String)> {
        let prop = self.prop(key)?.clone();
        self.resolved(&prop).map(|v| (v, prop.path))
    }

    fn text_of(&mut self, key: &str) -> Option<(String, String)> {
        let (value, path) = self.get(key)?;
        match value {
            Value::String(s) => Some((s, path)),
            other => {
                self.b.error(&path, format!("expected text, found {other}"));
                None
            }
        }
    }

    /// The source's parts, wherever AWS, CloudFormation or SAM put them.
    fn source_inputs(&mut self) -> Inputs {
        let mut inputs = Inputs { arn: self.text_of("EventSourceArn"), topics: self.get("Topics"), queues: self.get("Queues"), access: self.get("SourceAccessConfigurations"), ..Inputs::default() };
        if let Some((value, path)) = self.get("SelfManagedEventSource") {
            // The API calls the list KAFKA_BOOTSTRAP_SERVERS, CloudFormation KafkaBootstrapServers.
            const NAMES: [&str; 2] = ["KAFKA_BOOTSTRAP_SERVERS", "KafkaBootstrapServers"];
            let endpoints = value.get("Endpoints").and_then(Value::as_object);
            for key in endpoints.into_iter().flat_map(|e| e.keys()).filter(|k| !NAMES.contains(&k.as_str())) {
                self.b.warn(&format!("{path}.Endpoints.{key}"), "not an endpoint esmd knows (KAFKA_BOOTSTRAP_SERVERS): not imported");
            }
            match endpoints.and_then(|e| NAMES.iter().find_map(|n| e.get(*n).map(|list| (*n, list)))) {
                Some((name, list)) => inputs.bootstrap = Some((list.clone(), format!("{path}.Endpoints.{name}"))),
                None => self.b.error(&path, "expected {\"Endpoints\": {\"KAFKA_BOOTSTRAP_SERVERS\": [\"host:port\", ...]}}"),
            }
        }
        if let Some(servers) = self.get("KafkaBootstrapServers") {
            inputs.bootstrap = Some(servers);
        }
        for key in ["AmazonManagedKafkaEventSourceConfig", "SelfManagedKafkaEventSourceConfig"] {
            let Some((value, path)) = self.get(key) else { continue };
            let Value::Object(config) = value else {
                self.b.error(&path, format!("expected {{\"ConsumerGroupId\": ...}}, found {value}"));
                continue;
            };
            for (k, v) in config {
                let at = format!("{path}.{k}");
                match k.as_str() {
                    "ConsumerGroupId" => inputs.group = Some((v, at)),
                    "SchemaRegistryConfig" => inputs.schema_registry = Some((v, at)),
                    _ => self.b.warn(&at, format!("{k} is not a Kafka setting esmd knows: not imported")),
                }
            }
        }
        if let Some(group) = self.get("ConsumerGroupId") {
            inputs.group = Some(group);
        }
        if let Some(registry) = self.get("SchemaRegistryConfig") {
            inputs.schema_registry = Some(registry);
        }
        inputs
    }

    fn function(&mut self) -> Option<(String, String)> {
        let found = self.text_of("FunctionArn").or_else(|| self.text_of("FunctionName"));
        if found.is_none() && !self.def.props.iter().any(|p| p.key == "FunctionArn" || p.key == "FunctionName") {
            let (path, message) = self.def.function_missing.clone().unwrap_or_else(|| (self.def.origin.clone(), "FunctionName is required: the function the mapping invokes".into()));
            self.b.error(&path, message);
        }
        found
    }

    fn header(&mut self, prop: &Prop, treatment: Treatment) {
        let Some(value) = self.resolved(prop) else { return };
        match (treatment, value) {
            (Treatment::Uuid, Value::String(u)) => self.b.key("uuid", text(&u), &prop.path),
            (Treatment::Enabled, v) => match v {
                Value::Bool(b) => self.b.key("enabled", toml::Value::Boolean(b), &prop.path),
                Value::String(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => {
                    self.b.key("enabled", toml::Value::Boolean(s.eq_ignore_ascii_case("true")), &prop.path)
                }
                other => self.b.error(&prop.path, format!("expected true or false, found {other}")),
            },
            (Treatment::State, Value::String(state)) => match state.as_str() {
                "Enabled" | "Enabling" | "Creating" | "Updating" => self.b.key("enabled", toml::Value::Boolean(true), &prop.path),
                "Disabled" | "Disabling" => self.b.key("enabled", toml::Value::Boolean(false), &prop.path),
                "Deleting" => {
                    self.b.key("enabled", toml::Value::Boolean(false), &prop.path);
                    self.b.warn(&prop.path, "the mapping is being deleted on AWS: imported with enabled = false");
                }
                other => self.b.warn(&prop.path, format!("state {other:?} is not one AWS documents: enabled left at its default (true)")),
            },
            (_, other) => self.b.error(&prop.path, format!("expected text, found {other}")),
        }
    }

    fn param(&mut self, prop: &Prop, key: &'static str, shape: table::Shape, applies: table::Applies, kind: SourceKind) {
        if !table::applies(applies, kind) {
            // Quietly: an unresolvable value of a key that is left out anyway is no error.
            let value = self.resolver.resolve(&prop.value, &prop.path).ok().flatten();
            if !value.as_ref().is_none_or(|v| table::says_nothing(&prop.key, v)) {
                self.b.warn(&prop.path, format!("{} does not apply to {} sources (AWS ignores or refuses it): not imported", prop.key, kind.label()));
            }
            return;
        }
        let Some(value) = self.resolved(prop) else { return };
        match table::convert(shape, &value) {
            Ok(Converted::Value(v)) => self.b.key(key, v, &prop.path),
            Ok(Converted::Patterns(patterns)) => {
                self.b.mapping.patterns = patterns;
                self.b.mapping.key_paths.push((key.to_string(), prop.path.clone()));
            }
            Ok(Converted::Destinations { on_failure, on_success }) => {
                if on_success.is_some() {
                    self.b.warn(&format!("{}.OnSuccess", prop.path), "esmd has on-failure destinations only: OnSuccess not imported");
                }
                if let Some(destination) = on_failure {
                    let mut on_failure = toml::Table::new();
                    on_failure.insert("destination".into(), text(&destination));
                    let mut config = toml::Table::new();
                    config.insert("on_failure".into(), toml::Value::Table(on_failure));
                    self.b.key(key, toml::Value::Table(config), &format!("{}.OnFailure.Destination", prop.path));
                }
            }
            Ok(Converted::Nothing) => {}
            Err(e) => self.b.error(&prop.path, e),
        }
    }
}

/// The function part of a name or ARN: `arn:aws:lambda:r:a:function:orders:live` → `orders`.
fn function_short_name(name: &str) -> &str {
    let after = name.rsplit_once(":function:").map_or(name, |(_, rest)| rest);
    after.split(':').next().unwrap_or(after)
}

/// Converts one definition; `names` keeps the output's mapping names unique.
pub(crate) fn convert(def: &Definition, resolver: &dyn Resolve, names: &mut Names) -> Outcome {
    let mut c = Converter { def, resolver, b: Build::default() };
    c.b.mapping.origin = def.origin.clone();
    let inputs = c.source_inputs();
    let arn_path = def.props.iter().find(|p| p.key == "EventSourceArn").map_or(def.origin.clone(), |p| p.path.clone());
    let arn_given = def.props.iter().any(|p| p.key == "EventSourceArn");
    let kind = match source::classify(inputs.arn.as_ref().map(|(a, _)| a.as_str()), inputs.bootstrap.is_some()) {
        Classified::Source(kind) => Some(kind),
        Classified::Skip(why) => {
            c.b.warn(&arn_path, format!("{why}: mapping not imported"));
            return Outcome { build: c.b, skipped: true };
        }
        // An unresolvable ARN is already reported.
        Classified::Invalid(_) if arn_given && inputs.arn.is_none() => None,
        Classified::Invalid(why) => {
            c.b.error(&arn_path, why);
            None
        }
    };
    let function = c.function();
    let Some(kind) = kind else {
        // The mapping cannot be written, but every other value that cannot be resolved is
        // still reported, so that one run names everything `--set` must supply.
        for prop in &def.props {
            if matches!(table::treatment(&prop.key), Some(Treatment::Param { .. } | Treatment::Uuid | Treatment::Enabled | Treatment::State)) {
                c.resolved(prop);
            }
        }
        return Outcome { build: c.b, skipped: false };
    };

    let wanted = match (&def.name_hint, &function, source::short_name(kind, &inputs)) {
        (Some(hint), _, _) => hint.clone(),
        (None, Some((f, _)), Some(s)) => format!("{}-{s}", function_short_name(f)),
        (None, Some((f, _)), None) => function_short_name(f).to_string(),
        (None, None, s) => s.unwrap_or_default(),
    };
    c.b.mapping.name = names.unique(&wanted);

    for prop in &def.props {
        match table::treatment(&prop.key) {
            Some(t @ (Treatment::Uuid | Treatment::Enabled | Treatment::State)) => c.header(prop, t),
            Some(Treatment::Param { key, shape, applies }) => c.param(prop, key, shape, applies, kind),
            Some(Treatment::Unsupported(why)) => {
                if !prop.value.is_null() {
                    c.b.warn(&prop.path, format!("{why}: not imported"));
                }
            }
            Some(Treatment::Function | Treatment::Source | Treatment::Status) => {}
            None => c.b.warn(&prop.path, format!("{} is not an event source mapping parameter esmd knows: not imported", prop.key)),
        }
    }

    let name = c.b.mapping.name.clone();
    source::build(kind, &inputs, &name, &mut c.b);

    if let Some((function, path)) = function {
        c.b.function("type", toml::Value::String("lambda".into()), &path);
        c.b.function("function_name", text(&function), &path);
    }
    if let Some(q) = def.qualifier.clone() {
        match c.resolved(&q) {
            Some(Value::String(alias)) => c.b.function("qualifier", text(&alias), &q.path),
            Some(other) => c.b.error(&q.path, format!("expected an alias name, found {other}")),
            None => {}
        }
    }
    Outcome { build: c.b, skipped: false }
}

#[cfg(test)]
mod tests {
    use super::super::intrinsic::Literal;
    use super::*;
    use serde_json::json;

    fn definition(v: Value) -> Definition {
        let props = v.as_object().unwrap().iter().map(|(k, v)| Prop { key: k.clone(), value: v.clone(), path: k.clone() }).collect();
        Definition { origin: String::new(), props, ..Definition::default() }
    }

    fn keys(b: &Build) -> Vec<(String, String)> {
        b.mapping.keys.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
    }

    #[test]
    fn names_are_valid_and_unique() {
        let mut names = Names::default();
        assert_eq!(names.unique("orders-processor-orders.fifo"), "orders-processor-orders-fifo");
        assert_eq!(names.unique("orders-processor-orders.fifo"), "orders-processor-orders-fifo-2");
        assert_eq!(names.unique("..."), "mapping");
        assert_eq!(names.unique(&"x".repeat(80)).len(), 64);
        assert_eq!(names.unique(&"x".repeat(80)), format!("{}-2", "x".repeat(62)));
        assert_eq!(function_short_name("arn:aws:lambda:us-east-1:123456789012:function:orders:live"), "orders");
        assert_eq!(function_short_name("orders:live"), "orders");
    }

    #[test]
    fn a_kinesis_answer_maps_key_by_key() {
        let def = definition(json!({
            "UUID": "2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091",
            "BatchSize": 500,
            "MaximumBatchingWindowInSeconds": 5,
            "ParallelizationFactor": 4,
            "EventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/clicks",
            "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:clicks",
            "LastModified": "2024-11-05T10:00:00+00:00",
            "State": "Disabled",
            "StartingPosition": "TRIM_HORIZON",
            "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:clicks-dlq"}},
            "FunctionResponseTypes": [],
            "TumblingWindowInSeconds": 0,
            "KMSKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1",
            "Surprise": 1
        }));
        let out = convert(&def, &Literal, &mut Names::default());
        let b = out.build;
        assert!(b.errors.is_empty(), "{:?}", b.errors);
        assert_eq!(b.mapping.name, "clicks-clicks");
        assert_eq!(
            keys(&b),
            [
                ("uuid".to_string(), "\"2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091\"".to_string()),
                ("batch_size".into(), "500".into()),
                ("maximum_batching_window_in_seconds".into(), "5".into()),
                ("parallelization_factor".into(), "4".into()),
                ("enabled".into(), "false".into()),
                ("starting_position".into(), "\"TRIM_HORIZON\"".into()),
                ("destination_config".into(), "{ on_failure = { destination = \"arn:aws:sqs:us-east-1:123456789012:clicks-dlq\" } }".into()),
                ("tumbling_window_in_seconds".into(), "0".into()),
            ]
        );
        let warned: Vec<&str> = b.said.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(warned, ["KMSKeyArn", "Surprise"]);
        assert_eq!(b.mapping.function[1].1, text("arn:aws:lambda:us-east-1:123456789012:function:clicks"));
    }

    #[test]
    fn stream_keys_on_a_queue_are_left_out() {
        let def = definition(json!({
            "EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:jobs",
            "FunctionName": "jobs",
            "MaximumRetryAttempts": 3,
            "ParallelizationFactor": 1,
            "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}},
            "ScalingConfig": {"MaximumConcurrency": 5}
        }));
        let b = convert(&def, &Literal, &mut Names::default()).build;
        assert!(b.errors.is_empty());
        assert_eq!(keys(&b), [("scaling_config".to_string(), "{ maximum_concurrency = 5 }".to_string())]);
        // The factor of 1 is AWS's default: nothing said. The other two were meant.
        assert_eq!(b.said.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), ["MaximumRetryAttempts", "DestinationConfig"]);
    }

    #[test]
    fn what_cannot_be_imported_is_an_error_or_a_skip() {
        let b = convert(&definition(json!({"BatchSize": 1})), &Literal, &mut Names::default()).build;
        assert_eq!(b.errors.len(), 2, "{:?}", b.errors);
        let out = convert(&definition(json!({"EventSourceArn": "arn:aws:rds:us-east-1:123456789012:cluster:docs", "FunctionName": "f"})), &Literal, &mut Names::default());
        assert!(out.skipped && out.build.errors.is_empty());
        let b = convert(&definition(json!({"EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:q", "FunctionName": "f", "BatchSize": "ten"})), &Literal, &mut Names::default()).build;
        assert_eq!(b.errors, [("BatchSize".to_string(), "expected a whole number, found \"ten\"".to_string())]);
    }
}
