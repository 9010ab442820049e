//! The module index: which module versions this cache holds and since when, in
//! the order they arrived, for the `/index` feed that mirrors and tools follow
//! the way they follow index.golang.org.
//!
//! A version is indexed once any of its canonical artifacts (`.info`, `.mod`
//! or `.zip`) is stored: that is when the proxy first cached it, as
//! index.golang.org counts "first cached by proxy.golang.org". Query answers
//! (`master.info`), lists and `@latest` are not versions. An evicted version
//! leaves the index; fetched again later, it comes back with a new time.
//!
//! Rows live in the usage database (`cached` table), so a request reads one
//! index range instead of walking the cache. Timestamps are Unix nanoseconds
//! assigned inside the inserting transaction as `max(now, newest + 1 ns)`:
//! they are unique and grow in commit order, across processes sharing the
//! database too. A follower that passes the last timestamp it saw as `since`
//! (inclusive) therefore never misses a version committed after its previous
//! read, and never gets stuck on a page of equal timestamps.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::scan::scan;
use super::usage::{UsageDb, UsageError};
use crate::gomod::ModulePath;
use crate::gomod::version::{RequestedVersion, parse_escaped_version};
use crate::storage::{Storage, StorageError};

/// Entries per answer when the request names no limit, and the most it may ask
/// for (index.golang.org's numbers).
pub const DEFAULT_LIMIT: usize = 2000;
pub const MAX_LIMIT: usize = 2000;

/// One indexed version, with its path and version `!`-escaped as in cache keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexRow {
    pub module: String,
    pub version: String,
    /// Unix nanoseconds.
    pub cached_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot list the cache: {0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Usage(#[from] UsageError),
    #[error("index task failed: {0}")]
    Task(String),
}

/// What a reconciliation with the files on disk changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Versions on disk that had no index row (stored by a crashed or older
    /// process, or copied into the cache directory).
    pub added: usize,
    /// Rows whose version has no file left (deleted outside goproxy).
    pub removed: usize,
}

/// The (module, version) a cache key makes indexed, both escaped: the `.info`,
/// `.mod` or `.zip` of a canonical version valid for its module.
pub fn indexed_version(key: &str) -> Option<(String, String)> {
    let (module, file) = key.rsplit_once("/@v/")?;
    let (version, ext) = file.rsplit_once('.')?;
    if !matches!(ext, "info" | "mod" | "zip") {
        return None;
    }
    let path = ModulePath::from_escaped(module).ok()?;
    match parse_escaped_version(&path, version).ok()? {
        RequestedVersion::Canonical(_) => Some((module.to_owned(), version.to_owned())),
        RequestedVersion::Query(_) => None,
    }
}

/// Unix nanoseconds now (0 before 1970, saturating after 2262).
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

const NEXT_TIME: &str = "SELECT max(?1, coalesce(max(cached_at) + 1, ?1)) FROM cached";

impl UsageDb {
    /// Indexes `module@version` (escaped) at `now` (Unix ns) unless it already
    /// is; returns whether a row was added.
    pub fn record_cached(&self, module: &str, version: &str, now: i64) -> Result<bool, UsageError> {
        self.with_reader("cannot index a cached version", |conn| {
            // Immediate: the newest timestamp read here stays the newest until commit.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Cached statements: parsing the SQL cost more than running it.
            let known = tx
                .prepare_cached("SELECT 1 FROM cached WHERE module = ?1 AND version = ?2")?
                .query_row(params![module, version], |_| Ok(()))
                .optional()?
                .is_some();
            if !known {
                let at: i64 = tx
                    .prepare_cached(NEXT_TIME)?
                    .query_row(params![now], |row| row.get(0))?;
                tx.prepare_cached(
                    "INSERT INTO cached (module, version, cached_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![module, version, at])?;
            }
            tx.commit()?;
            Ok(!known)
        })
    }

    /// Up to `limit` rows with `cached_at >= since` (Unix ns), oldest first.
    pub fn cached_since(&self, since: i64, limit: usize) -> Result<Vec<IndexRow>, UsageError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_reader("cannot read the module index", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT module, version, cached_at FROM cached
                 WHERE cached_at >= ?1 ORDER BY cached_at LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![since, limit], |row| {
                Ok(IndexRow {
                    module: row.get(0)?,
                    version: row.get(1)?,
                    cached_at: row.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Brings the index in line with `on_disk` (escaped module, version, file
    /// time in Unix ns), as listed by a walk that started at `walk_started`:
    /// versions without a row are added oldest first (dated by their files, or
    /// after the newest row if that is later), and rows without files are
    /// dropped unless they were added after the walk began.
    pub fn reconcile_cached(
        &self,
        on_disk: &[(String, String, i64)],
        walk_started: i64,
    ) -> Result<Reconciled, UsageError> {
        self.with_reader("cannot reconcile the module index", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut known: HashSet<(String, String)> = HashSet::new();
            {
                let mut stmt = tx.prepare("SELECT module, version FROM cached")?;
                let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
                for row in rows {
                    known.insert(row?);
                }
            }
            let mut missing: Vec<&(String, String, i64)> = on_disk
                .iter()
                .filter(|(m, v, _)| !known.contains(&(m.clone(), v.clone())))
                .collect();
            missing.sort_by(|a, b| (a.2, &a.0, &a.1).cmp(&(b.2, &b.0, &b.1)));
            let mut report = Reconciled::default();
            {
                let mut next = tx.prepare(NEXT_TIME)?;
                let mut insert = tx.prepare(
                    "INSERT INTO cached (module, version, cached_at) VALUES (?1, ?2, ?3)",
                )?;
                for (module, version, file_time) in missing {
                    let at: i64 = next.query_row(params![file_time], |row| row.get(0))?;
                    insert.execute(params![module, version, at])?;
                    report.added += 1;
                }
            }
            let present: HashSet<(&str, &str)> = on_disk
                .iter()
                .map(|(m, v, _)| (m.as_str(), v.as_str()))
                .collect();
            {
                let mut stale = Vec::new();
                let mut stmt =
                    tx.prepare("SELECT module, version FROM cached WHERE cached_at < ?1")?;
                let rows = stmt.query_map(params![walk_started], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })?;
                for row in rows {
                    let (module, version) = row?;
                    if !present.contains(&(module.as_str(), version.as_str())) {
                        stale.push((module, version));
                    }
                }
                let mut delete =
                    tx.prepare("DELETE FROM cached WHERE module = ?1 AND version = ?2")?;
                for (module, version) in &stale {
                    report.removed += delete.execute(params![module, version])?;
                }
            }
            tx.commit()?;
            Ok(report)
        })
    }
}

/// Walks the cache once and reconciles the index with it (see
/// [`UsageDb::reconcile_cached`]). Run at startup, in the background.
pub async fn reconcile(
    storage: &dyn Storage,
    usage: &Arc<UsageDb>,
) -> Result<Reconciled, IndexError> {
    let walk_started = now_nanos();
    let scanned = scan(storage).await?;
    let on_disk: Vec<(String, String, i64)> = scanned
        .versions
        .values()
        .filter(|entry| entry.keys.iter().any(|k| indexed_version(k).is_some()))
        .map(|entry| {
            let nanos = entry.modified.saturating_mul(1_000_000_000);
            (entry.module.clone(), entry.version.clone(), nanos)
        })
        .collect();
    let usage = Arc::clone(usage);
    tokio::task::spawn_blocking(move || usage.reconcile_cached(&on_disk, walk_started))
        .await
        .map_err(|e| IndexError::Task(e.to_string()))?
        .map_err(IndexError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, UsageDb) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = UsageDb::open(dir.path().join("usage.db")).expect("open");
        (dir, db)
    }

    fn names(rows: &[IndexRow]) -> Vec<String> {
        rows.iter()
            .map(|r| format!("{}@{}", r.module, r.version))
            .collect()
    }

    #[test]
    fn only_canonical_version_artifacts_are_indexed() {
        let v = |m: &str, ver: &str| Some((m.to_owned(), ver.to_owned()));
        assert_eq!(
            indexed_version("a.example/m/@v/v1.0.0.zip"),
            v("a.example/m", "v1.0.0")
        );
        assert_eq!(
            indexed_version("github.com/!azure/sdk/@v/v1.0.0-!r!c1.mod"),
            v("github.com/!azure/sdk", "v1.0.0-!r!c1")
        );
        assert_eq!(
            indexed_version("a.example/m/@v/v2.0.0+incompatible.info"),
            v("a.example/m", "v2.0.0+incompatible")
        );
        for key in [
            "a.example/m/@v/master.info",
            "a.example/m/@v/v1.2.info",
            "a.example/m/@v/list",
            "a.example/m/@latest",
            "a.example/m/@v/v1.0.0.zip.meta",
            "a.example/m/@v/v1.0.0.ziphash",
            "a.example/m/v2/@v/v1.0.0.mod",
            "sumdb/sum.golang.org/lookup/a.example/m@v1.0.0",
            ".usage.db",
        ] {
            assert_eq!(indexed_version(key), None, "{key}");
        }
    }

    #[test]
    fn timestamps_are_unique_and_grow_in_commit_order() {
        let (_dir, db) = open();
        assert!(
            db.record_cached("a.example/m", "v1.0.0", 1_000)
                .expect("record")
        );
        // The clock went backwards: the row still sorts after the first one.
        assert!(
            db.record_cached("a.example/m", "v1.1.0", 500)
                .expect("record")
        );
        // Same instant as the newest row.
        assert!(
            db.record_cached("b.example/n", "v0.1.0", 1_001)
                .expect("record")
        );
        // Already indexed: keeps its first time.
        assert!(
            !db.record_cached("a.example/m", "v1.0.0", 9_000)
                .expect("record")
        );
        let rows = db.cached_since(0, 10).expect("read");
        assert_eq!(
            names(&rows),
            [
                "a.example/m@v1.0.0",
                "a.example/m@v1.1.0",
                "b.example/n@v0.1.0"
            ]
        );
        let times: Vec<i64> = rows.iter().map(|r| r.cached_at).collect();
        assert_eq!(times, [1_000, 1_001, 1_002]);
        // `since` is inclusive, `limit` cuts the page.
        assert_eq!(
            names(&db.cached_since(1_001, 1).expect("read")),
            ["a.example/m@v1.1.0"]
        );
        assert!(db.cached_since(1_003, 10).expect("read").is_empty());
    }

    #[test]
    fn removing_a_version_unindexes_it() {
        let (_dir, db) = open();
        db.record_cached("a.example/m", "v1.0.0", 10)
            .expect("record");
        db.record_cached("a.example/m", "v1.1.0", 20)
            .expect("record");
        db.remove(&[("a.example/m".to_owned(), "v1.0.0".to_owned())])
            .expect("remove");
        assert_eq!(
            names(&db.cached_since(0, 10).expect("read")),
            ["a.example/m@v1.1.0"]
        );
        // Cached again later: back, with a new time after everything else.
        db.record_cached("a.example/m", "v1.0.0", 5)
            .expect("record");
        let rows = db.cached_since(0, 10).expect("read");
        assert_eq!(names(&rows), ["a.example/m@v1.1.0", "a.example/m@v1.0.0"]);
        assert_eq!(rows[1].cached_at, 21);
    }

    #[test]
    fn reconcile_adds_files_without_rows_and_drops_rows_without_files() {
        let (_dir, db) = open();
        db.record_cached("gone.example/m", "v1.0.0", 100)
            .expect("record");
        db.record_cached("kept.example/m", "v1.0.0", 200)
            .expect("record");
        // Recorded while the walk ran: not on its list, but must stay.
        db.record_cached("new.example/m", "v1.0.0", 900)
            .expect("record");
        let on_disk = vec![
            ("kept.example/m".to_owned(), "v1.0.0".to_owned(), 150),
            ("old.example/b".to_owned(), "v1.0.0".to_owned(), 50),
            ("old.example/a".to_owned(), "v1.0.0".to_owned(), 40),
        ];
        let report = db.reconcile_cached(&on_disk, 800).expect("reconcile");
        assert_eq!(
            report,
            Reconciled {
                added: 2,
                removed: 1
            }
        );
        let rows = db.cached_since(0, 10).expect("read");
        // Found late, so dated after everything a follower may have seen.
        assert_eq!(
            names(&rows),
            [
                "kept.example/m@v1.0.0",
                "new.example/m@v1.0.0",
                "old.example/a@v1.0.0",
                "old.example/b@v1.0.0"
            ]
        );
        assert_eq!(rows[2].cached_at, 901);
        assert_eq!(rows[3].cached_at, 902);
    }

    #[test]
    fn a_first_reconcile_keeps_the_files_own_times() {
        let (_dir, db) = open();
        let on_disk = vec![
            ("b.example/m".to_owned(), "v1.0.0".to_owned(), 2_000),
            ("a.example/m".to_owned(), "v1.0.0".to_owned(), 1_000),
            ("c.example/m".to_owned(), "v1.0.0".to_owned(), 1_000),
        ];
        db.reconcile_cached(&on_disk, 5_000).expect("reconcile");
        let rows = db.cached_since(0, 10).expect("read");
        let got: Vec<(String, i64)> = rows
            .iter()
            .map(|r| (r.module.clone(), r.cached_at))
            .collect();
        assert_eq!(
            got,
            [
                ("a.example/m".to_owned(), 1_000),
                ("c.example/m".to_owned(), 1_001),
                ("b.example/m".to_owned(), 2_000)
            ]
        );
    }
}
