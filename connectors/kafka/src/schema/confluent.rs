//! The Confluent Schema Registry REST API: `GET /schemas/ids/{id}`, and
//! `GET /subjects/{subject}/versions/{version}` for the schemas a schema references.

use super::config::{BasicAuth, RegistryTls};
use super::format::{DataFormat, Definition};
use super::registry::{FetchError, Fetched, Registry};
use super::wire::SchemaRef;
use async_trait::async_trait;
use serde::Deserialize;
use std::time::Duration;

/// A registry's answer waits no longer than this; then the fetch counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// References of references: a cycle or a runaway chain stops here.
const MAX_REFERENCES: usize = 64;

pub struct Confluent {
    base: String,
    http: reqwest::Client,
    auth: Option<BasicAuth>,
}

#[derive(Deserialize)]
struct SchemaResponse {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
}

#[derive(Deserialize)]
struct Reference {
    name: String,
    subject: String,
    version: i64,
}

impl Confluent {
    pub fn new(base: &str, auth: Option<BasicAuth>, tls: Option<&RegistryTls>) -> Result<Confluent, String> {
        let mut http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).connect_timeout(Duration::from_secs(5));
        if let Some(tls) = tls {
            let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("source.schema_registry.tls: cannot read {}: {e}", p.display()));
            if let Some(ca) = &tls.ca_file {
                let pem = read(ca)?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("source.schema_registry.tls.ca_file: {}: {e}", ca.display()))?;
                if certs.is_empty() {
                    return Err(format!("source.schema_registry.tls.ca_file: {} holds no PEM certificate", ca.display()));
                }
                for cert in certs {
                    http = http.add_root_certificate(cert);
                }
            }
            if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
                let mut pem = read(cert)?;
                pem.push(b'\n');
                pem.extend(read(key)?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| format!("source.schema_registry.tls: the client certificate and key: {e}"))?;
                http = http.identity(identity);
            }
        }
        let http = http.build().map_err(|e| format!("source.schema_registry: cannot build an HTTP client: {e}"))?;
        Ok(Confluent { base: base.to_string(), http, auth })
    }

    async fn get(&self, path: &str) -> Result<SchemaResponse, FetchError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.get(&url).header("accept", "application/vnd.schemaregistry.v1+json, application/json");
        if let Some(a) = &self.auth {
            request = request.basic_auth(&a.username, Some(a.password.expose()));
        }
        let response = request.send().await.map_err(|e| FetchError::Unavailable(format!("GET {url}: {}", without_url(&e))))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            let body = response.text().await.unwrap_or_default();
            return Err(FetchError::NotFound(format!("GET {url}: 404 {}", body.trim())));
        }
        if !status.is_success() {
            // 401/403 are configuration, 5xx and 429 the registry's state: either way the
            // records wait for an operator or the registry, and nothing is dropped.
            let body = response.text().await.unwrap_or_default();
            return Err(FetchError::Unavailable(format!("GET {url}: {status} {}", body.trim())));
        }
        response.json().await.map_err(|e| FetchError::Unavailable(format!("GET {url}: the answer is not a schema: {}", without_url(&e))))
    }
}

/// reqwest's errors repeat the URL, which the message already names.
fn without_url(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    if let Some(url) = e.url() {
        out = out.replace(&format!(" for url ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[async_trait]
impl Registry for Confluent {
    async fn fetch(&self, schema: &SchemaRef) -> Result<Fetched, FetchError> {
        let SchemaRef::Confluent(id) = schema else {
            return Err(FetchError::NotFound(format!("schema {schema} is not a Confluent schema id")));
        };
        let root = self.get(&format!("/schemas/ids/{id}")).await?;
        let format = DataFormat::parse(root.schema_type.as_deref()).map_err(|e| FetchError::NotFound(format!("schema {id}: {e}")))?;
        // References name schemas by subject and version; a schema can reference others in
        // turn. Protobuf imports them by name, Avro by the named types they define.
        let mut imports = std::collections::BTreeMap::new();
        let mut pending: Vec<Reference> = root.references;
        while let Some(r) = pending.pop() {
            if imports.contains_key(&r.name) {
                continue;
            }
            if imports.len() >= MAX_REFERENCES {
                return Err(FetchError::NotFound(format!("schema {id} references more than {MAX_REFERENCES} schemas")));
            }
            let subject: String = url_segment(&r.subject);
            let got = self.get(&format!("/subjects/{subject}/versions/{}", r.version)).await?;
            imports.insert(r.name, got.schema);
            pending.extend(got.references);
        }
        Ok(Fetched { format, definition: Definition { text: root.schema, imports } })
    }

    fn describe(&self) -> &str {
        &self.base
    }
}

/// A subject as one path segment: Confluent subjects are free text (`topic-value`, record
/// names with dots, anything a naming strategy makes).
fn url_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_path_segment() {
        assert_eq!(url_segment("orders-value"), "orders-value");
        assert_eq!(url_segment("a/b c:é"), "a%2Fb%20c%3A%C3%A9");
    }
}
