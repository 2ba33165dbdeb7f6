//! A string that never reaches a log line.

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;
use std::fmt;

/// A configuration value that is a credential (HTTP header values, passwords, SASL secrets,
/// tokens). `Debug` prints `"***"` and there is no `Display`, so a config struct holding one can
/// derive `Debug` and be logged safely; code that needs the value calls [`Secret::expose`].
///
/// Connector configs (kafka, rabbitmq, ...) type every password/secret/token field as `Secret`;
/// it lives here so connector crates can use it without depending on the service.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// A string. Anything else is refused without being shown: serde's own message would quote it
/// ("invalid type: integer `123456`, expected a string"), and an unquoted numeric password is
/// still a password.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `any`, not `string`: a self-describing deserializer (the config's JSON tree) reports a
        // wrong type itself, value included, unless the visitor gets to see it.
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl SecretVisitor {
    fn hidden<E: de::Error>(&self, what: &'static str) -> E {
        E::invalid_type(Unexpected::Other(what), self)
    }
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string (quote the value; it is a secret, so it is not shown here)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(self.hidden("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        Err(self.hidden("a number"))
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Secret, E> {
        Err(self.hidden("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        Err(self.hidden("a number"))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Secret, E> {
        Err(self.hidden("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(self.hidden("a number"))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Err(self.hidden("bytes"))
    }
}

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

    #[test]
    fn deserializes_strings_and_refuses_the_rest_without_quoting_it() {
        let s: Secret = serde_json::from_value(serde_json::json!("hunter2")).unwrap();
        assert_eq!(s.expose(), "hunter2");
        for value in [serde_json::json!(7391824650u64), serde_json::json!(-7391824650i64), serde_json::json!(7391.824650), serde_json::json!(true)] {
            let e = serde_json::from_value::<Secret>(value.clone()).unwrap_err().to_string();
            assert!(e.starts_with("invalid type: a ") && e.contains("expected a string"), "{value}: {e}");
            assert!(!e.contains("7391") && !e.contains("true"), "{value}: {e}");
        }
        let e = serde_json::from_value::<Secret>(serde_json::json!({"a": 1})).unwrap_err().to_string();
        assert!(e.contains("expected a string"), "{e}");
        // In a struct, as the connectors' configs hold it.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Sasl {
            password: Secret,
        }
        let e = serde_json::from_str::<Sasl>(r#"{"password": 123456}"#).unwrap_err().to_string();
        assert!(!e.contains("123456"), "{e}");
    }
}
