//! One mapping run by successive `esmd run` processes: started, killed, stopped, continued and
//! terminated by PID, each start a new instance name (`r1`, `r2`, …) in the calls it makes.

use super::support::moto::{esmd_command, free_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Esmd {
    dir: PathBuf,
    pub state: PathBuf,
    port: u16,
    /// The config with `{instance}` to fill in.
    template: String,
    child: Option<Child>,
    pub starts: u32,
}

/// How long esmd may take to drain on SIGTERM (the config's `shutdown_timeout_seconds`).
pub const SHUTDOWN_S: u64 = 10;

impl Esmd {
    /// `mapping`: the mapping's keys besides name, source and function; `source`: an inline
    /// source table.
    pub fn new(dir: &Path, mapping: &str, source: &str, function_url: &str, function_timeout_s: u64) -> Self {
        let state = dir.join("state");
        std::fs::create_dir_all(&state).expect("state dir");
        let port = free_port();
        let template = format!(
            r#"shutdown_timeout_seconds = {SHUTDOWN_S}
[admin]
listen = "127.0.0.1:{port}"
[checkpoint]
path = "{state}"
[[mappings]]
name = "faults"
{mapping}
source = {source}
function = {{ type = "http", url = "{function_url}", timeout_seconds = {function_timeout_s}, headers = {{ "X-Esmd-Instance" = "{{instance}}" }} }}
"#,
            state = state.display()
        );
        Esmd { dir: dir.to_path_buf(), state, port, template, child: None, starts: 0 }
    }

    fn log_path(&self, start: u32) -> PathBuf {
        self.dir.join(format!("esmd-r{start}.log"))
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "esmd is already running");
        self.starts += 1;
        let instance = format!("r{}", self.starts);
        let config = self.dir.join(format!("{instance}.toml"));
        std::fs::write(&config, self.template.replace("{instance}", &instance)).expect("write config");
        let log = std::fs::File::create(self.log_path(self.starts)).expect("log file");
        let child = esmd_command(&self.dir)
            .args(["run", "-c"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("esmd starts");
        self.child = Some(child);
    }

    fn pid(&self) -> String {
        self.child.as_ref().expect("esmd is running").id().to_string()
    }

    fn signal(&self, name: &str) {
        let pid = self.pid();
        let ok = Command::new("kill").args([&format!("-{name}"), &pid]).status().is_ok_and(|s| s.success());
        assert!(ok, "kill -{name} {pid}");
    }

    /// SIGKILL: no drain, no final ack or commit.
    pub fn kill(&mut self) {
        self.signal("KILL");
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    pub fn pause(&self) {
        self.signal("STOP");
    }

    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// SIGTERM, then waits for the exit (at most the shutdown timeout and a margin).
    pub async fn terminate(&mut self) -> Result<ExitStatus, String> {
        self.signal("TERM");
        let mut child = self.child.take().expect("esmd is running");
        let deadline = Instant::now() + Duration::from_secs(SHUTDOWN_S + 20);
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("esmd did not exit within {} s of SIGTERM", SHUTDOWN_S + 20));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits up to `timeout` for the running process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let c = self.child.as_mut()?;
            if let Ok(Some(status)) = c.try_wait() {
                self.child = None;
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// An error when the running process exited by itself (a config error, a crash).
    pub fn check_alive(&mut self) -> Result<(), String> {
        if let Some(c) = self.child.as_mut() {
            if let Some(status) = c.try_wait().map_err(|e| e.to_string())? {
                self.child = None;
                return Err(format!("esmd r{} exited by itself with {status}:\n{}", self.starts, self.tail(self.starts, 30)));
            }
        }
        Ok(())
    }

    /// The last `n` lines of start `start`'s log.
    pub fn tail(&self, start: u32, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(start)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Every start's log, in order.
    pub fn logs(&self) -> String {
        (1..=self.starts).map(|s| std::fs::read_to_string(self.log_path(s)).unwrap_or_default()).collect::<Vec<_>>().join("\n")
    }

    /// Panics any process logged.
    pub fn panics(&self) -> usize {
        self.logs().lines().filter(|l| l.contains("panicked")).count()
    }

    /// `/status` of the running process.
    pub async fn status(&self) -> Option<serde_json::Value> {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build().ok()?;
        http.get(format!("http://127.0.0.1:{}/status", self.port)).send().await.ok()?.json().await.ok()
    }
}

impl Drop for Esmd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A SIGSTOPped process must be continued to die of anything but SIGKILL; SIGKILL it.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
