//! When each cached module version was last served, kept in an embedded SQLite
//! database (`<cache>/.usage.db`) for least-recently-used eviction.
//!
//! Serving a file must never wait on SQLite or the disk, so [`UsageDb::touch`]
//! only queues an event; one writer thread batches the queue into a transaction
//! about once a second. A crash loses at most that last second of recency, which
//! eviction tolerates; transactions keep the file itself consistent. Reads and the
//! synchronous maintenance calls use a second connection, which WAL lets run
//! alongside the writer.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Unix seconds "now"; injectable so tests can control time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Events waiting for the writer. When the writer falls this far behind, new
/// events are dropped: a slightly stale recency beats a slow request.
const CHANNEL_CAPACITY: usize = 65_536;
/// How long the writer gathers events before committing them.
const BATCH_WINDOW: Duration = Duration::from_secs(1);
/// Distinct versions per transaction, so a burst is committed without waiting
/// for the window and the pending map stays small.
const MAX_BATCH: usize = 4_096;
/// How long a connection waits for another one (this process's other
/// connection, or a `cache gc` run) to release the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Schema steps; applying step `i` brings the database to `user_version` `i + 1`.
/// Append only: released steps must never change.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE usage (
         module TEXT NOT NULL,
         version TEXT NOT NULL,
         last_used INTEGER NOT NULL,
         PRIMARY KEY (module, version)
     ) WITHOUT ROWID;
     CREATE INDEX usage_last_used ON usage (last_used);",
    // The module index (`/index`): when each version was first cached, in Unix
    // nanoseconds, unique and growing in commit order (see `cache::index`).
    "CREATE TABLE cached (
         module TEXT NOT NULL,
         version TEXT NOT NULL,
         cached_at INTEGER NOT NULL,
         PRIMARY KEY (module, version)
     ) WITHOUT ROWID;
     CREATE UNIQUE INDEX cached_by_time ON cached (cached_at);",
];

/// Keeps the newest time: a delayed batch must not move a version back in time.
const UPSERT_MAX: &str = "INSERT INTO usage (module, version, last_used) VALUES (?1, ?2, ?3)
     ON CONFLICT (module, version) DO UPDATE SET last_used = max(last_used, excluded.last_used)";

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("usage database {}: cannot open: {error}", .path.display())]
    Open {
        path: PathBuf,
        error: rusqlite::Error,
    },

    #[error("usage database {}: {}", .path.display(), schema_message(*.found, *.supported))]
    UnknownSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("usage database {}: {doing}: {error}", .path.display())]
    Sql {
        path: PathBuf,
        doing: &'static str,
        error: rusqlite::Error,
    },

    #[error("usage database {}: cannot start the writer thread: {error}", .path.display())]
    Spawn {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("usage database {}: the writer thread has stopped", .path.display())]
    WriterGone { path: PathBuf },
}

fn schema_message(found: i64, supported: i64) -> String {
    if found > supported {
        format!(
            "schema version {found} is newer than this goproxy supports ({supported}); \
             run a newer goproxy or remove the file"
        )
    } else {
        format!("schema version {found} is not one this goproxy knows (0 to {supported})")
    }
}

enum Msg {
    Touch {
        module: String,
        version: String,
        at: i64,
    },
    Flush(mpsc::Sender<Result<(), UsageError>>),
    Close,
}

#[derive(Default)]
struct Counters {
    dropped: AtomicU64,
    batches: AtomicU64,
}

/// The last-used store. `Send + Sync`: share it through an `Arc`.
pub struct UsageDb {
    path: PathBuf,
    clock: Clock,
    sender: SyncSender<Msg>,
    counters: Arc<Counters>,
    reader: Mutex<Connection>,
    writer: Option<JoinHandle<()>>,
}

pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    })
}

impl UsageDb {
    /// Opens (creating or migrating) the database at `path` and starts its
    /// writer thread. Blocking.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, UsageError> {
        Self::open_with_clock(path, system_clock())
    }

    pub fn open_with_clock(path: impl Into<PathBuf>, clock: Clock) -> Result<Self, UsageError> {
        Self::start(path.into(), clock, CHANNEL_CAPACITY, None)
    }

    /// `gate`, when given, holds the writer back until it is signalled or
    /// dropped, so tests can fill the channel deterministically.
    fn start(
        path: PathBuf,
        clock: Clock,
        capacity: usize,
        gate: Option<Receiver<()>>,
    ) -> Result<Self, UsageError> {
        let mut conn = connect(&path)?;
        migrate(&mut conn, &path)?;
        let reader = connect(&path)?;
        let counters = Arc::new(Counters::default());
        let (sender, receiver) = mpsc::sync_channel(capacity);
        let writer = Writer {
            conn,
            path: path.clone(),
            counters: Arc::clone(&counters),
            failure: None,
            reported_drops: 0,
        };
        let handle = std::thread::Builder::new()
            .name("usage-writer".into())
            .spawn(move || {
                if let Some(gate) = gate {
                    let _ = gate.recv();
                }
                writer.run(&receiver);
            })
            .map_err(|error| UsageError::Spawn {
                path: path.clone(),
                error,
            })?;
        Ok(UsageDb {
            path,
            clock,
            sender,
            counters,
            reader: Mutex::new(reader),
            writer: Some(handle),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that `module@version` (both `!`-escaped, as in cache paths) was
    /// served now. Never blocks: when the writer is behind, the event is dropped
    /// and counted.
    pub fn touch(&self, module: &str, version: &str) {
        let msg = Msg::Touch {
            module: module.to_owned(),
            version: version.to_owned(),
            at: (self.clock)(),
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.sender.try_send(msg)
        {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Blocks until every event queued before the call is committed. Fails if a
    /// batch could not be written since the previous flush (those events are lost).
    pub fn flush(&self) -> Result<(), UsageError> {
        let gone = || UsageError::WriterGone {
            path: self.path.clone(),
        };
        let (reply, answer) = mpsc::channel();
        self.sender.send(Msg::Flush(reply)).map_err(|_| gone())?;
        self.wake_writer();
        answer.recv().map_err(|_| gone())?
    }

    /// The writer may be parked for the batch window; a flush or close wants it now.
    fn wake_writer(&self) {
        if let Some(handle) = &self.writer {
            handle.thread().unpark();
        }
    }

    /// Flushes and stops the writer thread; dropping does the same but cannot
    /// report a failed write.
    pub fn close(self) -> Result<(), UsageError> {
        self.flush()
    }

    /// Events dropped because the queue was full, since opening.
    pub fn dropped_events(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Transactions the writer has committed, since opening.
    pub fn batches_written(&self) -> u64 {
        self.counters.batches.load(Ordering::Relaxed)
    }

    pub fn get(&self, module: &str, version: &str) -> Result<Option<i64>, UsageError> {
        self.with_reader("cannot read", |conn| {
            conn.query_row(
                "SELECT last_used FROM usage WHERE module = ?1 AND version = ?2",
                params![module, version],
                |row| row.get(0),
            )
            .optional()
        })
    }

    /// Every row, keyed by (module, version).
    pub fn last_used_all(&self) -> Result<HashMap<(String, String), i64>, UsageError> {
        self.with_reader("cannot read", |conn| {
            let mut stmt = conn.prepare("SELECT module, version, last_used FROM usage")?;
            let rows = stmt.query_map([], |row| Ok(((row.get(0)?, row.get(1)?), row.get(2)?)))?;
            rows.collect()
        })
    }

    /// Adds rows for versions that have none (found on disk, dated by their
    /// file time) and leaves existing rows alone. Returns how many were added.
    pub fn insert_missing(&self, entries: &[(String, String, i64)]) -> Result<usize, UsageError> {
        self.with_reader("cannot insert", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut inserted = 0;
            {
                let mut stmt = tx.prepare(
                    "INSERT INTO usage (module, version, last_used) VALUES (?1, ?2, ?3)
                     ON CONFLICT (module, version) DO NOTHING",
                )?;
                for (module, version, at) in entries {
                    inserted += stmt.execute(params![module, version, at])?;
                }
            }
            tx.commit()?;
            Ok(inserted)
        })
    }

    /// Deletes rows, and the versions' module index entries (they are no longer
    /// cached); returns how many usage rows existed.
    pub fn remove(&self, entries: &[(String, String)]) -> Result<usize, UsageError> {
        self.with_reader("cannot remove", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut removed = 0;
            {
                let mut stmt =
                    tx.prepare("DELETE FROM usage WHERE module = ?1 AND version = ?2")?;
                let mut unindex =
                    tx.prepare("DELETE FROM cached WHERE module = ?1 AND version = ?2")?;
                for (module, version) in entries {
                    removed += stmt.execute(params![module, version])?;
                    unindex.execute(params![module, version])?;
                }
            }
            tx.commit()?;
            Ok(removed)
        })
    }

    /// Sets the time outright, earlier or later, bypassing the queue. A touch
    /// still queued for the same version will move it forward again.
    pub fn set_last_used(&self, module: &str, version: &str, at: i64) -> Result<(), UsageError> {
        self.with_reader("cannot write", |conn| {
            conn.execute(
                "INSERT INTO usage (module, version, last_used) VALUES (?1, ?2, ?3)
                 ON CONFLICT (module, version) DO UPDATE SET last_used = excluded.last_used",
                params![module, version, at],
            )
            .map(drop)
        })
    }

    pub(super) fn with_reader<T>(
        &self,
        doing: &'static str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, UsageError> {
        // A panic while holding the lock leaves no half-done work behind: an
        // unfinished transaction rolls back when it is dropped.
        let mut conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn).map_err(|error| UsageError::Sql {
            path: self.path.clone(),
            doing,
            error,
        })
    }
}

impl Drop for UsageDb {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = self.sender.send(Msg::Close);
            self.wake_writer();
        }
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
    }
}

impl fmt::Debug for UsageDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageDb")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn connect(path: &Path) -> Result<Connection, UsageError> {
    let open_error = |error| UsageError::Open {
        path: path.to_owned(),
        error,
    };
    let conn = Connection::open(path).map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    // This is the first statement that reads the file, so it is also where a
    // file that is not a database is found out.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
        .map_err(open_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Some filesystems cannot share WAL memory; the rollback journal is
        // slower with concurrent readers but just as safe.
        tracing::warn!(path = %path.display(), %mode, "usage database: WAL mode unavailable");
    }
    // With WAL, NORMAL can lose the last commits on power loss but never corrupts.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_error)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), UsageError> {
    let sql_error = |doing| {
        move |error| UsageError::Sql {
            path: path.to_owned(),
            doing,
            error,
        }
    };
    // Immediate, so two processes opening a fresh database do not both migrate.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error("cannot lock for the schema check"))?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sql_error("cannot read the schema version"))?;
    let supported = MIGRATIONS.len() as i64;
    let applied = usize::try_from(found)
        .ok()
        .filter(|&v| v <= MIGRATIONS.len())
        .ok_or_else(|| UsageError::UnknownSchema {
            path: path.to_owned(),
            found,
            supported,
        })?;
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(sql)
            .map_err(sql_error("cannot migrate the schema"))?;
        tx.pragma_update(None, "user_version", step as i64 + 1)
            .map_err(sql_error("cannot record the schema version"))?;
    }
    tx.commit()
        .map_err(sql_error("cannot commit the schema migration"))
}

struct Writer {
    conn: Connection,
    path: PathBuf,
    counters: Arc<Counters>,
    /// The first failed batch since the last flush, for that flush to report.
    failure: Option<UsageError>,
    reported_drops: u64,
}

impl Writer {
    /// Waits for events, then lets them gather for the batch window while parked:
    /// senders only queue, so a touch costs no wake-up of this thread. A flush or
    /// close unparks it at once.
    fn run(mut self, receiver: &Receiver<Msg>) {
        let mut pending: HashMap<(String, String), i64> = HashMap::new();
        let mut deadline: Option<Instant> = None;
        loop {
            loop {
                match receiver.try_recv() {
                    Ok(msg) => {
                        if !self.handle(msg, &mut pending, &mut deadline) {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.write(&mut pending);
                        return;
                    }
                }
            }
            match deadline {
                None => match receiver.recv() {
                    Ok(msg) => {
                        if !self.handle(msg, &mut pending, &mut deadline) {
                            return;
                        }
                    }
                    Err(_) => {
                        self.write(&mut pending);
                        return;
                    }
                },
                Some(at) => {
                    let now = Instant::now();
                    if now >= at {
                        self.write(&mut pending);
                        deadline = None;
                    } else {
                        std::thread::park_timeout(at - now);
                    }
                }
            }
        }
    }

    /// Applies one message; false when the writer must stop.
    fn handle(
        &mut self,
        msg: Msg,
        pending: &mut HashMap<(String, String), i64>,
        deadline: &mut Option<Instant>,
    ) -> bool {
        match msg {
            Msg::Touch {
                module,
                version,
                at,
            } => {
                let newest = pending.entry((module, version)).or_insert(at);
                *newest = (*newest).max(at);
                deadline.get_or_insert_with(|| Instant::now() + BATCH_WINDOW);
                if pending.len() >= MAX_BATCH {
                    self.write(pending);
                    *deadline = None;
                }
                true
            }
            Msg::Flush(reply) => {
                self.write(pending);
                *deadline = None;
                let _ = reply.send(self.failure.take().map_or(Ok(()), Err));
                true
            }
            Msg::Close => {
                self.write(pending);
                false
            }
        }
    }

    /// Commits and empties `pending`. A failed batch is dropped rather than
    /// retried, so a broken disk cannot make the backlog grow without bound.
    fn write(&mut self, pending: &mut HashMap<(String, String), i64>) {
        if pending.is_empty() {
            return;
        }
        match self.commit(pending) {
            Ok(()) => {
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                let error = UsageError::Sql {
                    path: self.path.clone(),
                    doing: "cannot record last-used times",
                    error,
                };
                tracing::warn!(events = pending.len(), %error, "usage batch lost");
                self.failure.get_or_insert(error);
            }
        }
        pending.clear();
        let dropped = self.counters.dropped.load(Ordering::Relaxed);
        if dropped > self.reported_drops {
            tracing::warn!(
                dropped = dropped - self.reported_drops,
                "usage events dropped: the writer fell behind"
            );
            self.reported_drops = dropped;
        }
    }

    fn commit(&mut self, pending: &HashMap<(String, String), i64>) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(UPSERT_MAX)?;
            for ((module, version), at) in pending {
                stmt.execute(params![module, version, at])?;
            }
        }
        tx.commit()
    }
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
