//! Case-insensitive comparisons for `equals-ignore-case` and its `prefix` / `suffix` forms.
//!
//! The pattern side is lower-cased once at compile time; the event side is folded lazily,
//! character by character, so a comparison never allocates.

/// A pattern string folded to lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Folded {
    text: Box<str>,
    /// AWS folds per character with Java's rules; for ASCII patterns that is exactly a byte-wise
    /// ASCII case-insensitive comparison, which is also the fast path.
    ascii: bool,
}

impl Folded {
    pub(crate) fn new(text: &str) -> Folded {
        let text: String = text.chars().flat_map(char::to_lowercase).collect();
        let ascii = text.is_ascii();
        Folded { text: text.into(), ascii }
    }

    pub(crate) fn equals(&self, value: &str) -> bool {
        if self.ascii {
            return value.as_bytes().eq_ignore_ascii_case(self.text.as_bytes());
        }
        value.chars().flat_map(char::to_lowercase).eq(self.text.chars())
    }

    pub(crate) fn is_prefix_of(&self, value: &str) -> bool {
        if self.ascii {
            let wanted = self.text.as_bytes();
            return value.as_bytes().get(..wanted.len()).is_some_and(|head| head.eq_ignore_ascii_case(wanted));
        }
        let mut folded = value.chars().flat_map(char::to_lowercase);
        self.text.chars().all(|c| folded.next() == Some(c))
    }

    pub(crate) fn is_suffix_of(&self, value: &str) -> bool {
        if self.ascii {
            let wanted = self.text.as_bytes();
            let bytes = value.as_bytes();
            return bytes.len() >= wanted.len() && bytes[bytes.len() - wanted.len()..].eq_ignore_ascii_case(wanted);
        }
        let mut folded = value.chars().rev().flat_map(|c| c.to_lowercase().rev());
        self.text.chars().rev().all(|c| folded.next() == Some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_ignores_case() {
        let f = Folded::new("EC2 Instance");
        assert!(f.equals("ec2 INSTANCE"));
        assert!(!f.equals("ec2 instances"));
        assert!(Folded::new("").equals(""));
        assert!(!Folded::new("").equals("x"));
    }

    #[test]
    fn prefix_and_suffix_ignore_case() {
        let p = Folded::new("EventB");
        assert!(p.is_prefix_of("eventbridge") && p.is_prefix_of("EVENTB"));
        assert!(!p.is_prefix_of("event"));
        let s = Folded::new(".PNG");
        assert!(s.is_suffix_of("image.png") && s.is_suffix_of("x.Png"));
        assert!(!s.is_suffix_of("png"));
    }

    #[test]
    fn non_ascii_folds_per_character() {
        let f = Folded::new("ÄRGER");
        assert!(f.equals("ärger") && f.is_prefix_of("ärgerlich") && !f.equals("arger"));
        let s = Folded::new("ÉTÉ");
        assert!(s.is_suffix_of("bel été") && !s.is_suffix_of("ete"));
    }

    #[test]
    fn ascii_pattern_never_matches_non_ascii_lookalikes() {
        // The Kelvin sign lower-cases to 'k'; AWS compares byte forms of 'k'/'K' only.
        assert!(!Folded::new("k").equals("\u{212A}"));
    }
}
