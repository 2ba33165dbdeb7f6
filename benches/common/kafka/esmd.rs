//! esmd as the client: the built binary, `esmd run` as a child of the bench, with one Kafka
//! mapping over the bench's topic, so its CPU time and peak memory are the whole service's
//! (engine, connector, librdkafka, invoker) and nothing else's.

use super::super::moto::{esmd_command, free_port, EsmdProcess};
use super::TOPIC;
use std::process::Stdio;

pub struct Options<'a> {
    pub bootstrap: &'a str,
    pub group: &'a str,
    pub url: &'a str,
    pub batch: usize,
    pub lanes: usize,
    pub concurrency: usize,
}

/// A running `esmd run`, killed when dropped.
pub struct Esmd {
    process: EsmdProcess,
    dir: tempfile::TempDir,
}

/// The mapping as a user would write it (config/kafka.toml): window 0, so batches are what a
/// lane has when it is free, as the raw pipeline's are. BENCH_KAFKA_DEBUG=cgrp,fetch turns on
/// librdkafka's debug log (in the child's log, printed if it gets stuck); BENCH_KAFKA_PROPS
/// adds properties as for the raw clients, BENCH_ESMD_KAFKA_PROPS to esmd's alone.
fn config(o: &Options<'_>, admin_port: u16, dir: &std::path::Path) -> String {
    let mut properties = super::extra_properties();
    properties.extend(super::properties_from("BENCH_ESMD_KAFKA_PROPS"));
    if let Ok(d) = std::env::var("BENCH_KAFKA_DEBUG") {
        properties.push(("debug".into(), d));
    }
    let properties = if properties.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = properties.iter().map(|(k, v)| format!("{k:?} = {v:?}")).collect();
        format!(", properties = {{ {} }}", list.join(", "))
    };
    format!(
        r#"shutdown_timeout_seconds = 5

[admin]
listen = "127.0.0.1:{admin_port}"

[checkpoint]
type = "embedded"
path = "{state}"

[[mappings]]
name = "bench"
starting_position = "TRIM_HORIZON"
batch_size = {batch}
maximum_batching_window_in_seconds = 0
parallelization_factor = {lanes}
source = {{ type = "kafka", bootstrap_servers = ["{bootstrap}"], topic = "{TOPIC}", consumer_group_id = "{group}"{properties} }}
function = {{ type = "http", url = "{url}", max_concurrency = {concurrency} }}
"#,
        state = dir.display(),
        batch = o.batch,
        lanes = o.lanes,
        bootstrap = o.bootstrap,
        group = o.group,
        url = o.url,
        concurrency = o.concurrency,
    )
}

/// Starts `esmd run`; returns once `/readyz` answers (the mapping started, its consumer
/// subscribed).
pub async fn start(o: &Options<'_>) -> Esmd {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let path = dir.path().join("esmd.toml");
    std::fs::write(&path, config(o, port, dir.path())).expect("write the config");
    let log = std::fs::File::create(dir.path().join("esmd.log")).expect("esmd's log file");
    let child = esmd_command(dir.path()).args(["run", "-c"]).arg(&path).stdout(Stdio::null()).stderr(log).spawn().expect("esmd starts");
    let esmd = Esmd { process: EsmdProcess(child), dir };
    super::super::process::wait_ready(port, esmd.pid()).await;
    esmd
}

impl Esmd {
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// The end of esmd's log (stderr), for a panic message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("esmd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}
