//! Speed over the last few seconds, so a display reacts when a download speeds
//! up or stalls, which the average since its start hides.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Snapshot;

/// Below this span of samples the recent speed is too noisy; the average since
/// the start stands in, once the download has run this long.
const MIN_SPAN: Duration = Duration::from_secs(1);

/// Where a download stands: speed and time left, each unknown at times.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Estimate {
    /// Bytes per second.
    pub(super) speed: Option<f64>,
    pub(super) left: Option<Duration>,
}

pub(super) struct Rate {
    window: Duration,
    /// (when, bytes transferred by this run), oldest first.
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    pub(super) fn new(window: Duration) -> Rate {
        Rate {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Records the download's state at `now`.
    pub(super) fn record(&mut self, now: Instant, snapshot: &Snapshot) {
        let transferred = snapshot.done.saturating_sub(snapshot.resumed);
        // Fewer bytes than before: the download started over.
        if self
            .samples
            .back()
            .is_some_and(|&(_, last)| transferred < last)
        {
            self.samples.clear();
        }
        self.samples.push_back((now, transferred));
        // Keep one sample at or beyond the window's start, so the span covers it.
        while self.samples.len() > 2
            && now.saturating_duration_since(self.samples[1].0) >= self.window
        {
            self.samples.pop_front();
        }
    }

    /// Recent bytes per second (unknown in the first moments) and the time
    /// left at that speed.
    pub(super) fn estimate(&self, snapshot: &Snapshot) -> Estimate {
        let recent = match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, b0)), Some(&(t1, b1))) if t1.duration_since(t0) >= MIN_SPAN => {
                Some(b1.saturating_sub(b0) as f64 / t1.duration_since(t0).as_secs_f64())
            }
            _ => None,
        };
        let speed = recent.or_else(|| (snapshot.elapsed >= MIN_SPAN).then(|| snapshot.speed()));
        let left = snapshot.total.and_then(|total| {
            let missing = total.saturating_sub(snapshot.done);
            match speed {
                _ if missing == 0 => Some(Duration::ZERO),
                Some(speed) if speed > 0.0 => {
                    Some(Duration::from_secs_f64((missing as f64 / speed).min(1e7)))
                }
                _ => None,
            }
        });
        Estimate { speed, left }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(done: u64, total: Option<u64>, elapsed_ms: u64) -> Snapshot {
        Snapshot {
            id: 1,
            name: "a@v1.0.0".to_owned(),
            total,
            done,
            resumed: 0,
            connections: 1,
            elapsed: Duration::from_millis(elapsed_ms),
        }
    }

    #[test]
    fn recent_speed_follows_a_slowdown() {
        let start = Instant::now();
        let mut rate = Rate::new(Duration::from_secs(3));
        // 1000 B/s for 10 s, then 100 B/s.
        for s in 0..=10 {
            rate.record(
                start + Duration::from_secs(s),
                &snap(s * 1000, None, s * 1000),
            );
        }
        for s in 11..=20 {
            let done = 10_000 + (s - 10) * 100;
            rate.record(start + Duration::from_secs(s), &snap(done, None, s * 1000));
        }
        let last = snap(11_000, Some(12_000), 20_000);
        let Estimate { speed, left } = rate.estimate(&last);
        assert!((speed.unwrap() - 100.0).abs() < 1e-9, "{speed:?}");
        assert_eq!(left, Some(Duration::from_secs(10)));
        // The average since the start would have said 550 B/s.
        assert!((last.speed() - 550.0).abs() < 1e-9);
    }

    #[test]
    fn falls_back_to_the_average_then_knows_nothing() {
        let mut rate = Rate::new(Duration::from_secs(3));
        let s = snap(3000, Some(4000), 1500);
        rate.record(Instant::now(), &s);
        let Estimate { speed, left } = rate.estimate(&s);
        assert!((speed.unwrap() - 2000.0).abs() < 1e-9, "{speed:?}");
        assert_eq!(left, Some(Duration::from_millis(500)));
        // A few bytes in the first microseconds say nothing about the speed.
        let mut rate = Rate::new(Duration::from_secs(3));
        let s = snap(500, Some(1000), 0);
        rate.record(Instant::now(), &s);
        assert_eq!(
            rate.estimate(&s),
            Estimate {
                speed: None,
                left: None
            }
        );
    }

    #[test]
    fn a_stall_has_no_time_left_and_a_restart_forgets_the_past() {
        let start = Instant::now();
        let mut rate = Rate::new(Duration::from_secs(2));
        for s in 0..5 {
            rate.record(start + Duration::from_secs(s), &snap(700, Some(1000), 1000));
        }
        assert_eq!(
            rate.estimate(&snap(700, Some(1000), 5000)),
            Estimate {
                speed: Some(0.0),
                left: None
            }
        );
        // Started over: 0 bytes now, then 300 B/s.
        rate.record(start + Duration::from_secs(5), &snap(0, Some(1000), 5000));
        rate.record(start + Duration::from_secs(7), &snap(600, Some(1000), 7000));
        let speed = rate.estimate(&snap(600, Some(1000), 7000)).speed;
        assert!((speed.unwrap() - 300.0).abs() < 1e-9, "{speed:?}");
    }

    #[test]
    fn complete_means_nothing_left_even_without_speed() {
        let rate = Rate::new(Duration::from_secs(2));
        assert_eq!(
            rate.estimate(&snap(1000, Some(1000), 0)).left,
            Some(Duration::ZERO)
        );
    }
}
