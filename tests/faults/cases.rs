//! The faults, each applied to one source during a drain, and the run that checks the result.

use super::check::{verdict, Seeded, Verdict};
use super::esmd::Esmd;
use super::function::Function;
use super::rng::Rng;
use super::sources::{Backend, Kind, FUNCTION_TIMEOUT_S, KAFKA_SESSION_S};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 at random points, restarted each time.
    Kill,
    /// SIGSTOP for longer than the function timeout and the source's lease, then SIGCONT.
    Stop,
    /// The function's port closed, then answering 500, then healthy.
    FunctionOutage,
    /// The broker restarted under the running mapping.
    BrokerRestart,
    /// The state dir full, then read-only, then a crash.
    Disk,
    /// SIGTERM mid-drain: exit 0, and the restart goes on without a gap.
    Term,
}

impl Fault {
    pub const ALL: [Fault; 6] = [Fault::Kill, Fault::Stop, Fault::FunctionOutage, Fault::BrokerRestart, Fault::Disk, Fault::Term];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill -9 loop",
            Fault::Stop => "SIGSTOP / SIGCONT",
            Fault::FunctionOutage => "function down, then 500",
            Fault::BrokerRestart => "broker restart",
            Fault::Disk => "state dir full, then read-only",
            Fault::Term => "SIGTERM mid-drain",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Stop => "stop",
            Fault::FunctionOutage => "function",
            Fault::BrokerRestart => "broker",
            Fault::Disk => "disk",
            Fault::Term => "term",
        }
    }

    pub fn applies_to(self, kind: Kind) -> bool {
        match self {
            Fault::BrokerRestart => kind.has_broker_restart(),
            Fault::Disk => kind.checkpoints_on_disk(),
            _ => true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Case {
    pub kind: Kind,
    pub fault: Fault,
    pub records: u64,
    /// Kill loop: how many kills.
    pub kills: u32,
    /// Function outage: how long down, then how long failing.
    pub outage: Duration,
    /// How long an undisturbed drain should take (esmd is paced to it), so faults land
    /// mid-drain.
    pub drain: Duration,
}

impl Case {
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind.short(), self.fault.short())
    }
}

pub struct Outcome {
    pub case: Case,
    pub verdict: Verdict,
    pub faults: u32,
    pub panics: usize,
    pub seconds: f64,
    pub notes: Vec<String>,
    /// The harness could not finish the case (a timeout, a process that died by itself).
    pub error: Option<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.verdict.lost == 0 && self.verdict.order_violations.is_empty() && self.panics == 0 && self.verdict.unknown == 0
    }
}

/// Everything one case holds.
struct Run {
    case: Case,
    seeded: Seeded,
    backend: Backend,
    function: Function,
    esmd: Esmd,
    notes: Vec<String>,
    dir: PathBuf,
}

impl Run {
    fn n(&self) -> usize {
        self.seeded.len() as usize
    }

    /// Waits until `target` ids arrived, while the running esmd (if any) stays alive.
    async fn wait_delivered(&mut self, target: usize, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.function.refresh();
            if got >= target {
                return Ok(());
            }
            self.esmd.check_alive()?;
            if Instant::now() > deadline {
                let status = self.esmd.status().await.map(|s| s.to_string()).unwrap_or_else(|| "no /status".into());
                return Err(format!("{got} of {target} records delivered after {timeout:?}; esmd /status: {status}\nlast log lines:\n{}", self.esmd.tail(self.esmd.starts, 20)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sleeps `d`, failing early when esmd exits by itself.
    async fn hold(&mut self, d: Duration) -> Result<(), String> {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.esmd.check_alive()?;
            tokio::time::sleep(Duration::from_millis(100).min(end.saturating_duration_since(Instant::now()))).await;
        }
        Ok(())
    }

    fn fraction(&self, f: f64) -> usize {
        ((self.n() as f64) * f).ceil() as usize
    }

    /// How long the rest of the drain may take.
    fn drain_timeout(&self) -> Duration {
        self.case.drain * 3 + Duration::from_secs(120)
    }
}

pub async fn run_case(case: Case, rng: &mut Rng) -> Outcome {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let seeded = Seeded::new(case.records, 300);
    let backend = Backend::start(case.kind, &seeded).await;
    let seeding = started.elapsed();
    let function = Function::start(dir.path()).await;
    let batch: u64 = if case.kind == Kind::Sqs { 10 } else { 100 };
    // Paced so the drain lasts `case.drain`: faults land while records are in flight.
    let rate = ((case.records as f64 / batch as f64) / case.drain.as_secs_f64()).max(1.0).ceil();
    let mapping = format!("{}\nmax_invocations_per_second = {rate}", backend.mapping_toml());
    let esmd = Esmd::new(dir.path(), &mapping, &backend.source_toml(), &function.url(), FUNCTION_TIMEOUT_S);
    let mut run = Run { case: case.clone(), seeded, backend, function, esmd, notes: Vec::new(), dir: dir.path().to_path_buf() };
    run.notes.push(format!("seeded in {:.1} s, paced at {rate} invocations/s", seeding.as_secs_f64()));

    let result = match case.fault {
        Fault::Kill => kill_loop(&mut run, rng).await,
        Fault::Stop => stop(&mut run).await,
        Fault::FunctionOutage => function_outage(&mut run).await,
        Fault::BrokerRestart => broker_restart(&mut run).await,
        Fault::Disk => disk(&mut run).await,
        Fault::Term => term(&mut run).await,
    };
    let (faults, mut error) = match result {
        Ok(f) => (f, None),
        Err(e) => (0, Some(e)),
    };
    if error.is_none() {
        let n = run.n();
        let timeout = run.drain_timeout();
        error = run.wait_delivered(n, timeout).await.err();
    }
    if error.is_none() {
        error = run.backend.wait_settled(Duration::from_secs(90)).await.err();
    }
    run.function.refresh();
    let v = verdict(&run.seeded, &run.function.deliveries, true_order(case.kind));
    let panics = run.esmd.panics();
    let failed = error.is_some() || v.lost > 0 || !v.order_violations.is_empty() || v.unknown > 0 || panics > 0;
    if failed || std::env::var_os("ESMD_KEEP_FAULT_LOGS").is_some() {
        let kept = keep(&run, &case);
        run.notes.push(format!("logs kept in {}", kept.display()));
    }
    drop(run.esmd);
    run.backend.cleanup().await;
    Outcome { case, verdict: v, faults, panics, seconds: started.elapsed().as_secs_f64(), notes: run.notes, error }
}

/// Every source under test is ordered: Kafka and Kinesis per partition key, DynamoDB Streams
/// per item (one item per key, updated by each of its records), SQS FIFO per message group (one
/// per key), RabbitMQ with `ordered = true`.
fn true_order(_kind: Kind) -> bool {
    true
}

/// Copies the case's esmd logs and function log to `target/tmp/faults-<case>-<pid>/`.
fn keep(run: &Run, case: &Case) -> PathBuf {
    let to = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("faults-{}-{}-{}", case.kind.short(), case.fault.short(), std::process::id()));
    let _ = std::fs::create_dir_all(&to);
    if let Ok(entries) = std::fs::read_dir(&run.dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_file() {
                let _ = std::fs::copy(&p, to.join(e.file_name()));
            }
        }
    }
    to
}

/// kill -9 after a random time up (seeded), `kills` times, restarting at once.
async fn kill_loop(run: &mut Run, rng: &mut Rng) -> Result<u32, String> {
    let mut kills = 0;
    // Up long enough each time to deliver something: joining a Kafka group takes seconds.
    let (lo, hi) = match run.case.kind {
        Kind::Kafka => (1_500, 4_000),
        _ => (300, 2_500),
    };
    while kills < run.case.kills {
        run.esmd.start();
        let up = Duration::from_millis(rng.range(lo, hi));
        run.hold(up).await?;
        if run.function.refresh() >= run.n() {
            break;
        }
        run.esmd.kill();
        kills += 1;
        if run.case.kind == Kind::Kafka {
            // tansu 0.6.0 only reassigns partitions when a member joins: a member that joins
            // while a killed one still holds its session gets half the partitions, and the
            // rest stay unread once the dead member expires. Wait it out.
            tokio::time::sleep(Duration::from_secs(KAFKA_SESSION_S + 2)).await;
        }
    }
    if run.esmd.starts == 0 || kills == run.esmd.starts {
        run.esmd.start();
    }
    run.notes.push(format!("{kills} kills, up {lo}–{hi} ms each"));
    Ok(kills)
}

async fn stop(run: &mut Run) -> Result<u32, String> {
    run.esmd.start();
    let at = run.fraction(0.15);
    run.wait_delivered(at, run.drain_timeout()).await?;
    let paused = Duration::from_secs(FUNCTION_TIMEOUT_S.max(run.case.kind.lease_s()) + 3);
    run.esmd.pause();
    tokio::time::sleep(paused).await;
    run.esmd.resume();
    run.notes.push(format!("stopped {} s at {} delivered", paused.as_secs(), run.function.refresh()));
    Ok(1)
}

async fn function_outage(run: &mut Run) -> Result<u32, String> {
    run.esmd.start();
    let at = run.fraction(0.15);
    run.wait_delivered(at, run.drain_timeout()).await?;
    run.function.down();
    run.hold(run.case.outage).await?;
    run.function.up("500").await;
    run.hold(run.case.outage).await?;
    run.function.up("ok").await;
    run.notes.push(format!("function down {0} s then 500 for {0} s", run.case.outage.as_secs()));
    Ok(1)
}

async fn broker_restart(run: &mut Run) -> Result<u32, String> {
    run.esmd.start();
    let at = run.fraction(0.15);
    run.wait_delivered(at, run.drain_timeout()).await?;
    run.backend.restart_broker(Duration::from_secs(5)).await;
    run.esmd.check_alive()?;
    run.notes.push("broker down 5 s".into());
    Ok(1)
}

/// The state dir on a small tmpfs of its own.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Self, String> {
        mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], at)?;
        Ok(Tmpfs(at.to_path_buf()))
    }

    fn remount(&self, mode: &str) -> Result<(), String> {
        mount(&["-o", &format!("remount,{mode}")], &self.0)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount(args: &[&str], at: &Path) -> Result<(), String> {
    let out = Command::new("mount").args(args).arg(at).output().map_err(|e| format!("mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        // Never a skip: the case needs root (or CAP_SYS_ADMIN) and fails without it.
        Err(format!("mount {args:?} {}: {} (the disk fault needs permission to mount a tmpfs)", at.display(), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Fills the file system under `dir` until a write fails.
fn fill(dir: &Path) -> Result<PathBuf, String> {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).map_err(|e| format!("filler: {e}"))?;
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if f.write_all(&chunk).and_then(|()| f.sync_data()).is_err() {
            return Ok(path);
        }
    }
}

fn checkpoint_warnings(esmd: &Esmd) -> usize {
    esmd.logs().lines().filter(|l| l.contains("checkpoint not saved")).count()
}

/// The last line of the current start's log that says something went wrong.
fn last_error(esmd: &Esmd) -> String {
    let tail = esmd.tail(esmd.starts, 40);
    tail.lines().rev().find(|l| l.contains("ERROR") || l.contains("rror:")).unwrap_or("(no error line)").trim().to_string()
}

/// Full while running, a crash and a restart while still full, then read-only at a start.
/// redb rewrites freed pages in place, so a full disk may not fail a save at all; what must
/// hold is that nothing is lost or skipped, the store opens after every crash, and a start on
/// a store it cannot write fails with a message rather than running without checkpoints.
async fn disk(run: &mut Run) -> Result<u32, String> {
    let state = run.esmd.state.clone();
    let fs = Tmpfs::mount(&state, "16m")?;
    run.esmd.start();
    // Full early, while the store still grows: later it mostly rewrites pages it freed.
    run.wait_delivered(1, run.drain_timeout()).await?;
    let filler = fill(&state)?;
    run.hold(Duration::from_secs(5)).await?;
    let full_warnings = checkpoint_warnings(&run.esmd);
    // A crash on the full disk, and a start before space comes back: opening a store after a
    // crash writes (redb repairs it).
    run.esmd.kill();
    run.esmd.start();
    let on_full = match run.esmd.wait_exit(Duration::from_secs(8)).await {
        Some(status) => format!("the start on the full disk exited ({status}): {}", last_error(&run.esmd)),
        None => "the start on the full disk kept running".to_string(),
    };
    std::fs::remove_file(&filler).map_err(|e| format!("remove filler: {e}"))?;
    if !run.esmd.running() {
        run.esmd.start();
    }
    // Once there is space again, saves succeed again: the store recovers without a restart.
    run.hold(Duration::from_secs(2)).await?;
    let recovering = checkpoint_warnings(&run.esmd);
    run.hold(Duration::from_secs(3)).await?;
    let after_space = checkpoint_warnings(&run.esmd) - recovering;
    if after_space > 0 {
        return Err(format!("{after_space} checkpoint saves failed 2–5 s after the disk had space again:\n{}", run.esmd.tail(run.esmd.starts, 10)));
    }

    // Read-only: only a store nobody holds open can be remounted so.
    run.esmd.kill();
    fs.remount("ro")?;
    run.esmd.start();
    let read_only = run.esmd.wait_exit(Duration::from_secs(30)).await;
    fs.remount("rw")?;
    let read_only = match read_only {
        Some(status) if !status.success() => format!("the start on the read-only state dir failed ({status}): {}", last_error(&run.esmd)),
        Some(status) => return Err(format!("esmd exited {status} on a read-only state dir")),
        None => {
            run.esmd.kill();
            return Err("esmd kept running on a read-only state dir without failing".into());
        }
    };
    run.esmd.start();
    run.notes.push(format!("{full_warnings} checkpoint warnings while full; {on_full}; {read_only}"));
    // The mount stays until the drain ends.
    let n = run.n();
    let timeout = run.drain_timeout();
    run.wait_delivered(n, timeout).await?;
    drop(fs);
    Ok(3)
}

async fn term(run: &mut Run) -> Result<u32, String> {
    run.esmd.start();
    let at = run.fraction(0.3);
    run.wait_delivered(at, run.drain_timeout()).await?;
    let status = run.esmd.terminate().await?;
    if !status.success() {
        return Err(format!("esmd exited with {status} on SIGTERM:\n{}", run.esmd.tail(run.esmd.starts, 20)));
    }
    run.notes.push(format!("exited 0 on SIGTERM at {} delivered", run.function.refresh()));
    run.esmd.start();
    Ok(1)
}
