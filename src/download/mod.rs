//! Zip downloads from upstreams: parallel `Range` requests over several
//! connections, resumable across failures and restarts, and a bound on how many
//! run at once.
//!
//! - [`ranges`]: byte-range bookkeeping and `Content-Range` parsing.
//! - [`state`]: the state file recording which bytes are safely on disk.
//! - [`target`]: the (resumable, locked) local file a download writes into.
//! - [`job`]: one attempt against one upstream URL.

pub mod job;
pub mod ranges;
pub mod state;
pub mod target;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use job::Job;
pub use target::{IN_MEMORY_MAX, Target};

/// The bound on concurrent zip downloads, shared by every request.
pub struct DownloadSlots {
    slots: Option<Arc<Semaphore>>,
    limit: u32,
    waiting: AtomicUsize,
}

/// A place among the concurrent downloads; the slot frees when it drops.
pub struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    /// The request queued for it (and the cache may have changed meanwhile).
    pub waited: bool,
}

impl DownloadSlots {
    /// `limit` 0 means no limit.
    pub fn new(limit: u32) -> Self {
        DownloadSlots {
            slots: (limit > 0).then(|| Arc::new(Semaphore::new(limit as usize))),
            limit,
            waiting: AtomicUsize::new(0),
        }
    }

    /// Waits for a free slot; requests are served in the order they arrived
    /// (tokio's semaphore is fair).
    pub async fn acquire(&self, artifact: &str) -> Slot {
        let Some(slots) = &self.slots else {
            return Slot {
                _permit: None,
                waited: false,
            };
        };
        if let Ok(permit) = Arc::clone(slots).try_acquire_owned() {
            return Slot {
                _permit: Some(permit),
                waited: false,
            };
        }
        let position = self.waiting.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            artifact,
            position,
            limit = self.limit,
            "waiting for a download slot (max_concurrent_downloads reached)"
        );
        let started = std::time::Instant::now();
        // Decrements even if the waiting request is cancelled.
        let _waiting = WaitingGuard(&self.waiting);
        let permit = Arc::clone(slots).acquire_owned().await.ok();
        tracing::info!(
            artifact,
            waited_ms = started.elapsed().as_millis() as u64,
            "download slot acquired"
        );
        Slot {
            _permit: permit,
            waited: true,
        }
    }

    /// Requests waiting for a slot right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_limit_of_one_serialises_in_arrival_order() {
        let slots = Arc::new(DownloadSlots::new(1));
        let first = slots.acquire("a").await;
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for name in ["b", "c", "d"] {
            let slots = Arc::clone(&slots);
            let order = Arc::clone(&order);
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire(name).await;
                order.lock().unwrap().push(name);
            }));
            // Let each task reach the queue before the next one starts.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(slots.waiting(), 3);
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec!["b", "c", "d"]);
        assert_eq!(slots.waiting(), 0);
    }

    #[tokio::test]
    async fn zero_means_no_limit() {
        let slots = DownloadSlots::new(0);
        let held: Vec<Slot> =
            futures_util::future::join_all((0..100).map(|_| slots.acquire("x"))).await;
        assert_eq!(held.len(), 100);
        assert_eq!(slots.waiting(), 0);
    }
}
