//! Cache size and entry count for the gauges and the status page. Walking the
//! cache is too slow to do on every scrape, so a background task rescans it
//! when something was stored or evicted (at most once per `MIN_GAP`) and every
//! `MAX_AGE` anyway (files removed by hand or by `goproxy cache gc`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::cache::scan::scan;
use crate::storage::Storage;

/// Shortest time between two scans, so a burst of downloads costs one walk.
pub const MIN_GAP: Duration = Duration::from_secs(2);
/// Longest time a scan result is used without a change being seen.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// How often the recorder's upkeep runs between scans. Every request's
/// duration is kept as a raw sample until upkeep folds it into its bucket:
/// once a minute, a busy proxy held millions of them (tens of MiB), and
/// folding them all at once stalled a runtime thread for tens of milliseconds.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct CacheStats {
    latest: Mutex<Option<Snapshot>>,
    dirty: AtomicBool,
    wake: Notify,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Bytes of module files (versions plus lists and `@latest` answers).
    pub size: u64,
    /// Module versions.
    pub entries: u64,
    /// When the scan finished.
    pub at: Instant,
}

impl CacheStats {
    /// The result of the latest scan; None until the first one finished.
    pub fn snapshot(&self) -> Option<Snapshot> {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn changed(&self) {
        self.dirty.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Scans now, then whenever the cache changed or `MAX_AGE` passed; runs
    /// until the task is aborted.
    pub async fn run(&self, storage: &dyn Storage, upkeep: impl Fn()) {
        loop {
            self.dirty.store(false, Ordering::Release);
            match scan(storage).await {
                Ok(scanned) => {
                    *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(Snapshot {
                        size: scanned.total_size(),
                        entries: scanned.versions.len() as u64,
                        at: Instant::now(),
                    });
                }
                Err(e) => tracing::warn!(error = %e, "could not scan the cache for its size"),
            }
            upkeep();
            tokio::time::sleep(MIN_GAP).await;
            upkeep();
            let deadline = Instant::now() + (MAX_AGE - MIN_GAP);
            while !self.dirty.load(Ordering::Acquire) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let _ = tokio::time::timeout(left.min(UPKEEP_EVERY), self.wake.notified()).await;
                upkeep();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::storage::memory::MemoryStorage;

    #[tokio::test]
    async fn upkeep_runs_every_second_while_nothing_changes() {
        let stats = Arc::new(CacheStats::default());
        let upkeeps = Arc::new(AtomicUsize::new(0));
        let task = {
            let (stats, upkeeps) = (Arc::clone(&stats), Arc::clone(&upkeeps));
            tokio::spawn(async move {
                let storage = MemoryStorage::new();
                stats
                    .run(&storage, || {
                        upkeeps.fetch_add(1, Ordering::Relaxed);
                    })
                    .await
            })
        };
        tokio::time::sleep(MIN_GAP + UPKEEP_EVERY * 2 + Duration::from_millis(500)).await;
        task.abort();
        // After the scan, after MIN_GAP, then once per UPKEEP_EVERY.
        assert!(upkeeps.load(Ordering::Relaxed) >= 4, "{upkeeps:?}");
        assert!(stats.snapshot().is_some(), "the scan ran");
    }
}
