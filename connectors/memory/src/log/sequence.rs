//! Sequence numbers: one counter per stream, written as fixed-width decimal so that string
//! order equals numeric order (as with Kinesis' sequence numbers).

use std::sync::Arc;

/// Wide enough for any u64, with a leading zero to spare.
const DIGITS: usize = 21;

pub(crate) fn format(n: u64) -> Arc<str> {
    format!("{n:0width$}", width = DIGITS).into()
}

/// `None` for anything that is not a decimal number (e.g. a position from another source).
/// Numbers beyond u64 (Kinesis' own are 56 digits) lie after every record of this log.
pub(crate) fn parse(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_order_is_numeric_order() {
        let (a, b, c) = (format(9), format(10), format(u64::MAX));
        assert_eq!(&*a, "000000000000000000009");
        assert!(a < b && b < c);
        assert_eq!(parse(&c), Some(u64::MAX));
        assert_eq!(parse(&b), Some(10));
        assert_eq!(parse("49590338271490256608559692538361571095921575989136588898"), Some(u64::MAX));
        assert_eq!(parse("12a"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("-1"), None);
    }
}
