//! Progress as plain log lines, for stderr that is not a terminal (Docker,
//! systemd, CI): no control characters, at most one line per download every
//! few seconds, and one when it ends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::TryRecvError;
use tokio_util::sync::CancellationToken;

use super::format::{eta, percent, size_word, speed_word, took};
use super::rate::{Estimate, Rate};
use super::{Finished, Progress, Snapshot};

/// At most one progress line per download this often. A download that ends
/// sooner logs only its completion line.
pub(super) const EVERY: Duration = Duration::from_secs(5);
/// How often active downloads are looked at.
const TICK: Duration = Duration::from_secs(1);

/// Logs progress until `stop`. `finished` is subscribed before the task
/// starts, so no download that ends meanwhile goes unreported.
///
/// The task wakes once per tick and then collects what finished, instead of
/// waiting on the registry: woken for every download that starts and ends,
/// a cold `go mod download` of a few hundred small modules cost it two
/// thread wake-ups per zip, more CPU than logging the lines. A completion
/// line is written up to a tick late; the ones still queued at `stop` are
/// written before it returns.
pub(super) async fn run(
    progress: Progress,
    mut finished: tokio::sync::broadcast::Receiver<Finished>,
    stop: CancellationToken,
) {
    let mut throttle = Throttle::new(EVERY);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = ticker.tick() => false,
        };
        loop {
            match finished.try_recv() {
                Ok(event) => {
                    throttle.forget(event.id);
                    log_finished(&event);
                }
                Err(TryRecvError::Lagged(missed)) => {
                    tracing::debug!(
                        missed,
                        "progress lines fell behind; some completion lines are missing"
                    );
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        if stopping {
            return;
        }
        for (snapshot, estimate) in throttle.due(&progress.snapshot(), Instant::now()) {
            log_progress(&snapshot, estimate);
        }
    }
}

/// Decides which downloads get a progress line now.
struct Throttle {
    every: Duration,
    tracked: HashMap<u64, Tracked>,
}

struct Tracked {
    last_line: Option<Instant>,
    rate: Rate,
}

impl Throttle {
    fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            tracked: HashMap::new(),
        }
    }

    /// The downloads due for a line at `now`, with where they stand:
    /// those running for `every` and without a line for as long.
    fn due(&mut self, active: &[Snapshot], now: Instant) -> Vec<(Snapshot, Estimate)> {
        self.tracked
            .retain(|id, _| active.iter().any(|s| s.id == *id));
        let mut due = Vec::new();
        for snapshot in active {
            let every = self.every;
            let tracked = self.tracked.entry(snapshot.id).or_insert_with(|| Tracked {
                last_line: None,
                rate: Rate::new(every),
            });
            tracked.rate.record(now, snapshot);
            let quiet_for = match tracked.last_line {
                Some(at) => now.saturating_duration_since(at),
                None => snapshot.elapsed,
            };
            if quiet_for >= every {
                tracked.last_line = Some(now);
                due.push((snapshot.clone(), tracked.rate.estimate(snapshot)));
            }
        }
        due
    }

    fn forget(&mut self, id: u64) {
        self.tracked.remove(&id);
    }
}

fn log_progress(snapshot: &Snapshot, estimate: Estimate) {
    let total = snapshot.total.map(size_word);
    tracing::info!(
        artifact = %snapshot.name,
        percent = snapshot.percent().map(percent),
        done = %size_word(snapshot.done),
        total = %total.as_deref().unwrap_or("?"),
        speed = %speed_word(estimate.speed),
        eta = %eta(estimate.left),
        connections = snapshot.connections,
        "downloading"
    );
}

fn log_finished(event: &Finished) {
    let resumed = (event.resumed > 0).then(|| size_word(event.resumed));
    match &event.error {
        None => tracing::info!(
            artifact = %event.name,
            size = %size_word(event.bytes),
            duration = %took(event.elapsed),
            speed = %speed_word(Some(event.speed())),
            resumed,
            "download finished"
        ),
        Some(error) => tracing::warn!(
            artifact = %event.name,
            got = %size_word(event.bytes),
            duration = %took(event.elapsed),
            error = %error,
            "download failed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: u64, done: u64, elapsed: Duration) -> Snapshot {
        Snapshot {
            id,
            name: format!("example.com/m{id}@v1.0.0"),
            total: Some(10_000),
            done,
            resumed: 0,
            connections: 1,
            elapsed,
        }
    }

    #[test]
    fn a_line_every_period_and_none_before_the_first() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(5));
        let mut lines = Vec::new();
        for s in 0..=16 {
            let now = start + Duration::from_secs(s);
            let active = [snap(1, s * 100, Duration::from_secs(s))];
            for (snapshot, estimate) in throttle.due(&active, now) {
                lines.push((s, snapshot.done, estimate.speed));
            }
        }
        let when: Vec<u64> = lines.iter().map(|l| l.0).collect();
        assert_eq!(when, [5, 10, 15]);
        assert!(
            lines
                .iter()
                .all(|l| l.2.is_some_and(|s| (s - 100.0).abs() < 1e-9)),
            "{lines:?}"
        );
    }

    #[test]
    fn short_downloads_get_no_progress_line() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(5));
        for s in 0..5 {
            let active = [snap(1, s * 100, Duration::from_secs(s))];
            assert!(
                throttle
                    .due(&active, start + Duration::from_secs(s))
                    .is_empty()
            );
        }
        throttle.forget(1);
        assert!(throttle.tracked.is_empty());
    }

    #[test]
    fn each_download_has_its_own_schedule() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(5));
        let at = |s: u64| start + Duration::from_secs(s);
        // m1 has run 4 s when first seen, m2 starts then.
        let due = throttle.due(&[snap(1, 0, Duration::from_secs(4))], at(0));
        assert!(due.is_empty());
        let due = throttle.due(
            &[
                snap(1, 0, Duration::from_secs(5)),
                snap(2, 0, Duration::from_secs(1)),
            ],
            at(1),
        );
        let ids: Vec<u64> = due.iter().map(|d| d.0.id).collect();
        assert_eq!(ids, [1]);
        let due = throttle.due(
            &[
                snap(1, 0, Duration::from_secs(9)),
                snap(2, 0, Duration::from_secs(5)),
            ],
            at(5),
        );
        let ids: Vec<u64> = due.iter().map(|d| d.0.id).collect();
        assert_eq!(ids, [2]);
        // A download that is gone is forgotten.
        throttle.due(&[snap(2, 0, Duration::from_secs(6))], at(6));
        assert_eq!(throttle.tracked.len(), 1);
    }
}
