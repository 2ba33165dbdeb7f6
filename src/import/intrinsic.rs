//! CloudFormation's intrinsic functions, as far as a template alone can answer them.
//!
//! Resolved: `Ref` to a parameter (its `--parameter` value, else its `Default`), to a
//! pseudo-parameter given with `--parameter` (`AWS::Partition` and `AWS::URLSuffix` follow from
//! `AWS::Region`), to `AWS::NoValue` (the key is left out), and to a Lambda function of the
//! template that names itself (`FunctionName`); `Fn::Sub`, `Fn::Join`, `Fn::Select`,
//! `Fn::Split` and `Fn::FindInMap` over resolvable arguments. Everything else (`Fn::GetAtt`,
//! `Fn::ImportValue`, `Fn::If`, a resource's `Ref`, ...) depends on a deployed stack: it is
//! reported with its key path, never guessed.

use super::document::{index, join, Style};
use super::overrides::Parameter;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// A value that could not be resolved, at the key path of the intrinsic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unresolved {
    pub path: String,
    pub message: String,
}

/// Turns a raw input value into a plain one. `Ok(None)`: the value is `AWS::NoValue`.
pub(crate) trait Resolve {
    fn resolve(&self, value: &Value, path: &str) -> Result<Option<Value>, Vec<Unresolved>>;
}

/// CLI output has no intrinsics: values are what they say.
pub(crate) struct Literal;

impl Resolve for Literal {
    fn resolve(&self, value: &Value, _path: &str) -> Result<Option<Value>, Vec<Unresolved>> {
        Ok(Some(value.clone()))
    }
}

struct Param {
    /// The override, else the Default.
    value: Option<String>,
    /// `List<...>` and `CommaDelimitedList`: `Ref` gives a list.
    list: bool,
    /// `AWS::SSM::Parameter::Value<...>`: the Default names an SSM parameter read at deploy time.
    ssm: bool,
    overridden: bool,
}

/// A template's parameters, mappings and resources, with the user's `--parameter` values.
pub(crate) struct Context {
    style: Style,
    parameters: HashMap<String, Param>,
    pseudo: HashMap<String, String>,
    mappings: Map<String, Value>,
    resources: Map<String, Value>,
    /// How many function names are being resolved inside one another: a template whose
    /// FunctionName refers back to itself must end in an error, not a stack overflow.
    depth: std::cell::Cell<u32>,
}

const PSEUDO: &[&str] = &["AWS::AccountId", "AWS::NotificationARNs", "AWS::Partition", "AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix"];

impl Context {
    /// `overrides` for names the template does not declare (and that are not pseudo-parameters)
    /// are returned as unknown, so a typo is not silently ignored.
    pub fn new(root: &Value, style: Style, overrides: &[Parameter]) -> (Context, Vec<String>) {
        let mut parameters = HashMap::new();
        if let Some(Value::Object(declared)) = root.get("Parameters") {
            for (name, spec) in declared {
                let kind = spec.get("Type").and_then(Value::as_str).unwrap_or("String");
                let default = spec.get("Default").and_then(scalar_text);
                parameters.insert(
                    name.clone(),
                    Param { value: default, list: kind.starts_with("List<") || kind == "CommaDelimitedList", ssm: kind.starts_with("AWS::SSM::Parameter::Value<"), overridden: false },
                );
            }
        }
        let mut pseudo = HashMap::new();
        let mut unknown = Vec::new();
        for p in overrides {
            if PSEUDO.contains(&p.name.as_str()) {
                pseudo.insert(p.name.clone(), p.value.clone());
            } else if let Some(param) = parameters.get_mut(&p.name) {
                param.value = Some(p.value.clone());
                param.overridden = true;
            } else {
                unknown.push(p.name.clone());
            }
        }
        let section = |key: &str| match root.get(key) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        (Context { style, parameters, pseudo, mappings: section("Mappings"), resources: section("Resources"), depth: std::cell::Cell::new(0) }, unknown)
    }

    /// How the input would write this intrinsic.
    pub fn display(&self, value: &Value) -> String {
        display(self.style, value)
    }

    fn pseudo(&self, name: &str) -> Result<Option<Value>, String> {
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        if let Some(v) = self.pseudo.get(name) {
            return Ok(Some(Value::from(v.as_str())));
        }
        let region = self.pseudo.get("AWS::Region");
        let derived = match (name, region) {
            ("AWS::Partition", Some(r)) => Some(partition_of(r)),
            ("AWS::URLSuffix", Some(r)) => Some(if r.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" }),
            _ => None,
        };
        if let Some(v) = derived {
            return Ok(Some(Value::from(v)));
        }
        if !PSEUDO.contains(&name) {
            return Err(format!("{name} is not a pseudo-parameter CloudFormation knows"));
        }
        let what = match name {
            "AWS::Region" => "the region the stack is deployed to",
            "AWS::AccountId" => "the account the stack is deployed to",
            "AWS::Partition" | "AWS::URLSuffix" => "derived from the stack's region",
            _ => "known only once the stack is deployed",
        };
        let given = if matches!(name, "AWS::Partition" | "AWS::URLSuffix") { "AWS::Region" } else { name };
        Err(format!("{name} is {what}; pass --parameter {given}=VALUE"))
    }

    fn reference(&self, name: &str) -> Result<Option<Value>, String> {
        if name.starts_with("AWS::") {
            return self.pseudo(name);
        }
        if let Some(p) = self.parameters.get(name) {
            return match &p.value {
                Some(_) if p.ssm && !p.overridden => Err(format!("parameter {name} is read from SSM Parameter Store when the stack is deployed; pass --parameter {name}=VALUE")),
                Some(v) if p.list => Ok(Some(Value::Array(v.split(',').map(|s| Value::from(s.trim())).collect()))),
                Some(v) => Ok(Some(Value::from(v.as_str()))),
                None => Err(format!("parameter {name} has no Default; pass --parameter {name}=VALUE")),
            };
        }
        if let Some(resource) = self.resources.get(name) {
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("?");
            // A function's Ref is its name: known when the template gives it.
            if matches!(kind, "AWS::Lambda::Function" | "AWS::Serverless::Function") {
                if let Some(given) = resource.get("Properties").and_then(|p| p.get("FunctionName")) {
                    if self.depth.get() >= 8 {
                        return Err(format!("{name}'s FunctionName refers back to itself"));
                    }
                    self.depth.set(self.depth.get() + 1);
                    let resolved = self.value(given);
                    self.depth.set(self.depth.get() - 1);
                    return resolved.map_err(|why| format!("!Ref {name} is the function's name, FunctionName, which cannot be resolved: {why}"));
                }
                return Err(format!("{name} is a function ({kind}) without FunctionName: CloudFormation names it when it creates it"));
            }
            return Err(format!("{name} is a resource ({kind}) whose Ref is known only once CloudFormation creates it"));
        }
        Err(format!("{name} is neither a parameter nor a resource of this template"))
    }

    /// A value that may be an intrinsic, resolved as a whole; the reason is that of the first
    /// piece that cannot be.
    fn value(&self, value: &Value) -> Result<Option<Value>, String> {
        if let Some((name, arg)) = intrinsic(value) {
            return self.call(name, arg);
        }
        match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.extend(self.value(item)?);
                }
                Ok(Some(Value::Array(out)))
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    if let Some(v) = self.value(v)? {
                        out.insert(k.clone(), v);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// A resolved value that must be there (an argument of a function).
    fn required(&self, value: &Value) -> Result<Value, String> {
        self.value(value)?.ok_or_else(|| "AWS::NoValue cannot stand for an argument".to_string())
    }

    fn text(&self, value: &Value) -> Result<String, String> {
        let v = self.required(value)?;
        scalar_text(&v).ok_or_else(|| format!("expected text, found {v}"))
    }

    fn call(&self, name: &str, arg: &Value) -> Result<Option<Value>, String> {
        match name {
            "Ref" => match arg {
                Value::String(target) => self.reference(target),
                other => Err(format!("Ref takes a name, found {other}")),
            },
            "Fn::Sub" => self.sub(arg).map(|s| Some(Value::String(s))),
            "Fn::Join" => {
                let [delimiter, items] = two(arg, "Fn::Join takes [delimiter, [values]]")?;
                let delimiter = self.text(delimiter)?;
                let Value::Array(items) = self.required(items)? else { return Err("Fn::Join's second argument is not a list".into()) };
                let parts = items.iter().map(|i| scalar_text(i).ok_or_else(|| format!("Fn::Join: {i} is not text"))).collect::<Result<Vec<_>, _>>()?;
                Ok(Some(Value::String(parts.join(&delimiter))))
            }
            "Fn::Select" => {
                let [at, items] = two(arg, "Fn::Select takes [index, [values]]")?;
                let at = self.text(at)?.parse::<usize>().map_err(|_| "Fn::Select's index is not a number".to_string())?;
                let Value::Array(items) = self.required(items)? else { return Err("Fn::Select's second argument is not a list".into()) };
                let len = items.len();
                items.into_iter().nth(at).map(Some).ok_or_else(|| format!("Fn::Select: index {at} of a list of {len}"))
            }
            "Fn::Split" => {
                let [delimiter, source] = two(arg, "Fn::Split takes [delimiter, text]")?;
                let (delimiter, source) = (self.text(delimiter)?, self.text(source)?);
                if delimiter.is_empty() {
                    return Err("Fn::Split: empty delimiter".into());
                }
                Ok(Some(Value::Array(source.split(delimiter.as_str()).map(Value::from).collect())))
            }
            "Fn::FindInMap" => {
                let Value::Array(args) = arg else { return Err("Fn::FindInMap takes [map, top-level key, second-level key]".into()) };
                let [map, top, second] = &args[..] else { return Err("Fn::FindInMap takes [map, top-level key, second-level key]".into()) };
                let (map, top, second) = (self.text(map)?, self.text(top)?, self.text(second)?);
                let found = self.mappings.get(&map).and_then(|m| m.get(&top)).and_then(|m| m.get(&second));
                found.cloned().map(Some).ok_or_else(|| format!("Mappings.{map}.{top}.{second} is not in the template"))
            }
            "Fn::GetAtt" => {
                let resource = match arg {
                    Value::Array(parts) => parts.first().and_then(Value::as_str).unwrap_or("?"),
                    Value::String(s) => s.split('.').next().unwrap_or("?"),
                    _ => "?",
                };
                Err(self.attribute_reason(resource))
            }
            "Fn::ImportValue" => Err("the value is exported by another stack".into()),
            "Fn::If" => Err("Fn::If depends on the template's Conditions, which esmd import does not evaluate".into()),
            "Fn::GetAZs" | "Fn::Cidr" | "Fn::Base64" | "Fn::Transform" | "Fn::Length" | "Fn::ToJsonString" | "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" | "Condition" => {
                Err(format!("esmd import does not evaluate {name}"))
            }
            other => Err(format!("{other} is not an intrinsic function CloudFormation knows")),
        }
    }

    fn attribute_reason(&self, resource: &str) -> String {
        match self.resources.get(resource).and_then(|r| r.get("Type")).and_then(Value::as_str) {
            Some(kind) => format!("it is an attribute of {resource} ({kind}), known only once CloudFormation creates it"),
            None => format!("{resource} is not a resource of this template"),
        }
    }

    /// `Fn::Sub`: `"text ${Name} ${Resource.Attribute} ${!Literal}"` or `[text, {Name: value}]`.
    fn sub(&self, arg: &Value) -> Result<String, String> {
        let (template, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Array(parts) => match &parts[..] {
                [Value::String(s), Value::Object(vars)] => (s.as_str(), Some(vars)),
                _ => return Err("Fn::Sub takes text or [text, {variables}]".into()),
            },
            _ => return Err("Fn::Sub takes text or [text, {variables}]".into()),
        };
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let close = after.find('}').ok_or("`${` without `}`")?;
            let name = &after[..close];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.and_then(|vars| vars.get(name)) {
                out.push_str(&self.text(v).map_err(|why| format!("${{{name}}}: {why}"))?);
            } else if let Some((resource, _)) = name.split_once('.').filter(|_| !name.starts_with("AWS::")) {
                return Err(format!("${{{name}}}: {}", self.attribute_reason(resource)));
            } else {
                let v = self.reference(name)?.ok_or_else(|| format!("${{{name}}} is AWS::NoValue"))?;
                out.push_str(&scalar_text(&v).ok_or_else(|| format!("${{{name}}} is a list, not text"))?);
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn walk(&self, value: &Value, path: &str, out: &mut Vec<Unresolved>) -> Option<Value> {
        if intrinsic(value).is_some() {
            return match self.value(value) {
                Ok(v) => v,
                Err(why) => {
                    let or = if why.contains("--parameter") { "or " } else { "" };
                    out.push(Unresolved { path: path.to_string(), message: format!("{} cannot be resolved: {why}; {or}pass the value with --set {path}=VALUE", self.display(value)) });
                    None
                }
            };
        }
        match value {
            Value::Array(items) => Some(Value::Array(items.iter().enumerate().filter_map(|(i, v)| self.walk(v, &index(path, i), out)).collect())),
            Value::Object(map) => Some(Value::Object(map.iter().filter_map(|(k, v)| self.walk(v, &join(path, k), out).map(|v| (k.clone(), v))).collect())),
            other => Some(other.clone()),
        }
    }
}

impl Resolve for Context {
    /// Reports every unresolvable intrinsic inside `value`, each at its own path.
    fn resolve(&self, value: &Value, path: &str) -> Result<Option<Value>, Vec<Unresolved>> {
        let mut out = Vec::new();
        let resolved = self.walk(value, path, &mut out);
        if out.is_empty() {
            Ok(resolved)
        } else {
            Err(out)
        }
    }
}

/// `{"Ref": x}`, `{"Fn::Name": x}`, `{"Condition": x}`: a table of one such key.
fn intrinsic(value: &Value) -> Option<(&str, &Value)> {
    let Value::Object(map) = value else { return None };
    if map.len() != 1 {
        return None;
    }
    let (name, arg) = map.iter().next()?;
    (name == "Ref" || name == "Condition" || name.starts_with("Fn::")).then_some((name.as_str(), arg))
}

fn two<'a>(arg: &'a Value, usage: &str) -> Result<[&'a Value; 2], String> {
    match arg {
        Value::Array(items) => match &items[..] {
            [a, b] => Ok([a, b]),
            _ => Err(usage.to_string()),
        },
        _ => Err(usage.to_string()),
    }
}

/// Text, numbers and booleans as CloudFormation turns them into strings.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The partition of a region name.
pub(crate) fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// An intrinsic as the input writes it: `!GetAtt Orders.Arn`, or `{"Fn::GetAtt":["Orders","Arn"]}`.
pub(crate) fn display(style: Style, value: &Value) -> String {
    let compact = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    match (style, intrinsic(value)) {
        (Style::Yaml, Some(("Ref", Value::String(name)))) => format!("!Ref {name}"),
        (Style::Yaml, Some(("Condition", Value::String(name)))) => format!("!Condition {name}"),
        (Style::Yaml, Some(("Fn::GetAtt", Value::Array(parts)))) if parts.iter().all(Value::is_string) => {
            format!("!GetAtt {}", parts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("."))
        }
        (Style::Yaml, Some((name, arg))) => format!("!{} {}", name.trim_start_matches("Fn::"), compact(arg)),
        _ => compact(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({
            "Parameters": {
                "Env": {"Type": "String", "Default": "prod"},
                "Topics": {"Type": "CommaDelimitedList", "Default": "orders, refunds"},
                "NoDefault": {"Type": "String"},
                "FromSsm": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/orders/queue"},
                "Batch": {"Type": "Number", "Default": 25}
            },
            "Mappings": {"Sizes": {"prod": {"Batch": 100}}},
            "Resources": {
                "Queue": {"Type": "AWS::SQS::Queue"},
                "Named": {"Type": "AWS::Serverless::Function", "Properties": {"FunctionName": {"Fn::Sub": "${Env}-orders"}}},
                "Anonymous": {"Type": "AWS::Lambda::Function", "Properties": {}},
                "Loop": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": {"Ref": "Loop"}}}
            }
        })
    }

    fn ctx(overrides: &[(&str, &str)]) -> Context {
        let overrides: Vec<Parameter> = overrides.iter().map(|(n, v)| Parameter { name: n.to_string(), value: v.to_string() }).collect();
        let (ctx, unknown) = Context::new(&template(), Style::Yaml, &overrides);
        assert!(unknown.is_empty(), "{unknown:?}");
        ctx
    }

    fn ok(c: &Context, v: Value) -> Value {
        c.resolve(&v, "P").unwrap_or_else(|e| panic!("{e:?}")).unwrap_or(Value::Null)
    }

    fn why(c: &Context, v: Value) -> String {
        let e = c.resolve(&v, "Resources.M.Properties.X").unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].path, "Resources.M.Properties.X");
        e[0].message.clone()
    }

    #[test]
    fn parameters_and_pseudo_parameters() {
        let c = ctx(&[("AWS::Region", "cn-north-1"), ("AWS::AccountId", "123456789012")]);
        assert_eq!(ok(&c, json!({"Ref": "Env"})), json!("prod"));
        assert_eq!(ok(&c, json!({"Ref": "Batch"})), json!("25"));
        assert_eq!(ok(&c, json!({"Ref": "Topics"})), json!(["orders", "refunds"]));
        assert_eq!(ok(&c, json!({"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Env}-q"})), json!("arn:aws-cn:sqs:cn-north-1:123456789012:prod-q"));
        assert_eq!(ok(&c, json!({"Ref": "AWS::URLSuffix"})), json!("amazonaws.com.cn"));
        let over = ctx(&[("Env", "dev"), ("FromSsm", "q")]);
        assert_eq!(ok(&over, json!({"Ref": "Env"})), json!("dev"));
        assert_eq!(ok(&over, json!({"Ref": "FromSsm"})), json!("q"));
        let (_, unknown) = Context::new(&template(), Style::Yaml, &[Parameter { name: "Evn".into(), value: "x".into() }]);
        assert_eq!(unknown, ["Evn"]);
    }

    #[test]
    fn functions_over_resolvable_arguments() {
        let c = ctx(&[]);
        assert_eq!(ok(&c, json!({"Fn::Join": [":", ["a", {"Ref": "Env"}, 3]]})), json!("a:prod:3"));
        assert_eq!(ok(&c, json!({"Fn::Select": [1, {"Ref": "Topics"}]})), json!("refunds"));
        assert_eq!(ok(&c, json!({"Fn::Split": [",", "a,b"]})), json!(["a", "b"]));
        assert_eq!(ok(&c, json!({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Batch"]})), json!(100));
        assert_eq!(ok(&c, json!({"Fn::Sub": ["${Stream}/x ${!Literal}", {"Stream": {"Ref": "Env"}}]})), json!("prod/x ${Literal}"));
        assert_eq!(ok(&c, json!({"Ref": "Named"})), json!("prod-orders"));
        // AWS::NoValue drops the key or the list item.
        assert_eq!(ok(&c, json!({"A": {"Ref": "AWS::NoValue"}, "B": [1, {"Ref": "AWS::NoValue"}]})), json!({"B": [1]}));
        assert_eq!(c.resolve(&json!({"Ref": "AWS::NoValue"}), "P").unwrap(), None);
    }

    #[test]
    fn the_rest_is_reported_never_guessed() {
        let c = ctx(&[]);
        assert_eq!(
            why(&c, json!({"Fn::GetAtt": ["Queue", "Arn"]})),
            "!GetAtt Queue.Arn cannot be resolved: it is an attribute of Queue (AWS::SQS::Queue), known only once CloudFormation creates it; pass the value with --set Resources.M.Properties.X=VALUE"
        );
        assert!(why(&c, json!({"Ref": "Queue"})).contains("Queue is a resource (AWS::SQS::Queue) whose Ref is known only once"));
        assert!(why(&c, json!({"Ref": "Anonymous"})).contains("without FunctionName"));
        assert!(why(&c, json!({"Ref": "Loop"})).contains("refers back to itself"));
        assert!(why(&c, json!({"Ref": "NoDefault"})).contains("parameter NoDefault has no Default; pass --parameter NoDefault=VALUE"));
        assert!(why(&c, json!({"Ref": "FromSsm"})).contains("SSM Parameter Store"));
        assert!(why(&c, json!({"Fn::Sub": "arn:aws:sqs:${AWS::Region}:1:q"})).contains("pass --parameter AWS::Region=VALUE"));
        assert!(why(&c, json!({"Fn::Sub": "${Queue.Arn}"})).contains("attribute of Queue"));
        assert!(why(&c, json!({"Fn::ImportValue": "orders-queue-arn"})).starts_with("!ImportValue \"orders-queue-arn\" cannot be resolved: the value is exported by another stack"));
        assert!(why(&c, json!({"Fn::If": ["IsProd", 1, 2]})).contains("Conditions"));
        assert!(why(&c, json!({"Ref": "AWS::Partition"})).contains("--parameter AWS::Region=VALUE"));
        assert!(why(&c, json!({"Ref": "Nope"})).contains("neither a parameter nor a resource"));
        // Several in one value: each at its own path.
        let e = c.resolve(&json!([{"Ref": "NoDefault"}, {"Fn::GetAtt": ["Queue", "Arn"]}]), "T").unwrap_err();
        assert_eq!(e.iter().map(|u| u.path.as_str()).collect::<Vec<_>>(), ["T[0]", "T[1]"]);
    }

    #[test]
    fn display_follows_the_input() {
        let v = json!({"Fn::GetAtt": ["Orders", "Arn"]});
        assert_eq!(display(Style::Yaml, &v), "!GetAtt Orders.Arn");
        assert_eq!(display(Style::Json, &v), "{\"Fn::GetAtt\":[\"Orders\",\"Arn\"]}");
        assert_eq!(display(Style::Yaml, &json!({"Ref": "X"})), "!Ref X");
        assert_eq!(display(Style::Yaml, &json!({"Fn::Sub": "a${B}"})), "!Sub \"a${B}\"");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }
}
