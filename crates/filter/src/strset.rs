//! A set of strings tuned for the short value lists patterns usually hold.

use std::collections::HashSet;

/// Below this many members a linear scan beats hashing the probe.
const HASH_FROM: usize = 8;

#[derive(Debug, Clone, Default)]
pub(crate) enum StrSet {
    #[default]
    Empty,
    Few(Vec<Box<str>>),
    Many(HashSet<Box<str>>),
}

impl StrSet {
    pub(crate) fn new(items: Vec<Box<str>>) -> StrSet {
        let mut items = items;
        items.sort_unstable();
        items.dedup();
        match items.len() {
            0 => StrSet::Empty,
            n if n < HASH_FROM => StrSet::Few(items),
            _ => StrSet::Many(items.into_iter().collect()),
        }
    }

    pub(crate) fn contains(&self, probe: &str) -> bool {
        match self {
            StrSet::Empty => false,
            StrSet::Few(items) => items.iter().any(|item| &**item == probe),
            StrSet::Many(items) => items.contains(probe),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, StrSet::Empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> StrSet {
        StrSet::new(items.iter().map(|s| Box::from(*s)).collect())
    }

    #[test]
    fn small_and_large_sets_agree() {
        let few = set(&["a", "b", "a"]);
        assert!(matches!(few, StrSet::Few(ref v) if v.len() == 2));
        assert!(few.contains("b") && !few.contains("c"));

        let names: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
        let many = set(&names.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(matches!(many, StrSet::Many(_)));
        assert!(many.contains("v19") && !many.contains("v20"));
    }

    #[test]
    fn empty_contains_nothing() {
        let empty = set(&[]);
        assert!(empty.is_empty());
        assert!(!empty.contains(""));
    }
}
