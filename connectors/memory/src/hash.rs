//! Kinesis-style routing: a partition key's MD5, read as a 128-bit integer, falls into exactly
//! one open shard's hash-key range.

use md5::{Digest, Md5};

/// The 128-bit hash key Kinesis derives from a partition key.
pub(crate) fn hash_key(partition_key: &[u8]) -> u128 {
    u128::from_be_bytes(md5_bytes(partition_key))
}

pub(crate) fn md5_bytes(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// Lowercase hex MD5, as SQS reports `md5OfBody`.
pub(crate) fn md5_hex(data: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(32);
    for b in md5_bytes(data) {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// An inclusive range of hash keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HashRange {
    pub start: u128,
    pub end: u128,
}

impl HashRange {
    #[cfg(test)]
    pub(crate) fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }

    /// `n` contiguous ranges covering the whole key space, as CreateStream lays them out.
    pub(crate) fn even(n: usize) -> Vec<HashRange> {
        let n = n.max(1) as u128;
        let width = u128::MAX / n;
        (0..n)
            .map(|i| {
                let start = i * width;
                let end = if i + 1 == n { u128::MAX } else { (i + 1) * width - 1 };
                HashRange { start, end }
            })
            .collect()
    }

    /// Two halves, as SplitShard with the midpoint as the new starting hash key.
    /// `None` for a single-key range.
    pub(crate) fn halves(&self) -> Option<(HashRange, HashRange)> {
        if self.start == self.end {
            return None;
        }
        let mid = self.start + (self.end - self.start) / 2;
        Some((HashRange { start: self.start, end: mid }, HashRange { start: mid + 1, end: self.end }))
    }

    /// The union of two adjacent ranges, in either order.
    pub(crate) fn merge(&self, other: &HashRange) -> Option<HashRange> {
        if self.end.checked_add(1) == Some(other.start) {
            Some(HashRange { start: self.start, end: other.end })
        } else if other.end.checked_add(1) == Some(self.start) {
            Some(HashRange { start: other.start, end: self.end })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc1321() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn even_ranges_cover_everything_without_gaps() {
        for n in 1..=7 {
            let r = HashRange::even(n);
            assert_eq!(r.len(), n);
            assert_eq!(r[0].start, 0);
            assert_eq!(r[n - 1].end, u128::MAX);
            for w in r.windows(2) {
                assert_eq!(w[0].end + 1, w[1].start);
            }
        }
    }

    #[test]
    fn halves_and_merge_are_inverse() {
        let r = HashRange { start: 10, end: 21 };
        let (a, b) = r.halves().unwrap();
        assert_eq!((a.start, a.end, b.start, b.end), (10, 15, 16, 21));
        assert_eq!(a.merge(&b), Some(r));
        assert_eq!(b.merge(&a), Some(r));
        assert_eq!(HashRange { start: 5, end: 5 }.halves(), None);
        assert_eq!(a.merge(&HashRange { start: 30, end: 40 }), None);
    }
}
