//! Opening a connection from a [`RabbitMqConnection`]: URI, PLAIN credentials, TLS files.

use crate::config::RabbitMqConnection;
use crate::uri::parse_uri;
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::AMQPUserInfo;
use lapin::{Connection, ConnectionProperties};

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
