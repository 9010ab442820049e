//! Choosing how download progress reaches stderr, and running that display
//! next to the server.
//!
//! `auto` shows bars only to a person: stderr must be a terminal that
//! understands cursor movement (`TERM` set and not `dumb`), and the log must be
//! text. JSON logs are read by programs (a collector behind `docker run -t`,
//! say), so they get progress as log events too; `bars` still forces bars.

use std::fmt;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use super::Progress;
use super::bars::{self, Bars};
use super::lines;
use crate::config::{LogFormat, ProgressMode};

/// A stopped display gets this long to clean up before it is abandoned.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// Where progress goes, decided once at startup (the log writer depends on it).
#[derive(Clone)]
pub enum Output {
    Bars(Bars),
    Lines,
    Off,
}

/// What stderr is connected to.
#[derive(Clone, Copy, Debug)]
pub struct Stderr<'a> {
    pub is_terminal: bool,
    /// The `TERM` environment variable.
    pub term: Option<&'a str>,
}

impl Output {
    pub fn choose(mode: ProgressMode, log_format: LogFormat, stderr: Stderr<'_>) -> Output {
        match resolve(mode, log_format, stderr) {
            ProgressMode::Bars => Output::Bars(Bars::stderr()),
            ProgressMode::Lines => Output::Lines,
            ProgressMode::Off | ProgressMode::Auto => Output::Off,
        }
    }

    /// The writer for the log: with bars, log lines are printed above them.
    pub fn log_writer(&self) -> BoxMakeWriter {
        match self {
            Output::Bars(bars) => BoxMakeWriter::new(bars.log_writer()),
            Output::Lines | Output::Off => BoxMakeWriter::new(std::io::stderr),
        }
    }

    /// Removes any bars from the screen right now, for an exit that skips
    /// [`Display::stop`].
    pub fn clear(&self) {
        if let Output::Bars(bars) = self {
            bars.clear();
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Output::Bars(_) => "bars",
            Output::Lines => "lines",
            Output::Off => "off",
        })
    }
}

/// The mode `auto` stands for here; other modes are taken as given.
fn resolve(mode: ProgressMode, log_format: LogFormat, stderr: Stderr<'_>) -> ProgressMode {
    if mode != ProgressMode::Auto {
        return mode;
    }
    let capable = stderr.is_terminal && stderr.term.is_some_and(|t| !t.is_empty() && t != "dumb");
    if capable && log_format == LogFormat::Text {
        ProgressMode::Bars
    } else {
        ProgressMode::Lines
    }
}

/// A running display; [`Display::stop`] ends it and clears the bars.
pub struct Display {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    output: Output,
}

impl Display {
    /// Starts showing `progress` on `output`. Needs a Tokio runtime.
    pub fn start(output: &Output, progress: &Progress) -> Display {
        let stop = CancellationToken::new();
        let task = match output {
            Output::Bars(bars) => Some(tokio::spawn(bars::run(
                progress.clone(),
                bars.clone(),
                stop.clone(),
            ))),
            Output::Lines => Some(tokio::spawn(lines::run(
                progress.clone(),
                progress.subscribe(),
                stop.clone(),
            ))),
            Output::Off => None,
        };
        Display {
            stop,
            task,
            output: output.clone(),
        }
    }

    /// Stops the display and clears its bars. Never waits long: a display
    /// must not hold up an exit.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(STOP_WAIT, task).await.is_err() {
                abort.abort();
            }
        }
        self.output.clear();
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(log: LogFormat, is_terminal: bool, term: Option<&str>) -> ProgressMode {
        resolve(ProgressMode::Auto, log, Stderr { is_terminal, term })
    }

    #[test]
    fn auto_shows_bars_only_to_a_person_at_a_terminal() {
        assert_eq!(
            auto(LogFormat::Text, true, Some("xterm-256color")),
            ProgressMode::Bars
        );
        assert_eq!(
            auto(LogFormat::Text, false, Some("xterm")),
            ProgressMode::Lines
        );
        assert_eq!(
            auto(LogFormat::Text, true, Some("dumb")),
            ProgressMode::Lines
        );
        assert_eq!(auto(LogFormat::Text, true, None), ProgressMode::Lines);
        assert_eq!(auto(LogFormat::Text, true, Some("")), ProgressMode::Lines);
        assert_eq!(
            auto(LogFormat::Json, true, Some("xterm")),
            ProgressMode::Lines
        );
    }

    #[test]
    fn explicit_modes_are_taken_as_given() {
        let file = Stderr {
            is_terminal: false,
            term: None,
        };
        for mode in [ProgressMode::Bars, ProgressMode::Lines, ProgressMode::Off] {
            assert_eq!(resolve(mode, LogFormat::Json, file), mode);
        }
    }

    /// Log output collected in memory.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        /// Log lines on this thread go here (without colours) until the guard drops.
        fn as_default() -> (Captured, tracing::subscriber::DefaultGuard) {
            let logs = Captured::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish();
            (logs, tracing::subscriber::set_default(subscriber))
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    // A current-thread runtime: the display task logs through this thread's subscriber.
    #[tokio::test]
    async fn lines_log_each_completion_and_stop_promptly() {
        let (logs, _guard) = Captured::as_default();
        let progress = Progress::new();
        let display = Display::start(&Output::Lines, &progress);
        let ok = progress.start("example.com/a@v1.0.0");
        ok.set_total(2048);
        ok.add(2048);
        ok.succeeded();
        let broken = progress.start("example.com/b@v1.0.0");
        broken.add(100);
        broken.failed("connection reset");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !logs.text().contains("download failed") {
            assert!(std::time::Instant::now() < deadline, "{}", logs.text());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = std::time::Instant::now();
        display.stop().await;
        assert!(started.elapsed() < STOP_WAIT, "{:?}", started.elapsed());

        let text = logs.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains(" INFO "), "{text}");
        assert!(
            lines[0].contains(
                "download finished artifact=example.com/a@v1.0.0 size=2.0KiB duration=0.0s speed="
            ),
            "{text}"
        );
        assert!(!lines[0].contains("resumed"), "{text}");
        assert!(lines[1].contains(" WARN "), "{text}");
        assert!(
            lines[1].contains(
                r#"download failed artifact=example.com/b@v1.0.0 got=100B duration=0.0s error=connection reset"#
            ),
            "{text}"
        );
        // No progress line: both ended long before one was due.
        assert!(!text.contains("downloading"), "{text}");
    }

    #[tokio::test]
    async fn completions_still_queued_at_stop_are_written() {
        let (logs, _guard) = Captured::as_default();
        let progress = Progress::new();
        let display = Display::start(&Output::Lines, &progress);
        tokio::task::yield_now().await;
        // A burst between two ticks, as a cold `go mod download` makes.
        for i in 0..300 {
            let transfer = progress.start(format!("example.com/m{i}@v1.0.0"));
            transfer.add(10);
            transfer.succeeded();
        }
        display.stop().await;
        let text = logs.text();
        assert_eq!(text.matches("download finished").count(), 300, "{text}");
        assert!(text.contains("artifact=example.com/m299@v1.0.0"), "{text}");
    }
}
