//! Reading a broker URI: a leaf that both the config's checks and the connection use.

use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};

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

/// `text` for messages: anything before an `@` (user info written into the URI, password
/// included) becomes `***`. The last `@` counts, as a password may hold one.
pub(crate) fn redact_uri(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), text),
    };
    match rest.rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_left_out_of_messages() {
        assert_eq!(redact_uri("amqp://guest:hunter2@127.0.0.1:5672"), "amqp://***@127.0.0.1:5672");
        assert_eq!(redact_uri("amqps://u:p/a@ss@h/%2f"), "amqps://***@h/%2f");
        assert_eq!(redact_uri("user:hunter2@h"), "***@h");
        assert_eq!(redact_uri("amqp://127.0.0.1:5672"), "amqp://127.0.0.1:5672");
    }

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
