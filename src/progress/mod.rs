//! Live progress of upstream downloads: a registry that the download code reports
//! into (cheap atomic counters, no I/O) and that displays read from (terminal
//! bars, throttled log lines, the status page). A download is registered for as
//! long as its [`Transfer`] handle lives, so a failure or a panic can never leave
//! a bar behind.
//!
//! [`display::Display`] turns the registry into output on stderr: [`bars`] on a
//! terminal, throttled [`lines`] elsewhere.

mod bars;
pub mod display;
mod format;
mod lines;
mod rate;
mod terminal;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast};

/// How many finished-download events a display may fall behind before it
/// misses some (it then only loses completion lines, never correctness). The
/// line display collects them once a second.
const FINISHED_BACKLOG: usize = 1024;

/// Shared handle to the registry of active downloads; cheap to clone.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Registry>,
}

struct Registry {
    next_id: AtomicU64,
    active: Mutex<BTreeMap<u64, Arc<Counters>>>,
    finished: broadcast::Sender<Finished>,
    /// Wakes idle displays when a download starts, so they need not poll.
    started: Notify,
}

struct Counters {
    name: String,
    started: Instant,
    /// 0 while the size is unknown.
    total: AtomicU64,
    /// Bytes present so far, including bytes resumed from an earlier attempt.
    done: AtomicU64,
    /// Bytes that were already on disk when this download started (not
    /// transferred now, so they do not count towards the speed).
    resumed: AtomicU64,
    connections: AtomicU64,
}

/// A point-in-time view of one active download.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub id: u64,
    /// `module@version`.
    pub name: String,
    pub total: Option<u64>,
    pub done: u64,
    pub resumed: u64,
    pub connections: u64,
    pub elapsed: Duration,
}

impl Snapshot {
    /// Average transfer speed of this run in bytes per second (resumed bytes excluded).
    pub fn speed(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.done.saturating_sub(self.resumed) as f64 / secs
    }

    /// Estimated time left at the average speed so far, when the size is known.
    pub fn eta(&self) -> Option<Duration> {
        let total = self.total?;
        let speed = self.speed();
        if speed <= 0.0 {
            return None;
        }
        let left = total.saturating_sub(self.done) as f64 / speed;
        Some(Duration::from_secs_f64(left.min(1e7)))
    }

    /// Percentage done (0..=100), when the size is known.
    pub fn percent(&self) -> Option<f64> {
        match self.total {
            Some(0) => Some(100.0),
            Some(total) => Some((self.done.min(total) as f64 * 100.0) / total as f64),
            None => None,
        }
    }
}

/// How a download ended, as reported to displays.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub id: u64,
    pub name: String,
    /// Bytes of the finished file (or as far as a failed one got).
    pub bytes: u64,
    pub resumed: u64,
    pub elapsed: Duration,
    /// `None` on success, the reason otherwise.
    pub error: Option<String>,
}

impl Finished {
    /// Average speed of the bytes transferred in this run.
    pub fn speed(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.bytes.saturating_sub(self.resumed) as f64 / secs
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Self {
        let (finished, _) = broadcast::channel(FINISHED_BACKLOG);
        Progress {
            inner: Arc::new(Registry {
                next_id: AtomicU64::new(1),
                active: Mutex::new(BTreeMap::new()),
                finished,
                started: Notify::new(),
            }),
        }
    }

    /// Registers a download of `name` (`module@version`); it stays listed until
    /// the returned handle is finished or dropped.
    pub fn start(&self, name: impl Into<String>) -> Transfer {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let counters = Arc::new(Counters {
            name: name.into(),
            started: Instant::now(),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            connections: AtomicU64::new(1),
        });
        self.lock().insert(id, Arc::clone(&counters));
        self.inner.started.notify_waiters();
        Transfer {
            id,
            counters,
            registry: Arc::clone(&self.inner),
            ended: false,
        }
    }

    /// The active downloads, oldest first.
    pub fn snapshot(&self) -> Vec<Snapshot> {
        self.lock()
            .iter()
            .map(|(id, c)| {
                let total = c.total.load(Ordering::Relaxed);
                Snapshot {
                    id: *id,
                    name: c.name.clone(),
                    total: (total > 0).then_some(total),
                    done: c.done.load(Ordering::Relaxed),
                    resumed: c.resumed.load(Ordering::Relaxed),
                    connections: c.connections.load(Ordering::Relaxed),
                    elapsed: c.started.elapsed(),
                }
            })
            .collect()
    }

    /// How many downloads are active right now.
    pub fn active(&self) -> usize {
        self.lock().len()
    }

    /// Completes at the next [`Progress::start`]. Enable the future (or poll it
    /// once) before checking [`Progress::active`], or a start in between is missed.
    pub fn started(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.started.notified()
    }

    /// Finished-download events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Finished> {
        self.inner.finished.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Counters>>> {
        // The map holds plain counters: a panic elsewhere cannot leave it inconsistent.
        self.inner.active.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The download side's handle: report sizes and bytes as they arrive.
pub struct Transfer {
    id: u64,
    counters: Arc<Counters>,
    registry: Arc<Registry>,
    ended: bool,
}

impl Transfer {
    pub fn set_total(&self, total: u64) {
        self.counters.total.store(total, Ordering::Relaxed);
    }

    /// `bytes` were already on disk from an earlier, interrupted attempt.
    pub fn set_resumed(&self, bytes: u64) {
        self.counters.resumed.store(bytes, Ordering::Relaxed);
        self.counters.done.store(bytes, Ordering::Relaxed);
    }

    pub fn add(&self, bytes: u64) {
        self.counters.done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Starting over (the upstream's file changed): nothing counts any more.
    pub fn reset(&self) {
        self.counters.done.store(0, Ordering::Relaxed);
        self.counters.resumed.store(0, Ordering::Relaxed);
    }

    pub fn set_connections(&self, n: u64) {
        self.counters.connections.store(n, Ordering::Relaxed);
    }

    pub fn done(&self) -> u64 {
        self.counters.done.load(Ordering::Relaxed)
    }

    /// A cheap handle for the tasks that move the bytes (one per connection).
    pub fn reporter(&self) -> Reporter {
        Reporter(Arc::clone(&self.counters))
    }

    pub fn succeeded(mut self) {
        self.end(None);
    }

    pub fn failed(mut self, reason: impl Into<String>) {
        self.end(Some(reason.into()));
    }

    fn end(&mut self, error: Option<String>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let removed = self
            .registry
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        if removed.is_none() {
            return;
        }
        let c = &self.counters;
        // No receiver (no display running) is fine: the event is simply not wanted.
        let _ = self.registry.finished.send(Finished {
            id: self.id,
            name: c.name.clone(),
            bytes: c.done.load(Ordering::Relaxed),
            resumed: c.resumed.load(Ordering::Relaxed),
            elapsed: c.started.elapsed(),
            error,
        });
    }
}

/// Counts bytes into a [`Transfer`] from any task.
#[derive(Clone)]
pub struct Reporter(Arc<Counters>);

impl Reporter {
    pub fn add(&self, bytes: u64) {
        self.0.done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Takes back bytes counted for a piece that has to be fetched again.
    pub fn sub(&self, bytes: u64) {
        let _ = self
            .0
            .done
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some(d.saturating_sub(bytes))
            });
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        self.end(Some("cancelled".to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_is_listed_until_it_ends() {
        let progress = Progress::new();
        let mut events = progress.subscribe();
        let t = progress.start("example.com/m@v1.0.0");
        t.set_total(100);
        t.add(40);
        let snap = progress.snapshot();
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].name, "example.com/m@v1.0.0");
        assert_eq!(snap[0].total, Some(100));
        assert_eq!(snap[0].done, 40);
        assert_eq!(snap[0].percent(), Some(40.0));
        t.add(60);
        t.succeeded();
        assert!(progress.snapshot().is_empty());
        let ev = events.try_recv().expect("finished event");
        assert_eq!(ev.bytes, 100);
        assert_eq!(ev.error, None);
    }

    #[test]
    fn dropping_a_transfer_reports_it_cancelled() {
        let progress = Progress::new();
        let mut events = progress.subscribe();
        drop(progress.start("a@v1.0.0"));
        assert_eq!(progress.active(), 0);
        assert_eq!(
            events.try_recv().expect("event").error.as_deref(),
            Some("cancelled")
        );
    }

    #[test]
    fn resumed_bytes_count_as_done_but_not_towards_speed() {
        let progress = Progress::new();
        let t = progress.start("a@v1.0.0");
        t.set_total(1000);
        t.set_resumed(600);
        let snap = &progress.snapshot()[0];
        assert_eq!(snap.done, 600);
        assert_eq!(snap.percent(), Some(60.0));
        assert_eq!(snap.speed(), 0.0);
        assert_eq!(snap.eta(), None);
        t.failed("boom");
    }

    #[test]
    fn unknown_size_has_no_percentage() {
        let progress = Progress::new();
        let t = progress.start("a@v1.0.0");
        t.add(5);
        assert_eq!(progress.snapshot()[0].percent(), None);
        t.succeeded();
    }
}
