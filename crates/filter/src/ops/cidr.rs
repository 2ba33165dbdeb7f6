//! IP addresses: `cidr` ranges, and plain string values that are IP literals.
//!
//! AWS only treats a string as an address when it looks like one (`d.d.d.d`, or hex digits
//! and colons), then parses it; IPv4-mapped IPv6 addresses count as IPv4, as Java's parser
//! returns them.

use crate::error::{invalid, FilterError};
use std::net::{Ipv4Addr, Ipv6Addr};

/// An address as one number, with its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ip {
    v4: bool,
    bits: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpRange {
    v4: bool,
    low: u128,
    high: u128,
}

enum Shape {
    V4,
    V6,
    Neither,
}

fn shape(text: &str) -> Shape {
    let dotted_quad = text.split('.').count() == 4
        && text.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if dotted_quad {
        Shape::V4
    } else if text.contains(':') && text.bytes().all(|b| b == b':' || b.is_ascii_hexdigit()) {
        Shape::V6
    } else {
        Shape::Neither
    }
}

fn from_v6(addr: Ipv6Addr) -> Ip {
    match addr.to_ipv4_mapped() {
        Some(v4) => Ip { v4: true, bits: u32::from(v4).into() },
        None => Ip { v4: false, bits: addr.into() },
    }
}

/// Parses an address the way AWS does; `None` if it is not one.
pub(crate) fn parse_ip(text: &str) -> Option<Ip> {
    match shape(text) {
        Shape::V4 => text.parse::<Ipv4Addr>().ok().map(|a| Ip { v4: true, bits: u32::from(a).into() }),
        Shape::V6 => text.parse::<Ipv6Addr>().ok().map(from_v6),
        Shape::Neither => None,
    }
}

impl Ip {
    pub(crate) fn matches(&self, value: &str) -> bool {
        parse_ip(value) == Some(*self)
    }
}

impl IpRange {
    /// Parses `address/bits` with AWS's checks and messages. AWS insists on fewer mask bits
    /// than the address has (`/32` and `/128` are refused).
    pub(crate) fn parse(text: &str) -> Result<IpRange, FilterError> {
        let (address, mask) = split_once_like_java(text)?;
        let bits: i32 = mask.parse().map_err(|_| invalid("Malformed CIDR, mask bits must be an integer"))?;
        let bits = u32::try_from(bits).map_err(|_| invalid("Malformed CIDR, mask bits must not be negative"))?;
        let ip = match shape(address) {
            Shape::Neither => return Err(invalid(format!("Nonstandard IP address: {address}"))),
            _ => parse_ip(address).ok_or_else(|| invalid(format!("Invalid IP address: {address}")))?,
        };
        let width: u32 = if ip.v4 { 32 } else { 128 };
        if bits >= width {
            return Err(invalid(if ip.v4 { "IPv4 mask bits must be < 32" } else { "IPv6 mask bits must be < 128" }));
        }
        // 1..=128 host bits, so the shift never reaches the full width.
        let host_mask = u128::MAX >> (128 - (width - bits));
        Ok(IpRange { v4: ip.v4, low: ip.bits & !host_mask, high: ip.bits | host_mask })
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        parse_ip(value).is_some_and(|ip| ip.v4 == self.v4 && (self.low..=self.high).contains(&ip.bits))
    }
}

/// Java's `split("/")` drops trailing empty parts, so `"10.0.0.0/24/"` passes and
/// `"10.0.0.0/"` does not; AWS then requires exactly two parts.
fn split_once_like_java(text: &str) -> Result<(&str, &str), FilterError> {
    let mut parts: Vec<&str> = text.split('/').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    match parts.as_slice() {
        [address, mask] => Ok((address, mask)),
        _ => Err(invalid("Malformed CIDR, one '/' required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        match IpRange::parse(text) {
            Err(FilterError::InvalidPattern(why)) => why,
            other => panic!("{text}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn ipv4_ranges() {
        let r = IpRange::parse("10.0.0.0/24").unwrap();
        assert!(r.matches("10.0.0.0") && r.matches("10.0.0.255"));
        assert!(!r.matches("10.0.1.0") && !r.matches("not an ip") && !r.matches("10.0.0"));
        let host_bits_set = IpRange::parse("10.0.0.77/24").unwrap();
        assert!(host_bits_set.matches("10.0.0.1"), "the range is the whole network");
        assert!(IpRange::parse("0.0.0.0/0").unwrap().matches("255.255.255.255"));
    }

    #[test]
    fn ipv6_ranges() {
        let r = IpRange::parse("2001:db8:1234:1a00::/64").unwrap();
        assert!(r.matches("2001:db8:1234:1a00::1") && r.matches("2001:0DB8:1234:1A00:ffff:ffff:ffff:ffff"));
        assert!(!r.matches("2001:db8:1234:1a01::") && !r.matches("10.0.0.1"));
    }

    #[test]
    fn families_do_not_mix_but_mapped_addresses_are_ipv4() {
        let v4 = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(v4.matches("::ffff:a00:1"));
        assert!(!v4.matches("::a00:1"));
    }

    #[test]
    fn bad_cidrs_use_aws_wording() {
        assert_eq!(reason("xx.11.xx/8"), "Nonstandard IP address: xx.11.xx");
        assert_eq!(reason("xxxx:db8:1234:1a00::/64"), "Nonstandard IP address: xxxx:db8:1234:1a00::");
        assert_eq!(reason("300.1.1.1/8"), "Invalid IP address: 300.1.1.1");
        assert_eq!(reason("10.0.0.0"), "Malformed CIDR, one '/' required");
        assert_eq!(reason("10.0.0.0/"), "Malformed CIDR, one '/' required");
        assert_eq!(reason("10.0.0.0/8/9"), "Malformed CIDR, one '/' required");
        assert_eq!(reason("10.0.0.0/x"), "Malformed CIDR, mask bits must be an integer");
        assert_eq!(reason("10.0.0.0/-1"), "Malformed CIDR, mask bits must not be negative");
        assert_eq!(reason("10.0.0.0/32"), "IPv4 mask bits must be < 32");
        assert_eq!(reason("::/128"), "IPv6 mask bits must be < 128");
        assert!(IpRange::parse("10.0.0.0/24/").is_ok());
    }

    #[test]
    fn literal_addresses_compare_as_addresses() {
        let ip = parse_ip("2001:db8::1").unwrap();
        assert!(ip.matches("2001:0db8:0:0:0:0:0:1"));
        assert!(!ip.matches("2001:db8::2"));
        assert!(parse_ip("1.2.3").is_none() && parse_ip("host:name").is_none() && parse_ip("1.2.3.4.5").is_none());
        assert!(parse_ip("::ffff:1.2.3.4").is_none(), "AWS's shape check refuses dots in IPv6");
    }
}
