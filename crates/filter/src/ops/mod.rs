//! The value list of one field (`"field": [ ... ]`): its members are ORed.

mod anything_but;
mod cidr;
mod numeric;
mod text;
mod wildcard;

pub(crate) use wildcard::{Token, Wildcard};

use crate::error::{invalid, FilterError};
use crate::json::Json;
use crate::strset::StrSet;
use anything_but::AnythingBut;
use cidr::{parse_ip, Ip, IpRange};
use numeric::{NumberEq, NumericRange};
use serde_json::Value;
use text::Folded;

/// The compiled value list of one field.
#[derive(Debug, Clone, Default)]
pub(crate) struct Leaf {
    /// Plain string values, looked up without scanning the other matchers.
    strings: StrSet,
    matchers: Vec<Matcher>,
    /// `{"exists": true}`: any value at all.
    exists: bool,
    /// `{"exists": false}`: no value at all.
    absent: bool,
}

/// One member of a value list that inspects the value.
#[derive(Debug, Clone)]
enum Matcher {
    /// A plain string that is an IP literal: AWS compares it as an address.
    Ip(Ip),
    Number(NumberEq),
    Null,
    Bool(bool),
    Prefix(Box<str>),
    PrefixIgnoreCase(Folded),
    Suffix(Box<str>),
    SuffixIgnoreCase(Folded),
    EqualsIgnoreCase(Folded),
    Wildcard(Wildcard),
    Numeric(NumericRange),
    Cidr(IpRange),
    AnythingBut(AnythingBut),
}

impl Leaf {
    /// Compiles the members of a field's array with AWS's rules and messages.
    pub(crate) fn compile(items: &[Json]) -> Result<Leaf, FilterError> {
        if items.is_empty() {
            return Err(invalid("Empty arrays are not allowed"));
        }
        let mut leaf = Leaf::default();
        let mut strings = Vec::new();
        for item in items {
            match item {
                Json::String(s) => match parse_ip(s) {
                    Some(ip) => leaf.matchers.push(Matcher::Ip(ip)),
                    None => strings.push(s.as_str().into()),
                },
                Json::Number(n) => leaf.matchers.push(Matcher::Number(NumberEq::new(n))),
                Json::Null => leaf.matchers.push(Matcher::Null),
                Json::Bool(b) => leaf.matchers.push(Matcher::Bool(*b)),
                Json::Object(entries) => leaf.expression(entries, &mut strings)?,
                Json::Array(_) => return Err(invalid("Match value must be String, number, true, false, or null")),
            }
        }
        leaf.strings = StrSet::new(strings);
        Ok(leaf)
    }

    /// One `{ "operator": operand }` member.
    fn expression(&mut self, entries: &[(String, Json)], strings: &mut Vec<Box<str>>) -> Result<(), FilterError> {
        let Some((name, operand)) = entries.first() else {
            return Err(invalid("Match expression name not found"));
        };
        // AWS validates the operand first, then complains about any further key, with a
        // message that depends on the operator.
        let mut trailing = "Only one key allowed in match expression";
        match name.as_str() {
            "exactly" => match operand {
                Json::String(s) => strings.push(s.as_str().into()),
                _ => return Err(invalid("exact match pattern must be a string")),
            },
            "prefix" => self.matchers.push(match affix(operand, "prefix")? {
                Affix::Plain(p) => Matcher::Prefix(p.into()),
                Affix::IgnoreCase(p) => Matcher::PrefixIgnoreCase(Folded::new(p)),
            }),
            "suffix" => self.matchers.push(match affix(operand, "suffix")? {
                Affix::Plain(p) => Matcher::Suffix(p.into()),
                Affix::IgnoreCase(p) => Matcher::SuffixIgnoreCase(Folded::new(p)),
            }),
            "equals-ignore-case" => match operand {
                Json::String(s) => self.matchers.push(Matcher::EqualsIgnoreCase(Folded::new(s))),
                _ => return Err(invalid("equals-ignore-case match pattern must be a string")),
            },
            "wildcard" => match operand {
                Json::String(s) => self.matchers.push(Matcher::Wildcard(Wildcard::parse(s)?)),
                _ => return Err(invalid("wildcard match pattern must be a string")),
            },
            "numeric" => {
                let Json::Array(items) = operand else { return Err(invalid("Value of numeric must be an array.")) };
                self.matchers.push(Matcher::Numeric(NumericRange::parse(items)?));
                trailing = "Too many elements in numeric expression";
            }
            "anything-but" => {
                self.matchers.push(Matcher::AnythingBut(AnythingBut::parse(operand)?));
                trailing = "Too many elements in numeric expression";
            }
            "exists" => match operand {
                Json::Bool(true) => self.exists = true,
                Json::Bool(false) => self.absent = true,
                _ => return Err(invalid("exists match pattern must be either true or false.")),
            },
            // AWS reuses the prefix message here.
            "cidr" => match operand {
                Json::String(s) => self.matchers.push(Matcher::Cidr(IpRange::parse(s)?)),
                _ => return Err(invalid("prefix match pattern must be a string")),
            },
            other => return Err(invalid(format!("Unrecognized match type {other}"))),
        }
        if entries.len() > 1 {
            return Err(invalid(trailing));
        }
        Ok(())
    }

    /// Whether a present value satisfies one of the members (`exists` aside).
    pub(crate) fn accepts(&self, value: &Value) -> bool {
        if let Value::String(s) = value {
            if self.strings.contains(s) {
                return true;
            }
        }
        self.matchers.iter().any(|m| m.matches(value))
    }

    /// `{"exists": true}` is a member: any value will do.
    pub(crate) fn wants_any_value(&self) -> bool {
        self.exists
    }

    /// `{"exists": false}` is a member: no value will do too.
    pub(crate) fn accepts_absence(&self) -> bool {
        self.absent
    }

    /// Whether some member needs a value (so the field can pin an event array element).
    pub(crate) fn needs_value(&self) -> bool {
        self.exists || !self.strings.is_empty() || !self.matchers.is_empty()
    }

    /// The wildcard patterns AWS counts in its complexity check.
    pub(crate) fn wildcards(&self) -> impl Iterator<Item = &Wildcard> {
        self.matchers.iter().flat_map(|m| match m {
            Matcher::Wildcard(w) => std::slice::from_ref(w),
            Matcher::AnythingBut(ab) => ab.wildcards(),
            _ => &[],
        })
    }
}

impl Matcher {
    fn matches(&self, value: &Value) -> bool {
        match self {
            Matcher::Number(n) => n.matches(value),
            Matcher::Numeric(range) => range.matches(value),
            Matcher::AnythingBut(ab) => ab.matches(value),
            Matcher::Null => value.is_null(),
            Matcher::Bool(b) => value.as_bool() == Some(*b),
            _ => value.as_str().is_some_and(|s| self.matches_str(s)),
        }
    }

    /// The string-only operators.
    fn matches_str(&self, s: &str) -> bool {
        match self {
            Matcher::Ip(ip) => ip.matches(s),
            Matcher::Prefix(p) => s.starts_with(&**p),
            Matcher::PrefixIgnoreCase(p) => p.is_prefix_of(s),
            Matcher::Suffix(p) => s.ends_with(&**p),
            Matcher::SuffixIgnoreCase(p) => p.is_suffix_of(s),
            Matcher::EqualsIgnoreCase(p) => p.equals(s),
            Matcher::Wildcard(w) => w.matches(s),
            Matcher::Cidr(range) => range.matches(s),
            Matcher::Number(_) | Matcher::Numeric(_) | Matcher::AnythingBut(_) | Matcher::Null | Matcher::Bool(_) => {
                false
            }
        }
    }
}

enum Affix<'a> {
    Plain(&'a str),
    IgnoreCase(&'a str),
}

/// The operand of `prefix` / `suffix`: a string, or `{"equals-ignore-case": string}`.
fn affix<'a>(operand: &'a Json, name: &str) -> Result<Affix<'a>, FilterError> {
    match operand {
        Json::String(s) => Ok(Affix::Plain(s)),
        Json::Object(entries) => {
            let title = if name == "prefix" { "Prefix" } else { "Suffix" };
            let Some((inner, value)) = entries.first() else {
                return Err(invalid(format!("{title} expression name not found")));
            };
            if inner != "equals-ignore-case" {
                return Err(invalid(format!("Unsupported {name} pattern: {inner}")));
            }
            let Json::String(s) = value else {
                return Err(invalid("equals-ignore-case match pattern must be a string"));
            };
            if entries.len() > 1 {
                return Err(invalid("Only one key allowed in match expression"));
            }
            Ok(Affix::IgnoreCase(s))
        }
        _ => Err(invalid(format!("{name} match pattern must be a string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn leaf(text: &str) -> Leaf {
        match Json::parse(text).unwrap() {
            Json::Array(items) => Leaf::compile(&items).unwrap(),
            _ => panic!("not an array"),
        }
    }

    fn reason(text: &str) -> String {
        let Json::Array(items) = Json::parse(text).unwrap() else { panic!("not an array") };
        match Leaf::compile(&items) {
            Err(FilterError::InvalidPattern(why)) => why,
            other => panic!("{text}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn exact_values() {
        let l = leaf(r#"["a", "", 5, true, null]"#);
        for hit in [json!("a"), json!(""), json!(5), json!(5.0), json!(true), json!(null)] {
            assert!(l.accepts(&hit), "{hit}");
        }
        for miss in [json!("b"), json!("5"), json!(false), json!("null"), json!({})] {
            assert!(!l.accepts(&miss), "{miss}");
        }
        assert!(leaf(r#"[{"exactly": "x"}]"#).accepts(&json!("x")));
    }

    #[test]
    fn ip_literals_compare_as_addresses() {
        let l = leaf(r#"["2001:db8::1"]"#);
        assert!(l.accepts(&json!("2001:db8:0::1")) && !l.accepts(&json!("2001:db8::2")));
    }

    #[test]
    fn prefix_suffix_and_case() {
        let l = leaf(r#"[{"prefix": "2022-07-13"}]"#);
        assert!(l.accepts(&json!("2022-07-13T13:48:01Z")) && !l.accepts(&json!("2022-07-99")));
        assert!(leaf(r#"[{"prefix": ""}]"#).accepts(&json!("anything")));
        assert!(!leaf(r#"[{"prefix": ""}]"#).accepts(&json!(1)), "prefix only applies to strings");
        assert!(leaf(r#"[{"prefix": {"equals-ignore-case": "EventB"}}]"#).accepts(&json!("eventbridge")));
        assert!(leaf(r#"[{"suffix": ".png"}]"#).accepts(&json!("image.png")));
        assert!(!leaf(r#"[{"suffix": ".PNG"}]"#).accepts(&json!("image.png")));
        assert!(leaf(r#"[{"suffix": {"equals-ignore-case": ".png"}}]"#).accepts(&json!("image.PNG")));
        let eic = leaf(r#"[{"equals-ignore-case": "alice"}]"#);
        assert!(eic.accepts(&json!("ALICE")) && !eic.accepts(&json!("alic")));
    }

    #[test]
    fn other_operators_dispatch() {
        assert!(leaf(r#"[{"wildcard": "*/lib/*"}]"#).accepts(&json!("/usr/lib/x")));
        assert!(leaf(r#"[{"numeric": [">", 0, "<=", 5]}]"#).accepts(&json!(3)));
        assert!(leaf(r#"[{"cidr": "10.0.0.0/24"}]"#).accepts(&json!("10.0.0.255")));
        assert!(!leaf(r#"[{"cidr": "10.0.0.0/24"}]"#).accepts(&json!(123)));
        assert!(leaf(r#"[{"anything-but": "x"}]"#).accepts(&json!("y")));
    }

    #[test]
    fn exists_members_are_flags() {
        let both = leaf(r#"[{"anything-but": ["roses"]}, {"exists": false}]"#);
        assert!(both.accepts_absence() && !both.wants_any_value() && both.needs_value());
        let only_absent = leaf(r#"[{"exists": false}]"#);
        assert!(!only_absent.needs_value());
        assert!(leaf(r#"[{"exists": true}]"#).wants_any_value());
    }

    #[test]
    fn wildcards_are_collected_for_the_complexity_check() {
        let l = leaf(r#"[{"wildcard": "a*"}, {"anything-but": {"wildcard": ["b*", "c*"]}}, "d"]"#);
        let sources: Vec<_> = l.wildcards().map(Wildcard::source).collect();
        assert_eq!(sources, ["a*", "b*", "c*"]);
    }

    #[test]
    fn invalid_members_use_aws_wording() {
        assert_eq!(reason("[]"), "Empty arrays are not allowed");
        assert_eq!(reason("[[1]]"), "Match value must be String, number, true, false, or null");
        assert_eq!(reason("[{}]"), "Match expression name not found");
        assert_eq!(reason(r#"[{"NUMERIC": ["=", 5]}]"#), "Unrecognized match type NUMERIC");
        assert_eq!(reason(r#"[{"prefix": 1}]"#), "prefix match pattern must be a string");
        assert_eq!(reason(r#"[{"suffix": [".png"]}]"#), "suffix match pattern must be a string");
        assert_eq!(reason(r#"[{"prefix": {"wildcard": "a"}}]"#), "Unsupported prefix pattern: wildcard");
        assert_eq!(reason(r#"[{"prefix": {}}]"#), "Prefix expression name not found");
        assert_eq!(reason(r#"[{"equals-ignore-case": ["x"]}]"#), "equals-ignore-case match pattern must be a string");
        assert_eq!(reason(r#"[{"equals-ignore-case": {"prefix": "x"}}]"#), "equals-ignore-case match pattern must be a string");
        assert_eq!(reason(r#"[{"wildcard": ["*"]}]"#), "wildcard match pattern must be a string");
        assert_eq!(reason(r#"[{"exists": "yes"}]"#), "exists match pattern must be either true or false.");
        assert_eq!(reason(r#"[{"cidr": ["10.0.0.0/8"]}]"#), "prefix match pattern must be a string");
        assert_eq!(reason(r#"[{"numeric": 5}]"#), "Value of numeric must be an array.");
        assert_eq!(reason(r#"[{"prefix": "a", "suffix": "b"}]"#), "Only one key allowed in match expression");
        assert_eq!(reason(r#"[{"numeric": [">", 1], "x": 1}]"#), "Too many elements in numeric expression");
        assert_eq!(reason(r#"[{"exactly": 1}]"#), "exact match pattern must be a string");
    }
}
