use std::sync::atomic::AtomicI64;

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    now: Arc<AtomicI64>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".usage.db");
        Fixture {
            _dir: dir,
            path,
            now: Arc::new(AtomicI64::new(1_000)),
        }
    }

    fn clock(&self) -> Clock {
        let now = Arc::clone(&self.now);
        Arc::new(move || now.load(Ordering::SeqCst))
    }

    fn open(&self) -> UsageDb {
        UsageDb::open_with_clock(&self.path, self.clock()).unwrap()
    }

    fn set_now(&self, at: i64) {
        self.now.store(at, Ordering::SeqCst);
    }
}

fn key(module: &str, version: &str) -> (String, String) {
    (module.to_owned(), version.to_owned())
}

#[test]
fn is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<UsageDb>();
}

#[test]
fn touch_then_flush_records_rows() {
    let fx = Fixture::new();
    let db = fx.open();
    db.touch("github.com/!azure/go", "v1.0.0");
    fx.set_now(1_005);
    db.touch("golang.org/x/text", "v0.3.0");
    db.flush().unwrap();

    assert_eq!(
        db.get("github.com/!azure/go", "v1.0.0").unwrap(),
        Some(1_000)
    );
    assert_eq!(db.get("golang.org/x/text", "v0.3.0").unwrap(), Some(1_005));
    assert_eq!(db.get("golang.org/x/text", "v0.4.0").unwrap(), None);
    let all = db.last_used_all().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[&key("golang.org/x/text", "v0.3.0")], 1_005);
}

#[test]
fn newest_time_wins_within_and_across_batches() {
    let fx = Fixture::new();
    let db = fx.open();
    fx.set_now(2_000);
    db.touch("m", "v1.0.0");
    fx.set_now(1_500);
    db.touch("m", "v1.0.0");
    db.flush().unwrap();
    assert_eq!(db.get("m", "v1.0.0").unwrap(), Some(2_000));

    fx.set_now(1_800);
    db.touch("m", "v1.0.0");
    db.flush().unwrap();
    assert_eq!(db.get("m", "v1.0.0").unwrap(), Some(2_000));

    fx.set_now(3_000);
    db.touch("m", "v1.0.0");
    db.flush().unwrap();
    assert_eq!(db.get("m", "v1.0.0").unwrap(), Some(3_000));
}

#[test]
fn many_touches_are_batched() {
    let fx = Fixture::new();
    let db = fx.open();
    let started = Instant::now();
    for i in 0..10_000 {
        db.touch(
            &format!("example.com/m{}", i % 2_500),
            &format!("v1.0.{}", i / 2_500),
        );
    }
    let touching = started.elapsed();
    db.flush().unwrap();

    assert_eq!(db.dropped_events(), 0);
    assert_eq!(db.last_used_all().unwrap().len(), 10_000);
    // One transaction per event would be 10 000; batches are capped at
    // MAX_BATCH versions, plus a few more if the 1 s window elapses mid-way.
    assert!(
        db.batches_written() <= 10,
        "{} batches",
        db.batches_written()
    );
    assert!(
        touching < Duration::from_secs(2),
        "touching took {touching:?}"
    );
}

#[test]
fn batch_window_commits_without_a_flush() {
    let fx = Fixture::new();
    let db = fx.open();
    db.touch("m", "v1.0.0");
    let deadline = Instant::now() + BATCH_WINDOW * 5;
    while db.get("m", "v1.0.0").unwrap().is_none() {
        assert!(Instant::now() < deadline, "not committed after the window");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(db.batches_written(), 1);
}

#[test]
fn full_channel_drops_events_without_blocking() {
    let fx = Fixture::new();
    let (open_gate, gate) = mpsc::channel();
    let db = UsageDb::start(fx.path.clone(), fx.clock(), 4, Some(gate)).unwrap();

    let started = Instant::now();
    for i in 0..100 {
        db.touch("m", &format!("v1.0.{i}"));
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(db.dropped_events(), 96);

    open_gate.send(()).unwrap();
    db.flush().unwrap();
    let all = db.last_used_all().unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.contains_key(&key("m", "v1.0.0")));
    assert!(all.contains_key(&key("m", "v1.0.3")));
}

#[test]
fn insert_missing_keeps_existing_rows() {
    let fx = Fixture::new();
    let db = fx.open();
    db.touch("m", "v1.0.0");
    db.flush().unwrap();

    let entries = vec![
        ("m".to_owned(), "v1.0.0".to_owned(), 10),
        ("m".to_owned(), "v1.1.0".to_owned(), 20),
        ("n".to_owned(), "v0.1.0".to_owned(), 30),
    ];
    assert_eq!(db.insert_missing(&entries).unwrap(), 2);
    assert_eq!(db.get("m", "v1.0.0").unwrap(), Some(1_000));
    assert_eq!(db.get("m", "v1.1.0").unwrap(), Some(20));
    assert_eq!(db.get("n", "v0.1.0").unwrap(), Some(30));
    assert_eq!(db.insert_missing(&entries).unwrap(), 0);
    assert_eq!(db.insert_missing(&[]).unwrap(), 0);
}

#[test]
fn remove_deletes_only_named_rows() {
    let fx = Fixture::new();
    let db = fx.open();
    for version in ["v1.0.0", "v1.1.0", "v1.2.0"] {
        db.touch("m", version);
    }
    db.flush().unwrap();

    let removed = db
        .remove(&[key("m", "v1.0.0"), key("m", "v1.2.0"), key("m", "v9.9.9")])
        .unwrap();
    assert_eq!(removed, 2);
    let all = db.last_used_all().unwrap();
    assert_eq!(all.len(), 1);
    assert!(all.contains_key(&key("m", "v1.1.0")));
}

#[test]
fn set_last_used_can_move_back_in_time() {
    let fx = Fixture::new();
    let db = fx.open();
    db.touch("m", "v1.0.0");
    db.flush().unwrap();
    db.set_last_used("m", "v1.0.0", 5).unwrap();
    assert_eq!(db.get("m", "v1.0.0").unwrap(), Some(5));
    db.set_last_used("n", "v1.0.0", 7).unwrap();
    assert_eq!(db.get("n", "v1.0.0").unwrap(), Some(7));
}

#[test]
fn reopen_keeps_rows_and_schema_version() {
    let fx = Fixture::new();
    let db = fx.open();
    db.touch("m", "v1.0.0");
    db.close().unwrap();

    let db = fx.open();
    assert_eq!(db.get("m", "v1.0.0").unwrap(), Some(1_000));
    drop(db);

    let conn = Connection::open(&fx.path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn close_and_drop_flush_pending_events() {
    let fx = Fixture::new();
    let db = fx.open();
    db.touch("m", "v1.0.0");
    db.close().unwrap();
    let db = fx.open();
    db.touch("m", "v2.0.0");
    drop(db);

    let db = fx.open();
    assert_eq!(db.last_used_all().unwrap().len(), 2);
}

#[test]
fn newer_schema_is_refused() {
    let fx = Fixture::new();
    fx.open().close().unwrap();
    Connection::open(&fx.path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();

    let err = UsageDb::open(&fx.path).unwrap_err();
    assert!(matches!(err, UsageError::UnknownSchema { found: 99, .. }));
    let message = err.to_string();
    assert!(
        message.contains(&fx.path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("schema version 99 is newer"), "{message}");
}

#[test]
fn non_database_file_is_refused() {
    let fx = Fixture::new();
    std::fs::write(
        &fx.path,
        b"this is not a SQLite database, just text\n".repeat(200),
    )
    .unwrap();

    let err = UsageDb::open(&fx.path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, UsageError::Open { .. }), "{message}");
    assert!(
        message.starts_with(&format!(
            "usage database {}: cannot open: ",
            fx.path.display()
        )),
        "{message}"
    );
}

/// Tests run as root, which permission bits do not stop, so the unwritable
/// location is one whose parent is a regular file.
#[test]
fn unwritable_location_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let path = file.join(".usage.db");

    let err = UsageDb::open(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, UsageError::Open { .. }), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn two_handles_share_one_file() {
    let fx = Fixture::new();
    let server = fx.open();
    let gc = fx.open();
    server.touch("m", "v1.0.0");
    gc.set_last_used("n", "v1.0.0", 1).unwrap();
    server.flush().unwrap();
    assert_eq!(gc.get("m", "v1.0.0").unwrap(), Some(1_000));
    assert_eq!(server.get("n", "v1.0.0").unwrap(), Some(1));
}
