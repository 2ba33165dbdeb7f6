//! `[mappings.source]` with `type = "rabbitmq"`, and the broker connection it (and the
//! `rabbitmq://` destination) opens.

use esmd_api::config::ConfigIssue;
use esmd_api::Secret;
use serde::Deserialize;
use std::path::PathBuf;

/// A RabbitMQ source: one queue of one virtual host (AWS: `Queues`, exactly one, and
/// `VIRTUAL_HOST`), read by one consumer with manual acknowledgements.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RabbitMqSourceConfig {
    /// `amqp://host:port` or `amqps://host:port`. Credentials and the virtual host have keys of
    /// their own, so a password never needs URL-escaping.
    pub uri: String,
    #[serde(default = "default_vhost")]
    pub virtual_host: String,
    pub queue: String,
    /// PLAIN credentials (AWS: `BASIC_AUTH`). Default: guest/guest, RabbitMQ's own default.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub tls: Option<Tls>,
    /// One batch at a time, and a failed batch comes back before any later message: publish
    /// order is kept. Pair it with an `x-single-active-consumer` queue when several esmd
    /// instances read the queue.
    #[serde(default)]
    pub ordered: bool,
    /// The Amazon MQ broker ARN events carry as `eventSourceArn`. Default: a stand-in built from
    /// the host and virtual host.
    #[serde(default)]
    pub broker_arn: Option<String>,
}

/// TLS for `amqps://` (custom root CA, client certificate for mutual TLS).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM file of the CA that signed the broker's certificate (default: the system's).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and PKCS#8 key.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// Where and as whom to connect: the source's broker, or a destination's.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RabbitMqConnection {
    pub uri: String,
    #[serde(default = "default_vhost")]
    pub virtual_host: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub tls: Option<Tls>,
}

fn default_vhost() -> String {
    "/".into()
}

impl RabbitMqSourceConfig {
    pub fn connection(&self) -> RabbitMqConnection {
        RabbitMqConnection {
            uri: self.uri.clone(),
            virtual_host: self.virtual_host.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            tls: self.tls.clone(),
        }
    }

    /// Rules serde cannot express. Paths start at `source.`.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut out = self.connection().validate("source");
        // RabbitMQ's own limit: a queue name is a short string of at most 255 bytes.
        if self.queue.is_empty() || self.queue.len() > 255 {
            out.push(ConfigIssue { path: "source.queue".into(), message: format!("source.queue = {:?} must be 1–255 bytes", self.queue) });
        } else if self.queue.starts_with("amq.") {
            out.push(ConfigIssue { path: "source.queue".into(), message: format!("source.queue = {:?}: names starting with \"amq.\" are the broker's own", self.queue) });
        }
        if let Some(arn) = &self.broker_arn {
            if !arn.starts_with("arn:") || !arn.contains(":mq:") {
                out.push(ConfigIssue { path: "source.broker_arn".into(), message: format!("source.broker_arn = {arn:?} is not an Amazon MQ broker ARN (arn:aws:mq:...)") });
            }
        }
        out
    }
}

impl RabbitMqConnection {
    /// Rules of the connection keys under `prefix` (`source`, `destination_config.on_failure.connection`).
    pub fn validate(&self, prefix: &str) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        let mut issue = |key: &str, message: String| out.push(ConfigIssue { path: format!("{prefix}.{key}"), message: format!("{prefix}.{key}{message}") });
        match crate::uri::parse_uri(&self.uri) {
            // Without user info: a URI refused for holding credentials would show them.
            Err(why) => issue("uri", format!(" = {:?}: {why}", crate::uri::redact_uri(&self.uri))),
            Ok(uri) => {
                if self.tls.is_some() && uri.scheme != lapin::uri::AMQPScheme::AMQPS {
                    issue("tls", " applies only to amqps:// URIs".into());
                }
            }
        }
        if self.virtual_host.is_empty() || self.virtual_host.len() > 255 {
            issue("virtual_host", format!(" = {:?} must be 1–255 bytes", self.virtual_host));
        }
        if self.password.is_some() && self.username.is_none() {
            issue("username", " is missing: a password needs a username".into());
        }
        if let Some(tls) = &self.tls {
            esmd_api::config::check_client_certificate(&mut out, &format!("{prefix}.tls"), tls.cert_file.as_deref(), tls.key_file.as_deref());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn source(extra: Value) -> Result<RabbitMqSourceConfig, String> {
        let mut v = json!({"uri": "amqp://127.0.0.1:5672", "queue": "jobs"});
        if let (Some(o), Value::Object(extra)) = (v.as_object_mut(), extra) {
            o.extend(extra);
        }
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    fn messages(extra: Value) -> Vec<String> {
        source(extra).unwrap().validate().into_iter().map(|i| i.message).collect()
    }

    #[test]
    fn defaults() {
        let c = source(json!({})).unwrap();
        assert_eq!(c.virtual_host, "/");
        assert!(!c.ordered && c.username.is_none() && c.tls.is_none());
        assert!(messages(json!({})).is_empty());
        assert!(messages(json!({"uri": "amqps://broker:5671", "tls": {"ca_file": "ca.pem"}, "username": "u", "password": "p"})).is_empty());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(source(json!({"prefetch": 10})).unwrap_err().contains("unknown field `prefetch`"));
    }

    #[test]
    fn rules_name_their_key() {
        assert!(messages(json!({"uri": "http://x"}))[0].starts_with("source.uri = \"http://x\": "));
        assert!(messages(json!({"queue": "amq.gen-1"}))[0].starts_with("source.queue = \"amq.gen-1\""));
        assert!(messages(json!({"queue": ""}))[0].starts_with("source.queue = \"\" must be 1–255 bytes"));
        assert_eq!(messages(json!({"password": "p"})), ["source.username is missing: a password needs a username"]);
        assert_eq!(messages(json!({"tls": {}})), ["source.tls applies only to amqps:// URIs"]);
        assert_eq!(
            messages(json!({"uri": "amqps://h:5671", "tls": {"cert_file": "c.pem"}})),
            ["source.tls: cert_file and key_file go together (mutual TLS needs both)"]
        );
        assert!(messages(json!({"broker_arn": "arn:aws:sqs:x"}))[0].contains("not an Amazon MQ broker ARN"));
        assert_eq!(
            messages(json!({"uri": "amqp://guest:hunter2@127.0.0.1:5672"})),
            ["source.uri = \"amqp://***@127.0.0.1:5672\": put credentials in username and password, not in the URI"]
        );
    }
}
