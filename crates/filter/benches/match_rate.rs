//! Records per second for a 5-pattern filter over 1 KB JSON records.
//!
//!     cargo bench -p esmd-filter --bench match_rate
//!
//! Each record is parsed from bytes (as the engine does for a Kinesis `data` field) and then
//! matched, so the table shows both the parse and the match cost.

use esmd_filter::FilterCriteria;
use std::time::Instant;

fn record(i: usize) -> String {
    let mut r = format!(
        r#"{{"id":{i},"status":"{}","customer":{{"tier":"{}","region":"eu-west-{}"}},"amount":{},"ip":"10.0.{}.{}","tags":["a","b","{}"],"note":""#,
        if i.is_multiple_of(3) { "paid" } else { "open" },
        if i.is_multiple_of(5) { "gold" } else { "basic" },
        i % 3,
        i % 1000,
        i % 256,
        i % 200,
        i % 7
    );
    while r.len() < 1000 {
        r.push('x');
    }
    r.push_str("\"}");
    r
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let n = if benching { 200_000 } else { 2_000 };
    let patterns: Vec<String> = [
        r#"{"status":["paid"],"amount":[{"numeric":[">",900]}]}"#,
        r#"{"customer":{"tier":["gold"],"region":[{"prefix":"eu-"}]}}"#,
        r#"{"ip":[{"cidr":"10.0.7.0/24"}]}"#,
        r#"{"customer":{"region":[{"anything-but":["eu-west-0","eu-west-1","eu-west-2"]}]}}"#,
        r#"{"$or":[{"note":[{"wildcard":"*zzz*"}]},{"id":[{"numeric":["=",42]}]}]}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let filter = FilterCriteria::compile(&patterns).expect("patterns compile");
    let records: Vec<Vec<u8>> = (0..n).map(|i| record(i).into_bytes()).collect();
    let parsed: Vec<serde_json::Value> = records.iter().map(|r| serde_json::from_slice(r).expect("json")).collect();

    let t = Instant::now();
    let mut hits = 0usize;
    for v in &parsed {
        hits += usize::from(filter.matches(v));
    }
    let match_only = t.elapsed();
    let t = Instant::now();
    for r in &records {
        let v: serde_json::Value = serde_json::from_slice(r).expect("json");
        hits += usize::from(filter.matches(&v));
    }
    let parse_and_match = t.elapsed();
    println!("filter: 5 patterns, {n} records of ~1 KB JSON ({} matched per pass)", hits / 2);
    println!("| step | records/s |");
    println!("|---|---|");
    println!("| match (pre-parsed) | {:.0} |", n as f64 / match_only.as_secs_f64());
    println!("| parse + match | {:.0} |", n as f64 / parse_and_match.as_secs_f64());
}
