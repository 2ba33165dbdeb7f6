//! `wildcard`: `*` stands for any run of characters (including none); `\*` and `\\` escape.

use crate::error::{invalid, FilterError};

#[derive(Debug, Clone)]
pub(crate) struct Wildcard {
    /// The pattern as written, for the complexity check and de-duplication.
    source: Box<str>,
    /// The literal pieces between the stars: one more than there are stars.
    pieces: Vec<Box<str>>,
}

/// One unit of a wildcard pattern as AWS's byte machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    Byte(u8),
    Star,
}

impl Wildcard {
    /// Parses with AWS's rules. Error positions are byte offsets into the pattern as AWS
    /// stores it, wrapped in quotes, hence the `+ 1`.
    pub(crate) fn parse(source: &str) -> Result<Wildcard, FilterError> {
        let mut pieces = Vec::new();
        let mut piece = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '*' => {
                    if chars.peek().is_some_and(|&(_, next)| next == '*') {
                        return Err(invalid(format!("Consecutive wildcard characters at pos {}", at + 1)));
                    }
                    pieces.push(std::mem::take(&mut piece).into_boxed_str());
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('*' | '\\'))) => piece.push(escaped),
                    _ => return Err(invalid(format!("Invalid escape character at pos {}", at + 1))),
                },
                other => piece.push(other),
            }
        }
        pieces.push(piece.into_boxed_str());
        Ok(Wildcard { source: source.into(), pieces })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        // `parse` always leaves at least one piece.
        let Some((first, rest)) = self.pieces.split_first() else { return value.is_empty() };
        let Some((last, middle)) = rest.split_last() else {
            return value == &**first;
        };
        if value.len() < first.len() + last.len() || !value.starts_with(&**first) || !value.ends_with(&**last) {
            return false;
        }
        // Between the fixed ends, taking each middle piece at its leftmost occurrence leaves the
        // most room for the rest, so one left-to-right scan decides the match.
        let mut inner = &value[first.len()..value.len() - last.len()];
        for piece in middle {
            match inner.find(&**piece) {
                Some(at) => inner = &inner[at + piece.len()..],
                None => return false,
            }
        }
        true
    }

    /// The pattern as AWS compiles it for its complexity check: the quoted value, byte by byte.
    pub(crate) fn tokens(&self) -> Vec<Token> {
        let mut tokens = vec![Token::Byte(b'"')];
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                tokens.push(Token::Star);
            }
            tokens.extend(piece.bytes().map(Token::Byte));
        }
        tokens.push(Token::Byte(b'"'));
        tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wc(p: &str) -> Wildcard {
        Wildcard::parse(p).unwrap()
    }

    fn reason(p: &str) -> String {
        match Wildcard::parse(p) {
            Err(FilterError::InvalidPattern(why)) => why,
            other => panic!("{p}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn star_matches_any_run_including_none() {
        let w = wc("/Users/*/doc.txt");
        assert!(w.matches("/Users/ls_user/dir/dir/doc.txt"));
        assert!(!w.matches("/Users/ls_user/dir/notmatchingdoc.txt"));
        assert!(wc("a*x*").matches("ax"));
        assert!(wc("*").matches(""));
        assert!(wc("*/lib/*").matches("/usr/lib/x") && !wc("*/lib/*").matches("/usr/lib"));
        assert!(wc("ab*ab").matches("abab") && !wc("ab*ab").matches("aba"));
    }

    #[test]
    fn middle_pieces_keep_their_order() {
        let w = wc("*:*:event-bus/*");
        assert!(w.matches("arn:aws:events:us-east-1:1:event-bus/b"));
        assert!(!w.matches("event-bus/x:y"));
        assert!(wc("a*b*c").matches("abc") && !wc("a*b*c").matches("acb"));
    }

    #[test]
    fn no_star_means_exact_and_empty_matches_empty() {
        assert!(wc("abc").matches("abc") && !wc("abc").matches("abcd"));
        assert!(wc("").matches("") && !wc("").matches("dir/init/file"));
    }

    #[test]
    fn escapes() {
        let w = wc(r"a\*b");
        assert!(w.matches("a*b") && !w.matches("axb"));
        assert!(wc(r"a\\*").matches(r"a\zzz"));
        assert_eq!(reason(r"a\b"), "Invalid escape character at pos 2");
        assert_eq!(reason("a\\"), "Invalid escape character at pos 2");
    }

    #[test]
    fn consecutive_stars_are_rejected_with_aws_position() {
        assert_eq!(reason("arn:aws:events:us-east-1:**:event-bus/*"), "Consecutive wildcard characters at pos 26");
        assert!(Wildcard::parse(r"\**").is_ok(), "an escaped star is a literal");
    }

    #[test]
    fn multibyte_text_is_matched_whole() {
        assert!(wc("é*è").matches("été è"));
        assert!(!wc("é*è").matches("é"));
    }

    #[test]
    fn tokens_are_quoted_bytes() {
        assert_eq!(wc("a*").tokens(), vec![Token::Byte(b'"'), Token::Byte(b'a'), Token::Star, Token::Byte(b'"')]);
    }
}
