//! The two tables: a drain bench's (one line per consumer) and the suite's (one line per goal).

use std::time::Duration;

/// The rows of one drain bench: consumers draining the same backlog of `n` records.
pub struct Drain {
    pub n: usize,
    /// "records" or "messages".
    pub unit: &'static str,
    /// Heading of the ratio column, e.g. "vs raw"; ratios are against the first row.
    pub vs: String,
    pub rows: Vec<(String, Duration)>,
}

impl Drain {
    pub fn rate(&self, d: Duration) -> f64 {
        self.n as f64 / d.as_secs_f64().max(1e-9)
    }

    /// The duration of the row whose name starts with `prefix`.
    pub fn row(&self, prefix: &str) -> Duration {
        self.rows.iter().find(|(name, _)| name.starts_with(prefix)).map(|r| r.1).unwrap_or_else(|| panic!("no row {prefix}"))
    }

    pub fn print(&self) {
        let base = self.rate(self.rows[0].1);
        println!("| consumer | seconds | {}/s | {} |", self.unit, self.vs);
        println!("|---|---:|---:|---:|");
        for (name, d) in &self.rows {
            println!("| {name} | {:.2} | {:.0} | {:.0}% |", d.as_secs_f64(), self.rate(*d), 100.0 * self.rate(*d) / base);
        }
    }
}

/// One line of the suite's table.
pub struct Row {
    pub name: String,
    pub esmd: String,
    pub raw: String,
    pub ratio: String,
    pub goal: String,
    /// None: no goal for this row.
    pub met: Option<bool>,
}

impl Row {
    /// A throughput row: esmd's rate against raw's, the goal a minimum share of raw.
    pub fn throughput(name: String, drain: &Drain, esmd: &str, raw: &str, goal: Option<f64>) -> Row {
        let (e, r) = (drain.rate(drain.row(esmd)), drain.rate(drain.row(raw)));
        let ratio = e / r;
        Row {
            name,
            esmd: format!("{e:.0} {}/s", drain.unit),
            raw: format!("{r:.0} {}/s", drain.unit),
            ratio: format!("{:.0}%", 100.0 * ratio),
            goal: goal.map(|g| format!("≥ {:.0}%", 100.0 * g)).unwrap_or_else(|| "—".into()),
            met: goal.map(|g| ratio >= g),
        }
    }
}

pub fn print_suite(rows: &[Row]) {
    println!("| row | esmd | raw | ratio | goal | met? |");
    println!("|---|---:|---:|---:|---|---|");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        println!("| {} | {} | {} | {} | {} | {met} |", r.name, r.esmd, r.raw, r.ratio, r.goal);
    }
}
