//! Runs every vector in `tests/fixtures/filter-patterns` through the same path as
//! `esmd filter-test --file`, and reports all failures at once.

use esmd_filter::{parse_vector_file, test_event_pattern, TestOutcome};
use std::path::{Path, PathBuf};

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/filter-patterns")
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expected {
    Match,
    NoMatch,
    Invalid,
}

/// The file name carries the expectation: `_EXC` invalid, `_NEG` no match, otherwise match.
fn expected(stem: &str) -> Expected {
    if stem.ends_with("_EXC") {
        Expected::Invalid
    } else if stem.ends_with("_NEG") {
        Expected::NoMatch
    } else {
        Expected::Match
    }
}

/// `None` when the vector behaves as its name says, else what went wrong.
fn run(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return Some(format!("cannot read: {e}")),
    };
    let (event, pattern) = match parse_vector_file(&text) {
        Ok(pair) => pair,
        Err(e) => return Some(e.to_string()),
    };
    let outcome = test_event_pattern(&pattern, &event);
    let ok = matches!(
        (expected(&stem), &outcome),
        (Expected::Match, TestOutcome::Match)
            | (Expected::NoMatch, TestOutcome::NoMatch)
            | (Expected::Invalid, TestOutcome::Invalid(_))
    );
    (!ok).then(|| format!("expected {:?}, got {outcome:?}", expected(&stem)))
}

#[test]
fn every_vector_behaves_as_named() {
    let dir = vector_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();

    let mut failures = Vec::new();
    let mut passed = 0;
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let is_vector = name.ends_with(".json5") || name.ends_with(".json");
        if name == "README.md" {
            continue;
        }
        if !is_vector {
            // A misnamed vector would otherwise be skipped silently.
            failures.push(format!("{name}: not a .json5/.json vector"));
            continue;
        }
        match run(path) {
            None => passed += 1,
            Some(why) => failures.push(format!("{name}: {why}")),
        }
    }

    assert!(passed + failures.len() > 0, "no vectors found in {}", dir.display());
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n  {}",
        failures.len(),
        passed + failures.len(),
        failures.join("\n  ")
    );
    println!("{passed} vectors passed");
}
