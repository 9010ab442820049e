//! Fetching ahead (`prefetch: on`). The go command asks for a version's
//! `.mod` while it builds the module graph, and for the `.info` and `.zip`
//! of the same version later, one request at a time; through a proxy whose
//! cache is cold, each of those is a miss that waits for the upstream. A
//! `.mod` fetched from an upstream therefore starts fetches of its `.info`
//! and `.zip`, so the later requests find them cached or join them in flight.
//!
//! Off by default: with a pruned module graph the go command reads many
//! `.mod` files whose zips a build never needs, and prefetching downloads
//! those zips anyway.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::Fetcher;
use crate::cache::{ArtifactKey, ArtifactKind};
use crate::gomod::version::RequestedVersion;

/// Versions being prefetched at most at once. A burst beyond it is skipped,
/// not queued: a prefetch is only worth doing before the client asks, and
/// an unbounded queue would hold memory for work nobody waits for.
pub(super) const MAX_RUNNING: usize = 64;

pub(super) struct Prefetch {
    running: Arc<Semaphore>,
}

impl Prefetch {
    pub(super) fn new() -> Prefetch {
        Prefetch {
            running: Arc::new(Semaphore::new(MAX_RUNNING)),
        }
    }
}

impl Fetcher {
    /// Called by the fetch that took `key` from an upstream: for a `.mod`,
    /// starts fetching the same version's `.info` and `.zip` in the background.
    pub(super) fn prefetch_after(self: &Arc<Self>, key: &ArtifactKey) {
        let Some(prefetch) = &self.prefetch else {
            return;
        };
        let ArtifactKind::Mod(version) = &key.kind else {
            return;
        };
        let Ok(permit) = Arc::clone(&prefetch.running).try_acquire_owned() else {
            self.metrics.prefetch("skipped");
            return;
        };
        let info = ArtifactKey::new(
            key.module.clone(),
            ArtifactKind::Info(RequestedVersion::Canonical(version.clone())),
        );
        let zip = ArtifactKey::new(key.module.clone(), ArtifactKind::Zip(version.clone()));
        let this = Arc::clone(self);
        tokio::spawn(async move {
            tokio::join!(this.fetch_ahead(&info), this.fetch_ahead(&zip));
            drop(permit);
        });
    }

    /// Fetches `key` into the cache unless it is there already (or known to
    /// be missing upstream). Nobody waits for the answer: a failure is only
    /// counted, and the client's own request tries again.
    async fn fetch_ahead(self: &Arc<Self>, key: &ArtifactKey) {
        let skey = key.storage_key();
        if self.hot_hit(&skey).is_some()
            || self.negative.contains(key)
            || matches!(self.storage.head(&skey).await, Ok(Some(_)))
        {
            self.metrics.prefetch("cached");
            return;
        }
        match self.fetch(key).await {
            Ok(_) => self.metrics.prefetch("fetched"),
            Err(e) => {
                self.metrics.prefetch("failed");
                tracing::debug!(artifact = %key.display_name(), error = %e, "prefetch failed");
            }
        }
    }
}
