//! The Kafka drain's results: per configuration and client the runs' records/s, MB/s, CPU per
//! million records, peak RSS and longest gap as min / median / max, where the CPU went, and
//! issue 17's goals as met or not.

use super::super::table::{print_suite, Row};
use super::VALUE_BYTES;
use std::time::Duration;

/// One drain by one client.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// First completed request to the last (raw consumer: first record received to the last).
    pub span: Duration,
    /// The client process's user + system time from subscribed to done.
    pub cpu: Duration,
    /// The client process's VmHWM.
    pub peak_rss_kb: u64,
    /// The longest time without a completed request (raw consumer: without a record).
    pub longest_gap: Duration,
    /// When it ended, from the first request (record): start-up, middle or tail of the drain.
    pub longest_gap_end: Duration,
    /// The function process's CPU time over the same interval.
    pub function_cpu: Duration,
    /// The bench process's (the mock broker's, mostly) over the same interval.
    pub broker_cpu: Duration,
    /// Every other process's over the same interval: builds, tests, anything else running.
    pub other_cpu: Duration,
    /// Requests the function received (raw consumer: 0).
    pub requests: u64,
}

pub struct Config {
    pub batch: usize,
    pub lanes: usize,
    pub esmd: Vec<Sample>,
    pub pipeline: Vec<Sample>,
}

impl Config {
    pub fn name(&self) -> String {
        format!("batch {} × {} lane{}", self.batch, self.lanes, if self.lanes == 1 { "" } else { "s" })
    }
}

pub struct Report {
    pub records: usize,
    pub partitions: i32,
    pub concurrency: usize,
    pub runs: usize,
    pub consumer: Vec<Sample>,
    pub configs: Vec<Config>,
}

/// AWS: "An event poller ... allocates up to 5 MB/s throughput" (provisioned mode, Kafka).
const AWS_POLLER_MB_S: f64 = 5.0;

/// (min, median, max); the median of an even count is the mean of the middle two.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    (v[0], median, v[n - 1])
}

fn three(v: (f64, f64, f64), digits: usize) -> String {
    format!("{:.*} / {:.*} / {:.*}", digits, v.0, digits, v.1, digits, v.2)
}

impl Report {
    fn rate(&self, s: &Sample) -> f64 {
        self.records as f64 / s.span.as_secs_f64().max(1e-9)
    }

    /// MB/s of record values (10^6 bytes; the 1 KB values, not the 1.4 KB base64 in events).
    fn mb_s(&self, s: &Sample) -> f64 {
        self.rate(s) * VALUE_BYTES as f64 / 1e6
    }

    fn per_million(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1e6 / self.records.max(1) as f64
    }

    fn rates(&self, v: &[Sample]) -> (f64, f64, f64) {
        spread(v.iter().map(|s| self.rate(s)).collect())
    }

    fn cpu(&self, v: &[Sample]) -> (f64, f64, f64) {
        spread(v.iter().map(|s| self.per_million(s.cpu)).collect())
    }

    fn rss(v: &[Sample]) -> (f64, f64, f64) {
        spread(v.iter().map(|s| s.peak_rss_kb as f64 / 1024.0).collect())
    }

    fn gap(v: &[Sample]) -> (f64, f64, f64) {
        spread(v.iter().map(|s| s.longest_gap.as_secs_f64() * 1000.0).collect())
    }

    fn line(&self, config: &str, client: &str, v: &[Sample]) {
        let mb = spread(v.iter().map(|s| self.mb_s(s)).collect());
        println!(
            "| {config} | {client} | {} | {} | {} | {} | {} |",
            three(self.rates(v), 0),
            three(mb, 1),
            three(self.cpu(v), 2),
            three(Self::rss(v), 0),
            three(Self::gap(v), 0)
        );
    }

    pub fn print(&self) {
        println!(
            "{} records × {VALUE_BYTES} B in {} partitions, {} run{} each (min / median / max); function and clients are separate processes; max_concurrency {}; raw clients: fetch.queue.backoff.ms = 10, fetch.wait.max.ms = 50 (common/kafka/mod.rs says why)\n",
            self.records,
            self.partitions,
            self.runs,
            if self.runs == 1 { "" } else { "s" },
            self.concurrency
        );
        println!("| configuration | client | records/s | MB/s | CPU-s per M records | peak RSS MB | longest gap ms |");
        println!("|---|---|---:|---:|---:|---:|---:|");
        self.line("read only", "raw rdkafka StreamConsumer (ceiling)", &self.consumer);
        for c in &self.configs {
            self.line(&c.name(), "raw pipeline (floor)", &c.pipeline);
            self.line(&c.name(), "esmd", &c.esmd);
        }
        println!("\nWhere the CPU went (median CPU-s per million records, from the client's subscription to done; the function and the mock broker do the same work for either client; the last column is every other process on the machine over the same time):\n");
        println!("| configuration | client | client | function | bench process (mock broker) | rest of the machine (noise) | requests |");
        println!("|---|---|---:|---:|---:|---:|---:|");
        let med = |v: &[Sample], f: fn(&Sample) -> Duration| self.per_million(Duration::from_secs_f64(spread(v.iter().map(|s| f(s).as_secs_f64()).collect()).1));
        let (broker, other) = (med(&self.consumer, |s| s.broker_cpu), med(&self.consumer, |s| s.other_cpu));
        println!("| read only | raw consumer | {:.2} | — | {broker:.2} | {other:.2} | — |", self.cpu(&self.consumer).1);
        for c in &self.configs {
            for (client, v) in [("raw pipeline", &c.pipeline), ("esmd", &c.esmd)] {
                let (function, broker, other) = (med(v, |s| s.function_cpu), med(v, |s| s.broker_cpu), med(v, |s| s.other_cpu));
                let requests = spread(v.iter().map(|s| s.requests as f64).collect()).1;
                println!("| {} | {client} | {:.2} | {function:.2} | {broker:.2} | {other:.2} | {requests:.0} |", c.name(), self.cpu(v).1);
            }
        }
        println!("\nGoals (issue 17; medians of the runs unless said):\n");
        print_suite(&self.goals());
    }

    /// Issue 17's goals, one row each, per configuration.
    pub fn goals(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for c in &self.configs {
            let name = c.name();
            let (e, p) = (self.rates(&c.esmd), self.rates(&c.pipeline));
            rows.push(Row {
                name: format!("Kafka {name}: records/s vs the raw pipeline"),
                esmd: format!("{:.0}", e.1),
                raw: format!("{:.0}", p.1),
                ratio: format!("{:.0}%", 100.0 * e.1 / p.1.max(1e-9)),
                goal: "≥ 85%".into(),
                met: Some(e.1 >= 0.85 * p.1),
            });
            let (ec, pc) = (self.cpu(&c.esmd).1, self.cpu(&c.pipeline).1);
            rows.push(Row {
                name: format!("Kafka {name}: CPU-s per million records vs the raw pipeline"),
                esmd: format!("{ec:.2}"),
                raw: format!("{pc:.2}"),
                ratio: format!("{:.2}×", ec / pc.max(1e-9)),
                goal: "≤ 1.2×".into(),
                met: Some(ec <= 1.2 * pc),
            });
            if c.batch >= 1000 {
                let enough = self.runs >= 2;
                rows.push(Row {
                    name: format!("Kafka {name}: stability, max / min records/s over {} runs", self.runs),
                    esmd: format!("{:.2}", e.2 / e.0.max(1e-9)),
                    raw: format!("{:.2}", p.2 / p.0.max(1e-9)),
                    ratio: "—".into(),
                    goal: if enough { "≤ 1.3".into() } else { "≤ 1.3 (needs 2+ runs)".into() },
                    met: enough.then_some(e.2 <= 1.3 * e.0),
                });
                let (eg, pg) = (Self::gap(&c.esmd).2, Self::gap(&c.pipeline).2);
                rows.push(Row {
                    name: format!("Kafka {name}: longest gap without a completed request (max of runs)"),
                    esmd: format!("{eg:.0} ms"),
                    raw: format!("{pg:.0} ms"),
                    ratio: "—".into(),
                    goal: "≤ 500 ms".into(),
                    met: Some(eg <= 500.0),
                });
            }
            let (er, pr) = (Self::rss(&c.esmd).1, Self::rss(&c.pipeline).1);
            rows.push(Row {
                name: format!("Kafka {name}: peak RSS of the {}-record drain vs the raw pipeline", self.records),
                esmd: format!("{er:.0} MB"),
                raw: format!("{pr:.0} MB"),
                ratio: format!("{:.1}×", er / pr.max(1e-9)),
                goal: "≤ 2×".into(),
                met: Some(er <= 2.0 * pr),
            });
            let (em, pm) = (spread(c.esmd.iter().map(|s| self.mb_s(s)).collect()).1, spread(c.pipeline.iter().map(|s| self.mb_s(s)).collect()).1);
            rows.push(Row {
                name: format!("Kafka {name}: MB/s per mapping, in AWS's terms (~{AWS_POLLER_MB_S} MB/s per event poller)"),
                esmd: format!("{em:.1} MB/s"),
                raw: format!("{pm:.1} MB/s"),
                ratio: format!("{:.1} pollers", em / AWS_POLLER_MB_S),
                goal: "—".into(),
                met: None,
            });
        }
        rows
    }
}
