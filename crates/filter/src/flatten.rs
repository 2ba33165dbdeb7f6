//! Turns a pattern into AWS's flat form: one list of dotted paths per `$or` alternative.
//!
//! This mirrors AWS's rule compiler, including its quirks: `{"a": {"b": [..]}}` and
//! `{"a.b": [..]}` name the same field, a field written twice keeps its last value list, and an
//! `$or` copies the fields written before it into each alternative (so a later field overrides
//! an alternative's field of the same path, and vice versa).

use crate::error::{invalid, FilterError};
use crate::json::Json;
use crate::ops::Leaf;
use std::sync::Arc;

/// One field of an alternative: dotted path and its value list.
pub(crate) type Field = (String, Arc<Leaf>);
/// One alternative: all fields must match.
pub(crate) type Rule = Vec<Field>;

/// Nested `$or`s multiply; this keeps a 4096-character pattern from exploding into millions of
/// alternatives. AWS documents no number, so this is esmd's own limit.
pub(crate) const MAX_ALTERNATIVES: usize = 1024;

/// Matching recurses once per path segment, and dotted keys can make paths far deeper than
/// JSON nesting allows; this bounds the stack a match needs. esmd's own limit.
pub(crate) const MAX_PATH_SEGMENTS: usize = 256;

/// Operator names AWS refuses as field names inside an `$or`.
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

pub(crate) fn flatten(pattern: &Json) -> Result<Vec<Rule>, FilterError> {
    let Json::Object(entries) = pattern else {
        return Err(invalid("Filter is not an object"));
    };
    let mut rules = Vec::new();
    object(&mut rules, &mut Vec::new(), entries, false)?;
    Ok(rules)
}

fn object<'a>(
    rules: &mut Vec<Rule>,
    path: &mut Vec<&'a str>,
    entries: &'a [(String, Json)],
    in_or: bool,
) -> Result<(), FilterError> {
    if entries.is_empty() {
        return Err(invalid("Empty objects are not allowed"));
    }
    for (key, value) in entries {
        if key == "$or" {
            alternatives(rules, path, value)?;
            continue;
        }
        if in_or && RESERVED_IN_OR.contains(&key.as_str()) {
            return Err(invalid(format!("{key} is Ruler reserved fieldName which cannot be used inside $or.")));
        }
        match value {
            Json::Object(inner) => {
                path.push(key);
                object(rules, path, inner, in_or)?;
                path.pop();
            }
            Json::Array(items) => {
                let name = path.iter().copied().chain([key.as_str()]).collect::<Vec<_>>().join(".");
                if name.split('.').count() > MAX_PATH_SEGMENTS {
                    return Err(invalid(format!("Field path is deeper than {MAX_PATH_SEGMENTS} segments")));
                }
                put(rules, &name, &Arc::new(Leaf::compile(items)?));
            }
            _ => return Err(invalid(format!("\"{key}\" must be an object or an array"))),
        }
    }
    Ok(())
}

fn alternatives<'a>(rules: &mut Vec<Rule>, path: &mut Vec<&'a str>, value: &'a Json) -> Result<(), FilterError> {
    let Json::Array(items) = value else {
        return Err(invalid("It must be an Array followed with $or."));
    };
    let before = std::mem::take(rules);
    for item in items {
        let Json::Object(entries) = item else {
            return Err(invalid("Only JSON object is allowed in array of $or relationship."));
        };
        let mut branch = if before.is_empty() { vec![Rule::new()] } else { before.clone() };
        object(&mut branch, path, entries, true)?;
        rules.append(&mut branch);
        if rules.len() > MAX_ALTERNATIVES {
            return Err(invalid(format!(
                "The $or relationships expand to more than {MAX_ALTERNATIVES} alternatives"
            )));
        }
    }
    if items.len() < 2 {
        return Err(invalid("There must have at least 2 Objects in $or relationship."));
    }
    Ok(())
}

/// Sets a field in every alternative; a field already there is replaced.
fn put(rules: &mut Vec<Rule>, name: &str, leaf: &Arc<Leaf>) {
    if rules.is_empty() {
        rules.push(Rule::new());
    }
    for rule in rules.iter_mut() {
        match rule.iter_mut().find(|(path, _)| path == name) {
            Some(field) => field.1 = Arc::clone(leaf),
            None => rule.push((name.to_owned(), Arc::clone(leaf))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<Vec<String>> {
        flatten(&Json::parse(text).unwrap())
            .unwrap()
            .into_iter()
            .map(|rule| rule.into_iter().map(|(path, _)| path).collect())
            .collect()
    }

    fn reason(text: &str) -> String {
        match flatten(&Json::parse(text).unwrap()) {
            Err(FilterError::InvalidPattern(why)) => why,
            other => panic!("{text}: expected an error, got {:?}", other.map(|r| r.len())),
        }
    }

    #[test]
    fn nested_objects_become_dotted_paths() {
        assert_eq!(rules(r#"{"a": {"b": [1], "c.d": [2]}, "e": [3]}"#), [["a.b", "a.c.d", "e"]]);
    }

    #[test]
    fn or_copies_the_fields_before_it() {
        let r = rules(r#"{"s": [1], "$or": [{"m": [1]}, {"t": [1], "n": [1]}], "z": [1]}"#);
        assert_eq!(r, [vec!["s", "m", "z"], vec!["s", "t", "n", "z"]]);
        let nested = rules(r#"{"d": {"$or": [{"a": [1]}, {"$or": [{"b": [1]}, {"c": [1]}]}]}}"#);
        assert_eq!(nested, [["d.a"], ["d.b"], ["d.c"]]);
    }

    #[test]
    fn later_fields_override_earlier_ones() {
        let flat = flatten(&Json::parse(r#"{"a": ["x"], "$or": [{"a": ["y"]}, {"b": ["z"]}]}"#).unwrap()).unwrap();
        let a_of_first = &flat[0].iter().find(|(p, _)| p == "a").unwrap().1;
        assert!(a_of_first.accepts(&serde_json::json!("y")) && !a_of_first.accepts(&serde_json::json!("x")));
        assert_eq!(rules(r#"{"a": {"b": [1]}, "a.b": [2]}"#), [["a.b"]]);
    }

    #[test]
    fn structural_errors_use_aws_wording() {
        assert_eq!(reason("[]"), "Filter is not an object");
        assert_eq!(reason("{}"), "Empty objects are not allowed");
        assert_eq!(reason(r#"{"a": {}}"#), "Empty objects are not allowed");
        assert_eq!(reason(r#"{"a": 42}"#), "\"a\" must be an object or an array");
        assert_eq!(reason(r#"{"a": "x"}"#), "\"a\" must be an object or an array");
        assert_eq!(reason(r#"{"a": []}"#), "Empty arrays are not allowed");
        assert_eq!(reason(r#"{"$or": {"a": [1]}}"#), "It must be an Array followed with $or.");
        assert_eq!(reason(r#"{"$or": [{"a": [1]}]}"#), "There must have at least 2 Objects in $or relationship.");
        assert_eq!(reason(r#"{"$or": [{"a": [1]}, [1]]}"#), "Only JSON object is allowed in array of $or relationship.");
        assert_eq!(
            reason(r#"{"$or": [{"a": [1]}, {"numeric": [1]}]}"#),
            "numeric is Ruler reserved fieldName which cannot be used inside $or."
        );
        assert!(flatten(&Json::parse(r#"{"numeric": [1]}"#).unwrap()).is_ok(), "reserved only inside $or");
    }

    #[test]
    fn absurdly_deep_paths_are_refused() {
        let deep = |n: usize| format!(r#"{{"{}": [1]}}"#, vec!["a"; n].join("."));
        assert!(flatten(&Json::parse(&deep(MAX_PATH_SEGMENTS)).unwrap()).is_ok());
        assert!(reason(&deep(MAX_PATH_SEGMENTS + 1)).contains("deeper than 256"));
    }

    #[test]
    fn runaway_alternatives_are_refused() {
        let one = r#"{"$or": [{"a": [1]}, {"b": [1]}]}"#;
        let many: Vec<String> = (0..11).map(|i| format!("\"k{i}\": {one}")).collect();
        let text = format!("{{{}}}", many.join(","));
        assert!(reason(&text).contains("more than 1024 alternatives"));
    }
}
