//! The embedded (redb) checkpoint store: round trips, reopening, surviving `kill -9`, and
//! refusing a second opener.
//!
//! The crash and second-process tests re-run this test binary as a child process
//! ([`child_process`]), told what to do by an environment variable.

use esmd::checkpoint::embedded::EmbeddedStore;
use esmd::checkpoint::{Checkpoint, CheckpointStore};
use esmd_api::{Position, ShardId};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Child mode: loop saving increasing positions to the store at this path.
const CHILD_SAVE_LOOP: &str = "ESMD_TEST_CHECKPOINT_SAVE_LOOP";
/// Child mode: try to open the store at this path and report how it went.
const CHILD_OPEN: &str = "ESMD_TEST_CHECKPOINT_OPEN";

/// On the real disk (not a tmpfs /tmp), so fsync costs what it costs in production.
fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn checkpoint(pos: &str) -> Checkpoint {
    Checkpoint { position: Some(Position::new(pos)), shard_finished: false, state: None }
}

fn shard(s: &str) -> ShardId {
    ShardId::new(s)
}

#[tokio::test]
async fn save_load_list_round_trip() {
    let dir = tempdir();
    let store = EmbeddedStore::open(&dir.path().join("state/checkpoints.redb")).unwrap();

    assert_eq!(store.load("orders", &shard("shard-0")).await.unwrap(), None);
    assert!(store.list("orders").await.unwrap().is_empty());

    let with_state = Checkpoint {
        position: Some(Position::new("49590338271490256608559692538361571095921575989136588898")),
        shard_finished: true,
        state: Some(json!({"window": {"count": 3, "sum": 42}})),
    };
    store.save("orders", &shard("shard-0"), &checkpoint("100")).await.unwrap();
    store.save("orders", &shard("shard-1"), &with_state).await.unwrap();
    // Overwrite: the last save wins.
    store.save("orders", &shard("shard-0"), &checkpoint("200")).await.unwrap();
    // Mappings whose names share a prefix, or sort either side, must not leak into each other.
    store.save("order", &shard("shard-0"), &checkpoint("1")).await.unwrap();
    store.save("orders-eu", &shard("shard-0"), &checkpoint("2")).await.unwrap();
    store.save("a", &shard("x"), &checkpoint("3")).await.unwrap();
    store.save("z", &shard("x"), &checkpoint("4")).await.unwrap();
    // A checkpoint before the first record: no position yet.
    store.save("orders", &shard("shard-2"), &Checkpoint::default()).await.unwrap();

    assert_eq!(store.load("orders", &shard("shard-0")).await.unwrap(), Some(checkpoint("200")));
    assert_eq!(store.load("orders", &shard("shard-1")).await.unwrap(), Some(with_state.clone()));
    assert_eq!(store.load("orders", &shard("shard-2")).await.unwrap(), Some(Checkpoint::default()));
    assert_eq!(store.load("orders", &shard("shard-9")).await.unwrap(), None);
    assert_eq!(store.load("nope", &shard("shard-0")).await.unwrap(), None);

    let listed = store.list("orders").await.unwrap();
    assert_eq!(
        listed,
        vec![
            (shard("shard-0"), checkpoint("200")),
            (shard("shard-1"), with_state),
            (shard("shard-2"), Checkpoint::default()),
        ]
    );
    assert_eq!(store.list("order").await.unwrap(), vec![(shard("shard-0"), checkpoint("1"))]);
    assert_eq!(store.list("orders-eu").await.unwrap(), vec![(shard("shard-0"), checkpoint("2"))]);
    assert_eq!(store.list("z").await.unwrap(), vec![(shard("x"), checkpoint("4"))]);
}

#[tokio::test]
async fn reopen_after_drop_keeps_everything() {
    let dir = tempdir();
    let path = dir.path().join("checkpoints.redb");
    {
        let store = EmbeddedStore::open(&path).unwrap();
        store.save("m", &shard("s1"), &checkpoint("10")).await.unwrap();
        store.save("m", &shard("s2"), &checkpoint("20")).await.unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.load("m", &shard("s1")).await.unwrap(), Some(checkpoint("10")));
    assert_eq!(store.list("m").await.unwrap().len(), 2);
    // And it is still writable.
    store.save("m", &shard("s1"), &checkpoint("11")).await.unwrap();
    assert_eq!(store.load("m", &shard("s1")).await.unwrap(), Some(checkpoint("11")));
}

#[tokio::test]
async fn open_twice_in_one_process_is_a_clear_error() {
    let dir = tempdir();
    let path = dir.path().join("checkpoints.redb");
    let first = EmbeddedStore::open(&path).unwrap();
    let err = EmbeddedStore::open(&path).unwrap_err().to_string();
    assert!(err.contains("already open"), "{err}");
    assert!(err.contains("must not share one checkpoint store"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    drop(first);
    // Closing releases the lock.
    EmbeddedStore::open(&path).unwrap();
}

#[test]
fn open_from_a_second_process_is_a_clear_error() {
    let dir = tempdir();
    let path = dir.path().join("checkpoints.redb");
    let first = EmbeddedStore::open(&path).unwrap();

    let out = child(CHILD_OPEN, &path).stdout(Stdio::piped()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.find("open: ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("child said: {stdout}"));
    assert!(line.starts_with("open: err: "), "{line}");
    assert!(line.contains("already open by another esmd instance"), "{line}");
    assert!(line.contains("must not share one checkpoint store"), "{line}");

    // Once the first instance is gone, a new process may take over.
    drop(first);
    let out = child(CHILD_OPEN, &path).stdout(Stdio::piped()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l.ends_with("open: ok")), "child said: {stdout}");
}

/// Saves from many shards at once are committed in groups; each must land, the last save of a
/// shard must win, and once every save has returned and the store is dropped the file must be
/// free to reopen straight away.
#[tokio::test]
async fn concurrent_saves_all_land_and_release_the_file() {
    let dir = tempdir();
    let path = dir.path().join("checkpoints.redb");
    for round in 0..5u64 {
        let store = EmbeddedStore::open(&path).unwrap();
        let mut tasks = Vec::new();
        for k in 0..24 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let s = shard(&format!("shard-{k:02}"));
                for i in 0..=round * 10 + 5 {
                    store.save("group", &s, &checkpoint(&format!("{round}-{i}"))).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let listed = store.list("group").await.unwrap();
        assert_eq!(listed.len(), 24);
        for (_, cp) in listed {
            assert_eq!(cp, checkpoint(&format!("{round}-{}", round * 10 + 5)));
        }
        drop(store);
    }
}

/// Kills a child process that saves as fast as it can, then checks nothing it reported as
/// committed was lost and the record is whole.
#[test]
fn a_committed_save_survives_kill_9() {
    let dir = tempdir();
    let path = dir.path().join("checkpoints.redb");
    // Create the file up front so the child only ever reopens.
    drop(EmbeddedStore::open(&path).unwrap());

    // Vary where the kill lands from run to run.
    let kill_after = 20
        + u64::from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() % 200);

    let mut guard = KillOnDrop(child(CHILD_SAVE_LOOP, &path).stdout(Stdio::piped()).spawn().unwrap());
    let stdout = guard.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut last_committed = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in lines.by_ref() {
        if let Some(n) = committed(&line.unwrap()) {
            last_committed = n;
            if n >= kill_after {
                break;
            }
        }
        assert!(Instant::now() < deadline, "child too slow: {last_committed} saves");
    }
    assert!(last_committed >= kill_after, "child stopped early at {last_committed}");
    // Child::kill is SIGKILL on Unix: no destructors, no redb shutdown, likely mid-commit.
    guard.0.kill().unwrap();
    // Lines already in the pipe were committed before the kill, so they count too.
    for line in lines {
        if let Some(n) = committed(&line.unwrap()) {
            last_committed = n;
        }
    }
    let status = guard.0.wait().unwrap();
    assert!(!status.success(), "child should have been killed, got {status}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = EmbeddedStore::open(&path).unwrap();
    let saved = rt.block_on(store.load("crash", &shard("shard-0"))).unwrap().expect("a checkpoint");
    let stored: u64 = saved.position.as_ref().unwrap().as_str().parse().unwrap();
    println!("child reported {last_committed} committed; store holds {stored}");
    assert!(stored >= last_committed, "lost a committed save: stored {stored} < reported {last_committed}");
    // A save in flight at the kill is either all there or not at all.
    assert_eq!(saved.state, Some(json!({ "n": stored, "pad": "x".repeat(512) })));
    assert!(!saved.shard_finished);
}

/// Prints how long a save takes (fsync included). Informational, not an assertion: the number
/// depends on the disk.
#[tokio::test]
async fn save_latency() {
    let dir = tempdir();
    let store = EmbeddedStore::open(&dir.path().join("checkpoints.redb")).unwrap();
    let s = shard("shardId-000000000000");
    for i in 0..10 {
        store.save("latency", &s, &checkpoint(&i.to_string())).await.unwrap();
    }

    let mut samples = Vec::new();
    for i in 0..200u64 {
        let cp = checkpoint(&format!("49590338271490256608559692538361571095921575989136{i:08}"));
        let started = Instant::now();
        store.save("latency", &s, &cp).await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "embedded save latency, one shard, sequential, {} saves: mean {:?} p50 {:?} p99 {:?} max {:?}",
        samples.len(),
        mean,
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
        samples[samples.len() - 1]
    );

    // Many shards finishing at once: saves queue behind redb's single writer.
    let shards = 16;
    let per_shard = 20;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..shards {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = shard(&format!("shard-{k}"));
            for i in 0..per_shard {
                store.save("latency", &s, &checkpoint(&i.to_string())).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = started.elapsed();
    let n = shards * per_shard;
    println!(
        "embedded save throughput, {shards} shards concurrently: {n} saves in {total:?} ({:.0} saves/s, {:?} per save)",
        n as f64 / total.as_secs_f64(),
        total / n
    );
}

/// Not a test of its own: the body of the child processes the tests above spawn. Without the
/// environment variables it does nothing.
#[test]
fn child_process() {
    if let Ok(path) = std::env::var(CHILD_SAVE_LOOP) {
        save_loop(Path::new(&path));
    } else if let Ok(path) = std::env::var(CHILD_OPEN) {
        let mut out = std::io::stdout().lock();
        match EmbeddedStore::open(Path::new(&path)) {
            Ok(_) => writeln!(out, "open: ok").unwrap(),
            Err(e) => writeln!(out, "open: err: {e}").unwrap(),
        }
        out.flush().unwrap();
    }
}

fn save_loop(path: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = EmbeddedStore::open(path).unwrap();
    // Write straight to stdout, past libtest's capture, and flush each line: the parent must
    // see a number only after its save returned.
    let mut out = std::io::stdout().lock();
    // Bounded so an orphaned child cannot run forever if the parent dies first.
    let started = Instant::now();
    for n in 1..=1_000_000u64 {
        let cp = Checkpoint {
            position: Some(Position::new(n.to_string())),
            shard_finished: false,
            state: Some(json!({ "n": n, "pad": "x".repeat(512) })),
        };
        rt.block_on(store.save("crash", &shard("shard-0"), &cp)).unwrap();
        writeln!(out, "committed {n}").unwrap();
        out.flush().unwrap();
        if started.elapsed() > Duration::from_secs(180) {
            break;
        }
    }
}

/// libtest may print its "test child_process ... " on the same line, so look for the marker
/// anywhere.
fn committed(line: &str) -> Option<u64> {
    let i = line.find("committed ")?;
    line[i + "committed ".len()..].trim().parse().ok()
}

/// Re-runs this test binary as [`child_process`] with `var` set to `path`.
fn child(var: &str, path: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_process", "--exact", "--nocapture", "--test-threads=1"])
        .env(var, path)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// Never leave a saving child behind when an assertion fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
