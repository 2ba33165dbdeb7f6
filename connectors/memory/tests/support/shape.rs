//! Compares esmd's JSON with a recorded AWS payload whose volatile values were replaced by
//! placeholders (`<sequence-number:1>`): same keys, same literal values, placeholders
//! standing for the same text wherever they recur.

use serde_json::Value;
use std::collections::HashMap;

/// Values LocalStack's transformers replaced without angle brackets.
const BARE_PLACEHOLDERS: &[&str] = &["sent-timestamp", "sender-id"];

#[derive(Default)]
pub struct Shape {
    bindings: HashMap<String, String>,
    /// Compare key order too (only where the recording kept AWS's order).
    ordered: bool,
    /// Keys whose recorded value the test's sender chose: only the JSON type is compared.
    free: Vec<&'static str>,
}

impl Shape {
    /// Key order is compared too.
    pub fn ordered() -> Self {
        Shape { ordered: true, ..Default::default() }
    }

    /// Only the JSON type of these keys' values is compared.
    pub fn with_free(keys: &[&'static str]) -> Self {
        Shape { free: keys.to_vec(), ..Default::default() }
    }

    pub fn check(&mut self, expected: &Value, actual: &Value, path: &str) {
        match (expected, actual) {
            (Value::Object(e), Value::Object(a)) => {
                // Recordings of events relayed through the test function's queue have no null
                // keys; AWS's direct captures have `"md5OfMessageAttributes": null` where there
                // are no attributes (tests/sqs.rs compares one).
                let relayed_null = |k: &String| k == "md5OfMessageAttributes" && a[k].is_null() && !e.contains_key(k);
                let (ek, ak): (Vec<&String>, Vec<&String>) = (e.keys().collect(), a.keys().filter(|k| !relayed_null(k)).collect());
                if self.ordered {
                    assert_eq!(ak, ek, "key order at {path}");
                } else {
                    let (mut es, mut as_) = (ek.clone(), ak.clone());
                    es.sort();
                    as_.sort();
                    assert_eq!(as_, es, "keys at {path}");
                }
                for (k, ev) in e {
                    let sub = format!("{path}.{k}");
                    if self.free.contains(&k.as_str()) {
                        assert_eq!(std::mem::discriminant(ev), std::mem::discriminant(&a[k]), "type at {sub}");
                    } else {
                        self.check(ev, &a[k], &sub);
                    }
                }
            }
            (Value::Array(e), Value::Array(a)) => {
                assert_eq!(a.len(), e.len(), "length at {path}");
                for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                    self.check(ev, av, &format!("{path}[{i}]"));
                }
            }
            // The recorder decoded a JSON string; on the wire it is the string.
            (Value::Object(_) | Value::Array(_), Value::String(s)) => {
                let parsed: Value = serde_json::from_str(s).unwrap_or_else(|e| panic!("{path}: {s:?} is not JSON: {e}"));
                self.check(expected, &parsed, path);
            }
            (Value::String(e), _) if BARE_PLACEHOLDERS.contains(&e.as_str()) => {
                assert!(actual.is_string(), "{path}: expected a string, got {actual}");
            }
            (Value::String(e), Value::String(a)) if e.contains('<') => {
                assert!(self.glob(&parts(e), a), "{path}: {a:?} does not match {e:?}");
            }
            // A whole-value placeholder may stand for a number (timestamps).
            (Value::String(e), Value::Number(n)) if is_placeholder(e) => {
                self.bind(e, &n.to_string(), path);
            }
            _ => assert_eq!(actual, expected, "value at {path}"),
        }
    }

    fn bind(&mut self, name: &str, text: &str, path: &str) {
        let bound = self.bindings.entry(name.to_string()).or_insert_with(|| text.to_string());
        assert_eq!(bound, text, "{path}: {name} stood for {bound:?} before");
    }

    /// Matches `s` against literal parts and placeholders, backtracking over where each
    /// placeholder ends; a placeholder seen before must match the same text.
    fn glob(&mut self, pattern: &[Part], s: &str) -> bool {
        match pattern.split_first() {
            None => s.is_empty(),
            Some((Part::Lit(l), rest)) => s.strip_prefix(l.as_str()).is_some_and(|tail| self.glob(rest, tail)),
            Some((Part::Hole(name), rest)) => {
                if let Some(bound) = self.bindings.get(name).cloned() {
                    return s.strip_prefix(bound.as_str()).is_some_and(|tail| self.glob(rest, tail));
                }
                for end in (1..=s.len()).filter(|&i| s.is_char_boundary(i)) {
                    let saved = self.bindings.clone();
                    self.bindings.insert(name.clone(), s[..end].to_string());
                    if self.glob(rest, &s[end..]) {
                        return true;
                    }
                    self.bindings = saved;
                }
                false
            }
        }
    }
}

enum Part {
    Lit(String),
    Hole(String),
}

fn is_placeholder(s: &str) -> bool {
    s.starts_with('<') && s.ends_with('>') && s[1..].find('<').is_none()
}

fn parts(pattern: &str) -> Vec<Part> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>').map(|c| open + c) else { break };
        if open > 0 {
            out.push(Part::Lit(rest[..open].to_string()));
        }
        out.push(Part::Hole(rest[open..=close].to_string()));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        out.push(Part::Lit(rest.to_string()));
    }
    out
}
