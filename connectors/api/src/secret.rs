//! A string that never reaches a log line.

use serde::Deserialize;
use std::fmt;

/// A configuration value that is a credential (HTTP header values, passwords, SASL secrets,
/// tokens). `Debug` prints `"***"` and there is no `Display`, so a config struct holding one can
/// derive `Debug` and be logged safely; code that needs the value calls [`Secret::expose`].
///
/// Connector configs (kafka, rabbitmq, ...) type every password/secret/token field as `Secret`;
/// it lives here so connector crates can use it without depending on the service.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it (a request header, a SASL handshake).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(format!("{:?}", Some(&s)), "Some(\"***\")");
        assert_eq!(s.expose(), "hunter2");
    }
}
