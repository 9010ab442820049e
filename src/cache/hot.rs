//! Small immutable artifacts kept in memory, so that the commonest hits
//! (`.info`, `.mod`, small zips) cost neither a file open nor a trip to the
//! blocking pool. Only immutable artifacts are kept: their bytes never change
//! once stored, so a copy can never be out of date. Bounded by bytes; the
//! least useful entries go first. Reads take no global lock.

use bytes::Bytes;
use moka::sync::Cache;

use crate::storage::{Object, ObjectBody, ObjectMeta};

/// Objects larger than this are never kept: one big zip must not push out
/// thousands of small files.
pub const MAX_ENTRY: u64 = 64 * 1024;

/// Bookkeeping per entry (key, metadata, the cache's own structures), counted
/// against the budget with the bytes themselves.
const ENTRY_OVERHEAD: u64 = 160;

#[derive(Clone)]
struct Entry {
    meta: ObjectMeta,
    bytes: Bytes,
}

pub struct HotCache {
    entries: Cache<String, Entry>,
}

impl HotCache {
    /// `None` when `budget` is 0 (off).
    pub fn new(budget: u64) -> Option<Self> {
        if budget == 0 {
            return None;
        }
        let entries = Cache::builder()
            .max_capacity(budget)
            .weigher(|key: &String, entry: &Entry| {
                let weight = key.len() as u64 + entry.bytes.len() as u64 + ENTRY_OVERHEAD;
                u32::try_from(weight).unwrap_or(u32::MAX)
            })
            .build();
        Some(HotCache { entries })
    }

    pub fn get(&self, key: &str) -> Option<Object> {
        self.entries.get(key).map(|entry| Object {
            meta: entry.meta,
            body: ObjectBody::Bytes(entry.bytes),
        })
    }

    /// Keeps a copy of `object` when it is small and already in memory; the
    /// object is handed back either way.
    pub fn offer(&self, key: &str, object: Object) -> Object {
        if let ObjectBody::Bytes(bytes) = &object.body
            && object.meta.size <= MAX_ENTRY
            && bytes.len() as u64 == object.meta.size
        {
            self.entries.insert(
                key.to_owned(),
                Entry {
                    meta: object.meta.clone(),
                    bytes: bytes.clone(),
                },
            );
        }
        object
    }

    /// Forgets `key` (its file was deleted).
    pub fn remove(&self, key: &str) {
        self.entries.invalidate(key);
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn object(len: usize) -> Object {
        Object {
            meta: ObjectMeta {
                size: len as u64,
                modified: SystemTime::UNIX_EPOCH,
            },
            body: ObjectBody::Bytes(Bytes::from(vec![7u8; len])),
        }
    }

    fn body(object: Object) -> Bytes {
        match object.body {
            ObjectBody::Bytes(b) => b,
            ObjectBody::File { .. } => panic!("expected bytes"),
        }
    }

    #[test]
    fn keeps_small_objects_and_forgets_removed_ones() {
        let hot = HotCache::new(1 << 20).unwrap();
        assert!(hot.get("a/@v/v1.0.0.mod").is_none());
        let back = hot.offer("a/@v/v1.0.0.mod", object(10));
        assert_eq!(body(back).len(), 10);
        let hit = hot.get("a/@v/v1.0.0.mod").expect("kept");
        assert_eq!(hit.meta.size, 10);
        assert_eq!(body(hit), Bytes::from(vec![7u8; 10]));
        hot.remove("a/@v/v1.0.0.mod");
        assert!(hot.get("a/@v/v1.0.0.mod").is_none());
    }

    #[test]
    fn large_objects_are_not_kept_and_zero_is_off() {
        assert!(HotCache::new(0).is_none());
        let hot = HotCache::new(1 << 20).unwrap();
        hot.offer("big", object(MAX_ENTRY as usize + 1));
        assert!(hot.get("big").is_none());
    }

    #[test]
    fn stays_within_its_budget() {
        let budget = 64 * 1024;
        let hot = HotCache::new(budget).unwrap();
        for i in 0..200 {
            hot.offer(&format!("m{i}/@v/v1.0.0.info"), object(1000));
        }
        hot.entries.run_pending_tasks();
        assert!(hot.entries.weighted_size() <= budget);
        assert!(hot.entries.entry_count() < 200);
    }
}
