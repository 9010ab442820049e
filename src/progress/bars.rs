//! Live bars at the bottom of a terminal, one per active download, with log
//! lines printed above them.
//!
//! The bars are driven from the registry's snapshots (a few times a second),
//! not by the download code, so a download costs nothing but its counters and
//! a bar can never outlive its download.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use tokio_util::sync::CancellationToken;

use super::format::{eta, fit, percent, size_word, speed};
use super::rate::{Estimate, Rate};
use super::terminal::{LogWriter, Screen};
use super::{Progress, Snapshot};

/// How often bars are refreshed while downloads are active.
const TICK: Duration = Duration::from_millis(100);
/// Redraws per second at most, however often bars change.
const REFRESH_HZ: u8 = 10;
/// The speed shown is measured over this much recent time.
const SPEED_WINDOW: Duration = Duration::from_secs(3);
const MAX_BAR: usize = 30;
const MIN_BAR: usize = 10;
/// A name this long or longer is worth keeping a short bar next to.
const NAME_WITH_SHORT_BAR: usize = 30;
const MIN_NAME: usize = 8;
const SPARE_COLUMNS: usize = 3;

/// The bars' area on a terminal; clones share it.
#[derive(Clone)]
pub struct Bars {
    multi: MultiProgress,
    /// Columns of the terminal, asked on every refresh so a resized window is
    /// followed.
    width: Arc<dyn Fn() -> usize + Send + Sync>,
}

impl Bars {
    /// Bars on stderr. They are drawn even if stderr is not detected as a
    /// terminal, since this is only chosen for one or when asked for.
    pub(super) fn stderr() -> Bars {
        let term = console::Term::buffered_stderr();
        let width = {
            let term = term.clone();
            move || usize::from(term.size().1)
        };
        Bars::on(term, width)
    }

    pub(super) fn on(
        term: impl TermLike + 'static,
        width: impl Fn() -> usize + Send + Sync + 'static,
    ) -> Bars {
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(Screen::new(term)), REFRESH_HZ);
        Bars {
            multi: MultiProgress::with_draw_target(target),
            width: Arc::new(width),
        }
    }

    /// Where log lines go while bars may be shown: above them.
    pub fn log_writer(&self) -> LogWriter {
        LogWriter::new(self.multi.clone())
    }

    /// Wipes the bars from the screen (before exiting without [`run`]'s cleanup).
    pub fn clear(&self) {
        let _ = self.multi.clear();
    }

    fn layout(&self, active: &[Snapshot], messages: &[String]) -> Layout {
        let longest = |lens: &mut dyn Iterator<Item = usize>| lens.max().unwrap_or(0);
        layout(
            (self.width)(),
            longest(&mut active.iter().map(|s| s.name.chars().count())),
            longest(&mut messages.iter().map(|m| m.chars().count())),
        )
    }
}

/// Keeps the bars in step with the registry until `stop`, then removes them.
pub(super) async fn run(progress: Progress, bars: Bars, stop: CancellationToken) {
    let mut shown = BTreeMap::new();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let started = progress.started();
        tokio::pin!(started);
        // Registered before looking, so a download starting now is not missed.
        started.as_mut().enable();
        refresh(&bars, &progress.snapshot(), &mut shown, Instant::now());
        if shown.is_empty() {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = &mut started => {}
            }
        } else {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
        }
    }
    refresh(&bars, &[], &mut shown, Instant::now());
    bars.clear();
}

/// One download's bar.
struct Shown {
    bar: ProgressBar,
    /// Whether the bar is in the terminal's block yet.
    on_screen: bool,
    rate: Rate,
    /// The style in use: whether the size is known, and the bar's width.
    style: Option<(bool, usize)>,
}

/// Adds bars for new downloads, updates the others and removes the bars of
/// downloads that ended.
fn refresh(bars: &Bars, active: &[Snapshot], shown: &mut BTreeMap<u64, Shown>, now: Instant) {
    shown.retain(|id, s| {
        let keep = active.iter().any(|a| a.id == *id);
        if !keep {
            s.bar.finish_and_clear();
            bars.multi.remove(&s.bar);
        }
        keep
    });
    let mut messages = Vec::with_capacity(active.len());
    for snapshot in active {
        let entry = shown.entry(snapshot.id).or_insert_with(|| Shown {
            bar: ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()),
            on_screen: false,
            rate: Rate::new(SPEED_WINDOW),
            style: None,
        });
        entry.rate.record(now, snapshot);
        messages.push(message(snapshot, entry.rate.estimate(snapshot)));
    }
    let layout = bars.layout(active, &messages);
    for (snapshot, message) in active.iter().zip(messages) {
        let Some(entry) = shown.get_mut(&snapshot.id) else {
            continue;
        };
        let sized = snapshot.total.is_some();
        if entry.style != Some((sized, layout.bar)) {
            entry.bar.set_style(style(sized, layout.bar));
            entry.style = Some((sized, layout.bar));
        }
        let name = fit(&snapshot.name, layout.name);
        entry
            .bar
            .set_prefix(format!("{name:<width$}", width = layout.name));
        match snapshot.total {
            Some(total) => {
                entry.bar.set_length(total);
                entry.bar.set_position(snapshot.done.min(total));
            }
            None => entry.bar.tick(),
        }
        entry.bar.set_message(message);
        if !entry.on_screen {
            // Added once set up, so it never shows half-drawn.
            bars.multi.add(entry.bar.clone());
            entry.bar.tick();
            entry.on_screen = true;
        }
    }
}

/// What follows the bar: `42%  1.2MiB/3.0MiB  512.0 KiB/s  ETA 4s`.
fn message(snapshot: &Snapshot, estimate: Estimate) -> String {
    let done = size_word(snapshot.done);
    let mut text = match (snapshot.total, snapshot.percent()) {
        (Some(total), Some(pct)) => format!(
            "{:>3}%  {done:>9}/{:<9} {:>12}  ETA {}",
            percent(pct),
            size_word(total),
            speed(estimate.speed),
            eta(estimate.left)
        ),
        _ => format!("{done:>9}  {:>12}", speed(estimate.speed)),
    };
    if snapshot.connections > 1 {
        text.push_str(&format!("  {} conns", snapshot.connections));
    }
    text
}

fn style(sized: bool, bar: usize) -> ProgressStyle {
    let template = match (sized, bar) {
        (true, 0) => "{prefix} {msg}".to_owned(),
        (true, width) => format!("{{prefix}} [{{bar:{width}}}] {{msg}}"),
        (false, _) => "{prefix} {spinner} {msg}".to_owned(),
    };
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
        .tick_chars("|/-\\ ")
}

#[derive(Debug, PartialEq)]
struct Layout {
    name: usize,
    /// 0: no bar, only the numbers.
    bar: usize,
}

/// Shares a terminal line between the name, the bar and the numbers. Names
/// come first (they tell downloads apart), then the bar.
fn layout(width: usize, longest_name: usize, longest_message: usize) -> Layout {
    // The last columns stay free, for the `^C` a terminal echoes when Ctrl-C
    // is pressed: it must not wrap onto a new line.
    let room = width
        .saturating_sub(SPARE_COLUMNS)
        .saturating_sub(longest_message + 1);
    // " [" and "] " around the bar.
    let framed = |bar: usize| bar + 3;
    if room >= longest_name + framed(MIN_BAR) {
        Layout {
            name: longest_name,
            bar: (room - longest_name - 3).min(MAX_BAR),
        }
    } else if room >= NAME_WITH_SHORT_BAR + framed(MIN_BAR) {
        Layout {
            name: room - framed(MIN_BAR),
            bar: MIN_BAR,
        }
    } else {
        Layout {
            name: room.clamp(MIN_NAME.min(longest_name), longest_name.max(MIN_NAME)),
            bar: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::InMemoryTerm;

    fn screen(term: &InMemoryTerm) -> Vec<String> {
        term.contents()
            .lines()
            .map(|l| l.trim_end().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    }

    #[test]
    fn one_bar_per_download_while_it_runs() {
        let term = InMemoryTerm::new(10, 100);
        let bars = Bars::on(term.clone(), || 100);
        let progress = Progress::new();
        let mut shown = BTreeMap::new();
        let a = progress.start("example.com/a@v1.0.0");
        a.set_total(4 * 1024 * 1024);
        a.add(1024 * 1024);
        let b = progress.start("example.com/long/path/b@v2.0.0");
        refresh(&bars, &progress.snapshot(), &mut shown, Instant::now());
        bars.multi.suspend(|| {});
        let lines = screen(&term);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("example.com/a@v1.0.0 "), "{lines:?}");
        assert!(lines[0].contains("]  25%     1.0MiB/4.0MiB "), "{lines:?}");
        // No speed yet: a few microseconds say nothing about it.
        assert!(lines[0].ends_with(" ? B/s  ETA ?"), "{lines:?}");
        assert!(lines[1].starts_with("example.com/long/path/b@v2.0.0"));
        assert!(lines[1].contains("0B"), "{lines:?}");
        assert!(lines.iter().all(|l| l.chars().count() < 100), "{lines:?}");

        a.succeeded();
        refresh(&bars, &progress.snapshot(), &mut shown, Instant::now());
        bars.multi.suspend(|| {});
        let lines = screen(&term);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("example.com/long/path/b@v2.0.0"));

        drop(b);
        refresh(&bars, &progress.snapshot(), &mut shown, Instant::now());
        bars.multi.suspend(|| {});
        assert!(screen(&term).is_empty(), "{:?}", screen(&term));
    }

    #[tokio::test]
    async fn stopping_removes_the_bars_at_once() {
        let term = InMemoryTerm::new(10, 80);
        let bars = Bars::on(term.clone(), || 80);
        let progress = Progress::new();
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(progress.clone(), bars.clone(), stop.clone()));
        let t = progress.start("example.com/a@v1.0.0");
        t.set_total(10);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !term.contents().contains("example.com/a@v1.0.0") {
            assert!(Instant::now() < deadline, "no bar appeared");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("stops promptly")
            .expect("no panic");
        assert!(term.contents().trim().is_empty(), "{}", term.contents());
        drop(t);
    }

    #[test]
    fn a_typed_ctrl_c_does_not_leave_a_stale_bar() {
        let term = InMemoryTerm::new(10, 80);
        let bars = Bars::on(term.clone(), || 80);
        let progress = Progress::new();
        let mut shown = BTreeMap::new();
        let a = progress.start("example.com/a@v1.0.0");
        a.set_total(100);
        let b = progress.start("example.com/b@v1.0.0");
        b.set_total(100);
        bars.multi
            .suspend(|| term.write_line("first log line").unwrap());
        refresh(&bars, &progress.snapshot(), &mut shown, Instant::now());
        bars.multi.suspend(|| {});
        // The terminal echoes Ctrl-C where the cursor is, then a log line follows.
        term.write_str("^C").unwrap();
        bars.multi
            .suspend(|| term.write_line("shutting down").unwrap());
        let lines = screen(&term);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[0], "first log line");
        assert_eq!(lines[1], "shutting down");
        assert!(lines[2].starts_with("example.com/a@v1.0.0"), "{lines:?}");
        assert!(lines[3].starts_with("example.com/b@v1.0.0"), "{lines:?}");
        drop((a, b));
        refresh(&bars, &progress.snapshot(), &mut shown, Instant::now());
        bars.clear();
        assert_eq!(screen(&term), ["first log line", "shutting down"]);
    }

    #[test]
    fn layout_gives_names_room_first() {
        // Wide: the whole name and a full bar.
        assert_eq!(layout(200, 30, 50), Layout { name: 30, bar: 30 });
        // Narrower: the bar shrinks.
        assert_eq!(layout(100, 30, 50), Layout { name: 30, bar: 13 });
        // A long name keeps a short bar and loses its start.
        assert_eq!(layout(100, 80, 50), Layout { name: 33, bar: 10 });
        // Very narrow: no bar, the numbers and what fits of the name.
        assert_eq!(layout(70, 30, 50), Layout { name: 16, bar: 0 });
        assert_eq!(layout(40, 30, 50), Layout { name: 8, bar: 0 });
    }

    #[test]
    fn messages() {
        let snapshot = Snapshot {
            id: 1,
            name: "a@v1.0.0".to_owned(),
            total: Some(3 * 1024 * 1024),
            done: 1024 * 1024 + 200 * 1024,
            resumed: 0,
            connections: 4,
            elapsed: Duration::from_secs(2),
        };
        let text = message(
            &snapshot,
            Estimate {
                speed: Some(512.0 * 1024.0),
                left: Some(Duration::from_secs(4)),
            },
        );
        assert_eq!(
            text,
            " 39%     1.2MiB/3.0MiB     512.0 KiB/s  ETA 4s  4 conns"
        );
        let no_size = Snapshot {
            total: None,
            connections: 1,
            ..snapshot
        };
        assert_eq!(
            message(
                &no_size,
                Estimate {
                    speed: None,
                    left: None
                }
            ),
            "   1.2MiB         ? B/s"
        );
    }
}
