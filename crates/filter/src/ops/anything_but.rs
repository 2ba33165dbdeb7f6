//! `anything-but`: matches every present value except the ones it names.
//!
//! Only values of the excluded kind can be excluded: a number is never excluded by a string
//! list, and `null`, booleans and numbers always pass the prefix / suffix / wildcard /
//! equals-ignore-case forms. A missing field has no value, so it never matches.

use super::numeric::comparable;
use super::text::Folded;
use super::wildcard::Wildcard;
use crate::error::{invalid, FilterError};
use crate::json::Json;
use crate::strset::StrSet;
use serde_json::Value;

#[derive(Debug, Clone)]
pub(crate) enum AnythingBut {
    Strings(StrSet),
    Numbers(Vec<f64>),
    EqualsIgnoreCase(Vec<Folded>),
    Prefixes(Vec<Box<str>>),
    Suffixes(Vec<Box<str>>),
    Wildcards(Vec<Wildcard>),
}

/// AWS words this one oddly but consistently for any extra key after an anything-but.
const TRAILING_KEYS: &str = "Too many elements in numeric expression";
const BAD_OPERAND: &str = "Value of anything-but must be an array or single string/number value.";

impl AnythingBut {
    /// Parses the value of an `anything-but` key.
    pub(crate) fn parse(operand: &Json) -> Result<AnythingBut, FilterError> {
        match operand {
            Json::String(s) => Ok(AnythingBut::Strings(StrSet::new(vec![s.as_str().into()]))),
            Json::Number(n) => Ok(AnythingBut::Numbers(vec![comparable(n).map_err(invalid)?])),
            Json::Array(items) => plain_list(items),
            Json::Object(entries) => nested(entries),
            Json::Null | Json::Bool(_) => Err(invalid(BAD_OPERAND)),
        }
    }

    pub(crate) fn matches(&self, value: &Value) -> bool {
        !self.excludes(value)
    }

    fn excludes(&self, value: &Value) -> bool {
        if let AnythingBut::Numbers(numbers) = self {
            return match value {
                Value::Number(n) => comparable(n).is_ok_and(|v| numbers.contains(&v)),
                _ => false,
            };
        }
        let Value::String(s) = value else { return false };
        match self {
            AnythingBut::Strings(set) => set.contains(s),
            AnythingBut::Numbers(_) => false,
            AnythingBut::EqualsIgnoreCase(folded) => folded.iter().any(|f| f.equals(s)),
            AnythingBut::Prefixes(prefixes) => prefixes.iter().any(|p| s.starts_with(&**p)),
            AnythingBut::Suffixes(suffixes) => suffixes.iter().any(|p| s.ends_with(&**p)),
            AnythingBut::Wildcards(wildcards) => wildcards.iter().any(|w| w.matches(s)),
        }
    }

    pub(crate) fn wildcards(&self) -> &[Wildcard] {
        match self {
            AnythingBut::Wildcards(w) => w,
            _ => &[],
        }
    }
}

/// `{"anything-but": ["a", "b"]}` or `{"anything-but": [1, 2]}`: one kind only.
fn plain_list(items: &[Json]) -> Result<AnythingBut, FilterError> {
    let mut strings = Vec::new();
    let mut numbers = Vec::new();
    for item in items {
        match item {
            Json::String(s) => strings.push(s.as_str().into()),
            Json::Number(n) => numbers.push(comparable(n).map_err(invalid)?),
            _ => return Err(invalid("Inside anything but list, start|null|boolean is not supported.")),
        }
    }
    match (strings.is_empty(), numbers.is_empty()) {
        (false, true) => Ok(AnythingBut::Strings(StrSet::new(strings))),
        (true, false) => Ok(AnythingBut::Numbers(numbers)),
        _ => Err(invalid(
            "Inside anything but list, either all values are number or string, mixed type is not supported",
        )),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    EqualsIgnoreCase,
    Prefix,
    Suffix,
    Wildcard,
}

impl Kind {
    /// What AWS says when a member is not a string.
    fn not_a_string(self) -> &'static str {
        match self {
            Kind::EqualsIgnoreCase => {
                "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
            }
            Kind::Wildcard => "wildcard match pattern must be a string",
            Kind::Prefix | Kind::Suffix => "prefix/suffix match pattern must be a string",
        }
    }
}

/// `{"anything-but": {"prefix" | "suffix" | "equals-ignore-case" | "wildcard": value-or-list}}`.
fn nested(entries: &[(String, Json)]) -> Result<AnythingBut, FilterError> {
    let Some((name, operand)) = entries.first() else {
        return Err(invalid("Anything-But expression name not found"));
    };
    let kind = match name.as_str() {
        "equals-ignore-case" => Kind::EqualsIgnoreCase,
        "prefix" => Kind::Prefix,
        "suffix" => Kind::Suffix,
        "wildcard" => Kind::Wildcard,
        other => return Err(invalid(format!("Unsupported anything-but pattern: {other}"))),
    };
    let items = match operand {
        Json::String(_) | Json::Number(_) => std::slice::from_ref(operand),
        Json::Array(items) => items.as_slice(),
        _ => return Err(invalid(BAD_OPERAND)),
    };
    let mut members = Vec::with_capacity(items.len());
    for item in items {
        let Json::String(member) = item else { return Err(invalid(kind.not_a_string())) };
        if member.is_empty() && matches!(kind, Kind::Prefix | Kind::Suffix) {
            return Err(invalid("Null prefix/suffix not allowed"));
        }
        members.push(member.as_str());
    }
    let compiled = match kind {
        Kind::EqualsIgnoreCase => AnythingBut::EqualsIgnoreCase(members.into_iter().map(Folded::new).collect()),
        Kind::Prefix => AnythingBut::Prefixes(members.into_iter().map(Box::from).collect()),
        Kind::Suffix => AnythingBut::Suffixes(members.into_iter().map(Box::from).collect()),
        Kind::Wildcard => AnythingBut::Wildcards(members.into_iter().map(Wildcard::parse).collect::<Result<_, _>>()?),
    };
    if entries.len() > 1 {
        return Err(invalid(TRAILING_KEYS));
    }
    Ok(compiled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ab(text: &str) -> AnythingBut {
        AnythingBut::parse(&Json::parse(text).unwrap()).unwrap()
    }

    fn reason(text: &str) -> String {
        match AnythingBut::parse(&Json::parse(text).unwrap()) {
            Err(FilterError::InvalidPattern(why)) => why,
            other => panic!("{text}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn single_values_and_lists() {
        let s = ab(r#""initializing""#);
        assert!(s.matches(&json!("pending")) && !s.matches(&json!("initializing")));
        assert!(s.matches(&json!(null)) && s.matches(&json!(5)) && s.matches(&json!(true)));
        let list = ab(r#"["stopped", "overloaded"]"#);
        assert!(!list.matches(&json!("stopped")) && list.matches(&json!("running")));
        let zero = ab("0");
        assert!(zero.matches(&json!(789)) && !zero.matches(&json!(0.0)) && zero.matches(&json!("0")));
        let numbers = ab("[100, 200, 300]");
        assert!(!numbers.matches(&json!(300)) && numbers.matches(&json!(999)));
        assert!(numbers.matches(&json!(6e9)), "numbers AWS cannot compare are never excluded");
    }

    #[test]
    fn nested_forms_exclude_only_strings() {
        let prefix = ab(r#"{"prefix": ["init", "post"]}"#);
        assert!(!prefix.matches(&json!("post-init")) && prefix.matches(&json!("pre-init")));
        assert!(prefix.matches(&json!(12)) && prefix.matches(&json!(null)));
        let suffix = ab(r#"{"suffix": ".txt"}"#);
        assert!(!suffix.matches(&json!("a.txt")) && suffix.matches(&json!("a.txt.bak")));
        let fold = ab(r#"{"equals-ignore-case": ["initializing", "stopped"]}"#);
        assert!(!fold.matches(&json!("Stopped")) && fold.matches(&json!("pending")));
        let wild = ab(r#"{"wildcard": ["*/init/*", "*/dir/*"]}"#);
        assert!(!wild.matches(&json!("dir/init/dir")) && wild.matches(&json!("dir/post/dir")));
        assert!(wild.matches(&json!(123)));
        assert!(ab(r#"{"wildcard": ""}"#).matches(&json!("x")));
    }

    #[test]
    fn invalid_forms_use_aws_wording() {
        assert_eq!(reason("null"), BAD_OPERAND);
        assert_eq!(reason(r#"["stopped", null]"#), "Inside anything but list, start|null|boolean is not supported.");
        assert_eq!(
            reason(r#"["a", 1]"#),
            "Inside anything but list, either all values are number or string, mixed type is not supported"
        );
        assert!(reason("[]").contains("mixed type"));
        assert_eq!(reason(r#"{"prefix": ""}"#), "Null prefix/suffix not allowed");
        assert_eq!(reason(r#"{"suffix": [""]}"#), "Null prefix/suffix not allowed");
        assert_eq!(reason(r#"{"prefix": 123}"#), "prefix/suffix match pattern must be a string");
        assert_eq!(reason(r#"{"suffix": [null, ".txt"]}"#), "prefix/suffix match pattern must be a string");
        assert_eq!(reason(r#"{"suffix": {"equals-ignore-case": ".png"}}"#), BAD_OPERAND);
        assert_eq!(
            reason(r#"{"equals-ignore-case": [123]}"#),
            "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
        );
        assert_eq!(reason(r#"{"wildcard": 123}"#), "wildcard match pattern must be a string");
        assert_eq!(reason(r#"{"wildcard": "a**"}"#), "Consecutive wildcard characters at pos 2");
        assert_eq!(reason(r#"{"exists": true}"#), "Unsupported anything-but pattern: exists");
        assert_eq!(reason("{}"), "Anything-But expression name not found");
        assert_eq!(reason(r#"{"prefix": "a", "suffix": "b"}"#), TRAILING_KEYS);
        assert_eq!(reason("[5000000001]"), "Value must be between -5.0E9 and 5.0E9, inclusive");
    }
}
