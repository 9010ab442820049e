//! A storage backend that indexes module versions as they are stored: every
//! successful write of a canonical `.info`, `.mod` or `.zip` adds the version
//! to the module index (see `cache::index`), whichever code path stored it.
//! Everything else passes straight through to the wrapped backend.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::index::{indexed_version, now_nanos};
use super::usage::UsageDb;
use crate::storage::{Object, ObjectMeta, PutMode, PutOutcome, Result, Staged, Storage};

pub struct RecordingStorage {
    inner: Arc<dyn Storage>,
    usage: Arc<UsageDb>,
}

impl RecordingStorage {
    pub fn new(inner: Arc<dyn Storage>, usage: Arc<UsageDb>) -> Self {
        RecordingStorage { inner, usage }
    }

    /// Indexes the version `key` belongs to, once it is in storage. The file is
    /// what counts: if the row cannot be written it is logged, and the next
    /// startup's reconciliation adds it.
    async fn record(&self, key: &str) {
        let Some((module, version)) = indexed_version(key) else {
            return;
        };
        let usage = Arc::clone(&self.usage);
        let at = now_nanos();
        let recorded =
            tokio::task::spawn_blocking(move || usage.record_cached(&module, &version, at)).await;
        match recorded {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(key, error = %e, "could not add a version to the module index")
            }
            Err(e) => tracing::warn!(key, error = %e, "module index task failed"),
        }
    }
}

#[async_trait]
impl Storage for RecordingStorage {
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        self.inner.head(key).await
    }

    async fn get(&self, key: &str) -> Result<Option<Object>> {
        self.inner.get(key).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Option<Object>> {
        self.inner.get_range(key, range).await
    }

    async fn put_bytes(&self, key: &str, data: Bytes, mode: PutMode) -> Result<PutOutcome> {
        let outcome = self.inner.put_bytes(key, data, mode).await?;
        self.record(key).await;
        Ok(outcome)
    }

    async fn put_bytes_at(
        &self,
        key: &str,
        data: Bytes,
        mode: PutMode,
        modified: std::time::SystemTime,
    ) -> Result<PutOutcome> {
        let outcome = self.inner.put_bytes_at(key, data, mode, modified).await?;
        self.record(key).await;
        Ok(outcome)
    }

    // Records are metadata about stored artifacts, never versions of their
    // own: nothing to index. Forwarded so the wrapped backend's own way of
    // writing them (without fsyncs) is kept.
    async fn put_records(&self, records: Vec<(String, Bytes)>) -> Result<()> {
        self.inner.put_records(records).await
    }

    async fn stage(&self, key: &str) -> Result<Staged> {
        self.inner.stage(key).await
    }

    async fn resumable_path(&self, key: &str, create: bool) -> Result<Option<PathBuf>> {
        self.inner.resumable_path(key, create).await
    }

    async fn commit(&self, staged: Staged, mode: PutMode) -> Result<PutOutcome> {
        let key = staged.key().to_owned();
        let outcome = self.inner.commit(staged, mode).await?;
        self.record(&key).await;
        Ok(outcome)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix).await
    }

    async fn list_with_meta(&self, prefix: &str) -> Result<Vec<(String, ObjectMeta)>> {
        self.inner.list_with_meta(prefix).await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<usize> {
        self.inner.delete_many(keys).await
    }

    async fn check_ready(&self) -> Result<()> {
        self.inner.check_ready().await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn local_root(&self) -> Option<PathBuf> {
        self.inner.local_root()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    #[tokio::test]
    async fn stored_versions_are_indexed_and_other_keys_are_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let usage = Arc::new(UsageDb::open(dir.path().join("usage.db")).expect("open"));
        let inner: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let storage = RecordingStorage::new(Arc::clone(&inner), Arc::clone(&usage));
        let put = |key: &'static str| {
            storage.put_bytes(key, Bytes::from_static(b"x"), PutMode::Overwrite)
        };
        put("a.example/m/@v/v1.0.0.mod").await.expect("put");
        put("a.example/m/@v/list").await.expect("put");
        put("a.example/m/@v/master.info").await.expect("put");
        put("a.example/m/@v/v1.0.0.info").await.expect("put");
        let staged = storage
            .stage("b.example/n/@v/v0.1.0.zip")
            .await
            .expect("stage");
        std::fs::write(staged.path(), b"zip").expect("write staged");
        storage
            .commit(staged, PutMode::IfAbsent)
            .await
            .expect("commit");

        let rows = usage.cached_since(0, 10).expect("read");
        let names: Vec<String> = rows
            .iter()
            .map(|r| format!("{}@{}", r.module, r.version))
            .collect();
        assert_eq!(names, ["a.example/m@v1.0.0", "b.example/n@v0.1.0"]);
        // The bytes went through to the wrapped backend.
        assert!(
            inner
                .head("b.example/n/@v/v0.1.0.zip")
                .await
                .expect("head")
                .is_some()
        );
        // Metadata records go through too, and are no versions of their own.
        storage
            .put_records(vec![
                (
                    "c.example/o/@v/v1.0.0.zip.meta".to_owned(),
                    Bytes::from_static(b"{}"),
                ),
                (
                    "c.example/o/@v/v1.0.0.ziphash".to_owned(),
                    Bytes::from_static(b"h1:x"),
                ),
            ])
            .await
            .expect("records");
        assert!(
            inner
                .head("c.example/o/@v/v1.0.0.ziphash")
                .await
                .expect("head")
                .is_some()
        );
        assert_eq!(usage.cached_since(0, 10).expect("read").len(), 2);
    }
}
