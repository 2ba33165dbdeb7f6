//! The embedded checkpoint store (default).
//!
//! One local redb file holds every mapping's checkpoints, so a sidecar needs nothing else.

use super::{Checkpoint, CheckpointError, CheckpointStore};
use async_trait::async_trait;
use esmd_api::ShardId;
use redb::{Database, DatabaseError, ReadableDatabase, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::sync::oneshot;

/// Key: (mapping name, shard id). Value: the [`Checkpoint`] as JSON, so the record can gain
/// fields (`#[serde(default)]`) without a table migration.
const CHECKPOINTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("checkpoints");

/// Checkpoints in a local [redb](https://docs.rs/redb) file.
///
/// Why redb rather than a JSON file rewritten with atomic replace + fsync:
/// - **per-shard writes**: a save writes one key. A JSON file would have to be rewritten whole,
///   every shard of every mapping, on every finished batch of any shard; that cost grows with
///   the shard count and sits on the hot path.
/// - **ACID commits**: each save is one transaction. A crash mid-commit leaves the previous
///   committed state, never a torn or half-written record, and there is no rename dance to get
///   right on each filesystem.
/// - **fsync on commit**: redb's default durability (`Immediate`) flushes before `commit()`
///   returns, which is exactly the [`CheckpointStore::save`] contract: saved means it survives
///   `kill -9` and power loss.
/// - **exclusive lock**: the file is locked while open, so a second esmd pointed at the same
///   store fails at startup instead of two instances silently overwriting each other's
///   positions.
///
/// Each call runs the blocking redb work on tokio's blocking pool. Saves are group-committed:
/// redb has one writer and each commit costs an fsync, so saves that arrive while a commit is
/// in progress are queued and written together in the next transaction, one fsync for all of
/// them. A lone save still commits at once; many shards finishing together no longer queue
/// one fsync each. Every save returns only after the commit that holds it, and if that commit
/// fails, every save in it gets the error.
#[derive(Clone)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.path).finish()
    }
}

struct Shared {
    path: PathBuf,
    /// `None` between closing a database that hit an I/O error and opening it again.
    db: RwLock<Option<Database>>,
    /// When the database was last reopened: at most once a second, however many saves fail
    /// while a disk stays full.
    reopened: Mutex<Option<std::time::Instant>>,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// Saves waiting for the next commit, in arrival order (so a later save of a key wins).
    pending: Vec<PendingSave>,
    /// A flusher task is running and will pick up anything pushed to `pending`. At most one
    /// runs, so commits happen one group at a time, in the order the saves arrived.
    flushing: bool,
}

struct PendingSave {
    mapping: String,
    shard: ShardId,
    bytes: Vec<u8>,
    done: oneshot::Sender<Result<(), String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The queue stays consistent across a panic (FlushGuard resets it), so a poisoned lock is
    // safe to keep using.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Commits queued saves, one transaction per round, until the queue is empty. Blocking.
    fn run_flusher(self: Arc<Self>) {
        let guard = FlushGuard(self);
        loop {
            let group = std::mem::take(&mut lock(&guard.0.queue).pending);
            let result = guard.0.commit(&group);
            let more = {
                let mut queue = lock(&guard.0.queue);
                queue.flushing = !queue.pending.is_empty();
                queue.flushing
            };
            if more {
                answer(group, &result);
            } else {
                // Let go of the database before answering: once the last saver hears back and
                // drops its store, the file must be closed and its lock released, so the same
                // path can be reopened at once.
                drop(guard);
                answer(group, &result);
                return;
            }
        }
    }

    fn commit(&self, group: &[PendingSave]) -> Result<(), String> {
        if group.is_empty() {
            return Ok(());
        }
        self.with_db(|db| {
            // Default durability is Immediate: commit() returns after the fsync, which is what
            // makes "durable when it returns" true.
            let tx = db.begin_write()?;
            {
                let mut table = tx.open_table(CHECKPOINTS)?;
                for p in group {
                    table.insert((p.mapping.as_str(), p.shard.as_str()), p.bytes.as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Runs `f` on the database. After an I/O error (a full or failing disk) redb refuses
    /// every later call until the database is opened again, so the store closes it and opens
    /// it again: without that, one full disk would stop every checkpoint until a restart, while
    /// the saves kept saying they would retry. The error still goes back to the caller, who
    /// retries on the reopened file.
    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T, redb::Error>) -> Result<T, String> {
        let result = {
            let db = self.db.read().unwrap_or_else(|e| e.into_inner());
            db.as_ref().map(f)
        };
        match result {
            Some(Ok(v)) => Ok(v),
            Some(Err(e @ (redb::Error::Io(_) | redb::Error::PreviousIo))) => {
                let why = e.to_string();
                self.reopen(&why);
                Err(why)
            }
            Some(Err(e)) => Err(e.to_string()),
            None => {
                self.reopen("an earlier reopen failed");
                Err(format!("{} is being reopened after an I/O error", self.path.display()))
            }
        }
    }

    fn reopen(&self, why: &str) {
        {
            let mut last = lock(&self.reopened);
            if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1)) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        // The old handle holds the file's lock: it must be gone before the file opens again.
        drop(db.take());
        match open_db(&self.path) {
            Ok(fresh) => {
                tracing::warn!(path = %self.path.display(), error = why, "checkpoint store reopened after an I/O error");
                *db = Some(fresh);
            }
            Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "checkpoint store cannot be reopened yet; the next save tries again"),
        }
    }
}

/// Opens (or creates) the redb file and its table.
fn open_db(path: &Path) -> Result<Database, CheckpointError> {
    let db = Database::create(path).map_err(|e| match e {
        DatabaseError::DatabaseAlreadyOpen => CheckpointError(format!(
            "{} is already open by another esmd instance (or another store in this process); \
             two esmd instances must not share one checkpoint store: give each its own state \
             directory, or stop the other instance",
            path.display()
        )),
        DatabaseError::LockProtocolMismatch => CheckpointError(format!(
            "{} is open by a process using an incompatible redb version; \
             two esmd instances must not share one checkpoint store",
            path.display()
        )),
        e => CheckpointError(format!("open {}: {e}", path.display())),
    })?;
    // Create the table up front so reads never have to tell "no table yet" from "no row".
    let init = || -> Result<(), redb::Error> {
        let tx = db.begin_write()?;
        tx.open_table(CHECKPOINTS)?;
        tx.commit()?;
        Ok(())
    };
    init().map_err(|e| CheckpointError(format!("initialise {}: {e}", path.display())))?;
    Ok(db)
}

fn answer(group: Vec<PendingSave>, result: &Result<(), String>) {
    for p in group {
        // The saver may have been cancelled; the checkpoint is written either way.
        let _ = p.done.send(result.clone());
    }
}

/// Keeps the flusher's reference to the store, and if the flusher panics, stands it down so
/// the next save starts a new one instead of queueing forever. The saves it leaves queued are
/// dropped, so their callers get an error and retry.
struct FlushGuard(Arc<Shared>);

impl Drop for FlushGuard {
    fn drop(&mut self) {
        // On a normal return the flusher has already stood down under the lock, and a new one
        // may be running: only a panic leaves `flushing` set with nobody behind it.
        if std::thread::panicking() {
            let mut queue = lock(&self.0.queue);
            queue.flushing = false;
            queue.pending.clear();
        }
    }
}

impl EmbeddedStore {
    /// Opens the store at `path`, creating the file (and its parent directory) if missing.
    ///
    /// Blocking: call it once at startup. If the previous process died mid-commit, redb
    /// recovers the last committed state here, which can take a moment on a large file.
    ///
    /// Fails if another process (or another `EmbeddedStore` in this one) has the file open:
    /// two esmd instances sharing a store would overwrite each other's checkpoints.
    pub fn open(path: &Path) -> Result<EmbeddedStore, CheckpointError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                CheckpointError(format!("create directory {} for {}: {e}", parent.display(), path.display()))
            })?;
        }
        let db = open_db(path)?;
        Ok(EmbeddedStore {
            shared: Arc::new(Shared { path: path.to_path_buf(), db: RwLock::new(Some(db)), reopened: Mutex::new(None), queue: Mutex::new(Queue::default()) }),
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs blocking redb work off the async runtime's worker threads.
    async fn blocking<T: Send + 'static>(
        &self,
        what: String,
        f: impl FnOnce(&Database) -> Result<T, redb::Error> + Send + 'static,
    ) -> Result<T, CheckpointError> {
        let shared = self.shared.clone();
        let ctx = what.clone();
        tokio::task::spawn_blocking(move || shared.with_db(f).map_err(|e| CheckpointError(format!("{ctx}: {e}"))))
            .await
            .map_err(|e| CheckpointError(format!("{what}: blocking task failed: {e}")))?
    }
}

/// A stored value (the [`Checkpoint`] as JSON) read back; `mapping` and `shard` only name it
/// in the error. Public for the fuzz target (fuzz/fuzz_targets/checkpoint_decode.rs): what a
/// damaged or foreign file holds must be an error, never a panic.
#[doc(hidden)]
pub fn decode(mapping: &str, shard: &str, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    serde_json::from_slice(bytes)
        .map_err(|e| CheckpointError(format!("checkpoint for mapping {mapping:?} shard {shard:?} is not valid: {e}")))
}

#[async_trait]
impl CheckpointStore for EmbeddedStore {
    async fn load(&self, mapping: &str, shard: &ShardId) -> Result<Option<Checkpoint>, CheckpointError> {
        let what = format!("load mapping {mapping:?} shard {:?}", shard.as_str());
        let (mapping, shard) = (mapping.to_string(), shard.clone());
        let key = (mapping.clone(), shard.clone());
        let bytes = self
            .blocking(what, move |db| {
                let tx = db.begin_read()?;
                let table = tx.open_table(CHECKPOINTS)?;
                Ok(table.get((key.0.as_str(), key.1.as_str()))?.map(|v| v.value().to_vec()))
            })
            .await?;
        bytes.map(|b| decode(&mapping, shard.as_str(), &b)).transpose()
    }

    async fn save(&self, mapping: &str, shard: &ShardId, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let what = || format!("save mapping {mapping:?} shard {:?}", shard.as_str());
        // Serialise on the caller's thread: cheap, and it keeps the blocking side to redb work.
        let bytes = serde_json::to_vec(checkpoint).map_err(|e| CheckpointError(format!("{}: {e}", what())))?;
        let (done, committed) = oneshot::channel();
        let start_flusher = {
            let mut queue = lock(&self.shared.queue);
            queue.pending.push(PendingSave { mapping: mapping.to_string(), shard: shard.clone(), bytes, done });
            // If a flusher is already running it takes this save in its next round.
            !std::mem::replace(&mut queue.flushing, true)
        };
        if start_flusher {
            let shared = self.shared.clone();
            // Detached: the flusher answers through the oneshot, and must finish its commit
            // even if this caller is cancelled.
            drop(tokio::task::spawn_blocking(move || shared.run_flusher()));
        }
        match committed.await {
            Ok(result) => result.map_err(|e| CheckpointError(format!("{}: {e}", what()))),
            // The flusher panicked before committing this save.
            Err(_) => Err(CheckpointError(format!("{}: commit did not complete", what()))),
        }
    }

    async fn list(&self, mapping: &str) -> Result<Vec<(ShardId, Checkpoint)>, CheckpointError> {
        let what = format!("list mapping {mapping:?}");
        let mapping = mapping.to_string();
        let name = mapping.clone();
        let rows = self
            .blocking(what, move |db| {
                let tx = db.begin_read()?;
                let table = tx.open_table(CHECKPOINTS)?;
                let mut rows = Vec::new();
                // Keys sort by mapping first, so this mapping's shards are one contiguous run
                // starting at (mapping, "").
                for row in table.range((name.as_str(), "")..)? {
                    let (key, value) = row?;
                    let (m, shard) = key.value();
                    if m != name {
                        break;
                    }
                    rows.push((shard.to_string(), value.value().to_vec()));
                }
                Ok(rows)
            })
            .await?;
        rows.into_iter().map(|(shard, bytes)| Ok((ShardId::new(shard.as_str()), decode(&mapping, &shard, &bytes)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esmd_api::Position;

    #[test]
    fn decode_reads_what_save_writes_and_names_a_bad_value() {
        let cp = Checkpoint { position: Some(Position::new("49590338271490256608559692538361571095921575989136588898")), shard_finished: true, state: Some(serde_json::json!({"n": 1})) };
        assert_eq!(decode("m", "s", &serde_json::to_vec(&cp).unwrap()).unwrap(), cp);
        // Written before `state` existed: the field defaults.
        let old = decode("m", "s", br#"{"position":null,"shard_finished":false}"#).unwrap();
        assert_eq!(old, Checkpoint::default());
        for bad in [&b""[..], b"{", b"null", b"[]", br#"{"position":1,"shard_finished":false}"#, &[0xff, 0xfe]] {
            let e = decode("orders", "shardId-1", bad).unwrap_err().to_string();
            assert!(e.contains("\"orders\"") && e.contains("\"shardId-1\"") && e.contains("is not valid"), "{e}");
        }
    }
}
