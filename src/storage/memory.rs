//! An in-memory backend for tests, with the same semantics as the filesystem one
//! (the compliance suite runs against both).

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use super::StorageError;
use super::fs::{TEMP_PREFIX, check_key, check_prefix};
use super::{Object, ObjectBody, ObjectMeta, PutMode, PutOutcome, Result, Staged, Storage};

#[derive(Clone)]
struct Entry {
    data: Bytes,
    modified: SystemTime,
}

impl Entry {
    fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            size: self.data.len() as u64,
            modified: self.modified,
        }
    }
}

#[derive(Default)]
pub struct MemoryStorage {
    objects: RwLock<BTreeMap<String, Entry>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    // No code panics while holding the lock, and the map is never left half-updated
    // by one of our operations, so a poisoned lock still guards a consistent map.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.objects.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.objects.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, key: &str, data: Bytes, mode: PutMode) -> PutOutcome {
        let mut objects = self.write();
        if mode == PutMode::IfAbsent
            && let Some(existing) = objects.get(key)
        {
            return PutOutcome::AlreadyExists(existing.meta());
        }
        let entry = Entry {
            data,
            modified: SystemTime::now(),
        };
        let meta = entry.meta();
        objects.insert(key.to_owned(), entry);
        PutOutcome::Written(meta)
    }
}

fn io_err(key: &str, source: std::io::Error) -> StorageError {
    StorageError::Io {
        key: key.to_owned(),
        source,
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        check_key(key)?;
        Ok(self.read().get(key).map(Entry::meta))
    }

    async fn get(&self, key: &str) -> Result<Option<Object>> {
        check_key(key)?;
        Ok(self.read().get(key).map(|entry| Object {
            meta: entry.meta(),
            body: ObjectBody::Bytes(entry.data.clone()),
        }))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Option<Object>> {
        check_key(key)?;
        let Some(entry) = self.read().get(key).cloned() else {
            return Ok(None);
        };
        let meta = entry.meta();
        if range.start > range.end || range.end > meta.size {
            return Err(StorageError::InvalidRange {
                start: range.start,
                end: range.end,
                size: meta.size,
            });
        }
        // Both bounds are <= the length of an in-memory buffer, so they fit in usize.
        let (start, end) = (range.start as usize, range.end as usize);
        Ok(Some(Object {
            meta,
            body: ObjectBody::Bytes(entry.data.slice(start..end)),
        }))
    }

    async fn put_bytes(&self, key: &str, data: Bytes, mode: PutMode) -> Result<PutOutcome> {
        check_key(key)?;
        Ok(self.insert(key, data, mode))
    }

    async fn stage(&self, key: &str) -> Result<Staged> {
        check_key(key)?;
        let tmp =
            tokio::task::spawn_blocking(|| tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile())
                .await
                .map_err(|e| io_err(key, std::io::Error::other(e)))?
                .map_err(|e| io_err(key, e))?;
        Ok(Staged::new(key.to_owned(), tmp))
    }

    async fn commit(&self, staged: Staged, mode: PutMode) -> Result<PutOutcome> {
        let (key, tmp) = staged.into_parts();
        check_key(&key)?;
        let data = tokio::fs::read(tmp.path())
            .await
            .map_err(|e| io_err(&key, e))?;
        // The staged file is only needed until its bytes are in memory.
        drop(tmp);
        Ok(self.insert(&key, Bytes::from(data), mode))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        Ok(self.write().remove(key).is_some())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        check_prefix(prefix)?;
        Ok(self
            .read()
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key.clone())
            .collect())
    }

    async fn check_ready(&self) -> Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        "in memory".to_owned()
    }
}
