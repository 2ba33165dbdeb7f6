//! `[mappings.source]` with `type = "memory"` or `type = "memory_queue"`.

use esmd_api::config::{check_name, range, ConfigIssue};
use serde::Deserialize;

/// `type = "memory"`: an in-memory, Kinesis-shaped stream.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySource {
    /// Appears in the stand-in stream ARN (`arn:aws:kinesis:<region>:<account>:stream/<name>`).
    pub stream_name: String,
    #[serde(default = "one")]
    pub shards: usize,
    /// Records written before the mapping starts (demo and load tests).
    #[serde(default)]
    pub seed: Option<Seed>,
}

/// `seed = { records, record_bytes, keys, poison_every }`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    pub records: usize,
    /// Size of each record's data.
    #[serde(default = "default_record_bytes")]
    pub record_bytes: usize,
    /// Distinct partition keys, spread over the shards.
    #[serde(default = "default_keys")]
    pub keys: usize,
    /// Every Nth record is poison (the demo function fails batches holding one); 0 = none.
    #[serde(default)]
    pub poison_every: usize,
}

/// `type = "memory_queue"`: an in-memory, SQS-shaped queue.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryQueueSource {
    /// SQS naming: FIFO queue names end in `.fifo`.
    pub queue_name: String,
    #[serde(default)]
    pub fifo: bool,
    #[serde(default = "default_visibility")]
    pub visibility_timeout_seconds: u64,
}

fn one() -> usize {
    1
}
fn default_record_bytes() -> usize {
    100
}
fn default_keys() -> usize {
    100
}
fn default_visibility() -> u64 {
    30
}

impl MemorySource {
    /// Rules serde cannot express; paths relative to the mapping.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        // Kinesis stream naming, since the name ends up in a Kinesis-shaped ARN.
        check_name(&mut issues, "source.stream_name", &self.stream_name, 128, "A-Za-z0-9_.-", |c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        range(&mut issues, "source.shards", self.shards as i128, 1, 1024);
        if let Some(seed) = &self.seed {
            range(&mut issues, "source.seed.records", seed.records as i128, 0, 10_000_000);
            // Kinesis' record limit.
            range(&mut issues, "source.seed.record_bytes", seed.record_bytes as i128, 1, 1_048_576);
            range(&mut issues, "source.seed.keys", seed.keys as i128, 1, 1_000_000);
        }
        issues
    }
}

impl MemoryQueueSource {
    /// Rules serde cannot express; paths relative to the mapping.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let name = &self.queue_name;
        check_name(&mut issues, "source.queue_name", name, 80, "A-Za-z0-9_-, plus .fifo", |c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        if base.contains('.') {
            issues.push(ConfigIssue::new("source.queue_name", format!("source.queue_name = {name:?}: only a final \".fifo\" may contain a dot")));
        }
        match (self.fifo, name.ends_with(".fifo")) {
            (true, false) => issues.push(ConfigIssue::new("source.queue_name", format!("source.queue_name = {name:?}: a FIFO queue's name ends in \".fifo\" (as in SQS)"))),
            (false, true) => issues.push(ConfigIssue::new("source.fifo", format!("source.queue_name = {name:?} ends in \".fifo\": set source.fifo = true"))),
            _ => {}
        }
        // SQS' range.
        range(&mut issues, "source.visibility_timeout_seconds", self.visibility_timeout_seconds as i128, 0, 43_200);
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn stream(v: Value) -> MemorySource {
        serde_json::from_value(v).unwrap()
    }

    fn queue(v: Value) -> MemoryQueueSource {
        serde_json::from_value(v).unwrap()
    }

    fn messages(issues: Vec<ConfigIssue>) -> Vec<String> {
        issues.into_iter().map(|i| i.message).collect()
    }

    #[test]
    fn defaults() {
        assert_eq!(stream(json!({"stream_name": "s"})), MemorySource { stream_name: "s".into(), shards: 1, seed: None });
        assert_eq!(queue(json!({"queue_name": "q"})), MemoryQueueSource { queue_name: "q".into(), fifo: false, visibility_timeout_seconds: 30 });
        assert_eq!(stream(json!({"stream_name": "s", "seed": {"records": 5}})).seed, Some(Seed { records: 5, record_bytes: 100, keys: 100, poison_every: 0 }));
    }

    #[test]
    fn own_rules() {
        assert!(stream(json!({"stream_name": "s", "shards": 4, "seed": {"records": 10}})).validate().is_empty());
        assert_eq!(messages(stream(json!({"stream_name": "s", "shards": 0})).validate()), ["source.shards = 0 is out of range (1–1024)"]);
        assert!(messages(stream(json!({"stream_name": "a b"})).validate())[0].contains("source.stream_name"));
        assert_eq!(messages(stream(json!({"stream_name": "s", "seed": {"records": 1, "keys": 0}})).validate()), ["source.seed.keys = 0 is out of range (1–1000000)"]);
        assert!(queue(json!({"queue_name": "q.fifo", "fifo": true})).validate().is_empty());
        assert!(messages(queue(json!({"queue_name": "q", "fifo": true})).validate())[0].contains("ends in \".fifo\""));
        assert!(messages(queue(json!({"queue_name": "q.fifo"})).validate())[0].contains("source.fifo = true"));
        assert_eq!(
            messages(queue(json!({"queue_name": "q", "visibility_timeout_seconds": 50000})).validate()),
            ["source.visibility_timeout_seconds = 50000 is out of range (0–43200)"]
        );
    }
}
