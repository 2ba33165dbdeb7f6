//! The bench binary as its own helper processes: it runs itself (`current_exe`) with a flag
//! (`--noop-function`, `--raw-consumer`, `--raw-pipeline`), so the function and each measured
//! client are processes of their own. A process's CPU time and peak memory in `/proc` are then
//! that process's alone, and every client shares the two cores with the function equally.
//!
//! A child talks to the bench in lines on stdout (`ready`, a port, `done ...`); stderr is the
//! bench's, so a child's panic is seen.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A child of the bench, killed when dropped.
pub struct Helper {
    name: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Helper {
    /// Runs this binary as `<exe> <flag> <args...>`.
    pub fn spawn(flag: &str, args: &[String]) -> Helper {
        let exe = std::env::current_exe().expect("the bench's own path");
        let mut child = Command::new(exe)
            .arg(flag)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the bench as {flag}: {e}"));
        let stdout = child.stdout.take().expect("a piped stdout");
        Helper { name: flag.trim_start_matches('-').to_string(), child, lines: BufReader::new(stdout).lines() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_else(|| panic!("{} has exited", self.name))
    }

    /// The child's next line on stdout; panics if it exits or says nothing within `timeout`.
    pub async fn line(&mut self, timeout: Duration) -> String {
        match tokio::time::timeout(timeout, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => panic!("{} exited (status {:?})", self.name, self.child.try_wait()),
            Ok(Err(e)) => panic!("reading {}'s stdout: {e}", self.name),
            Err(_) => panic!("{} said nothing within {timeout:?}", self.name),
        }
    }

    /// Kills the child and waits for it, so its port and memory are free for the next run.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// What a child prints to say it is up (consumer created and subscribed, server listening).
pub const READY: &str = "ready";

/// Prints a line for the bench and flushes it (stdout is a pipe, so block-buffered).
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The value after `name` in a child's arguments; exits with a usage message when missing.
pub fn arg(args: &[String], name: &str) -> String {
    match args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)) {
        Some(v) => v.clone(),
        None => {
            eprintln!("this helper needs {name} <value> (arguments: {args:?})");
            std::process::exit(2)
        }
    }
}

/// [`arg`] parsed; exits with a usage message when it does not parse.
pub fn parsed<T: std::str::FromStr>(args: &[String], name: &str) -> T {
    let v = arg(args, name);
    v.parse().unwrap_or_else(|_| {
        eprintln!("{name} {v}: not a valid value");
        std::process::exit(2)
    })
}
