//! Numbers: AWS's "comparable number" rules, exact number values and `numeric` ranges.

use crate::error::{invalid, FilterError};
use crate::json::Json;
use serde_json::{Number, Value};
use std::fmt::Write;

/// AWS compares numbers only inside this range (documented as -5.0e9 .. +5.0e9 inclusive).
const LIMIT: f64 = 5e9;
/// ... and to six digits after the decimal point.
const MAX_DECIMALS: usize = 6;

/// The number as AWS compares it, or why it cannot be compared.
pub(crate) fn comparable(n: &Number) -> Result<f64, &'static str> {
    let Some(v) = n.as_f64() else { return Err(RANGE_ERROR) };
    if !(-LIMIT..=LIMIT).contains(&v) {
        return Err(RANGE_ERROR);
    }
    if decimals_exceed_limit(v) {
        return Err("Only values upto 6 decimals are supported");
    }
    Ok(v)
}

const RANGE_ERROR: &str = "Value must be between -5.0E9 and 5.0E9, inclusive";

/// Counts decimals on the shortest round-trip form (what AWS sees after stripping trailing
/// zeros), printed into a stack buffer so event-side checks do not allocate.
fn decimals_exceed_limit(v: f64) -> bool {
    if v.fract() == 0.0 {
        return false;
    }
    let mut buf = StackText::default();
    if write!(buf, "{v}").is_err() {
        // Only numbers with very many decimals overflow the buffer.
        return true;
    }
    let text = buf.as_str();
    text.find('.').is_some_and(|dot| text.len() - dot - 1 > MAX_DECIMALS)
}

/// A fixed buffer big enough for any in-range number with up to six decimals.
struct StackText {
    bytes: [u8; 40],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        StackText { bytes: [0; 40], len: 0 }
    }
}

impl StackText {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are valid UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The event value as a comparable number, if it is one.
fn event_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => comparable(n).ok(),
        _ => None,
    }
}

/// A number written as a plain value (`"x": [300]`): equal numerically when AWS can compare
/// both sides, otherwise only when written the same way (AWS account ids, huge integers).
#[derive(Debug, Clone)]
pub(crate) struct NumberEq {
    written: Number,
    numeric: Option<f64>,
}

impl NumberEq {
    pub(crate) fn new(written: &Number) -> NumberEq {
        NumberEq { written: written.clone(), numeric: comparable(written).ok() }
    }

    pub(crate) fn matches(&self, value: &Value) -> bool {
        let Value::Number(n) = value else { return false };
        if *n == self.written {
            return true;
        }
        self.numeric.is_some_and(|want| event_number(value) == Some(want))
    }
}

/// A `numeric` expression: one bound, two bounds, or `=`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NumericRange {
    low: Bound,
    high: Bound,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Bound {
    Open,
    Inclusive(f64),
    Exclusive(f64),
}

impl NumericRange {
    /// Parses the array of a `numeric` expression with AWS's grammar and messages:
    /// `[op, n]` or `[">"|">=", n, "<"|"<=", m]` with `n < m`.
    pub(crate) fn parse(items: &[Json]) -> Result<NumericRange, FilterError> {
        let mut items = items.iter();
        let op = match items.next() {
            Some(Json::String(op)) => op.as_str(),
            Some(other) => return Err(invalid(format!("Invalid member in numeric match: {}", other.token_text()))),
            None => return Err(invalid("Invalid member in numeric match: ]")),
        };
        let operand = operand(items.next(), if op == "=" { "equals" } else { op });
        let range = match op {
            "=" => {
                let v = operand?;
                NumericRange { low: Bound::Inclusive(v), high: Bound::Inclusive(v) }
            }
            "<" => NumericRange { low: Bound::Open, high: Bound::Exclusive(operand?) },
            "<=" => NumericRange { low: Bound::Open, high: Bound::Inclusive(operand?) },
            ">" | ">=" => {
                let v = operand?;
                let low = if op == ">" { Bound::Exclusive(v) } else { Bound::Inclusive(v) };
                return match items.next() {
                    None => Ok(NumericRange { low, high: Bound::Open }),
                    Some(next) => upper_bound(next, items.next(), items.next().is_some(), v)
                        .map(|high| NumericRange { low, high }),
                };
            }
            other => return Err(invalid(format!("Unrecognized numeric range operator: {other}"))),
        };
        if items.next().is_some() {
            return Err(invalid("Too many elements in numeric expression"));
        }
        Ok(range)
    }

    pub(crate) fn matches(&self, value: &Value) -> bool {
        let Some(v) = event_number(value) else { return false };
        let above = match self.low {
            Bound::Open => true,
            Bound::Inclusive(low) => v >= low,
            Bound::Exclusive(low) => v > low,
        };
        let below = match self.high {
            Bound::Open => true,
            Bound::Inclusive(high) => v <= high,
            Bound::Exclusive(high) => v < high,
        };
        above && below
    }
}

/// The number after an operator; `name` is how AWS names the operator in its message.
fn operand(item: Option<&Json>, name: &str) -> Result<f64, FilterError> {
    match item {
        Some(Json::Number(n)) => comparable(n).map_err(invalid),
        _ => Err(invalid(format!("Value of {name} must be numeric"))),
    }
}

/// The `"<" m` / `"<=" m` half of a two-sided range.
fn upper_bound(op: &Json, value: Option<&Json>, more: bool, low: f64) -> Result<Bound, FilterError> {
    let Json::String(op) = op else {
        return Err(invalid(format!("Bad value in numeric range: {}", op.token_text())));
    };
    if op != "<" && op != "<=" {
        return Err(invalid(format!("Bad numeric range operator: {op}")));
    }
    let high = operand(value, op)?;
    if more {
        return Err(invalid("Too many terms in numeric range expression"));
    }
    if high <= low {
        return Err(invalid("Bottom must be less than top"));
    }
    Ok(if op == "<" { Bound::Exclusive(high) } else { Bound::Inclusive(high) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range(text: &str) -> Result<NumericRange, FilterError> {
        match Json::parse(text).unwrap() {
            Json::Array(items) => NumericRange::parse(&items),
            _ => panic!("not an array"),
        }
    }

    fn reason(text: &str) -> String {
        match range(text) {
            Err(FilterError::InvalidPattern(why)) => why,
            other => panic!("{text}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn single_bounds() {
        let gt = range(r#"[">", 0]"#).unwrap();
        assert!(gt.matches(&json!(0.5)) && !gt.matches(&json!(0)));
        let ge = range(r#"[">=", 0]"#).unwrap();
        assert!(ge.matches(&json!(0)) && !ge.matches(&json!(-1)));
        let lt = range(r#"["<", 10]"#).unwrap();
        assert!(lt.matches(&json!(9.999)) && !lt.matches(&json!(10)));
        let le = range(r#"["<=", 10]"#).unwrap();
        assert!(le.matches(&json!(10)) && !le.matches(&json!(10.5)));
        let eq = range(r#"["=", 301.8]"#).unwrap();
        assert!(eq.matches(&json!(3.018e2)) && !eq.matches(&json!(301)));
    }

    #[test]
    fn two_sided_ranges() {
        let r = range(r#"[">", 0, "<=", 5]"#).unwrap();
        assert!(r.matches(&json!(5)) && r.matches(&json!(0.1)));
        assert!(!r.matches(&json!(0)) && !r.matches(&json!(5.1)));
        let r = range(r#"[">=", -1.5, "<", 2]"#).unwrap();
        assert!(r.matches(&json!(-1.5)) && !r.matches(&json!(2)));
    }

    #[test]
    fn only_numbers_in_range_match() {
        let r = range(r#"[">", 100]"#).unwrap();
        assert!(r.matches(&json!(101.0)));
        assert!(!r.matches(&json!("300")), "strings never match numerically");
        assert!(!r.matches(&json!(6e9)), "outside AWS's comparable range");
        assert!(!r.matches(&json!(100.0000001)), "more than six decimals");
        assert!(!r.matches(&json!(null)));
    }

    #[test]
    fn grammar_errors_use_aws_wording() {
        assert_eq!(reason(r#"[">", 0, ">", 0]"#), "Bad numeric range operator: >");
        assert_eq!(reason(r#"[">", 0, "<"]"#), "Value of < must be numeric");
        assert_eq!(reason(r#"["<", 5, ">", 0]"#), "Too many elements in numeric expression");
        assert_eq!(reason(r#"["=", 1, 2]"#), "Too many elements in numeric expression");
        assert_eq!(reason(r#"[">", 0, "<", 5, 6]"#), "Too many terms in numeric range expression");
        assert_eq!(reason(r#"[">", 5, "<", 5]"#), "Bottom must be less than top");
        assert_eq!(reason(r#"["=", "5"]"#), "Value of equals must be numeric");
        assert_eq!(reason(r#"[">"]"#), "Value of > must be numeric");
        assert_eq!(reason(r#"[">", 0, 5]"#), "Bad value in numeric range: 5");
        assert_eq!(reason(r#"["!=", 5]"#), "Unrecognized numeric range operator: !=");
        assert_eq!(reason(r#"[5]"#), "Invalid member in numeric match: 5");
        assert_eq!(reason(r#"[]"#), "Invalid member in numeric match: ]");
    }

    #[test]
    fn operands_follow_aws_number_rules() {
        assert_eq!(reason(r#"[">", 5000000001]"#), RANGE_ERROR);
        assert_eq!(reason(r#"["<", 0.0000001]"#), "Only values upto 6 decimals are supported");
        assert!(range(r#"[">=", -5000000000, "<=", 5000000000]"#).is_ok());
        assert!(range(r#"["<", 0.000001]"#).is_ok());
    }

    #[test]
    fn exact_numbers_compare_numerically_or_as_written() {
        let n = |v: Value| match v {
            Value::Number(n) => n,
            _ => unreachable!(),
        };
        let three_hundred = NumberEq::new(&n(json!(300)));
        assert!(three_hundred.matches(&json!(300.0)) && three_hundred.matches(&json!(300)));
        assert!(!three_hundred.matches(&json!("300")));
        let account = NumberEq::new(&n(json!(123456789012u64)));
        assert!(account.matches(&json!(123456789012u64)));
        assert!(!account.matches(&json!(123456789012.0)), "too big to compare numerically");
    }
}
