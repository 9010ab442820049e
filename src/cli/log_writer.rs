//! Log lines go to stderr from a dedicated thread, in batches: a request
//! appends its formatted line to a shared buffer and returns, and the thread
//! writes whatever has gathered in one `write`. Handing each line over on its
//! own (one wake-up of the thread and one system call per line) cost a busy
//! proxy more than formatting the line did.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the thread lets lines gather after the first one arrives: the
/// longest a line waits before it is written (when fewer than [`BATCH`] bytes
/// come in meanwhile).
const LINGER: Duration = Duration::from_millis(10);
/// A batch this big is written at once, without waiting for `LINGER`.
const BATCH: usize = 64 * 1024;
/// Bytes of lines that may wait for the thread. When it falls behind by this
/// much (stderr blocked by a slow reader), logging callers wait for room
/// rather than lose lines.
const QUEUE_LIMIT: usize = 2 << 20;

struct State {
    buf: Vec<u8>,
    /// The thread waits for a first line (not lingering over a batch).
    idle: bool,
    /// Callers waiting for room in the queue.
    blocked: usize,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer thread.
    lines: Condvar,
    /// Wakes callers waiting for room.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The handle loggers write through; cheap to clone.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Owns the writer thread: [`Guard::finish`] writes out what is queued and ends it.
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the thread writing to `out`.
pub fn spawn<W: Write + Send + 'static>(out: W) -> io::Result<(BatchWriter, Guard)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            buf: Vec::new(),
            idle: false,
            blocked: 0,
            closed: false,
        }),
        lines: Condvar::new(),
        room: Condvar::new(),
    });
    let worker = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("goproxy-log".to_owned())
        .spawn(move || run(&worker, out))?;
    Ok((
        BatchWriter {
            shared: Arc::clone(&shared),
        },
        Guard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn run<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::new();
    loop {
        let mut state = shared.lock();
        while state.buf.is_empty() && !state.closed {
            state.idle = true;
            state = shared
                .lines
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.idle = false;
        }
        if state.buf.is_empty() {
            return;
        }
        if !state.closed && state.buf.len() < BATCH {
            state = shared
                .lines
                .wait_timeout(state, LINGER)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        std::mem::swap(&mut state.buf, &mut batch);
        if state.blocked > 0 {
            shared.room.notify_all();
        }
        drop(state);
        // Nowhere to report a failed write to stderr; the lines are lost.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        // A burst must not keep its buffer for the process's lifetime.
        if batch.capacity() > BATCH * 4 {
            batch = Vec::new();
        }
    }
}

impl BatchWriter {
    fn append(&self, line: &[u8]) {
        let shared = &*self.shared;
        let mut state = shared.lock();
        while state.buf.len() >= QUEUE_LIMIT && !state.closed {
            state.blocked += 1;
            state = shared
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.blocked -= 1;
        }
        if state.closed {
            // The thread is gone (the process is exiting): write directly.
            drop(state);
            let _ = io::stderr().write_all(line);
            return;
        }
        let before = state.buf.len();
        state.buf.extend_from_slice(line);
        if state.idle || (before < BATCH && state.buf.len() >= BATCH) {
            shared.lines.notify_one();
        }
    }
}

impl Guard {
    /// Writes out the queued lines and stops the thread; lines logged later
    /// are written directly.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.lines.notify_one();
        self.shared.room.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One `write` per formatted event: the subscriber writes each line whole.
impl Write for BatchWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.append(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stderr stand-in that records every `write` call.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_whole_in_order_and_in_few_writes() {
        let sink = Sink::default();
        let (writer, guard) = spawn(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        w.write_all(format!("thread {t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        guard.finish();
        let writes = sink.0.lock().unwrap();
        let text = String::from_utf8(writes.concat()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4000);
        for t in 0..4 {
            let own: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let expected: Vec<String> = (0..1000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(own, expected, "thread {t}'s lines, whole and in order");
        }
        assert!(
            writes.len() < 400,
            "4000 lines took {} writes; they should be batched",
            writes.len()
        );
    }

    #[test]
    fn finish_writes_what_is_queued_and_a_quiet_writer_sleeps() {
        let sink = Sink::default();
        let (mut writer, guard) = spawn(sink.clone()).unwrap();
        writer.write_all(b"one\n").unwrap();
        std::thread::sleep(LINGER * 5);
        assert_eq!(
            sink.0.lock().unwrap().concat(),
            b"one\n",
            "written after LINGER"
        );
        writer.write_all(b"two\n").unwrap();
        guard.finish();
        assert_eq!(sink.0.lock().unwrap().concat(), b"one\ntwo\n");
    }

    #[test]
    fn a_blocked_output_makes_callers_wait_instead_of_growing_the_queue() {
        /// Accepts nothing until released.
        struct Gate(Arc<(Mutex<bool>, Condvar)>, Sink);
        impl Write for Gate {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let (open, cv) = &*self.0;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
                self.1.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let sink = Sink::default();
        let (writer, guard) = spawn(Gate(Arc::clone(&gate), sink.clone())).unwrap();
        let line = vec![b'x'; 1023];
        let producer = {
            let mut w = writer.clone();
            let line = line.clone();
            std::thread::spawn(move || {
                for _ in 0..(QUEUE_LIMIT / 1024) * 4 {
                    w.write_all(&line).unwrap();
                    w.write_all(b"\n").unwrap();
                }
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        // The thread holds one batch it cannot write; the queue stays bounded.
        assert!(writer.shared.lock().buf.len() <= QUEUE_LIMIT + line.len() + 1);
        assert!(!producer.is_finished(), "the producer waits for room");
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        producer.join().unwrap();
        guard.finish();
        let total: usize = sink.0.lock().unwrap().iter().map(Vec::len).sum();
        assert_eq!(total, (QUEUE_LIMIT / 1024) * 4 * 1024);
    }
}
