//! AWS's limit on wildcard complexity.
//!
//! AWS measures, per field, the largest number of wildcard-pattern prefixes that one input
//! string can match at the same time (its `MachineComplexityEvaluator`: `*ab` and `*` both
//! match "ab", so "ab" scores 2). Patterns scoring 10 or more are refused. The threshold is
//! inferred from AWS's answers: `*:*:*:*:*:event-bus/*` (10) is refused, while
//! `/Users/*/dir/dir/dir/dir/dir/doc.txt` (7) and two `*/datasync/*.x` patterns (8) pass.

use crate::error::{invalid, FilterError};
use crate::ops::{Token, Wildcard};
use std::collections::{HashSet, VecDeque};

pub(crate) const LIMIT: usize = 10;

/// Enough live-prefix sets to decide any pattern that fits in a 4096-character filter; past
/// this the pattern is certainly pathological, and is refused as too complex.
const MAX_STATES: usize = 50_000;

pub(crate) fn check<'a>(wildcards: impl IntoIterator<Item = &'a Wildcard>) -> Result<(), FilterError> {
    let mut seen = HashSet::new();
    let unique: Vec<&Wildcard> = wildcards.into_iter().filter(|w| seen.insert(w.source())).collect();
    if unique.is_empty() || score(&unique) < LIMIT {
        return Ok(());
    }
    Err(invalid(
        "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character",
    ))
}

/// The highest number of simultaneously matched prefixes over all inputs, capped at [`LIMIT`].
///
/// A prefix is identified by its end position in the token list of its pattern; the set of
/// matched prefixes after each input byte is a subset-construction state, explored breadth first.
fn score(wildcards: &[&Wildcard]) -> usize {
    let patterns: Vec<Vec<Token>> = wildcards.iter().map(|w| w.tokens()).collect();
    let mut alphabet: Vec<Option<u8>> = patterns
        .iter()
        .flatten()
        .filter_map(|t| match t {
            Token::Byte(b) => Some(Some(*b)),
            Token::Star => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // Stands for every byte no pattern spells out.
    alphabet.push(None);

    let start: State = patterns.iter().map(|tokens| close(tokens, vec![0])).collect();
    let mut seen = HashSet::from([start.clone()]);
    let mut queue = VecDeque::from([start]);
    let mut best = 0;
    while let Some(state) = queue.pop_front() {
        for &byte in &alphabet {
            let next: State = patterns.iter().zip(&state).map(|(tokens, live)| step(tokens, live, byte)).collect();
            let matched: usize = next.iter().map(|live| live.iter().filter(|&&end| end > 0).count()).sum();
            best = best.max(matched);
            if best >= LIMIT || seen.len() >= MAX_STATES {
                return LIMIT;
            }
            if seen.insert(next.clone()) {
                queue.push_back(next);
            }
        }
    }
    best
}

/// Per pattern, the end positions of the prefixes matching the input so far (sorted).
type State = Vec<Vec<usize>>;

/// Feeds one byte (`None`: a byte no pattern names).
fn step(tokens: &[Token], live: &[usize], byte: Option<u8>) -> Vec<usize> {
    let mut next = Vec::new();
    for &end in live {
        // A prefix ending in a star absorbs any byte.
        if end > 0 && tokens[end - 1] == Token::Star {
            next.push(end);
        }
        if let (Some(Token::Byte(want)), Some(got)) = (tokens.get(end), byte) {
            if *want == got {
                next.push(end + 1);
            }
        }
    }
    close(tokens, next)
}

/// Adds the prefixes reached through stars matching nothing.
fn close(tokens: &[Token], mut live: Vec<usize>) -> Vec<usize> {
    let mut i = 0;
    while i < live.len() {
        let end = live[i];
        if tokens.get(end) == Some(&Token::Star) && !live.contains(&(end + 1)) {
            live.push(end + 1);
        }
        i += 1;
    }
    live.sort_unstable();
    live.dedup();
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score_of(patterns: &[&str]) -> usize {
        let parsed: Vec<Wildcard> = patterns.iter().map(|p| Wildcard::parse(p).unwrap()).collect();
        score(&parsed.iter().collect::<Vec<_>>())
    }

    /// Counts from AWS's own evaluator tests (there without the quotes AWS adds around values,
    /// which only ever add the final quote as one more prefix of the whole pattern).
    #[test]
    fn agrees_with_aws_examples() {
        assert_eq!(score_of(&["*"]), 2, "'\"*' and '\"*\"' after the closing quote");
        assert_eq!(score_of(&["a*bbb"]), 4);
        assert_eq!(score_of(&["*ab*b*b*"]), 7);
        assert_eq!(score_of(&["a*b*cd"]), 3);
        assert_eq!(score_of(&["a*aaa", "aa*aa"]), 7);
    }

    #[test]
    fn aws_verdicts_on_real_patterns() {
        assert!(score_of(&["*:*:*:*:*:event-bus/*"]) >= LIMIT);
        assert!(score_of(&["/Users/*/dir/dir/dir/dir/dir/doc.txt"]) < LIMIT);
        assert!(score_of(&["*/datasync/*.bif", "*/datasync/*.tif"]) < LIMIT);
        assert!(score_of(&["*/datasync/*.bif", "*/datasync/*.tif", "*/datasync/*.tiff", "*/datasync/*.svs"]) >= LIMIT);
        assert!(score_of(&["*.bif", "*.tiff", "*.tif", "*.svs"]) < LIMIT);
    }

    #[test]
    fn check_counts_each_pattern_once() {
        let w = Wildcard::parse("*a*a*a*").unwrap();
        assert!(check([&w, &w, &w]).is_ok());
        let long = Wildcard::parse("*a*a*a*a*a*").unwrap();
        assert!(check([&long]).is_err());
    }
}
