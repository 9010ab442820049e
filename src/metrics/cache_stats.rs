//! Cache size and entry count for the gauges and the status page. Walking the
//! cache is too slow to do on every scrape, so a background task rescans it
//! when something was stored or evicted (at most once per `MIN_GAP`, or per
//! fifty times the last walk's duration if that is longer) and every `MAX_AGE`
//! anyway (files removed by hand or by `goproxy cache gc`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::cache::scan::{Scan, scan};
use crate::storage::{Storage, StorageError};

/// Shortest time between two scans, so a burst of downloads costs one walk.
pub const MIN_GAP: Duration = Duration::from_secs(2);
/// Longest time a scan result is used without a change being seen.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// Scans wait at least this many times as long as the last one took.
const SCAN_SHARE: u32 = 50;
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
        self.run_with(|| scan(storage), upkeep).await
    }

    async fn run_with<F, Fut>(&self, scan: F, upkeep: impl Fn())
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Scan, StorageError>>,
    {
        loop {
            self.dirty.store(false, Ordering::Release);
            let started = tokio::time::Instant::now();
            match scan().await {
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
            // A large cache being filled would otherwise be walked every
            // MIN_GAP: walks take at most about 2% of the time.
            let gap = MIN_GAP.max(started.elapsed() * SCAN_SHARE);
            let now = tokio::time::Instant::now();
            let (earliest, deadline) = (now + gap, now + MAX_AGE.max(gap));
            loop {
                let now = tokio::time::Instant::now();
                if now >= deadline || (now >= earliest && self.dirty.load(Ordering::Acquire)) {
                    break;
                }
                if now < earliest {
                    tokio::time::sleep((earliest - now).min(UPKEEP_EVERY)).await;
                } else {
                    let wait = (deadline - now).min(UPKEEP_EVERY);
                    let _ = tokio::time::timeout(wait, self.wake.notified()).await;
                }
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

    struct Running {
        stats: Arc<CacheStats>,
        scans: Arc<AtomicUsize>,
        upkeeps: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    /// Runs the rescans over an empty cache whose walk takes `walk`.
    fn start(walk: Duration) -> Running {
        let stats = Arc::new(CacheStats::default());
        let (scans, upkeeps) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let task = {
            let (stats, scans, upkeeps) =
                (Arc::clone(&stats), Arc::clone(&scans), Arc::clone(&upkeeps));
            tokio::spawn(async move {
                let scan = || {
                    let scans = Arc::clone(&scans);
                    async move {
                        tokio::time::sleep(walk).await;
                        scans.fetch_add(1, Ordering::Relaxed);
                        scan(&MemoryStorage::new()).await
                    }
                };
                let upkeep = || {
                    upkeeps.fetch_add(1, Ordering::Relaxed);
                };
                stats.run_with(scan, upkeep).await
            })
        };
        Running {
            stats,
            scans,
            upkeeps,
            task,
        }
    }

    #[tokio::test]
    async fn upkeep_runs_every_second_while_nothing_changes() {
        let run = start(Duration::ZERO);
        tokio::time::sleep(MIN_GAP + UPKEEP_EVERY * 2 + Duration::from_millis(500)).await;
        run.task.abort();
        // After the scan, then once per UPKEEP_EVERY.
        let upkeeps = run.upkeeps.load(Ordering::Relaxed);
        assert!(upkeeps >= 4, "{upkeeps}");
        assert!(run.stats.snapshot().is_some(), "the scan ran");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_walk_is_repeated_less_often() {
        // A cache that takes a second to walk.
        let run = start(Duration::from_secs(1));
        let scans = || run.scans.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(scans(), 1);
        // Something is stored at once, and then all the time.
        for _ in 0..40 {
            run.stats.changed();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(scans(), 1, "walked again within 50 s");
        for _ in 0..12 {
            run.stats.changed();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(scans(), 2, "walked again after 50 s");
        run.task.abort();
    }
}
