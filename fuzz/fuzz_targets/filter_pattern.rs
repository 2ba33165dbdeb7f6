//! EventBridge pattern compilation and matching (esmd-filter): arbitrary text compiled as a
//! pattern, and compiled patterns matched against arbitrary JSON events. Refusing a pattern is
//! fine; panicking, or answering differently for the same pattern and event, is not.
//!
//! Input: `pattern NUL event` (both lossily decoded). Without a NUL byte the input is read as
//! a test-vector file (tests/fixtures/filter-patterns/*.json5: `Event` and `EventPattern`),
//! and the whole text is also compiled as a pattern and tried on a few fixed events.
#![no_main]

use esmd_filter::{parse_vector_file, test_event_pattern, FilterCriteria, Pattern, TestOutcome};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fn check(pattern: &str, event_text: &str) {
    let compiled = Pattern::compile(pattern);
    let outcome = test_event_pattern(pattern, event_text);
    let Ok(compiled) = compiled else {
        assert!(matches!(outcome, TestOutcome::Invalid(_)), "a refused pattern matched: {outcome:?}");
        return;
    };
    let Ok(event) = serde_json::from_str::<Value>(event_text) else {
        assert!(matches!(outcome, TestOutcome::Invalid(_)));
        // A pattern is matched against whatever JSON a source hands it: try it on a few.
        for event in fixed_events() {
            let once = compiled.matches(&event);
            assert_eq!(once, compiled.clone().matches(&event));
        }
        return;
    };
    let matched = compiled.matches(&event);
    assert_eq!(matched, compiled.matches(&event), "matching is not deterministic");
    assert_eq!(outcome, if matched { TestOutcome::Match } else { TestOutcome::NoMatch });

    // FilterCriteria (a mapping's list of patterns) matches when any pattern does.
    if let Ok(criteria) = FilterCriteria::compile(&[pattern.to_string()]) {
        assert_eq!(criteria.matches(&event), matched, "criteria of one pattern disagree with it");
    }
    const OTHER: &str = r#"{"other": [{"prefix": "x"}]}"#;
    if let Ok(criteria) = FilterCriteria::compile(&[pattern.to_string(), OTHER.to_string()]) {
        let other = Pattern::compile(OTHER).expect("a valid pattern").matches(&event);
        assert_eq!(criteria.matches(&event), matched || other, "criteria are not the OR of their patterns");
    }
}

fn fixed_events() -> [Value; 4] {
    [
        json!({}),
        json!(null),
        json!({"source": "aws.ec2", "detail": {"state": "running", "n": 1.5, "tags": ["a", "b"], "x": null}}),
        json!([{"a": 1}, "b", true, -0.0]),
    ]
}

fuzz_target!(|data: &[u8]| {
    if let Some(nul) = data.iter().position(|&b| b == 0) {
        let pattern = String::from_utf8_lossy(&data[..nul]);
        let event = String::from_utf8_lossy(&data[nul + 1..]);
        check(&pattern, &event);
        return;
    }
    let text = String::from_utf8_lossy(data);
    if let Ok((event, pattern)) = parse_vector_file(&text) {
        check(&pattern, &event);
    }
    check(&text, "not json");
});
