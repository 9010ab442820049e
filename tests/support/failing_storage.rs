//! A storage backend whose writes can be made to fail, like a full disk.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use goproxy::storage::memory::MemoryStorage;
use goproxy::storage::{
    Object, ObjectMeta, PutMode, PutOutcome, Result, Staged, Storage, StorageError,
};

#[derive(Default)]
pub struct FailingStorage {
    inner: MemoryStorage,
    fail: AtomicBool,
}

impl FailingStorage {
    pub fn fail_writes(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    fn check(&self, key: &str) -> Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StorageError::Io {
                key: key.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no space left on device",
                ),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Storage for FailingStorage {
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
        self.check(key)?;
        self.inner.put_bytes(key, data, mode).await
    }
    async fn stage(&self, key: &str) -> Result<Staged> {
        self.check(key)?;
        self.inner.stage(key).await
    }
    async fn commit(&self, staged: Staged, mode: PutMode) -> Result<PutOutcome> {
        self.check(staged.key())?;
        self.inner.commit(staged, mode).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix).await
    }
    async fn check_ready(&self) -> Result<()> {
        self.check("readiness probe")
    }
    fn describe(&self) -> String {
        "failing test storage".to_owned()
    }
}
