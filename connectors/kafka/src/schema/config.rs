//! `[mappings.source.schema_registry]`: AWS's `SchemaRegistryConfig` for Kafka sources.
//!
//! | esmd                   | AWS                                                   |
//! |------------------------|-------------------------------------------------------|
//! | `uri`                  | `SchemaRegistryURI` (a Confluent URL or a Glue registry ARN) |
//! | `event_record_format`  | `EventRecordFormat` (`JSON` or `SOURCE`)              |
//! | `validate`             | `SchemaValidationConfigs[].Attribute` (`KEY`, `VALUE`) |
//! | `basic_auth`           | `AccessConfigs` `BASIC_AUTH` (a secret's username and password) |
//! | `tls.ca_file`          | `AccessConfigs` `SERVER_ROOT_CA_CERTIFICATE`          |
//! | `tls.cert_file`, `tls.key_file` | `AccessConfigs` `CLIENT_CERTIFICATE_TLS_AUTH`  |
//! | `endpoint_url`, `region` | (esmd) where Glue's API is reached: an emulator, a VPC endpoint |

use esmd_api::config::ConfigIssue;
use esmd_api::Secret;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// `https://registry:8081` (Confluent's REST API) or
    /// `arn:aws:glue:<region>:<account>:registry/<name>` (AWS Glue Schema Registry).
    pub uri: String,
    /// Required, as in AWS's CDK and console: what the function receives.
    pub event_record_format: EventRecordFormat,
    /// Which parts of each record are decoded and validated against their schema. Parts not
    /// named reach the function as they are, base64 of their bytes.
    pub validate: Vec<Attribute>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub tls: Option<RegistryTls>,
    /// Glue only: an endpoint override (moto, LocalStack, a VPC endpoint).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Glue only: default the registry ARN's region.
    #[serde(default)]
    pub region: Option<String>,
}

/// What the function receives of a decoded key or value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum EventRecordFormat {
    /// The record as JSON (base64 of its JSON text, like every Kafka value).
    #[serde(rename = "JSON")]
    Json,
    /// The record's own bytes after the schema id (Protobuf still led by its message index).
    #[serde(rename = "SOURCE")]
    Source,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum Attribute {
    #[serde(rename = "KEY")]
    Key,
    #[serde(rename = "VALUE")]
    Value,
}

impl Attribute {
    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::Key => "KEY",
            Attribute::Value => "VALUE",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: Secret,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryTls {
    /// PEM file of the CA that signed the registry's certificate (default: the system's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// The kind of registry a URI names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryUri {
    Confluent { base: String },
    Glue { arn: String, region: String, name: String },
}

impl RegistryUri {
    pub fn parse(uri: &str) -> Result<RegistryUri, String> {
        if let Some(rest) = uri.strip_prefix("arn:") {
            // arn:<partition>:glue:<region>:<account>:registry/<name>
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            return match parts[..] {
                [_, "glue", region, account, resource] if !region.is_empty() && !account.is_empty() => match resource.strip_prefix("registry/") {
                    Some(name) if !name.is_empty() && !name.contains('/') => Ok(RegistryUri::Glue { arn: uri.to_string(), region: region.to_string(), name: name.to_string() }),
                    _ => Err(format!("{uri:?} is not a Glue registry ARN (arn:aws:glue:<region>:<account>:registry/<name>)")),
                },
                _ => Err(format!("{uri:?} is not a Glue registry ARN (arn:aws:glue:<region>:<account>:registry/<name>)")),
            };
        }
        let scheme_ok = uri.starts_with("http://") || uri.starts_with("https://");
        let host = uri.split_once("://").map(|(_, r)| r.split(['/', '?']).next().unwrap_or_default()).unwrap_or_default();
        if !scheme_ok || host.is_empty() {
            return Err(format!("{uri:?} is neither an http(s) URL of a Confluent schema registry nor a Glue registry ARN"));
        }
        Ok(RegistryUri::Confluent { base: uri.trim_end_matches('/').to_string() })
    }
}

impl SchemaRegistryConfig {
    /// Paths are relative to the mapping (`source.schema_registry.uri`).
    pub fn validate(&self) -> Vec<ConfigIssue> {
        const AT: &str = "source.schema_registry";
        let mut out = Vec::new();
        let uri = RegistryUri::parse(&self.uri);
        if let Err(e) = &uri {
            out.push(ConfigIssue::new(format!("{AT}.uri"), format!("{AT}.uri = {e}")));
        }
        if self.validate.is_empty() {
            out.push(ConfigIssue::new(format!("{AT}.validate"), format!("{AT}.validate is empty: name \"KEY\", \"VALUE\" or both (AWS: SchemaValidationConfigs)")));
        }
        let mut seen = Vec::new();
        for (i, a) in self.validate.iter().enumerate() {
            if seen.contains(a) {
                out.push(ConfigIssue::new(format!("{AT}.validate[{i}]"), format!("{AT}.validate[{i}] = {:?} is named twice", a.as_str())));
            }
            seen.push(*a);
        }
        let glue = matches!(uri, Ok(RegistryUri::Glue { .. }));
        if glue {
            if self.basic_auth.is_some() {
                out.push(ConfigIssue::new(format!("{AT}.basic_auth"), format!("{AT}.basic_auth is for Confluent registries; Glue is reached with AWS credentials")));
            }
            if self.tls.is_some() {
                out.push(ConfigIssue::new(format!("{AT}.tls"), format!("{AT}.tls is for Confluent registries; Glue's endpoint is HTTPS with the system's roots")));
            }
        } else if uri.is_ok() {
            for (key, set) in [("endpoint_url", self.endpoint_url.is_some()), ("region", self.region.is_some())] {
                if set {
                    out.push(ConfigIssue::new(format!("{AT}.{key}"), format!("{AT}.{key} is for Glue registries (an arn:aws:glue:… uri)")));
                }
            }
        }
        if let Some(u) = &self.endpoint_url {
            esmd_api::config::check_http_url(&mut out, &format!("{AT}.endpoint_url"), u);
        }
        if let Some(tls) = &self.tls {
            esmd_api::config::check_client_certificate(&mut out, &format!("{AT}.tls"), tls.cert_file.as_deref(), tls.key_file.as_deref());
        }
        if let Some(auth) = &self.basic_auth {
            if auth.username.is_empty() {
                out.push(ConfigIssue::new(format!("{AT}.basic_auth.username"), format!("{AT}.basic_auth.username is empty")));
            }
        }
        out
    }

    pub fn decodes(&self, attribute: Attribute) -> bool {
        self.validate.contains(&attribute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> SchemaRegistryConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn uris_name_a_confluent_registry_or_a_glue_registry() {
        assert_eq!(RegistryUri::parse("http://127.0.0.1:8081/").unwrap(), RegistryUri::Confluent { base: "http://127.0.0.1:8081".into() });
        assert_eq!(RegistryUri::parse("https://sr.example.com/ctx").unwrap(), RegistryUri::Confluent { base: "https://sr.example.com/ctx".into() });
        assert_eq!(
            RegistryUri::parse("arn:aws:glue:eu-west-1:123456789012:registry/orders").unwrap(),
            RegistryUri::Glue { arn: "arn:aws:glue:eu-west-1:123456789012:registry/orders".into(), region: "eu-west-1".into(), name: "orders".into() }
        );
        for bad in ["registry:8081", "http://", "arn:aws:glue:eu-west-1:1:schema/x/y", "arn:aws:kafka:eu-west-1:1:registry/x", "arn:aws:glue::1:registry/x"] {
            assert!(RegistryUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_and_rules_name_the_key() {
        let c = parse(json!({"uri": "http://127.0.0.1:8081", "event_record_format": "JSON", "validate": ["VALUE"]}));
        assert_eq!(c.event_record_format, EventRecordFormat::Json);
        assert!(serde_json::from_value::<SchemaRegistryConfig>(json!({"uri": "http://h:1", "validate": ["VALUE"]})).is_err(), "event_record_format is required");
        assert!(c.validate().is_empty());
        assert!(c.decodes(Attribute::Value) && !c.decodes(Attribute::Key));
        let c = parse(json!({
            "uri": "arn:aws:glue:us-east-1:1:registry/r", "event_record_format": "SOURCE", "validate": ["KEY", "KEY"],
            "basic_auth": {"username": "", "password": "p"}, "tls": {"cert_file": "/c.pem"}, "endpoint_url": "localhost:5000"
        }));
        let paths: Vec<_> = c.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            [
                "source.schema_registry.validate[1]",
                "source.schema_registry.basic_auth",
                "source.schema_registry.tls",
                "source.schema_registry.endpoint_url",
                "source.schema_registry.tls",
                "source.schema_registry.basic_auth.username"
            ]
        );
        let c = parse(json!({"uri": "ftp://x", "event_record_format": "JSON", "validate": [], "region": "us-east-1"}));
        let issues = c.validate();
        assert_eq!(issues[0].message, "source.schema_registry.uri = \"ftp://x\" is neither an http(s) URL of a Confluent schema registry nor a Glue registry ARN");
        assert_eq!(issues[1].path, "source.schema_registry.validate");
        assert!(serde_json::from_value::<SchemaRegistryConfig>(json!({"uri": "http://h:1", "validate": ["VALUE"], "event_record_format": "AVRO"})).is_err());
        assert!(serde_json::from_value::<SchemaRegistryConfig>(json!({"uri": "http://h:1", "validate": ["VALUE"], "schema_registry_uri": "x"})).is_err());
    }
}
