//! Eviction: by age (versions unused for longer than `max_cache_age`) and by size
//! (least recently used versions until the cache fits `max_cache_size`). The
//! unit is one module version: all of its files go together, and a module's own
//! `list` and `@latest` go once no version of it is left.
//!
//! Files are unlinked, never rewritten: a request already reading a file keeps
//! reading it whole, and a request that comes later fetches it again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::scan::{Scan, VersionEntry, scan};
use super::usage::UsageDb;
use crate::storage::Storage;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Zero: no age limit.
    pub max_age: Duration,
    pub max_size: Option<u64>,
}

impl Policy {
    pub fn is_active(&self) -> bool {
        !self.max_age.is_zero() || self.max_size.is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvictError {
    #[error("cannot read the cache: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("{0}")]
    Usage(String),
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Removed (or, in a dry run, to be removed): module, version, bytes, last use.
    pub removed: Vec<(String, String, u64, i64)>,
    /// The storage keys deleted (empty in a dry run).
    pub deleted: Vec<String>,
    pub freed: u64,
    pub size_before: u64,
    pub size_after: u64,
    /// Versions found on disk without a usage row, recorded with their file time.
    pub picked_up: usize,
}

/// Runs eviction once. `now` is Unix seconds.
pub async fn run(
    storage: &Arc<dyn Storage>,
    usage: &Arc<UsageDb>,
    policy: Policy,
    now: i64,
    dry_run: bool,
) -> Result<Report, EvictError> {
    let scanned = scan(storage.as_ref()).await?;
    let mut report = Report {
        size_before: scanned.total_size(),
        ..Report::default()
    };
    let usage_db = Arc::clone(usage);
    // Queued touches count: a version served a moment ago is not "unused".
    let known = tokio::task::spawn_blocking(move || {
        usage_db.flush().and_then(|()| usage_db.last_used_all())
    })
    .await
    .map_err(|e| EvictError::Usage(e.to_string()))?
    .map_err(|e| EvictError::Usage(e.to_string()))?;

    // Versions without a row (an imported cache, a crash between storing and
    // recording) count as last used when their files were written.
    let mut candidates: Vec<(i64, &VersionEntry)> = Vec::with_capacity(scanned.versions.len());
    let mut missing = Vec::new();
    for (id, entry) in &scanned.versions {
        let last_used = match known.get(id) {
            Some(ts) => *ts,
            None => {
                missing.push((entry.module.clone(), entry.version.clone(), entry.modified));
                entry.modified
            }
        };
        candidates.push((last_used, entry));
    }
    if !dry_run && !missing.is_empty() {
        let usage_db = Arc::clone(usage);
        report.picked_up = tokio::task::spawn_blocking(move || usage_db.insert_missing(&missing))
            .await
            .map_err(|e| EvictError::Usage(e.to_string()))?
            .map_err(|e| EvictError::Usage(e.to_string()))?;
    }
    candidates.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| (&a.1.module, &a.1.version).cmp(&(&b.1.module, &b.1.version)))
    });

    let victims = choose(&candidates, &scanned, policy, now);
    let mut doomed: Vec<String> = Vec::new();
    let mut removed_ids = Vec::new();
    for (last_used, entry) in victims {
        doomed.extend(entry.keys.iter().cloned());
        removed_ids.push((entry.module.clone(), entry.version.clone()));
        report.freed += entry.size;
        report.removed.push((
            entry.module.clone(),
            entry.version.clone(),
            entry.size,
            last_used,
        ));
    }
    // A module's list and @latest go with its last version (a module that never
    // had a version cached keeps them: they are all it has).
    for module in emptied_modules(&scanned, &report.removed) {
        if let Some((keys, size)) = scanned.module_files.get(module) {
            doomed.extend(keys.iter().cloned());
            report.freed += size;
        }
    }
    if dry_run {
        report.size_after = report.size_before.saturating_sub(report.freed);
        return Ok(report);
    }
    report.deleted = doomed.clone();
    // In chunks, so a failure (say, a directory made read-only) stops little.
    for chunk in doomed.chunks(1024) {
        if let Err(e) = storage.delete_many(chunk).await {
            tracing::warn!(error = %e, "could not evict some cached files");
        }
    }
    if !removed_ids.is_empty() {
        let usage_db = Arc::clone(usage);
        tokio::task::spawn_blocking(move || usage_db.remove(&removed_ids))
            .await
            .map_err(|e| EvictError::Usage(e.to_string()))?
            .map_err(|e| EvictError::Usage(e.to_string()))?;
    }
    report.size_after = report.size_before.saturating_sub(report.freed);
    Ok(report)
}

/// The versions to remove: every one older than the age limit, then the least
/// recently used until the total fits the size limit. `candidates` is sorted by
/// last use, oldest first.
fn choose<'a>(
    candidates: &[(i64, &'a VersionEntry)],
    scanned: &Scan,
    policy: Policy,
    now: i64,
) -> Vec<(i64, &'a VersionEntry)> {
    let cutoff = (!policy.max_age.is_zero()).then(|| now - policy.max_age.as_secs() as i64);
    let mut total = scanned.total_size();
    let mut versions_left = versions_per_module(scanned);
    let mut out = Vec::new();
    for &(last_used, entry) in candidates {
        let too_old = cutoff.is_some_and(|c| last_used < c);
        let too_big = policy.max_size.is_some_and(|max| total > max);
        // Sorted oldest first: once one version is neither too old nor needed
        // for room, no later one is either.
        if !(too_old || too_big) {
            break;
        }
        total = total.saturating_sub(entry.size);
        // The module's own files go with its last version: count them as freed.
        if let Some(left) = versions_left.get_mut(entry.module.as_str()) {
            *left -= 1;
            if *left == 0 {
                let module_files = scanned
                    .module_files
                    .get(&entry.module)
                    .map_or(0, |(_, size)| *size);
                total = total.saturating_sub(module_files);
            }
        }
        out.push((last_used, entry));
    }
    out
}

fn versions_per_module(scanned: &Scan) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for (module, _) in scanned.versions.keys() {
        *counts.entry(module.as_str()).or_insert(0) += 1;
    }
    counts
}

/// Modules that had cached versions and have none left after `removed`.
fn emptied_modules<'a>(
    scanned: &'a Scan,
    removed: &[(String, String, u64, i64)],
) -> Vec<&'a String> {
    let mut left = versions_per_module(scanned);
    for (module, _, _, _) in removed {
        if let Some(n) = left.get_mut(module.as_str()) {
            *n = n.saturating_sub(1);
        }
    }
    scanned
        .module_files
        .keys()
        .filter(|module| left.get(module.as_str()) == Some(&0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(module: &str, version: &str, size: u64) -> VersionEntry {
        VersionEntry {
            module: module.into(),
            version: version.into(),
            keys: vec![],
            size,
            modified: 0,
        }
    }

    #[test]
    fn age_and_size_limits_pick_the_oldest_first() {
        let a = entry("a.example/m", "v1.0.0", 100);
        let b = entry("a.example/m", "v1.1.0", 100);
        let c = entry("b.example/n", "v1.0.0", 100);
        let mut scanned = Scan::default();
        for e in [&a, &b, &c] {
            scanned
                .versions
                .insert((e.module.clone(), e.version.clone()), (*e).clone());
        }
        let candidates = vec![(10, &a), (20, &b), (30, &c)];
        let names = |v: Vec<(i64, &VersionEntry)>| {
            v.iter()
                .map(|(_, e)| e.version.clone() + "@" + &e.module)
                .collect::<Vec<_>>()
        };

        // Unused for more than 5 s at time 31: last used before 26.
        let by_age = Policy {
            max_age: Duration::from_secs(5),
            max_size: None,
        };
        assert_eq!(
            names(choose(&candidates, &scanned, by_age, 31)),
            ["v1.0.0@a.example/m", "v1.1.0@a.example/m"]
        );

        let by_size = Policy {
            max_age: Duration::ZERO,
            max_size: Some(150),
        };
        assert_eq!(
            names(choose(&candidates, &scanned, by_size, 31)),
            ["v1.0.0@a.example/m", "v1.1.0@a.example/m"]
        );

        let fits = Policy {
            max_age: Duration::ZERO,
            max_size: Some(300),
        };
        assert!(choose(&candidates, &scanned, fits, 31).is_empty());

        let none = Policy::default();
        assert!(!none.is_active());
        assert!(choose(&candidates, &scanned, none, 31).is_empty());
    }
}
