//! `[mappings.source]` from an AWS definition: the event source ARN, Kafka's topics, brokers
//! and consumer group, MQ's queues, and the access configurations (credentials and
//! certificates live in Secrets Manager on AWS; esmd reads them from the environment and from
//! files, which the notes name).

use super::model::{text, Build};
use super::table::strings;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SourceKind {
    Sqs,
    Kinesis,
    DynamoDb,
    Msk,
    SelfManagedKafka,
    /// Amazon MQ; esmd reads RabbitMQ brokers.
    RabbitMq,
}

impl SourceKind {
    pub fn is_stream(self) -> bool {
        !matches!(self, SourceKind::Sqs | SourceKind::RabbitMq)
    }

    pub fn is_kafka(self) -> bool {
        matches!(self, SourceKind::Msk | SourceKind::SelfManagedKafka)
    }

    /// For messages.
    pub fn label(self) -> &'static str {
        match self {
            SourceKind::Sqs => "SQS",
            SourceKind::Kinesis => "Kinesis",
            SourceKind::DynamoDb => "DynamoDB Streams",
            SourceKind::Msk => "Amazon MSK",
            SourceKind::SelfManagedKafka => "self-managed Kafka",
            SourceKind::RabbitMq => "Amazon MQ",
        }
    }

    /// esmd's `type`.
    pub fn type_name(self) -> &'static str {
        match self {
            SourceKind::Sqs => "sqs",
            SourceKind::Kinesis => "kinesis",
            SourceKind::DynamoDb => "dynamodb_streams",
            SourceKind::Msk | SourceKind::SelfManagedKafka => "kafka",
            SourceKind::RabbitMq => "rabbitmq",
        }
    }
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    pub fn parse(text: &'a str) -> Option<Arn<'a>> {
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        match parts[..] {
            ["arn", partition, service, region, account, resource] if !partition.is_empty() && !service.is_empty() => Some(Arn { partition, service, region, account, resource }),
            _ => None,
        }
    }

    /// `amazonaws.com`, or `amazonaws.com.cn` in the China partition.
    fn dns_suffix(&self) -> &'static str {
        if self.partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Classified {
    Source(SourceKind),
    /// A source AWS has and esmd does not: the mapping is left out, with this reason.
    Skip(String),
    Invalid(String),
}

/// Which source a definition reads: by the event source ARN's service, or self-managed Kafka
/// when there is no ARN but bootstrap servers.
pub(crate) fn classify(arn: Option<&str>, self_managed: bool) -> Classified {
    let Some(text) = arn else {
        return if self_managed {
            Classified::Source(SourceKind::SelfManagedKafka)
        } else {
            Classified::Invalid("missing: a mapping needs EventSourceArn (or SelfManagedEventSource for self-managed Kafka)".into())
        };
    };
    let Some(arn) = Arn::parse(text) else {
        return Classified::Invalid(format!("{text:?} is not an ARN (arn:<partition>:<service>:<region>:<account>:<resource>)"));
    };
    match arn.service {
        "sqs" => Classified::Source(SourceKind::Sqs),
        "kinesis" => Classified::Source(SourceKind::Kinesis),
        "dynamodb" => Classified::Source(SourceKind::DynamoDb),
        "kafka" => Classified::Source(SourceKind::Msk),
        "mq" => Classified::Source(SourceKind::RabbitMq),
        "rds" | "docdb" => Classified::Skip("Amazon DocumentDB change streams: esmd has no DocumentDB source".into()),
        other => Classified::Invalid(format!("{text:?}: {other} is not an event source esmd knows (sqs, kinesis, dynamodb, kafka, mq)")),
    }
}

/// The source parts of a definition, resolved, each with its input path.
#[derive(Clone, Debug, Default)]
pub(crate) struct Inputs {
    pub arn: Option<(String, String)>,
    pub topics: Option<(Value, String)>,
    pub queues: Option<(Value, String)>,
    pub access: Option<(Value, String)>,
    /// The bootstrap server list itself.
    pub bootstrap: Option<(Value, String)>,
    pub group: Option<(Value, String)>,
    /// Kafka's `SchemaRegistryConfig`.
    pub schema_registry: Option<(Value, String)>,
}

/// A short name for the mapping's name: the queue, stream, table or topic.
pub(crate) fn short_name(kind: SourceKind, inputs: &Inputs) -> Option<String> {
    let first = |v: &Option<(Value, String)>| v.as_ref().and_then(|(v, _)| v.as_array()?.first()?.as_str().map(str::to_string));
    let resource = inputs.arn.as_ref().and_then(|(a, _)| Arn::parse(a).map(|a| a.resource.to_string()));
    match kind {
        SourceKind::Sqs => resource,
        SourceKind::Kinesis => resource.and_then(|r| r.strip_prefix("stream/").map(|s| s.split('/').next().unwrap_or(s).to_string())),
        SourceKind::DynamoDb => resource.and_then(|r| r.strip_prefix("table/").map(|s| s.split('/').next().unwrap_or(s).to_string())),
        SourceKind::Msk | SourceKind::SelfManagedKafka => first(&inputs.topics),
        SourceKind::RabbitMq => first(&inputs.queues),
    }
}

/// `ORDERS_FROM_KAFKA` from `orders-from-kafka`: the prefix of the variables a mapping reads.
pub(crate) fn variable_prefix(name: &str) -> String {
    let upper: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    if upper.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{upper}")
    } else {
        upper
    }
}

/// Writes `[mappings.source]` for a mapping called `name`.
pub(crate) fn build(kind: SourceKind, inputs: &Inputs, name: &str, b: &mut Build) {
    b.source("type", toml::Value::String(kind.type_name().into()), inputs.arn.as_ref().map_or("", |(_, p)| p.as_str()));
    match kind {
        SourceKind::Sqs | SourceKind::Kinesis | SourceKind::DynamoDb => aws_stream_or_queue(kind, inputs, b),
        SourceKind::Msk | SourceKind::SelfManagedKafka => kafka(kind, inputs, name, b),
        SourceKind::RabbitMq => rabbitmq(inputs, name, b),
    }
    if !kind.is_kafka() {
        for (part, what) in [(&inputs.topics, "Topics"), (&inputs.bootstrap, "bootstrap servers"), (&inputs.group, "ConsumerGroupId")] {
            if let Some((_, path)) = part {
                b.warn(path, format!("{what} applies to Kafka sources only, not {}: not imported", kind.label()));
            }
        }
    }
    if kind != SourceKind::RabbitMq {
        if let Some((_, path)) = &inputs.queues {
            b.warn(path, format!("Queues applies to Amazon MQ sources only, not {}: not imported", kind.label()));
        }
    }
}

fn aws_stream_or_queue(kind: SourceKind, inputs: &Inputs, b: &mut Build) {
    let Some((text_arn, path)) = &inputs.arn else { return };
    let Some(arn) = Arn::parse(text_arn) else { return };
    match kind {
        SourceKind::Sqs => {
            // The queue URL AWS gives every queue; esmd reads the queue by URL.
            let url = format!("https://sqs.{}.{}/{}/{}", arn.region, arn.dns_suffix(), arn.account, arn.resource);
            b.source("queue_url", text(&url), path);
        }
        SourceKind::Kinesis => match arn.resource.split_once("/consumer/") {
            Some((stream, consumer)) => {
                let stream_arn = format!("arn:{}:kinesis:{}:{}:{stream}", arn.partition, arn.region, arn.account);
                b.warn(path, format!("the mapping reads through the enhanced fan-out consumer {:?}; esmd reads the stream itself with GetRecords (shared throughput), not through the consumer", consumer.split(':').next().unwrap_or(consumer)));
                b.source("stream_arn", text(&stream_arn), path);
            }
            None => b.source("stream_arn", text(text_arn), path),
        },
        SourceKind::DynamoDb => {
            if !arn.resource.contains("/stream/") {
                b.error(path, format!("{text_arn:?} is a table ARN; a DynamoDB mapping reads the table's stream (its LatestStreamArn: arn:...:table/<table>/stream/<label>)"));
            }
            b.source("stream_arn", text(text_arn), path);
        }
        _ => {}
    }
    if let Some((list, path)) = &inputs.access {
        if !list.as_array().is_some_and(Vec::is_empty) {
            b.warn(path, format!("SourceAccessConfigurations does not apply to {} sources (the SDK's credentials are used): not imported", kind.label()));
        }
    }
}

fn one(part: &Option<(Value, String)>, what: &str, required_path: &str, b: &mut Build) -> Option<(String, String)> {
    let Some((value, path)) = part else {
        b.error(required_path, format!("{what} is required (a list of one name)"));
        return None;
    };
    match strings(value) {
        Ok(items) if items.len() == 1 => items.into_iter().next().map(|s| (s, path.clone())),
        Ok(items) => {
            b.error(path, format!("{what} has {} entries; a mapping reads exactly one (as on AWS)", items.len()));
            None
        }
        Err(e) => {
            b.error(path, format!("{what}: {e}"));
            None
        }
    }
}

/// The access configurations as (type, URI, path).
fn access_entries(inputs: &Inputs, b: &mut Build) -> Vec<(String, String, String)> {
    let Some((value, path)) = &inputs.access else { return Vec::new() };
    let Value::Array(items) = value else {
        b.error(path, format!("expected a list of {{Type, URI}}, found {value}"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        match (item.get("Type").and_then(Value::as_str), item.get("URI").and_then(Value::as_str)) {
            (Some(t), Some(uri)) => out.push((t.to_string(), uri.to_string(), at)),
            _ => b.error(&at, format!("expected {{\"Type\": ..., \"URI\": ...}}, found {item}")),
        }
    }
    out
}

/// One warning for all VPC entries: they place AWS's pollers in a network, which has no
/// meaning where esmd runs.
fn vpc_warning(entries: &[(String, String, String)], inputs: &Inputs, b: &mut Build) {
    let vpc: Vec<&str> = entries.iter().filter(|(t, _, _)| t.starts_with("VPC_")).map(|(_, uri, _)| uri.as_str()).collect();
    if let (false, Some((_, path))) = (vpc.is_empty(), &inputs.access) {
        b.warn(path, format!("VPC_SUBNET/VPC_SECURITY_GROUP ({}): esmd connects from the network it runs in; the VPC placement is not imported", vpc.join(", ")));
    }
}

fn kafka(kind: SourceKind, inputs: &Inputs, name: &str, b: &mut Build) {
    let prefix = variable_prefix(name);
    let arn_path = inputs.arn.as_ref().map_or(String::new(), |(_, p)| p.clone());
    match kind {
        SourceKind::Msk => {
            let variable = format!("{prefix}_BOOTSTRAP_SERVERS");
            let servers = b.variable(&variable, "broker.invalid:9096");
            b.source("bootstrap_servers", toml::Value::Array(vec![toml::Value::String(servers)]), &arn_path);
            let cluster = inputs.arn.as_ref().map_or("<cluster ARN>", |(a, _)| a.as_str());
            b.note(
                &arn_path,
                format!("an MSK mapping names the cluster, not its brokers: set {variable} to a broker's host:port (`aws kafka get-bootstrap-brokers --cluster-arn {cluster}`), or write the list into source.bootstrap_servers"),
            );
            if let Some((arn, path)) = &inputs.arn {
                b.source("cluster_arn", text(arn), path);
            }
        }
        _ => match &inputs.bootstrap {
            Some((value, path)) => match strings(value) {
                Ok(servers) => b.source("bootstrap_servers", toml::Value::Array(servers.iter().map(|s| text(s)).collect()), path),
                Err(e) => b.error(path, format!("bootstrap servers: {e}")),
            },
            None => b.error(&arn_path, "self-managed Kafka needs SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS"),
        },
    }
    let topics_path = inputs.arn.as_ref().map(|(_, p)| p.clone()).or_else(|| inputs.bootstrap.as_ref().map(|(_, p)| p.clone())).unwrap_or_default();
    if let Some((topic, path)) = one(&inputs.topics, "Topics", &topics_path, b) {
        b.source("topic", text(&topic), &path);
    }
    match &inputs.group {
        Some((Value::String(group), path)) => b.source("consumer_group_id", text(group), path),
        Some((other, path)) => b.error(path, format!("ConsumerGroupId: expected text, found {other}")),
        None => b.note(
            &topics_path,
            format!("no ConsumerGroupId: esmd joins the group esmd-{name} and starts at starting_position; to continue from the offsets AWS committed, set source.consumer_group_id to the group AWS used"),
        ),
    }

    let entries = access_entries(inputs, b);
    vpc_warning(&entries, inputs, b);
    let mut sasl: Option<(&str, &str, &str)> = None;
    let mut tls = toml::Table::new();
    let mut client_certificate = false;
    for (kind_name, uri, path) in &entries {
        match kind_name.as_str() {
            "BASIC_AUTH" | "SASL_SCRAM_256_AUTH" | "SASL_SCRAM_512_AUTH" => {
                let mechanism = match kind_name.as_str() {
                    "BASIC_AUTH" => "PLAIN",
                    "SASL_SCRAM_256_AUTH" => "SCRAM-SHA-256",
                    _ => "SCRAM-SHA-512",
                };
                if sasl.is_some() {
                    b.error(path, "a second SASL authentication: a mapping authenticates one way");
                }
                sasl = Some((mechanism, uri, path));
            }
            "CLIENT_CERTIFICATE_TLS_AUTH" => {
                tls.insert("cert_file".into(), text(&format!("certs/{name}-client.pem")));
                tls.insert("key_file".into(), text(&format!("certs/{name}-client-key.pem")));
                client_certificate = true;
                b.note(path, format!("AWS reads the client certificate and key from Secrets Manager secret {uri}; esmd reads PEM files: write its certificate to certs/{name}-client.pem and its privateKey to certs/{name}-client-key.pem (with a privateKeyPassword, add source.tls.key_password)"));
            }
            "SERVER_ROOT_CA_CERTIFICATE" => {
                tls.insert("ca_file".into(), text(&format!("certs/{name}-ca.pem")));
                b.note(path, format!("AWS reads the brokers' root CA from Secrets Manager secret {uri}; esmd reads a PEM file: write it to certs/{name}-ca.pem"));
            }
            "VPC_SUBNET" | "VPC_SECURITY_GROUP" => {}
            "VIRTUAL_HOST" => b.warn(path, "VIRTUAL_HOST applies to Amazon MQ (RabbitMQ) sources only: not imported"),
            other => b.warn(path, format!("access configuration type {other} is not one esmd knows for Kafka: not imported")),
        }
    }
    if let Some((mechanism, uri, path)) = sasl {
        let username = b.variable(&format!("{prefix}_USERNAME"), "user");
        let password = b.variable(&format!("{prefix}_PASSWORD"), "not-a-secret");
        let mut table = toml::Table::new();
        table.insert("mechanism".into(), toml::Value::String(mechanism.into()));
        table.insert("username".into(), toml::Value::String(username.clone()));
        table.insert("password".into(), toml::Value::String(password.clone()));
        b.source("sasl", toml::Value::Table(table), path);
        b.note(path, format!("AWS reads the SASL/{mechanism} credentials from Secrets Manager secret {uri}; esmd reads them from {username} and {password} (`aws secretsmanager get-secret-value --secret-id {uri}`)"));
    }
    // AWS reaches MSK over TLS always, and self-managed brokers over TLS whenever it
    // authenticates (SASL_SSL, mutual TLS) or was given a CA.
    let tls_on = kind == SourceKind::Msk || sasl.is_some() || !tls.is_empty();
    if kind == SourceKind::Msk && sasl.is_none() && !client_certificate {
        b.warn(
            &arn_path,
            "without SourceAccessConfigurations AWS authenticates to MSK with IAM (port 9098); esmd has no IAM authentication for Kafka: the output connects with TLS and no client authentication (MSK's unauthenticated TLS listener, port 9094); add source.sasl or a client certificate if the cluster requires one",
        );
    }
    if tls_on {
        let mut table = toml::Table::new();
        table.insert("enabled".into(), toml::Value::Boolean(true));
        table.extend(tls);
        let path = inputs.access.as_ref().map_or(arn_path.clone(), |(_, p)| p.clone());
        b.source("tls", toml::Value::Table(table), &path);
    }
    if let Some((config, path)) = &inputs.schema_registry {
        schema_registry(config, path, &prefix, name, b);
    }
}

/// `SchemaRegistryConfig` → `source.schema_registry`. Secrets become variables and files, as
/// for the brokers' own access configurations.
fn schema_registry(config: &Value, path: &str, prefix: &str, name: &str, b: &mut Build) {
    let Value::Object(config) = config else {
        b.error(path, format!("expected {{\"SchemaRegistryURI\": ...}}, found {config}"));
        return;
    };
    let mut table = toml::Table::new();
    let mut tls = toml::Table::new();
    for (k, v) in config {
        let at = format!("{path}.{k}");
        match (k.as_str(), v) {
            ("SchemaRegistryURI", Value::String(uri)) => {
                table.insert("uri".into(), text(uri));
            }
            ("EventRecordFormat", Value::String(f)) if f == "JSON" || f == "SOURCE" => {
                table.insert("event_record_format".into(), text(f));
            }
            ("SchemaValidationConfigs", Value::Array(list)) => {
                let attributes: Vec<toml::Value> = list.iter().filter_map(|c| c.get("Attribute").and_then(Value::as_str)).map(text).collect();
                if attributes.len() != list.len() {
                    b.error(&at, "expected [{\"Attribute\": \"KEY\" | \"VALUE\"}, ...]");
                }
                table.insert("validate".into(), toml::Value::Array(attributes));
            }
            ("AccessConfigs", Value::Array(list)) => {
                for (i, c) in list.iter().enumerate() {
                    let at = format!("{at}[{i}]");
                    let (Some(kind), Some(uri)) = (c.get("Type").and_then(Value::as_str), c.get("URI").and_then(Value::as_str)) else {
                        b.error(&at, "expected {\"Type\": ..., \"URI\": \"<secret ARN>\"}");
                        continue;
                    };
                    match kind {
                        "BASIC_AUTH" => {
                            let username = b.variable(&format!("{prefix}_REGISTRY_USERNAME"), "user");
                            let password = b.variable(&format!("{prefix}_REGISTRY_PASSWORD"), "not-a-secret");
                            let mut auth = toml::Table::new();
                            auth.insert("username".into(), toml::Value::String(username.clone()));
                            auth.insert("password".into(), toml::Value::String(password.clone()));
                            table.insert("basic_auth".into(), toml::Value::Table(auth));
                            b.note(&at, format!("AWS reads the schema registry's credentials from Secrets Manager secret {uri}; esmd reads them from {username} and {password}"));
                        }
                        "CLIENT_CERTIFICATE_TLS_AUTH" => {
                            tls.insert("cert_file".into(), text(&format!("certs/{name}-registry-client.pem")));
                            tls.insert("key_file".into(), text(&format!("certs/{name}-registry-client-key.pem")));
                            b.note(&at, format!("AWS reads the registry client certificate from Secrets Manager secret {uri}; esmd reads PEM files: write its certificate to certs/{name}-registry-client.pem and its privateKey to certs/{name}-registry-client-key.pem"));
                        }
                        "SERVER_ROOT_CA_CERTIFICATE" => {
                            tls.insert("ca_file".into(), text(&format!("certs/{name}-registry-ca.pem")));
                            b.note(&at, format!("AWS reads the registry's root CA from Secrets Manager secret {uri}; esmd reads a PEM file: write it to certs/{name}-registry-ca.pem"));
                        }
                        other => b.warn(&at, format!("schema registry access type {other} is not one esmd knows (BASIC_AUTH, CLIENT_CERTIFICATE_TLS_AUTH, SERVER_ROOT_CA_CERTIFICATE): not imported")),
                    }
                }
            }
            (other, value) => b.error(&at, format!("{other} = {value} is not a SchemaRegistryConfig setting esmd knows")),
        }
    }
    if !table.contains_key("uri") {
        b.error(path, "SchemaRegistryConfig needs SchemaRegistryURI");
    }
    if !table.contains_key("event_record_format") {
        table.insert("event_record_format".into(), text("JSON"));
        b.note(path, "no EventRecordFormat: esmd needs one; imported as JSON");
    }
    if !table.contains_key("validate") {
        table.insert("validate".into(), toml::Value::Array(vec![text("VALUE")]));
        b.note(path, "no SchemaValidationConfigs: esmd needs at least one; imported as [\"VALUE\"]");
    }
    if !tls.is_empty() {
        table.insert("tls".into(), toml::Value::Table(tls));
    }
    b.source("schema_registry", toml::Value::Table(table), path);
}

fn rabbitmq(inputs: &Inputs, name: &str, b: &mut Build) {
    let Some((text_arn, arn_path)) = &inputs.arn else { return };
    // arn:aws:mq:<region>:<account>:broker:<name>:<broker id>; the broker's AMQP endpoint is
    // named after its id.
    let broker_id = Arn::parse(text_arn).and_then(|arn| {
        let mut parts = arn.resource.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("broker"), Some(_), Some(id)) if id.starts_with("b-") => Some((id.to_string(), arn.region.to_string(), arn.dns_suffix())),
            _ => None,
        }
    });
    match broker_id {
        Some((id, region, suffix)) => {
            let uri = format!("amqps://{id}.mq.{region}.{suffix}:5671");
            b.source("uri", text(&uri), arn_path);
            b.note(arn_path, format!("source.uri is the broker's Amazon MQ endpoint, {uri}; esmd reads RabbitMQ brokers only (not ActiveMQ)"));
        }
        None => b.error(arn_path, format!("{text_arn:?} is not an Amazon MQ broker ARN (arn:aws:mq:<region>:<account>:broker:<name>:<broker id>)")),
    }
    if let Some((queue, path)) = one(&inputs.queues, "Queues", arn_path, b) {
        b.source("queue", text(&queue), &path);
    }
    let entries = access_entries(inputs, b);
    vpc_warning(&entries, inputs, b);
    let prefix = variable_prefix(name);
    let mut credentials = false;
    for (kind_name, uri, path) in &entries {
        match kind_name.as_str() {
            "VIRTUAL_HOST" => b.source("virtual_host", text(uri), path),
            "BASIC_AUTH" if !credentials => {
                credentials = true;
                let username = b.variable(&format!("{prefix}_USERNAME"), "user");
                let password = b.variable(&format!("{prefix}_PASSWORD"), "not-a-secret");
                b.source("username", toml::Value::String(username.clone()), path);
                b.source("password", toml::Value::String(password.clone()), path);
                b.note(path, format!("AWS reads the broker credentials from Secrets Manager secret {uri}; esmd reads them from {username} and {password} (`aws secretsmanager get-secret-value --secret-id {uri}`)"));
            }
            "BASIC_AUTH" => b.error(path, "a second BASIC_AUTH: a mapping has one set of credentials"),
            "VPC_SUBNET" | "VPC_SECURITY_GROUP" => {}
            other => b.warn(path, format!("access configuration type {other} does not apply to Amazon MQ: not imported")),
        }
    }
    if !credentials {
        b.note(arn_path, "no BASIC_AUTH: esmd connects as RabbitMQ's default guest user; set source.username and source.password");
    }
    b.source("broker_arn", text(text_arn), arn_path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn built(kind: SourceKind, inputs: Inputs) -> Build {
        let mut b = Build::default();
        build(kind, &inputs, "orders", &mut b);
        b
    }

    fn get<'a>(b: &'a Build, key: &str) -> Option<&'a toml::Value> {
        b.mapping.source.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn arn(s: &str) -> Option<(String, String)> {
        Some((s.into(), "EventSourceArn".into()))
    }

    #[test]
    fn classifies_by_service() {
        assert_eq!(classify(Some("arn:aws:sqs:us-east-1:123456789012:q"), false), Classified::Source(SourceKind::Sqs));
        assert_eq!(classify(Some("arn:aws:kafka:us-east-1:123456789012:cluster/c/1"), false), Classified::Source(SourceKind::Msk));
        assert_eq!(classify(None, true), Classified::Source(SourceKind::SelfManagedKafka));
        assert!(matches!(classify(Some("arn:aws:rds:us-east-1:123456789012:cluster:docs"), false), Classified::Skip(_)));
        assert!(matches!(classify(Some("arn:aws:sns:us-east-1:123456789012:t"), false), Classified::Invalid(_)));
        assert!(matches!(classify(Some("orders"), false), Classified::Invalid(_)));
        assert!(matches!(classify(None, false), Classified::Invalid(_)));
    }

    #[test]
    fn aws_sources_by_arn() {
        let b = built(SourceKind::Sqs, Inputs { arn: arn("arn:aws:sqs:eu-west-1:123456789012:orders.fifo"), ..Inputs::default() });
        assert_eq!(get(&b, "queue_url"), Some(&text("https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo")));
        let b = built(SourceKind::Sqs, Inputs { arn: arn("arn:aws-cn:sqs:cn-north-1:123456789012:q"), ..Inputs::default() });
        assert_eq!(get(&b, "queue_url"), Some(&text("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q")));
        let b = built(SourceKind::Kinesis, Inputs { arn: arn("arn:aws:kinesis:us-east-1:123456789012:stream/clicks/consumer/esm:1700000000"), ..Inputs::default() });
        assert_eq!(get(&b, "stream_arn"), Some(&text("arn:aws:kinesis:us-east-1:123456789012:stream/clicks")));
        assert!(b.said[0].message.contains("enhanced fan-out consumer \"esm\""));
        let b = built(SourceKind::DynamoDb, Inputs { arn: arn("arn:aws:dynamodb:us-east-1:123456789012:table/orders"), ..Inputs::default() });
        assert!(b.errors[0].1.contains("table ARN"));
        assert_eq!(short_name(SourceKind::DynamoDb, &Inputs { arn: arn("arn:aws:dynamodb:us-east-1:1:table/orders/stream/2024"), ..Inputs::default() }).as_deref(), Some("orders"));
    }

    #[test]
    fn msk_with_scram_and_a_group() {
        let inputs = Inputs {
            arn: arn("arn:aws:kafka:us-east-1:123456789012:cluster/orders/abc-1"),
            topics: Some((json!(["orders"]), "Topics".into())),
            group: Some((json!("orders-consumers"), "AmazonManagedKafkaEventSourceConfig.ConsumerGroupId".into())),
            access: Some((json!([{"Type": "SASL_SCRAM_512_AUTH", "URI": "arn:aws:secretsmanager:us-east-1:123456789012:secret:AmazonMSK_orders-x"}]), "SourceAccessConfigurations".into())),
            ..Inputs::default()
        };
        let b = built(SourceKind::Msk, inputs);
        assert!(b.errors.is_empty(), "{:?}", b.errors);
        assert_eq!(get(&b, "bootstrap_servers").map(ToString::to_string).as_deref(), Some("[\"${ORDERS_BOOTSTRAP_SERVERS}\"]"));
        assert_eq!(get(&b, "topic"), Some(&text("orders")));
        assert_eq!(get(&b, "consumer_group_id"), Some(&text("orders-consumers")));
        let sasl = get(&b, "sasl").and_then(|v| v.as_table()).unwrap();
        assert_eq!(sasl.get("mechanism").and_then(|v| v.as_str()), Some("SCRAM-SHA-512"));
        assert_eq!(sasl.get("password").and_then(|v| v.as_str()), Some("${ORDERS_PASSWORD}"));
        assert_eq!(get(&b, "tls").and_then(|v| v.as_table()).and_then(|t| t.get("enabled")), Some(&toml::Value::Boolean(true)));
        let names: Vec<&str> = b.mapping.variables.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ORDERS_BOOTSTRAP_SERVERS", "ORDERS_USERNAME", "ORDERS_PASSWORD"]);
    }

    #[test]
    fn schema_registry_config_becomes_source_schema_registry() {
        let inputs = Inputs {
            bootstrap: Some((json!(["k1:9092"]), "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS".into())),
            topics: Some((json!(["orders"]), "Topics".into())),
            schema_registry: Some((
                json!({
                    "SchemaRegistryURI": "https://registry.example.com",
                    "EventRecordFormat": "SOURCE",
                    "SchemaValidationConfigs": [{"Attribute": "KEY"}, {"Attribute": "VALUE"}],
                    "AccessConfigs": [
                        {"Type": "BASIC_AUTH", "URI": "arn:aws:secretsmanager:us-east-1:1:secret:sr"},
                        {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": "arn:aws:secretsmanager:us-east-1:1:secret:ca"}
                    ]
                }),
                "SelfManagedKafkaEventSourceConfig.SchemaRegistryConfig".into(),
            )),
            ..Inputs::default()
        };
        let b = built(SourceKind::SelfManagedKafka, inputs);
        assert!(b.errors.is_empty(), "{:?}", b.errors);
        let sr = get(&b, "schema_registry").and_then(|v| v.as_table()).unwrap();
        assert_eq!(sr.get("uri").and_then(|v| v.as_str()), Some("https://registry.example.com"));
        assert_eq!(sr.get("event_record_format").and_then(|v| v.as_str()), Some("SOURCE"));
        assert_eq!(sr.get("validate").map(ToString::to_string).as_deref(), Some("[\"KEY\", \"VALUE\"]"));
        assert_eq!(sr["basic_auth"]["password"].as_str(), Some("${ORDERS_REGISTRY_PASSWORD}"));
        assert!(sr["tls"]["ca_file"].as_str().unwrap().ends_with("-registry-ca.pem"));
        assert!(b.said.iter().any(|s| s.message.contains("arn:aws:secretsmanager:us-east-1:1:secret:sr")));
        let b = built(SourceKind::SelfManagedKafka, Inputs {
            bootstrap: Some((json!(["k1:9092"]), "B".into())),
            topics: Some((json!(["t"]), "Topics".into())),
            schema_registry: Some((json!({"SchemaRegistryURI": "arn:aws:glue:us-east-1:1:registry/r"}), "S".into())),
            ..Inputs::default()
        });
        let sr = get(&b, "schema_registry").and_then(|v| v.as_table()).unwrap();
        assert_eq!((sr["event_record_format"].as_str(), sr["validate"].to_string().as_str()), (Some("JSON"), "[\"VALUE\"]"));
    }

    #[test]
    fn msk_without_auth_warns_of_iam_and_kafka_needs_one_topic() {
        let b = built(SourceKind::Msk, Inputs { arn: arn("arn:aws:kafka:us-east-1:1:cluster/c/1"), topics: Some((json!(["a", "b"]), "Topics".into())), ..Inputs::default() });
        assert!(b.said.iter().any(|s| s.message.contains("IAM")));
        assert_eq!(b.errors, [("Topics".to_string(), "Topics has 2 entries; a mapping reads exactly one (as on AWS)".to_string())]);
        let b = built(SourceKind::SelfManagedKafka, Inputs { bootstrap: Some((json!(["k1:9092", "k2:9092"]), "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS".into())), topics: Some((json!(["t"]), "Topics".into())), ..Inputs::default() });
        assert!(b.errors.is_empty());
        assert_eq!(get(&b, "tls"), None, "no authentication: plaintext, as AWS");
        assert_eq!(get(&b, "bootstrap_servers").map(ToString::to_string).as_deref(), Some("[\"k1:9092\", \"k2:9092\"]"));
    }

    #[test]
    fn rabbitmq_from_the_broker_arn() {
        let inputs = Inputs {
            arn: arn("arn:aws:mq:us-east-1:123456789012:broker:orders:b-9bcfa592-423a-4942-879d-eb284b418fc8"),
            queues: Some((json!(["emails"]), "Queues".into())),
            access: Some((json!([{"Type": "BASIC_AUTH", "URI": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mq-x"}, {"Type": "VIRTUAL_HOST", "URI": "/prod"}, {"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"}]), "SourceAccessConfigurations".into())),
            ..Inputs::default()
        };
        let b = built(SourceKind::RabbitMq, inputs);
        assert!(b.errors.is_empty(), "{:?}", b.errors);
        assert_eq!(get(&b, "uri"), Some(&text("amqps://b-9bcfa592-423a-4942-879d-eb284b418fc8.mq.us-east-1.amazonaws.com:5671")));
        assert_eq!(get(&b, "virtual_host"), Some(&text("/prod")));
        assert_eq!(get(&b, "username").and_then(|v| v.as_str()), Some("${ORDERS_USERNAME}"));
        assert!(b.said.iter().any(|s| s.message.contains("VPC")));
        assert_eq!(variable_prefix("7-up"), "_7_UP");
    }
}
