//! Measurements of a whole process from `/proc/<pid>` (Linux): CPU time and resident memory of
//! any child, and of `esmd run` (the built binary, a child of the bench) the CPU it burns with
//! idle mappings and its resident memory with many shards.

use super::moto::{free_port, EsmdProcess};
use std::path::Path;
use std::time::{Duration, Instant};

/// A running `esmd run` over a generated config, killed when dropped.
pub struct Esmd {
    process: EsmdProcess,
    _dir: tempfile::TempDir,
}

/// `mappings` mappings, each over an empty in-memory stream of `shards` shards, each to
/// `function_url`; returns once `/readyz` answers 200 (every mapping started).
pub async fn start(mappings: usize, shards: usize, function_url: &str) -> Esmd {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut config = format!(
        "shutdown_timeout_seconds = 5\n\n[admin]\nlisten = \"127.0.0.1:{port}\"\n\n[checkpoint]\ntype = \"embedded\"\npath = \"{}\"\n",
        dir.path().display()
    );
    for i in 0..mappings {
        config.push_str(&format!(
            "\n[[mappings]]\nname = \"idle-{i}\"\nstarting_position = \"LATEST\"\nsource = {{ type = \"memory\", stream_name = \"idle-{i}\", shards = {shards} }}\nfunction = {{ type = \"http\", url = \"{function_url}\" }}\n"
        ));
    }
    let path = dir.path().join("esmd.toml");
    std::fs::write(&path, config).expect("write the config");
    let process = EsmdProcess::run(&path, dir.path());
    let esmd = Esmd { process, _dir: dir };
    wait_ready(port, esmd.pid()).await;
    esmd
}

/// Waits until the esmd with admin port `port` answers `/readyz` with 200 (every mapping
/// started); panics if process `pid` exits first or after 120 s.
pub async fn wait_ready(port: u16, pid: u32) {
    let http = reqwest::Client::builder().no_proxy().build().expect("http client");
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = http.get(&url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "esmd (pid {pid}) exited before it was ready");
        assert!(Instant::now() < deadline, "esmd was not ready within 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Esmd {
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// User + system CPU time the process has used.
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.pid())
    }

    /// A `/proc/<pid>/status` value in kB, e.g. "VmRSS" or "VmHWM".
    pub fn status_kb(&self, key: &str) -> u64 {
        status_kb(self.pid(), key)
    }
}

/// User + system CPU time process `pid` has used so far (its threads included).
pub fn cpu_time(pid: u32) -> Duration {
    cpu_time_of(&format!("/proc/{pid}/stat"))
}

/// A `/proc/<pid>/status` value in kB, e.g. "VmRSS" or "VmHWM" (the peak resident set).
pub fn status_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// User + system CPU time this process (the bench, with everything in it) has used so far.
pub fn own_cpu_time() -> Duration {
    cpu_time_of("/proc/self/stat")
}

/// CPU time every process on the machine has used since boot (`/proc/stat`: user, nice,
/// system, irq, softirq, steal). Less what a run's own processes used over the run, it is the
/// rest of the machine's load: the noise in that run.
pub fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|l| l.split_whitespace().enumerate().filter(|(i, _)| matches!(i, 0 | 1 | 2 | 5 | 6 | 7)).filter_map(|(_, v)| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / clock_ticks())
}

/// User + system CPU time from a `/proc/<pid>/stat` file.
fn cpu_time_of(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // Fields after the command name (which may hold spaces) in parentheses: state is the
    // first, utime the 12th, stime the 13th (proc(5) fields 14 and 15), in clock ticks.
    let after = &stat[stat.rfind(')').expect("stat format") + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_secs_f64(ticks as f64 / clock_ticks())
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux this runs on). Asked once: the
/// drains read CPU times around every run, and a `getconf` each time is a process start.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Share of one core (percent) that `mappings` idle mappings of one shard each use, sampled
/// over `sample` after `settle` (start-up work is not idle work).
pub async fn idle_cpu(mappings: usize, function_url: &str, settle: Duration, sample: Duration) -> f64 {
    let esmd = start(mappings, 1, function_url).await;
    tokio::time::sleep(settle).await;
    let (cpu0, t0) = (esmd.cpu_time(), Instant::now());
    tokio::time::sleep(sample).await;
    let (cpu1, t1) = (esmd.cpu_time(), Instant::now());
    100.0 * (cpu1 - cpu0).as_secs_f64() / (t1 - t0).as_secs_f64()
}

/// Resident memory (VmRSS, and the peak VmHWM) in MB of one esmd with one mapping over an
/// in-memory stream of `shards` shards (the memory source allows up to 1024), after `settle`.
pub async fn rss_mb(shards: usize, function_url: &str, settle: Duration) -> (f64, f64) {
    let esmd = start(1, shards, function_url).await;
    tokio::time::sleep(settle).await;
    (esmd.status_kb("VmRSS") as f64 / 1024.0, esmd.status_kb("VmHWM") as f64 / 1024.0)
}
