//! `${NAME}` and `${NAME:-default}` in string values.
//!
//! Interpolation runs on the parsed document, one string value at a time, never on the raw
//! text: a value containing quotes or newlines cannot change the file's structure, and an error
//! can name the key the reference sits in. Keys are never interpolated. `$${` is a literal `${`
//! (for filter patterns that must match the text `${...}`). As in a shell, `:-` also applies
//! the default when the variable is set but empty.

use serde_json::Value;

/// Looks up an environment variable; tests pass a map instead of the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment. A variable that is not valid Unicode counts as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvError {
    /// `${NAME}` without a default and `NAME` is not set.
    Missing(String),
    /// `${` without its `}`.
    Unterminated,
    /// `${...}` whose name is not `[A-Za-z_][A-Za-z0-9_]*`.
    BadName(String),
}

impl std::fmt::Display for EnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvError::Missing(name) => {
                write!(f, "environment variable {name} is not set (write ${{{name}:-default}} to give a default)")
            }
            EnvError::Unterminated => f.write_str("`${` without a closing `}` (write `$${` for a literal `${`)"),
            EnvError::BadName(name) => write!(f, "`${{{name}}}` is not a variable name (letters, digits, `_`; not starting with a digit)"),
        }
    }
}

/// Replaces every reference in `input`. Errors stop at the first bad reference of the string.
pub fn interpolate(input: &str, env: EnvLookup<'_>) -> Result<String, EnvError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let close = after.find('}').ok_or(EnvError::Unterminated)?;
            let inner = &after[..close];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if !is_name(name) {
                return Err(EnvError::BadName(inner.to_string()));
            }
            let value = match (env(name), default) {
                (Some(v), Some(d)) if v.is_empty() => d.to_string(),
                (Some(v), _) => v,
                (None, Some(d)) => d.to_string(),
                (None, None) => return Err(EnvError::Missing(name.to_string())),
            };
            out.push_str(&value);
            rest = &after[close + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Interpolates every string value of a document in place. `path` is the key path of `value`;
/// each failure is reported with the path of the string it is in. A failed string keeps its
/// text (the load fails anyway) so the rest of the document is still checked.
pub fn interpolate_tree(value: &mut Value, path: &str, env: EnvLookup<'_>, failures: &mut Vec<(String, EnvError)>) {
    match value {
        Value::String(s) => {
            // Most strings hold no reference: leave them untouched and unallocated.
            if s.contains('$') {
                match interpolate(s, env) {
                    Ok(new) => *s = new,
                    Err(e) => failures.push((path.to_string(), e)),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_tree(item, &format!("{path}[{i}]"), env, failures);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                interpolate_tree(item, &super::parse::join(path, key), env, failures);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER" => Some("alice".into()),
            "EMPTY" => Some(String::new()),
            "TOKEN" => Some("s3cr\"et".into()),
            _ => None,
        }
    }

    #[test]
    fn replaces_variables_and_defaults() {
        assert_eq!(interpolate("hi ${USER}!", &env).unwrap(), "hi alice!");
        assert_eq!(interpolate("${NOPE:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(interpolate("${USER:-fallback}", &env).unwrap(), "alice");
        assert_eq!(interpolate("${NOPE:-}", &env).unwrap(), "");
        assert_eq!(interpolate("${EMPTY:-d}", &env).unwrap(), "d", "shell semantics: empty takes the default");
        assert_eq!(interpolate("${EMPTY}", &env).unwrap(), "");
        assert_eq!(interpolate("a${USER}b${USER}c", &env).unwrap(), "aalicebalicec");
        assert_eq!(interpolate("${NOPE:-http://x:1/y}", &env).unwrap(), "http://x:1/y");
    }

    #[test]
    fn dollar_signs_that_are_not_references_stay() {
        assert_eq!(interpolate("cost: $5, $USER", &env).unwrap(), "cost: $5, $USER");
        assert_eq!(interpolate("$${USER} is literal", &env).unwrap(), "${USER} is literal");
        assert_eq!(interpolate("end$", &env).unwrap(), "end$");
    }

    #[test]
    fn values_are_not_reparsed() {
        // A quote in a secret cannot break out of the string it is inserted into.
        assert_eq!(interpolate("Bearer ${TOKEN}", &env).unwrap(), "Bearer s3cr\"et");
        assert_eq!(interpolate("${NOPE:-${USER}}", &env).unwrap(), "${USER}", "defaults are not interpolated again");
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(interpolate("x ${DB_PASSWORD} y", &env), Err(EnvError::Missing("DB_PASSWORD".into())));
        assert!(EnvError::Missing("DB_PASSWORD".into()).to_string().contains("DB_PASSWORD is not set"));
        assert_eq!(interpolate("${USER", &env), Err(EnvError::Unterminated));
        assert_eq!(interpolate("${1X}", &env), Err(EnvError::BadName("1X".into())));
        assert_eq!(interpolate("${}", &env), Err(EnvError::BadName(String::new())));
        assert_eq!(interpolate("${A B}", &env), Err(EnvError::BadName("A B".into())));
    }

    #[test]
    fn tree_reports_every_failure_with_its_path() {
        let mut doc = json!({
            "admin": {"listen": "${LISTEN:-127.0.0.1:1}"},
            "mappings": [{"function": {"headers": {"Authorization": "Bearer ${TOKEN_X}"}}, "n": 5, "k": ["${USER}", "${NOPE}"]}],
            "${NOPE}": "keys are not interpolated"
        });
        let mut failures = Vec::new();
        interpolate_tree(&mut doc, "", &env, &mut failures);
        assert_eq!(doc["admin"]["listen"], "127.0.0.1:1");
        assert_eq!(doc["mappings"][0]["k"][0], "alice");
        assert_eq!(
            failures,
            vec![
                ("mappings[0].function.headers.Authorization".to_string(), EnvError::Missing("TOKEN_X".into())),
                ("mappings[0].k[1]".to_string(), EnvError::Missing("NOPE".into())),
            ]
        );
    }
}
