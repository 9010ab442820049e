//! Small immutable artifacts kept in memory, so that the commonest hits
//! (`.info`, `.mod`, small zips) cost neither a file open nor a trip to the
//! blocking pool. Immutable artifacts are kept as long as the budget allows:
//! their bytes never change once stored. Mutable ones (lists, `@latest`) are
//! kept too, but the caller serves a copy only while it is fresh by the same
//! rule as the file it was read from (age since its modification time under
//! `list_ttl`), so memory never serves a list the disk would not. Bounded by
//! bytes; the least useful entries go first. Reads take no global lock.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use moka::sync::Cache;

use super::ArtifactKey;
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
    route: Arc<HotRoute>,
}

/// The parsed request an entry answers, kept with its bytes: a request for
/// exactly the entry's path (its storage key, which is the escaped URL path)
/// is answered without parsing and validating the path again, since only
/// keys that passed both are ever stored here.
pub struct HotRoute {
    pub key: ArtifactKey,
    pub module_escaped: String,
    pub version_escaped: Option<String>,
    /// [`ObjectMeta::etag`] and [`ObjectMeta::http_date`] of the copy.
    pub etag: Bytes,
    pub last_modified: Bytes,
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

    /// The copy kept under `skey` and the request it answers. A mutable
    /// artifact's (lists, `@latest`) only while [`is_fresh`] under `list_ttl`:
    /// an outdated copy is dropped, and the caller reads the file (and offers
    /// what it finds, replacing the copy).
    pub fn hit(&self, skey: &str, list_ttl: Duration) -> Option<(Arc<HotRoute>, Object)> {
        let entry = self.entries.get(skey)?;
        if !entry.route.key.is_immutable() && !is_fresh(&entry.meta, list_ttl) {
            self.entries.invalidate(skey);
            return None;
        }
        let object = Object {
            meta: entry.meta,
            body: ObjectBody::Bytes(entry.bytes),
        };
        Some((entry.route, object))
    }

    /// Keeps a copy of `object` (stored under `skey`, the storage key of
    /// `key`) when it is small and already in memory; the object is handed
    /// back either way.
    pub fn offer(&self, key: &ArtifactKey, skey: &str, object: Object) -> Object {
        if let ObjectBody::Bytes(bytes) = &object.body
            && object.meta.size <= MAX_ENTRY
            && bytes.len() as u64 == object.meta.size
        {
            let route = HotRoute {
                key: key.clone(),
                module_escaped: key.module.escaped(),
                version_escaped: key.escaped_version(),
                etag: object.meta.etag().into(),
                last_modified: object.meta.http_date().into(),
            };
            self.entries.insert(
                skey.to_owned(),
                Entry {
                    meta: object.meta.clone(),
                    bytes: bytes.clone(),
                    route: Arc::new(route),
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

/// A mutable artifact (list, `@latest`) may be served from cache while it was
/// modified less than `ttl` ago; a clock that went backwards counts as fresh.
pub fn is_fresh(meta: &ObjectMeta, ttl: Duration) -> bool {
    let age = SystemTime::now()
        .duration_since(meta.modified)
        .unwrap_or(Duration::ZERO);
    age < ttl
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::route::{Route, parse};

    /// Offers `object` under the key `path` names.
    fn offer(hot: &HotCache, path: &str, object: Object) -> Object {
        let Ok(Route::Artifact(key)) = parse(&format!("/{path}")) else {
            panic!("{path} is not an artifact path");
        };
        assert_eq!(key.storage_key(), path);
        hot.offer(&key, path, object)
    }

    fn object(len: usize) -> Object {
        object_at(len, SystemTime::UNIX_EPOCH)
    }

    fn object_at(len: usize, modified: SystemTime) -> Object {
        Object {
            meta: ObjectMeta {
                size: len as u64,
                modified,
            },
            body: ObjectBody::Bytes(Bytes::from(vec![7u8; len])),
        }
    }

    /// The bytes-only view of [`HotCache::hit`].
    fn get(hot: &HotCache, skey: &str, list_ttl: Duration) -> Option<Object> {
        hot.hit(skey, list_ttl).map(|(_, object)| object)
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
        assert!(get(&hot, "example.com/a/@v/v1.0.0.mod", Duration::ZERO).is_none());
        let back = offer(&hot, "example.com/a/@v/v1.0.0.mod", object(10));
        assert_eq!(body(back).len(), 10);
        let hit = get(&hot, "example.com/a/@v/v1.0.0.mod", Duration::ZERO).expect("kept");
        assert_eq!(hit.meta.size, 10);
        assert_eq!(body(hit), Bytes::from(vec![7u8; 10]));
        hot.remove("example.com/a/@v/v1.0.0.mod");
        assert!(get(&hot, "example.com/a/@v/v1.0.0.mod", Duration::ZERO).is_none());
    }

    #[test]
    fn large_objects_are_not_kept_and_zero_is_off() {
        assert!(HotCache::new(0).is_none());
        let hot = HotCache::new(1 << 20).unwrap();
        offer(
            &hot,
            "example.com/big/@v/v1.0.0.zip",
            object(MAX_ENTRY as usize + 1),
        );
        assert!(get(&hot, "example.com/big/@v/v1.0.0.zip", Duration::ZERO).is_none());
    }

    #[test]
    fn stays_within_its_budget() {
        let budget = 64 * 1024;
        let hot = HotCache::new(budget).unwrap();
        for i in 0..200 {
            offer(
                &hot,
                &format!("example.com/m{i}/@v/v1.0.0.info"),
                object(1000),
            );
        }
        hot.entries.run_pending_tasks();
        assert!(hot.entries.weighted_size() <= budget);
        assert!(hot.entries.entry_count() < 200);
    }

    #[test]
    fn mutable_copies_are_served_only_while_fresh() {
        let hot = HotCache::new(1 << 20).unwrap();
        let ttl = Duration::from_secs(60);
        let now = SystemTime::now();
        offer(
            &hot,
            "example.com/m/@v/list",
            object_at(10, now - Duration::from_secs(30)),
        );
        let hit = get(&hot, "example.com/m/@v/list", ttl).expect("fresh copy served");
        assert_eq!(body(hit).len(), 10);
        // The same copy is outdated under a shorter TTL: not served, and dropped.
        assert!(get(&hot, "example.com/m/@v/list", Duration::from_secs(10)).is_none());
        assert!(get(&hot, "example.com/m/@v/list", ttl).is_none());

        // A refreshed file offered again replaces the outdated copy.
        offer(
            &hot,
            "example.com/m/@v/list",
            object_at(10, now - Duration::from_secs(90)),
        );
        assert!(get(&hot, "example.com/m/@v/list", ttl).is_none());
        offer(&hot, "example.com/m/@v/list", object_at(12, now));
        assert_eq!(
            body(get(&hot, "example.com/m/@v/list", ttl).unwrap()).len(),
            12
        );
    }

    #[test]
    fn a_hit_by_path_carries_the_request_it_answers() {
        let hot = HotCache::new(1 << 20).unwrap();
        let ttl = Duration::from_secs(60);
        assert!(hot.hit("example.com/a/@v/v1.0.0.info", ttl).is_none());
        offer(&hot, "example.com/!a/@v/v1.0.0.info", object(10));
        let (route, object) = hot.hit("example.com/!a/@v/v1.0.0.info", ttl).expect("kept");
        assert_eq!(route.key.module.as_str(), "example.com/A");
        assert_eq!(route.module_escaped, "example.com/!a");
        assert_eq!(route.version_escaped.as_deref(), Some("v1.0.0"));
        assert_eq!(body(object).len(), 10);
        // The unescaped spelling is another path, never this entry's.
        assert!(hot.hit("example.com/A/@v/v1.0.0.info", ttl).is_none());

        let now = SystemTime::now();
        offer(
            &hot,
            "example.com/m/@latest",
            object_at(5, now - Duration::from_secs(30)),
        );
        assert!(hot.hit("example.com/m/@latest", ttl).is_some());
        assert!(
            hot.hit("example.com/m/@latest", Duration::from_secs(10))
                .is_none(),
            "an outdated mutable copy is not a hit"
        );
        assert!(
            hot.hit("example.com/m/@latest", ttl).is_none(),
            "and was dropped"
        );
        // Immutable copies have no age limit.
        offer(
            &hot,
            "example.com/m/@v/v1.0.0.mod",
            object_at(5, now - Duration::from_secs(3600)),
        );
        assert!(hot.hit("example.com/m/@v/v1.0.0.mod", ttl).is_some());
    }

    #[test]
    fn freshness_is_age_under_the_ttl() {
        let ttl = Duration::from_secs(60);
        let meta = |age: u64| ObjectMeta {
            size: 0,
            modified: SystemTime::now() - Duration::from_secs(age),
        };
        assert!(is_fresh(&meta(0), ttl));
        assert!(is_fresh(&meta(59), ttl));
        assert!(!is_fresh(&meta(61), ttl));
        let future = ObjectMeta {
            size: 0,
            modified: SystemTime::now() + Duration::from_secs(3600),
        };
        assert!(is_fresh(&future, ttl));
    }
}
