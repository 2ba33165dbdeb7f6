//! Opening a connection from a [`RabbitMqConnection`]: URI, PLAIN credentials, TLS files.

use crate::config::RabbitMqConnection;
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{Connection, ConnectionProperties};

/// How long a connection attempt may take before it counts as failed (and is retried).
const CONNECT_TIMEOUT_MS: u64 = 10_000;

/// Reads `amqp://host[:port]` or `amqps://host[:port]`. Credentials and the virtual host have
/// their own keys, so the URI carries neither.
pub(crate) fn parse_uri(text: &str) -> Result<AMQPUri, String> {
    let (scheme, rest) = if let Some(rest) = text.strip_prefix("amqp://") {
        (AMQPScheme::AMQP, rest)
    } else if let Some(rest) = text.strip_prefix("amqps://") {
        (AMQPScheme::AMQPS, rest)
    } else {
        return Err("the URI must start with amqp:// or amqps://".into());
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('@') {
        return Err("put credentials in username and password, not in the URI".into());
    }
    if rest.contains('/') || rest.contains('?') {
        return Err("the URI is amqp[s]://host[:port]; the virtual host has its own key (virtual_host)".into());
    }
    let (host, port) = match rest.rsplit_once(':') {
        // An IPv6 literal without a port ("[::1]") has colons but ends in ']'.
        Some((host, port)) if !port.ends_with(']') => {
            let port: u16 = port.parse().map_err(|_| format!("{port:?} is not a port"))?;
            (host, port)
        }
        _ => (rest, scheme.default_port()),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("the URI has no host".into());
    }
    Ok(AMQPUri {
        scheme,
        authority: AMQPAuthority { userinfo: AMQPUserInfo::default(), host: host.to_string(), port },
        vhost: "/".into(),
        query: AMQPQueryString { connection_timeout: Some(CONNECT_TIMEOUT_MS), ..Default::default() },
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Config(String),
    #[error("{path}: {error}")]
    File { path: String, error: std::io::Error },
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
}

/// Connects; `name` shows in the broker's management UI (`esmd:<mapping>`).
pub(crate) async fn connect(conn: &RabbitMqConnection, name: &str) -> Result<Connection, ConnectError> {
    let mut uri = parse_uri(&conn.uri).map_err(ConnectError::Config)?;
    uri.vhost = conn.virtual_host.clone();
    if let Some(user) = &conn.username {
        uri.authority.userinfo = AMQPUserInfo {
            username: user.clone(),
            password: conn.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default(),
        };
    }
    let read = |path: &std::path::Path| std::fs::read(path).map_err(|error| ConnectError::File { path: path.display().to_string(), error });
    let mut tls = OwnedTLSConfig::default();
    if let Some(t) = &conn.tls {
        if let Some(ca) = &t.ca_file {
            tls.cert_chain = Some(String::from_utf8_lossy(&read(ca)?).into_owned());
        }
        if let (Some(cert), Some(key)) = (&t.cert_file, &t.key_file) {
            tls.identity = Some(OwnedIdentity::PKCS8 { pem: read(cert)?, key: read(key)? });
        }
    }
    let props = ConnectionProperties::default().with_connection_name(name.into());
    let runtime = lapin::runtime::default_runtime()?;
    Ok(Connection::connect_uri_with_config(uri, props, tls, runtime).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let u = parse_uri("amqp://127.0.0.1:5672").unwrap();
        assert_eq!((u.scheme, u.authority.host.as_str(), u.authority.port), (AMQPScheme::AMQP, "127.0.0.1", 5672));
        let u = parse_uri("amqps://b-1.mq.us-east-1.amazonaws.com/").unwrap();
        assert_eq!((u.scheme, u.authority.port), (AMQPScheme::AMQPS, 5671));
        assert_eq!(parse_uri("amqp://[::1]:5673").unwrap().authority.host, "::1");
        assert_eq!(parse_uri("amqp://[::1]").unwrap().authority.port, 5672);
        assert!(parse_uri("amqp://guest:guest@h").unwrap_err().contains("username and password"));
        assert!(parse_uri("amqp://h/%2f").unwrap_err().contains("virtual_host"));
        assert!(parse_uri("http://h").unwrap_err().contains("amqp://"));
        assert!(parse_uri("amqp://h:x").unwrap_err().contains("not a port"));
        assert!(parse_uri("amqp://").unwrap_err().contains("no host"));
    }
}
