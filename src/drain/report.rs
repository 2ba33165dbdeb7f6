//! The drain's final report: one row per mapping, as a table or JSON.

use crate::metrics::tally::TallySnapshot;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Clone, Debug, Serialize)]
pub struct MappingReport {
    pub mapping: String,
    pub source: String,
    /// Every shard caught up before the time limit.
    pub caught_up: bool,
    pub elapsed_seconds: f64,
    /// Records finished per second over the whole run.
    pub records_per_second: f64,
    #[serde(flatten)]
    pub totals: TallySnapshot,
}

#[derive(Clone, Debug, Serialize)]
pub struct DrainReport {
    /// Every mapping caught up before the time limit.
    pub caught_up: bool,
    /// Stopped by a signal (Ctrl-C, SIGTERM) before catching up or the time limit.
    pub interrupted: bool,
    pub elapsed_seconds: f64,
    pub mappings: Vec<MappingReport>,
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

impl DrainReport {
    /// A plain-text table, one column per mapping (rows are the measures, so a long list of
    /// measures stays readable in a terminal).
    pub fn table(&self) -> String {
        type Cell = fn(&MappingReport) -> String;
        let rows: [(&str, Cell); 20] = [
            ("source", |m| m.source.clone()),
            ("caught up", |m| if m.caught_up { "yes".into() } else { "NO".into() }),
            ("records", |m| m.totals.finished.to_string()),
            ("records polled", |m| m.totals.polled.to_string()),
            ("filtered out", |m| m.totals.filtered_out.to_string()),
            ("batches", |m| m.totals.batches.to_string()),
            ("invocations", |m| m.totals.invocations.to_string()),
            ("function errors", |m| m.totals.function_errors.to_string()),
            ("throttles", |m| m.totals.throttles.to_string()),
            ("invoke failures", |m| m.totals.invoke_unavailable.to_string()),
            ("bisections", |m| m.totals.bisections.to_string()),
            ("to failure destination", |m| m.totals.destination_records.to_string()),
            ("dropped", |m| m.totals.dropped.to_string()),
            ("records/s", |m| format!("{:.0}", m.records_per_second)),
            ("latency p50 ms", |m| ms(m.totals.latency_p50_ms)),
            ("latency p95 ms", |m| ms(m.totals.latency_p95_ms)),
            ("latency p99 ms", |m| ms(m.totals.latency_p99_ms)),
            ("latency max ms", |m| ms(m.totals.latency_max_ms)),
            ("peak iterator age ms", |m| m.totals.peak_iterator_age_ms.to_string()),
            ("peak concurrency", |m| m.totals.peak_concurrency.to_string()),
        ];
        let mut header = vec!["".to_owned()];
        header.extend(self.mappings.iter().map(|m| m.mapping.clone()));
        let mut lines = vec![header];
        for (name, value) in &rows {
            let mut line = vec![(*name).to_owned()];
            line.extend(self.mappings.iter().map(value));
            lines.push(line);
        }
        let columns = lines[0].len();
        let widths: Vec<usize> = (0..columns).map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            for (c, cell) in line.iter().enumerate() {
                let pad = widths[c] - cell.chars().count();
                if c == 0 {
                    let _ = write!(out, "{cell}{}", " ".repeat(pad));
                } else {
                    let _ = write!(out, "  {}{cell}", " ".repeat(pad));
                }
            }
            out.push('\n');
            if i == 0 {
                out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (columns - 1)));
                out.push('\n');
            }
        }
        let _ = writeln!(
            out,
            "\n{} in {:.1} s",
            match (self.caught_up, self.interrupted) {
                (true, _) => "caught up",
                (false, true) => "interrupted before every shard caught up",
                (false, false) => "time limit reached before every shard caught up",
            },
            self.elapsed_seconds
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_column_per_mapping_and_aligned_rows() {
        let report = DrainReport {
            caught_up: false,
            interrupted: false,
            elapsed_seconds: 2.0,
            mappings: vec![
                MappingReport {
                    mapping: "orders".into(),
                    source: "kinesis".into(),
                    caught_up: true,
                    elapsed_seconds: 2.0,
                    records_per_second: 500.0,
                    totals: TallySnapshot { finished: 1000, latency_p99_ms: Some(12.25), ..Default::default() },
                },
                MappingReport {
                    mapping: "jobs".into(),
                    source: "sqs".into(),
                    caught_up: false,
                    elapsed_seconds: 2.0,
                    records_per_second: 0.0,
                    totals: TallySnapshot::default(),
                },
            ],
        };
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].trim_start().starts_with("orders"), "{table}");
        assert!(lines.iter().any(|l| l.starts_with("records ") && l.contains("1000") && l.ends_with(" 0")), "{table}");
        assert!(lines.iter().any(|l| l.starts_with("latency p99 ms") && l.contains("12.2") && l.ends_with('-')), "{table}");
        assert!(lines.iter().any(|l| l.starts_with("caught up") && l.ends_with("NO")), "{table}");
        assert!(table.contains("time limit reached"), "{table}");
        let width = lines[0].chars().count();
        assert!(lines[2..21].iter().all(|l| l.chars().count() == width), "rows aligned:\n{table}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["mappings"][0]["finished"], 1000);
        assert_eq!(json["mappings"][0]["latency_p99_ms"], 12.25);
    }
}
