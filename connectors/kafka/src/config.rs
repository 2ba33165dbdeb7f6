//! `[mappings.source]` with `type = "kafka"`, and the librdkafka properties it becomes.

use crate::schema::config::SchemaRegistryConfig;
use esmd_api::config::ConfigIssue;
use esmd_api::Secret;
use rdkafka::error::KafkaError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A Kafka source: one topic of one cluster, read by a consumer group.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// `host:port` of 1–10 brokers (AWS: `KAFKA_BOOTSTRAP_SERVERS`).
    pub bootstrap_servers: Vec<String>,
    /// The one topic this mapping reads (AWS: `Topics`, exactly one).
    pub topic: String,
    /// The consumer group (AWS: `ConsumerGroupId`, ≤ 200 characters). Default: derived from the
    /// mapping's name, so it is stable across restarts. When the group has committed offsets they
    /// win over `starting_position`.
    #[serde(default)]
    pub consumer_group_id: Option<String>,
    /// An MSK cluster ARN: events then say `"eventSource":"aws:kafka"` with this
    /// `eventSourceArn`, as AWS does for MSK. Without it: `SelfManagedKafka`.
    #[serde(default)]
    pub cluster_arn: Option<String>,
    #[serde(default)]
    pub sasl: Option<Sasl>,
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Keys and values written with a schema registry's serializers, decoded for the function
    /// and for filters (AWS: `SchemaRegistryConfig`; see [`crate::schema`]).
    #[serde(default)]
    pub schema_registry: Option<SchemaRegistryConfig>,
    /// Extra librdkafka properties (`fetch.max.bytes`, `client.id`, ...). Keys that would break
    /// esmd's guarantees (auto-commit, offset store, group id, ...) are rejected at load.
    #[serde(default)]
    pub properties: BTreeMap<String, Secret>,
}

/// SASL authentication (AWS: `BASIC_AUTH` with PLAIN, `SASL_SCRAM_256_AUTH`, `SASL_SCRAM_512_AUTH`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// TLS to the brokers (AWS: `SERVER_ROOT_CA_CERTIFICATE`, `CLIENT_CERTIFICATE_TLS_AUTH`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// PEM file of the CA that signed the brokers' certificates (default: the system's).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub key_password: Option<Secret>,
    /// Check that the broker's certificate names the host connected to.
    #[serde(default = "yes")]
    pub verify_hostname: bool,
}

fn yes() -> bool {
    true
}

/// librdkafka properties esmd sets itself; a user value would break a guarantee or contradict
/// a named setting.
const RESERVED: &[(&str, &str)] = &[
    ("bootstrap.servers", "use source.bootstrap_servers"),
    ("group.id", "use source.consumer_group_id"),
    ("enable.auto.commit", "esmd commits offsets only after records are finished"),
    ("enable.auto.offset.store", "esmd commits offsets only after records are finished"),
    ("auto.offset.reset", "use the mapping's starting_position"),
    ("security.protocol", "set by source.sasl and source.tls"),
    ("sasl.mechanism", "use source.sasl.mechanism"),
    ("sasl.mechanisms", "use source.sasl.mechanism"),
    ("sasl.username", "use source.sasl.username"),
    ("sasl.password", "use source.sasl.password"),
    ("enable.partition.eof", "esmd reads partitions as endless logs"),
];

impl KafkaSourceConfig {
    /// Rules AWS applies to these parameters, plus esmd's own. Paths are relative to the mapping
    /// (`source.topic`).
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        let mut issue = |path: &str, message: String| out.push(ConfigIssue { path: path.to_string(), message });
        let n = self.bootstrap_servers.len();
        if !(1..=10).contains(&n) {
            issue("source.bootstrap_servers", format!("source.bootstrap_servers has {n} entries; AWS allows 1–10"));
        }
        for (i, server) in self.bootstrap_servers.iter().enumerate() {
            let ok = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                issue(&format!("source.bootstrap_servers[{i}]"), format!("source.bootstrap_servers[{i}] = {server:?} is not host:port"));
            }
        }
        // Kafka's own topic name rule.
        let valid_topic = !self.topic.is_empty()
            && self.topic.len() <= 249
            && self.topic != "."
            && self.topic != ".."
            && self.topic.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !valid_topic {
            issue("source.topic", format!("source.topic = {:?} is not a Kafka topic name (1–249 of A-Za-z0-9._-)", self.topic));
        }
        if let Some(g) = &self.consumer_group_id {
            if g.is_empty() || g.chars().count() > 200 {
                issue("source.consumer_group_id", format!("source.consumer_group_id must be 1–200 characters (has {})", g.chars().count()));
            }
        }
        if let Some(arn) = &self.cluster_arn {
            if !arn.starts_with("arn:") || !arn.contains(":kafka:") {
                issue("source.cluster_arn", format!("source.cluster_arn = {arn:?} is not an MSK cluster ARN (arn:aws:kafka:...)"));
            }
        }
        if let Some(tls) = &self.tls {
            let mut pair = Vec::new();
            esmd_api::config::check_client_certificate(&mut pair, "source.tls", tls.cert_file.as_deref(), tls.key_file.as_deref());
            pair.into_iter().for_each(|i| issue(&i.path, i.message));
            if !tls.enabled && (tls.ca_file.is_some() || tls.cert_file.is_some()) {
                issue("source.tls.enabled", "source.tls.enabled = false but certificate files are set".into());
            }
        }
        for key in self.properties.keys() {
            if let Some((_, why)) = RESERVED.iter().find(|(k, _)| k == key) {
                issue(&format!("source.properties.{key}"), format!("source.properties.{key} cannot be set here: {why}"));
            }
        }
        if let Some(registry) = &self.schema_registry {
            out.extend(registry.validate());
        }
        out
    }

    /// The group this mapping consumes as.
    pub fn group_id(&self, mapping_name: &str) -> String {
        self.consumer_group_id.clone().unwrap_or_else(|| format!("esmd-{mapping_name}"))
    }

    /// `bootstrapServers` as AWS writes it in events: comma-separated.
    pub fn bootstrap_string(&self) -> String {
        self.bootstrap_servers.join(",")
    }

    /// Connection and security properties shared by the consumer and the failure producer.
    pub fn client_properties(&self) -> Vec<(String, String)> {
        let mut props = vec![("bootstrap.servers".to_string(), self.bootstrap_string())];
        let tls_on = self.tls.as_ref().is_some_and(|t| t.enabled);
        let protocol = match (self.sasl.is_some(), tls_on) {
            (false, false) => "plaintext",
            (false, true) => "ssl",
            (true, false) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        props.push(("security.protocol".into(), protocol.into()));
        if let Some(s) = &self.sasl {
            props.push(("sasl.mechanism".into(), s.mechanism.as_str().into()));
            props.push(("sasl.username".into(), s.username.clone()));
            props.push(("sasl.password".into(), s.password.expose().into()));
        }
        if let Some(t) = self.tls.as_ref().filter(|t| t.enabled) {
            if let Some(ca) = &t.ca_file {
                props.push(("ssl.ca.location".into(), ca.display().to_string()));
            }
            if let Some(cert) = &t.cert_file {
                props.push(("ssl.certificate.location".into(), cert.display().to_string()));
            }
            if let Some(key) = &t.key_file {
                props.push(("ssl.key.location".into(), key.display().to_string()));
            }
            if let Some(pw) = &t.key_password {
                props.push(("ssl.key.password".into(), pw.expose().into()));
            }
            let algo = if t.verify_hostname { "https" } else { "none" };
            props.push(("ssl.endpoint.identification.algorithm".into(), algo.into()));
        }
        for (k, v) in &self.properties {
            props.push((k.clone(), v.expose().to_string()));
        }
        props
    }
}

/// Hands `props` to librdkafka the way a client gets them, without creating one (nothing
/// connects): a property it refuses is reported by key, never with its value.
pub(crate) fn check_properties(props: &[(String, String)]) -> Result<(), String> {
    let mut client = rdkafka::ClientConfig::new();
    for (k, v) in props {
        client.set(k.as_str(), v.as_str());
    }
    client.create_native_config().map(drop).map_err(|e| client_error(&e))
}

/// A librdkafka error for display. rdkafka's message for a refused property ("Client config
/// error: <reason> <key> <value>") ends with the value, which may be a password, and
/// librdkafka's reason can quote it (`Invalid value "…" for configuration property "…"`):
/// both are left out.
pub(crate) fn client_error(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, reason, key, _value) => format!("librdkafka refused property {key:?}: {}", mask_quoted(reason, key)),
        other => other.to_string(),
    }
}

/// `reason` with every quoted text other than `key` replaced by `***`.
fn mask_quoted(reason: &str, key: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('"') else {
            // An unbalanced quote: the rest may be the value.
            out.push_str("***");
            return out;
        };
        let quoted = &after[..close];
        out.push_str(if quoted == key { quoted } else { "***" });
        out.push('"');
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refused_properties_are_named_without_their_values() {
        let c = parse(json!({"bootstrap_servers": ["127.0.0.1:9092"], "topic": "t", "properties": {"ssl.keystore.passwrd": "hunter2-secret"}}));
        let e = check_properties(&c.client_properties()).unwrap_err();
        assert!(e.starts_with("librdkafka refused property \"ssl.keystore.passwrd\": No such configuration property: \"ssl.keystore.passwrd\""), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        // librdkafka quotes a bad token of a list property in its reason.
        let c = parse(json!({"bootstrap_servers": ["127.0.0.1:9092"], "topic": "t", "properties": {"debug": "broker,hunter2-secret"}}));
        let e = check_properties(&c.client_properties()).unwrap_err();
        assert!(e.starts_with("librdkafka refused property \"debug\": "), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let c = parse(json!({"bootstrap_servers": ["127.0.0.1:9092"], "topic": "t", "sasl": {"mechanism": "PLAIN", "username": "u", "password": "hunter2-secret"}, "properties": {"debug": "all"}}));
        assert_eq!(check_properties(&c.client_properties()), Ok(()));
        assert_eq!(mask_quoted("Invalid value \"x\" for configuration property \"k\"", "k"), "Invalid value \"***\" for configuration property \"k\"");
        assert_eq!(mask_quoted("odd \"half", "k"), "odd \"***");
    }

    fn parse(v: serde_json::Value) -> KafkaSourceConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn minimal_config_is_plaintext_with_a_derived_group() {
        let c = parse(json!({"bootstrap_servers": ["127.0.0.1:9092"], "topic": "orders"}));
        assert!(c.validate().is_empty());
        assert_eq!(c.group_id("m1"), "esmd-m1");
        let props = c.client_properties();
        assert!(props.contains(&("security.protocol".into(), "plaintext".into())));
        assert!(props.contains(&("bootstrap.servers".into(), "127.0.0.1:9092".into())));
    }

    #[test]
    fn sasl_scram_over_tls_with_client_certificate() {
        let c = parse(json!({
            "bootstrap_servers": ["b1:9096", "b2:9096"], "topic": "t",
            "sasl": {"mechanism": "SCRAM-SHA-512", "username": "u", "password": "p"},
            "tls": {"ca_file": "/ca.pem", "cert_file": "/c.pem", "key_file": "/k.pem"},
            "properties": {"client.id": "x"}
        }));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let props = c.client_properties();
        for (k, v) in [
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.password", "p"),
            ("ssl.ca.location", "/ca.pem"),
            ("ssl.certificate.location", "/c.pem"),
            ("ssl.key.location", "/k.pem"),
            ("client.id", "x"),
            ("bootstrap.servers", "b1:9096,b2:9096"),
        ] {
            assert!(props.contains(&(k.to_string(), v.to_string())), "{k} missing in {props:?}");
        }
        // The password never reaches Debug output.
        assert!(!format!("{c:?}").contains("\"p\""));
    }

    #[test]
    fn rules_name_the_key() {
        let c = parse(json!({
            "bootstrap_servers": ["nohost", "h:0"], "topic": "bad topic",
            "consumer_group_id": "", "cluster_arn": "arn:aws:kinesis:x",
            "tls": {"cert_file": "/c.pem"},
            "properties": {"enable.auto.commit": "true"}
        }));
        let paths: Vec<_> = c.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            [
                "source.bootstrap_servers[0]",
                "source.bootstrap_servers[1]",
                "source.topic",
                "source.consumer_group_id",
                "source.cluster_arn",
                "source.tls",
                "source.properties.enable.auto.commit"
            ]
        );
        let c = parse(json!({"bootstrap_servers": [], "topic": "t"}));
        assert_eq!(c.validate()[0].message, "source.bootstrap_servers has 0 entries; AWS allows 1–10");
        assert!(serde_json::from_value::<KafkaSourceConfig>(json!({"bootstrap_servers": ["a:1"], "topic": "t", "sasl": {"mechanism": "GSSAPI", "username": "u", "password": "p"}})).is_err());
    }
}
