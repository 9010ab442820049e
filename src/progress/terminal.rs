//! How bars and log lines share a terminal: log lines are written with the
//! bars lifted off the screen, and the bars are drawn so that what the
//! terminal echoes by itself (the `^C` of Ctrl-C) cannot leave one behind.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{MultiProgress, TermLike};
use tracing_subscriber::fmt::MakeWriter;

/// How indicatif's drawing reaches the terminal, with two changes:
///
/// - Lines are not padded with spaces to the right edge (cleared with "erase
///   to end of line" instead). Padding leaves the cursor in the last column,
///   where anything the terminal echoes by itself (the `^C` of Ctrl-C, a
///   typed key) wraps onto a new line; indicatif's count of its lines is then
///   off by one and a stale bar stays on screen for good.
/// - Write errors are ignored: indicatif panics on a failed draw, and a closed
///   stderr must not take the server down.
#[derive(Debug)]
pub(super) struct Screen<T> {
    term: T,
    /// A bar line was drawn: the next one starts on a new line.
    after_line: AtomicBool,
}

impl<T: TermLike> Screen<T> {
    pub(super) fn new(term: T) -> Screen<T> {
        Screen {
            term,
            after_line: AtomicBool::new(false),
        }
    }

    /// Cursor movements start from where indicatif put the cursor.
    fn moved(&self, result: std::io::Result<()>) -> std::io::Result<()> {
        self.after_line.store(false, Ordering::Relaxed);
        let _ = result;
        Ok(())
    }
}

impl<T: TermLike> TermLike for Screen<T> {
    fn width(&self) -> u16 {
        self.term.width()
    }

    fn height(&self) -> u16 {
        self.term.height()
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.moved(self.term.move_cursor_up(n))
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.moved(self.term.move_cursor_down(n))
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.moved(self.term.move_cursor_right(n))
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.moved(self.term.move_cursor_left(n))
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.moved(self.term.write_line(s))
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        // indicatif writes each line, then spaces up to the right edge.
        if s.bytes().all(|b| b == b' ') {
            let _ = self.term.write_str("\x1b[K");
            self.after_line.store(true, Ordering::Relaxed);
            return Ok(());
        }
        if self.after_line.swap(false, Ordering::Relaxed) {
            let _ = self.term.write_str("\r\n");
        }
        let _ = self.term.write_str(s);
        Ok(())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.moved(self.term.clear_line())
    }

    fn flush(&self) -> std::io::Result<()> {
        let _ = self.term.flush();
        Ok(())
    }
}

/// A [`MakeWriter`] for the log: each log line is written with the bars
/// lifted off the screen and drawn again below it, so neither tears the other.
#[derive(Clone)]
pub struct LogWriter {
    multi: MultiProgress,
}

impl LogWriter {
    pub(super) fn new(multi: MultiProgress) -> LogWriter {
        LogWriter { multi }
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            multi: self.multi.clone(),
            buf: Vec::new(),
        }
    }
}

/// One log event, collected whole and written when dropped.
pub struct LogLine {
    multi: MultiProgress,
    buf: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        self.multi.suspend(|| {
            let mut stderr = std::io::stderr().lock();
            // Nowhere left to report a failing stderr.
            let _ = stderr.write_all(&buf);
            let _ = stderr.flush();
        });
    }
}
