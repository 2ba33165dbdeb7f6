//! `file://` destination: one failure record per line (JSON lines), appended and synced before
//! delivery counts as done, so a crash right after cannot lose a record that esmd then
//! checkpointed past.

use super::{Destination, DestinationError, Failure};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

pub struct FileDestination {
    path: PathBuf,
    describe: String,
    /// Serializes appends so concurrent shards never interleave lines.
    lock: Mutex<()>,
}

impl FileDestination {
    pub fn new(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_path_buf();
        FileDestination { describe: format!("file://{}", path.display()), path, lock: Mutex::new(()) }
    }

    fn error(&self, message: impl std::fmt::Display) -> DestinationError {
        DestinationError { destination: self.describe.clone(), message: message.to_string() }
    }
}

#[async_trait]
impl Destination for FileDestination {
    async fn deliver(&self, failure: &Failure) -> Result<(), DestinationError> {
        let mut line = serde_json::to_vec(&failure.record).map_err(|e| self.error(e))?;
        line.push(b'\n');
        let _guard = self.lock.lock().await;
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(|e| self.error(e))?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(|e| self.error(e))?;
        file.write_all(&line).await.map_err(|e| self.error(e))?;
        file.sync_data().await.map_err(|e| self.error(e))?;
        Ok(())
    }

    fn describe(&self) -> &str {
        &self.describe
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esmd_api::ShardId;

    #[tokio::test]
    async fn appends_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/failures.jsonl");
        let d = FileDestination::new(&path);
        for i in 0..3 {
            let f = Failure {
                record: serde_json::json!({"n": i}),
                payload: bytes::Bytes::new(),
                shard: ShardId::new("s"),
                records: vec![],
            };
            d.deliver(&f).await.unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
    }
}
