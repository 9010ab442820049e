//! The storage contract as tests: every behaviour below runs against each backend,
//! followed by the filesystem backend's crash- and concurrency-safety guarantees.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::fs::FsStorage;
use super::memory::MemoryStorage;
use super::{Object, ObjectBody, PutMode, PutOutcome, Staged, Storage, StorageError};

struct Fixture<S> {
    storage: S,
    _dir: Option<tempfile::TempDir>,
}

fn memory() -> Fixture<MemoryStorage> {
    Fixture {
        storage: MemoryStorage::new(),
        _dir: None,
    }
}

/// The root does not exist yet: the backend must create it on first write.
fn filesystem() -> Fixture<FsStorage> {
    let dir = tempfile::tempdir().expect("tempdir");
    Fixture {
        storage: FsStorage::new(dir.path().join("cache")),
        _dir: Some(dir),
    }
}

async fn body_bytes(object: Object) -> Vec<u8> {
    match object.body {
        ObjectBody::Bytes(bytes) => bytes.to_vec(),
        ObjectBody::File { file, len } => {
            let mut buf = Vec::new();
            file.take(len)
                .read_to_end(&mut buf)
                .await
                .expect("read body");
            assert_eq!(buf.len() as u64, len, "file body shorter than its len");
            buf
        }
    }
}

async fn read<S: Storage>(s: &S, key: &str) -> Option<Vec<u8>> {
    match s.get(key).await.expect("get") {
        Some(object) => Some(body_bytes(object).await),
        None => None,
    }
}

async fn read_range<S: Storage>(s: &S, key: &str, start: u64, end: u64) -> Vec<u8> {
    let object = s
        .get_range(key, start..end)
        .await
        .expect("get_range")
        .expect("object present");
    body_bytes(object).await
}

async fn put<S: Storage>(s: &S, key: &str, data: &'static [u8], mode: PutMode) -> PutOutcome {
    s.put_bytes(key, Bytes::from_static(data), mode)
        .await
        .expect("put_bytes")
}

fn assert_invalid_key<T>(result: super::Result<T>, what: &str, key: &str) {
    match result {
        Err(StorageError::InvalidKey { .. }) => {}
        Err(other) => panic!("{what}({key:?}): expected InvalidKey, got {other}"),
        Ok(_) => panic!("{what}({key:?}): expected InvalidKey, got Ok"),
    }
}

async fn absent_keys_read_as_none<S: Storage>(s: &S) {
    assert_eq!(s.head("a/b").await.expect("head"), None);
    assert!(s.get("a/b").await.expect("get").is_none());
    assert!(s.get_range("a/b", 0..0).await.expect("range").is_none());
    assert!(!s.delete("a/b").await.expect("delete"));
    assert!(s.list("").await.expect("list").is_empty());
}

async fn put_then_get_and_head<S: Storage>(s: &S) {
    let outcome = put(s, "m/@v/v1.0.0.mod", b"module m\n", PutMode::Overwrite).await;
    let PutOutcome::Written(meta) = outcome else {
        panic!("expected Written, got {outcome:?}");
    };
    assert_eq!(meta.size, 9);
    assert_eq!(
        s.head("m/@v/v1.0.0.mod").await.expect("head"),
        Some(meta.clone())
    );
    let object = s
        .get("m/@v/v1.0.0.mod")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(object.meta, meta);
    assert_eq!(body_bytes(object).await, b"module m\n");
}

async fn overwrite_replaces<S: Storage>(s: &S) {
    put(s, "m/@v/list", b"v1.0.0\n", PutMode::Overwrite).await;
    let outcome = put(s, "m/@v/list", b"v1.0.0\nv1.1.0\n", PutMode::Overwrite).await;
    assert!(matches!(outcome, PutOutcome::Written(ref m) if m.size == 14));
    assert_eq!(
        read(s, "m/@v/list").await.as_deref(),
        Some(&b"v1.0.0\nv1.1.0\n"[..])
    );
}

async fn records_are_written_and_replaced_together<S: Storage>(s: &S) {
    let records = |meta: &'static [u8], hash: &'static [u8]| {
        vec![
            ("m/@v/v1.0.0.zip.meta".to_owned(), Bytes::from_static(meta)),
            ("m/@v/v1.0.0.ziphash".to_owned(), Bytes::from_static(hash)),
        ]
    };
    s.put_records(records(b"{}", b"h1:a\n"))
        .await
        .expect("first");
    s.put_records(records(b"{\"size\":1}", b"h1:b\n"))
        .await
        .expect("second");
    assert_eq!(
        read(s, "m/@v/v1.0.0.zip.meta").await.as_deref(),
        Some(&b"{\"size\":1}"[..])
    );
    assert_eq!(
        read(s, "m/@v/v1.0.0.ziphash").await.as_deref(),
        Some(&b"h1:b\n"[..])
    );
    s.put_records(Vec::new()).await.expect("nothing to write");
}

async fn if_absent_keeps_the_first<S: Storage>(s: &S) {
    let first = put(s, "k", b"first", PutMode::IfAbsent).await;
    assert!(matches!(first, PutOutcome::Written(_)));
    let second = put(s, "k", b"second!", PutMode::IfAbsent).await;
    assert_eq!(second, PutOutcome::AlreadyExists(first.meta().clone()));
    assert_eq!(read(s, "k").await.as_deref(), Some(&b"first"[..]));
}

async fn ranges<S: Storage>(s: &S) {
    put(s, "r", b"0123456789", PutMode::Overwrite).await;
    assert_eq!(read_range(s, "r", 2, 5).await, b"234");
    assert_eq!(read_range(s, "r", 7, 10).await, b"789");
    assert_eq!(read_range(s, "r", 0, 10).await, b"0123456789");
    assert_eq!(read_range(s, "r", 10, 10).await, b"");
    assert_eq!(read_range(s, "r", 4, 4).await, b"");
    let meta = s
        .get_range("r", 2..5)
        .await
        .expect("range")
        .expect("present")
        .meta;
    assert_eq!(meta.size, 10, "meta describes the whole object");
    for (start, end) in [(5, 3), (8, 11), (11, 11), (0, u64::MAX)] {
        match s.get_range("r", start..end).await {
            Err(StorageError::InvalidRange { size: 10, .. }) => {}
            Err(e) => panic!("{start}..{end}: expected InvalidRange, got {e}"),
            Ok(_) => panic!("{start}..{end}: expected InvalidRange, got Ok"),
        }
    }
}

async fn stage_then_commit<S: Storage>(s: &S) {
    let staged = s.stage("m/@v/v1.0.0.zip").await.expect("stage");
    assert_eq!(staged.key(), "m/@v/v1.0.0.zip");
    let mut file = staged.file();
    file.write_all(b"PK zip bytes").expect("write staged");
    let outcome = s.commit(staged, PutMode::IfAbsent).await.expect("commit");
    assert!(matches!(outcome, PutOutcome::Written(ref m) if m.size == 12));
    assert_eq!(
        read(s, "m/@v/v1.0.0.zip").await.as_deref(),
        Some(&b"PK zip bytes"[..])
    );

    // Filled through its path with tokio, as a streaming download would.
    let staged = s.stage("m/@v/v1.0.0.zip").await.expect("stage");
    tokio::fs::write(staged.path(), b"other")
        .await
        .expect("write via path");
    let again = s.commit(staged, PutMode::IfAbsent).await.expect("commit");
    assert_eq!(again, PutOutcome::AlreadyExists(outcome.meta().clone()));
    assert_eq!(
        read(s, "m/@v/v1.0.0.zip").await.as_deref(),
        Some(&b"PK zip bytes"[..])
    );

    let staged = s.stage("m/@v/v1.0.0.zip").await.expect("stage");
    tokio::fs::write(staged.path(), b"replaced")
        .await
        .expect("write via path");
    s.commit(staged, PutMode::Overwrite).await.expect("commit");
    assert_eq!(
        read(s, "m/@v/v1.0.0.zip").await.as_deref(),
        Some(&b"replaced"[..])
    );
    assert_eq!(s.list("").await.expect("list"), ["m/@v/v1.0.0.zip"]);
}

async fn dropped_stage_leaves_nothing<S: Storage>(s: &S) {
    let staged = s.stage("m/@v/v2.0.0.zip").await.expect("stage");
    staged.file().write_all(b"half a zi").expect("write staged");
    let path = staged.path().to_path_buf();
    assert!(path.exists());
    drop(staged);
    assert!(!path.exists(), "staged file removed on drop");
    assert_eq!(s.head("m/@v/v2.0.0.zip").await.expect("head"), None);
    assert!(s.list("").await.expect("list").is_empty());
}

async fn delete_present_and_absent<S: Storage>(s: &S) {
    put(s, "a/b", b"x", PutMode::Overwrite).await;
    put(s, "a/c", b"y", PutMode::Overwrite).await;
    assert!(s.delete("a/b").await.expect("delete"));
    assert!(!s.delete("a/b").await.expect("delete again"));
    assert_eq!(s.head("a/b").await.expect("head"), None);
    assert_eq!(read(s, "a/c").await.as_deref(), Some(&b"y"[..]));
    assert_eq!(s.list("").await.expect("list"), ["a/c"]);
}

async fn list_by_prefix_sorted<S: Storage>(s: &S) {
    let keys = [
        "z",
        "mod/a/@v/v1.0.0.zip",
        "other/x",
        "mod/ab/@v/list",
        "mod/a/@v/list",
        "mod/a/@v/v1.0.0.info",
        "mod/a/@latest",
    ];
    for key in keys {
        put(s, key, b"-", PutMode::Overwrite).await;
    }
    // A write in progress must not show up.
    let staged = s.stage("mod/a/@v/v2.0.0.zip").await.expect("stage");
    staged.file().write_all(b"partial").expect("write staged");

    let mut all = keys.to_vec();
    all.sort();
    let list = |p: &'static str| async move { s.list(p).await.expect("list") };
    assert_eq!(list("").await, all);
    assert_eq!(
        list("mod/a/").await,
        [
            "mod/a/@latest",
            "mod/a/@v/list",
            "mod/a/@v/v1.0.0.info",
            "mod/a/@v/v1.0.0.zip"
        ]
    );
    assert_eq!(
        list("mod/a").await,
        [
            "mod/a/@latest",
            "mod/a/@v/list",
            "mod/a/@v/v1.0.0.info",
            "mod/a/@v/v1.0.0.zip",
            "mod/ab/@v/list"
        ]
    );
    assert_eq!(
        list("mod/a/@v/v1").await,
        ["mod/a/@v/v1.0.0.info", "mod/a/@v/v1.0.0.zip"]
    );
    assert_eq!(list("z").await, ["z"]);
    assert_eq!(list("other/x").await, ["other/x"]);
    assert!(list("zz").await.is_empty());
    assert!(list("missing/dir/").await.is_empty());
    assert!(list("z/").await.is_empty(), "a file is not a directory");
    drop(staged);
}

const BAD_KEYS: &[&str] = &[
    "", "../x", "a/../x", "/abs", "a//b", "a\\b", "a/./b", "a/\0", "a/", ".", "a/.tmp-x",
];

async fn invalid_keys_are_rejected_everywhere<S: Storage>(s: &S) {
    put(s, "a/b", b"x", PutMode::Overwrite).await;
    for &key in BAD_KEYS {
        assert_invalid_key(s.head(key).await, "head", key);
        assert_invalid_key(s.get(key).await.map(|_| ()), "get", key);
        assert_invalid_key(s.get_range(key, 0..0).await.map(|_| ()), "get_range", key);
        let data = Bytes::from_static(b"evil");
        assert_invalid_key(
            s.put_bytes(key, data.clone(), PutMode::Overwrite).await,
            "put_bytes",
            key,
        );
        assert_invalid_key(
            s.put_bytes(key, data, PutMode::IfAbsent).await,
            "put_bytes",
            key,
        );
        assert_invalid_key(
            s.put_records(vec![
                (key.to_owned(), Bytes::from_static(b"evil")),
                ("ok/key".to_owned(), Bytes::from_static(b"x")),
            ])
            .await,
            "put_records",
            key,
        );
        assert_invalid_key(s.stage(key).await.map(|_| ()), "stage", key);
        let forged = Staged::new(key.to_owned(), tempfile::NamedTempFile::new().expect("tmp"));
        assert_invalid_key(s.commit(forged, PutMode::Overwrite).await, "commit", key);
        assert_invalid_key(s.delete(key).await, "delete", key);
    }
    for prefix in [
        "../x",
        "a/../",
        "/abs",
        "a//b",
        "a\\b",
        "a/./b",
        "a\0",
        "a/.tmp-x/",
    ] {
        assert_invalid_key(s.list(prefix).await, "list", prefix);
    }
    // A prefix may end in a partial segment.
    assert_eq!(s.list("a/").await.expect("list"), ["a/b"]);
    assert_eq!(s.list("a/.").await.expect("list"), Vec::<String>::new());
    assert_eq!(s.list("").await.expect("list"), ["a/b"]);
}

async fn describes_itself<S: Storage>(s: &S) {
    s.check_ready().await.expect("ready");
    assert!(!s.describe().is_empty());
}

macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod memory_backend {
            $(
                #[tokio::test]
                async fn $test() {
                    let fx = super::memory();
                    super::$test(&fx.storage).await;
                }
            )*
        }
        mod fs_backend {
            $(
                #[tokio::test]
                async fn $test() {
                    let fx = super::filesystem();
                    super::$test(&fx.storage).await;
                }
            )*
        }
    };
}

for_each_backend!(
    absent_keys_read_as_none,
    put_then_get_and_head,
    overwrite_replaces,
    records_are_written_and_replaced_together,
    if_absent_keeps_the_first,
    ranges,
    stage_then_commit,
    dropped_stage_leaves_nothing,
    delete_present_and_absent,
    list_by_prefix_sorted,
    invalid_keys_are_rejected_everywhere,
    describes_itself,
);

/// Every `.tmp-` file anywhere under `dir`.
fn temp_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("dir entry");
            if entry.file_type().expect("file type").is_dir() {
                stack.push(entry.path());
            } else if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                found.push(entry.path());
            }
        }
    }
    found
}

mod fs_only {
    use super::*;

    #[tokio::test]
    async fn layout_is_a_file_proxy_tree() {
        let fx = filesystem();
        let s = &fx.storage;
        put(s, "example.com/m/@v/list", b"v1.0.0\n", PutMode::IfAbsent).await;
        let root = s.local_root().expect("local root");
        let on_disk = std::fs::read(root.join("example.com/m/@v/list")).expect("read file");
        assert_eq!(on_disk, b"v1.0.0\n");
        assert_eq!(s.describe(), format!("filesystem at {}", root.display()));
    }

    #[tokio::test]
    async fn no_temp_file_remains_after_writes() {
        let fx = filesystem();
        let s = &fx.storage;
        put(s, "m/@v/list", b"a", PutMode::Overwrite).await;
        put(s, "m/@v/list", b"b", PutMode::Overwrite).await;
        put(s, "m/@v/list", b"c", PutMode::IfAbsent).await;
        let staged = s.stage("m/@v/v1.zip").await.expect("stage");
        staged.file().write_all(b"zip").expect("write");
        s.commit(staged, PutMode::IfAbsent).await.expect("commit");
        let staged = s.stage("m/@v/v1.zip").await.expect("stage");
        s.commit(staged, PutMode::IfAbsent).await.expect("commit");
        s.check_ready().await.expect("ready");
        assert_eq!(temp_files_under(s.root()), Vec::<PathBuf>::new());
    }

    #[tokio::test]
    async fn crash_leftovers_are_hidden_then_swept() {
        let fx = filesystem();
        let s = &fx.storage;
        put(s, "m/@v/v1.0.0.zip", b"complete", PutMode::IfAbsent).await;
        // What a writer killed mid-write leaves behind: a partial temp file.
        let leftover = s.root().join("m/@v/.tmp-AbC123");
        std::fs::write(&leftover, b"compl").expect("write leftover");

        assert_eq!(s.list("").await.expect("list"), ["m/@v/v1.0.0.zip"]);
        assert_eq!(
            s.list("m/@v/.tmp").await.expect("list"),
            Vec::<String>::new()
        );
        assert!(matches!(
            s.get("m/@v/.tmp-AbC123").await,
            Err(StorageError::InvalidKey { .. })
        ));

        let hour = Duration::from_secs(3600);
        assert_eq!(s.remove_stale_temp_files(hour).await.expect("sweep"), 0);
        assert!(
            leftover.exists(),
            "a fresh temp file may belong to a live writer"
        );

        let old = SystemTime::now() - 2 * hour;
        let file = std::fs::File::options()
            .write(true)
            .open(&leftover)
            .expect("open");
        file.set_modified(old).expect("set mtime");
        drop(file);
        assert_eq!(s.remove_stale_temp_files(hour).await.expect("sweep"), 1);
        assert!(!leftover.exists());
        assert_eq!(
            read(s, "m/@v/v1.0.0.zip").await.as_deref(),
            Some(&b"complete"[..])
        );
    }

    #[tokio::test]
    async fn the_sweep_spares_a_locked_resumable_download_and_takes_its_state_along() {
        let fx = filesystem();
        let s = &fx.storage;
        let hour = Duration::from_secs(3600);
        let old = SystemTime::now() - 2 * hour;
        let age = |path: &std::path::Path| {
            let file = std::fs::File::options()
                .write(true)
                .open(path)
                .expect("open");
            file.set_modified(old).expect("set mtime");
        };
        let busy = s
            .resumable_path("m/@v/v1.0.0.zip", true)
            .await
            .expect("path")
            .expect("fs keeps resumable files");
        let idle = s
            .resumable_path("m/@v/v2.0.0.zip", true)
            .await
            .expect("path")
            .expect("fs keeps resumable files");
        let state_of = |p: &std::path::Path| {
            p.with_file_name(format!("{}.json", p.file_name().unwrap().to_string_lossy()))
        };
        for path in [&busy, &idle] {
            std::fs::write(path, b"partial").expect("write");
            std::fs::write(state_of(path), b"{}").expect("write state");
            age(path);
            age(&state_of(path));
        }
        // A state file whose download was published before its state was removed.
        let orphan = s.root().join("m/@v/.tmp-v3.0.0.zip.partial.json");
        std::fs::write(&orphan, b"{}").expect("write orphan");
        age(&orphan);

        let holder = std::fs::File::open(&busy).expect("open");
        holder.lock().expect("lock");
        assert_eq!(s.remove_stale_temp_files(hour).await.expect("sweep"), 3);
        assert!(busy.exists() && state_of(&busy).exists(), "in use: kept");
        assert!(!idle.exists() && !state_of(&idle).exists());
        assert!(!orphan.exists());
        drop(holder);
        assert_eq!(s.remove_stale_temp_files(hour).await.expect("sweep"), 2);
        assert!(!busy.exists() && !state_of(&busy).exists());
    }

    #[tokio::test]
    async fn sweeping_a_missing_root_finds_nothing() {
        let fx = filesystem();
        let swept = fx.storage.remove_stale_temp_files(Duration::ZERO).await;
        assert_eq!(swept.expect("sweep"), 0);
    }

    const SIZE: usize = 256 * 1024;

    /// Every object seen must be one writer's complete content.
    async fn assert_whole<S: Storage>(s: &S, key: &str) -> Option<u8> {
        let bytes = read(s, key).await?;
        assert_eq!(bytes.len(), SIZE, "a reader saw a partial object");
        let first = bytes[0];
        assert!(
            bytes.iter().all(|&b| b == first),
            "a reader saw mixed content"
        );
        Some(first)
    }

    async fn race(mode: PutMode) -> (Vec<PutOutcome>, Option<u8>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("cache");
        // Two instances on one root stand in for two processes sharing it.
        let stores = [
            Arc::new(FsStorage::new(&root)),
            Arc::new(FsStorage::new(&root)),
        ];
        let key = "example.com/m/@v/v1.0.0.zip";
        let done = Arc::new(AtomicBool::new(false));

        let readers: Vec<_> = (0..4)
            .map(|i| {
                let s = Arc::clone(&stores[i % 2]);
                let done = Arc::clone(&done);
                tokio::spawn(async move {
                    while !done.load(Ordering::Acquire) {
                        assert_whole(&*s, key).await;
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        let writers: Vec<_> = (0..24u8)
            .map(|i| {
                let s = Arc::clone(&stores[usize::from(i) % 2]);
                tokio::spawn(async move {
                    let data = vec![i; SIZE];
                    if i % 3 == 0 {
                        let staged = s.stage(key).await.expect("stage");
                        tokio::fs::write(staged.path(), &data).await.expect("write");
                        s.commit(staged, mode).await.expect("commit")
                    } else {
                        s.put_bytes(key, data.into(), mode).await.expect("put")
                    }
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for w in writers {
            outcomes.push(w.await.expect("writer task"));
        }
        done.store(true, Ordering::Release);
        for r in readers {
            r.await.expect("reader task");
        }
        let last = assert_whole(&*stores[0], key).await;
        assert_eq!(temp_files_under(&root), Vec::<PathBuf>::new());
        (outcomes, last)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_if_absent_has_exactly_one_winner() {
        let (outcomes, last) = race(PutMode::IfAbsent).await;
        let written: Vec<_> = outcomes
            .iter()
            .filter(|o| matches!(o, PutOutcome::Written(_)))
            .collect();
        assert_eq!(written.len(), 1, "exactly one writer wins");
        assert!(outcomes.iter().all(|o| o.meta().size == SIZE as u64));
        assert!(last.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_overwrites_are_never_torn() {
        let (outcomes, last) = race(PutMode::Overwrite).await;
        assert!(outcomes.iter().all(|o| matches!(o, PutOutcome::Written(_))));
        assert!(last.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn pruning_races_with_writes_into_the_same_directory() {
        let fx = filesystem();
        let s = Arc::new(FsStorage::new(fx.storage.root()));
        for i in 0..200 {
            put(&*s, "a/b/c/old", b"x", PutMode::Overwrite).await;
            let deleter = {
                let s = Arc::clone(&s);
                tokio::spawn(async move { s.delete("a/b/c/old").await.expect("delete") })
            };
            let key = format!("a/b/c/new{i}");
            s.put_bytes(&key, Bytes::from_static(b"y"), PutMode::IfAbsent)
                .await
                .expect("a put racing with pruning still lands");
            assert!(deleter.await.expect("deleter"));
            assert_eq!(read(&*s, &key).await.as_deref(), Some(&b"y"[..]));
            assert!(s.delete(&key).await.expect("delete"));
        }
        assert!(s.list("").await.expect("list").is_empty());
    }

    const CHILD_ROOT: &str = "GOPROXY_STORAGE_TEST_CHILD_ROOT";

    /// Run by `a_killed_writer_never_publishes_a_partial_object` in a child process:
    /// writes forever until it is killed.
    #[tokio::test]
    #[ignore = "helper process for a kill -9 test"]
    async fn killed_writer_child() {
        let Some(root) = std::env::var_os(CHILD_ROOT) else {
            return;
        };
        let s = FsStorage::new(PathBuf::from(root));
        let started = format!("started/{}", std::process::id());
        s.put_bytes(&started, Bytes::new(), PutMode::IfAbsent)
            .await
            .expect("announce");
        for i in 0u64.. {
            let key = format!("k/{}", i % 4);
            let data = vec![(i % 251) as u8; SIZE * 16];
            s.put_bytes(&key, data.into(), PutMode::Overwrite)
                .await
                .expect("put");
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_killed_writer_never_publishes_a_partial_object() {
        let fx = filesystem();
        let s = &fx.storage;
        // Several kills at different moments, each leaving its debris for the next.
        for delay_ms in [0, 7, 19, 43, 71] {
            let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
                .args([
                    "--exact",
                    "storage::compliance::fs_only::killed_writer_child",
                    "--ignored",
                    "--quiet",
                ])
                .env(CHILD_ROOT, s.root())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn child");
            let started = format!("started/{}", child.id());
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while s.head(&started).await.expect("head").is_none() {
                assert!(std::time::Instant::now() < deadline, "child never started");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");

            for key in s.list("k/").await.expect("list") {
                let bytes = read(s, &key).await.expect("listed key reads");
                assert_eq!(bytes.len(), SIZE * 16, "{key}: partial object published");
                assert!(bytes.iter().all(|&b| b == bytes[0]), "{key}: mixed content");
            }
        }
        s.remove_stale_temp_files(Duration::ZERO)
            .await
            .expect("sweep");
        assert_eq!(temp_files_under(s.root()), Vec::<PathBuf>::new());
    }

    #[tokio::test]
    async fn delete_prunes_empty_parents_only() {
        let fx = filesystem();
        let s = &fx.storage;
        let root = s.root().to_path_buf();
        put(s, "a/b/c/d", b"1", PutMode::Overwrite).await;
        put(s, "a/x", b"2", PutMode::Overwrite).await;
        std::fs::create_dir_all(root.join("a/b/keep")).expect("mkdir");
        std::fs::write(root.join("a/b/keep/.hidden"), b"").expect("write");

        assert!(s.delete("a/b/c/d").await.expect("delete"));
        assert!(!root.join("a/b/c").exists(), "empty parent pruned");
        assert!(root.join("a/b/keep/.hidden").exists(), "non-empty dir kept");

        std::fs::remove_dir_all(root.join("a/b")).expect("rm");
        assert!(s.delete("a/x").await.expect("delete"));
        assert!(!root.join("a").exists());
        assert!(root.is_dir(), "the root itself stays");
    }

    #[tokio::test]
    async fn directories_and_files_in_the_way_read_as_absent() {
        let fx = filesystem();
        let s = &fx.storage;
        put(s, "a/b", b"x", PutMode::Overwrite).await;
        assert_eq!(s.head("a").await.expect("head"), None);
        assert!(s.get("a").await.expect("get").is_none());
        assert!(!s.delete("a").await.expect("delete dir"));
        assert!(s.get("a/b/c").await.expect("get under a file").is_none());
        assert_eq!(s.head("a/b/c").await.expect("head"), None);
        assert!(matches!(
            s.put_bytes("a", Bytes::from_static(b"y"), PutMode::IfAbsent)
                .await,
            Err(StorageError::Io { .. })
        ));
        assert_eq!(read(s, "a/b").await.as_deref(), Some(&b"x"[..]));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn list_does_not_follow_symlinks_out_of_the_root() {
        let fx = filesystem();
        let s = &fx.storage;
        put(s, "in/file", b"x", PutMode::Overwrite).await;
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), b"s").expect("write");
        std::os::unix::fs::symlink(outside.path(), s.root().join("out")).expect("symlink");
        std::os::unix::fs::symlink(outside.path().join("secret"), s.root().join("in/leak"))
            .expect("symlink");
        std::os::unix::fs::symlink(s.root().join("in/file"), s.root().join("in/alias"))
            .expect("symlink");

        assert_eq!(s.list("").await.expect("list"), ["in/alias", "in/file"]);
        assert!(s.list("out/").await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn commit_accepts_a_file_staged_elsewhere() {
        let fx = filesystem();
        let elsewhere = MemoryStorage::new();
        let staged = elsewhere.stage("m/@v/v1.zip").await.expect("stage");
        staged.file().write_all(b"bytes").expect("write");
        let path = staged.path().to_path_buf();
        fx.storage
            .commit(staged, PutMode::IfAbsent)
            .await
            .expect("commit");
        assert!(!path.exists(), "the foreign temp file is cleaned up");
        assert_eq!(
            read(&fx.storage, "m/@v/v1.zip").await.as_deref(),
            Some(&b"bytes"[..])
        );
    }

    #[tokio::test]
    async fn check_ready_creates_the_root_and_names_a_failing_one() {
        let fx = filesystem();
        fx.storage.check_ready().await.expect("ready");
        assert!(fx.storage.root().is_dir());
        assert_eq!(temp_files_under(fx.storage.root()), Vec::<PathBuf>::new());

        let blocker = fx.storage.root().join("a-file");
        std::fs::write(&blocker, b"").expect("write");
        let bad_root = blocker.join("cache");
        let err = FsStorage::new(&bad_root)
            .check_ready()
            .await
            .expect_err("a file is in the way");
        let message = err.to_string();
        assert!(
            message.contains(&bad_root.display().to_string()),
            "error names the directory: {message}"
        );
    }
}
