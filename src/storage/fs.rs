//! The filesystem backend: keys are paths under a root directory.
//!
//! The tree under the root is exactly what `GOPROXY=file://<root>` expects: an object
//! lives at `<root>/<key>`, byte for byte. Writes go to a `.tmp-*` file in the same
//! directory, are fsynced, then renamed into place (and the directory fsynced), so a
//! reader sees either the old object, the new one, or none, never a torn one, even if
//! the writer is killed or another process shares the root. Names starting with
//! `.tmp-` are reserved for those temp files: no key may use them, `list` skips them
//! and `remove_stale_temp_files` sweeps up the ones a crash left behind.

use std::fs as stdfs;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use tempfile::NamedTempFile;
use tokio::io::AsyncSeekExt;

use super::{
    Object, ObjectBody, ObjectMeta, PutMode, PutOutcome, Result, Staged, Storage, StorageError,
    cached_io, validate_key,
};

/// Prefix of every temp file this backend creates (and `tempfile` is told to use).
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// A directory we just created can be removed by a concurrent `delete` pruning empty
/// parents before we get a file into it; a handful of retries always wins that race
/// in practice, and the bound keeps a pathological loop from spinning forever.
const DIR_RACE_RETRIES: usize = 16;

pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsStorage { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Deletes `.tmp-*` files under the root whose last modification is at least
    /// `older_than` ago: the leftovers of writers that were killed mid-write. Pick an
    /// age longer than the slowest upload, since a staged file that is still being
    /// filled looks the same as an abandoned one. Returns how many were removed.
    pub async fn remove_stale_temp_files(&self, older_than: Duration) -> Result<usize> {
        let root = self.root.clone();
        let label = root.display().to_string();
        blocking(&label, move || sweep_temp_files(&root, older_than)).await
    }
}

/// `validate_key` plus this backend's reservation of temp-file names: a key whose
/// segment looked like a temp file would be invisible to `list` and could be swept
/// away as a crash leftover.
pub(crate) fn check_key(key: &str) -> Result<()> {
    validate_key(key)?;
    if key.split('/').any(|seg| seg.starts_with(TEMP_PREFIX)) {
        return Err(StorageError::InvalidKey {
            key: key.to_owned(),
            reason: "segment uses the reserved temp-file prefix .tmp-",
        });
    }
    Ok(())
}

/// A list prefix may end in a partial segment (or be empty), but its directory part
/// must be a valid key path, since that is the directory the walk starts from.
pub(crate) fn check_prefix(prefix: &str) -> Result<()> {
    let bad = |reason| {
        Err(StorageError::InvalidKey {
            key: prefix.to_owned(),
            reason,
        })
    };
    if prefix.starts_with('/') {
        return bad("absolute");
    }
    if prefix.contains('\\') {
        return bad("backslash");
    }
    if prefix.chars().any(|c| c.is_control()) {
        return bad("control character");
    }
    match prefix.rfind('/') {
        Some(slash) => check_key(&prefix[..slash]).map_err(|_| StorageError::InvalidKey {
            key: prefix.to_owned(),
            reason: "empty, '.', '..' or reserved segment",
        }),
        None => Ok(()),
    }
}

/// Object is absent for any of these: nothing there, a file where a directory of the
/// key should be, or a directory where the object should be.
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

fn io_err(key: &str, source: io::Error) -> StorageError {
    StorageError::Io {
        key: key.to_owned(),
        source,
    }
}

fn meta_of(m: &stdfs::Metadata) -> io::Result<ObjectMeta> {
    Ok(ObjectMeta {
        size: m.len(),
        modified: m.modified()?,
    })
}

/// fsync, rename and directory walks block, so they must not run on async workers.
async fn blocking<T, F>(key: &str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|e| io_err(key, e)),
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => Err(io_err(key, io::Error::other(join))),
    }
}

fn parent_dir(path: &Path) -> io::Result<&Path> {
    path.parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))
}

/// Makes a directory entry (a rename, a new child) durable. Only meaningful where a
/// directory can be opened and fsynced.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    stdfs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// `create_dir_all`, but each new directory's entry is fsynced in its parent, so a
/// published object cannot vanish after a crash because its directory did.
fn create_dirs(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = dir;
    loop {
        match stdfs::metadata(cur) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} exists and is not a directory", cur.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(cur);
                match cur.parent() {
                    Some(p) if !p.as_os_str().is_empty() => cur = p,
                    _ => break,
                }
            }
            Err(e) => return Err(e),
        }
    }
    for new_dir in missing.into_iter().rev() {
        match stdfs::create_dir(new_dir) {
            Ok(()) => {
                if let Some(parent) = new_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    sync_dir(parent)?;
                }
            }
            // Another writer made it first; its own fsync covers the entry.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && new_dir.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A fresh `.tmp-*` file in `dir`, creating `dir` as needed.
fn temp_file_in(dir: &Path) -> io::Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    // tempfile defaults to 0600; published objects should get the usual
    // umask-governed mode, like any other file the process writes.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(stdfs::Permissions::from_mode(0o666));
    }
    let mut attempt = 0;
    loop {
        match create_dirs(dir).and_then(|()| builder.tempfile_in(dir)) {
            Ok(tmp) => return Ok(tmp),
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < DIR_RACE_RETRIES => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Makes a complete temp file (in the target's directory) visible under `target`.
fn publish(tmp: NamedTempFile, target: &Path, mode: PutMode) -> io::Result<PutOutcome> {
    // The data must be on disk before the name points at it, or a crash could leave
    // a published name over a zero-length or partial file.
    tmp.as_file().sync_all()?;
    let dir = parent_dir(target)?;
    match mode {
        PutMode::Overwrite => {
            let file = tmp.persist(target).map_err(|e| e.error)?;
            let meta = meta_of(&file.metadata()?)?;
            sync_dir(dir)?;
            Ok(PutOutcome::Written(meta))
        }
        PutMode::IfAbsent => {
            let mut tmp = tmp;
            let mut attempt = 0;
            loop {
                // renameat2(RENAME_NOREPLACE), or link+unlink where that is missing:
                // either way the existence check and the publish are one atomic step.
                let err = match tmp.persist_noclobber(target) {
                    Ok(file) => {
                        let meta = meta_of(&file.metadata()?)?;
                        sync_dir(dir)?;
                        return Ok(PutOutcome::Written(meta));
                    }
                    Err(err) => err,
                };
                if err.error.kind() != io::ErrorKind::AlreadyExists {
                    return Err(err.error);
                }
                match stdfs::metadata(target) {
                    Ok(m) if m.is_file() => return Ok(PutOutcome::AlreadyExists(meta_of(&m)?)),
                    Ok(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::IsADirectory,
                            format!("{} exists and is not a regular file", target.display()),
                        ));
                    }
                    // Deleted between our attempt and the stat: try to publish again.
                    Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < DIR_RACE_RETRIES => {
                        attempt += 1;
                        tmp = err.file;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// A staged file created elsewhere (another backend, or a different directory)
/// cannot be renamed atomically into place; copy it next to the target first.
fn move_next_to(tmp: NamedTempFile, dir: &Path) -> io::Result<NamedTempFile> {
    if tmp.path().parent() == Some(dir) {
        return Ok(tmp);
    }
    let mut local = temp_file_in(dir)?;
    let mut src = stdfs::File::open(tmp.path())?;
    io::copy(&mut src, local.as_file_mut())?;
    Ok(local)
}

/// Removes now-empty directories from `dir` upwards, stopping below `root` or at the
/// first directory that cannot be removed (most often: it still has content).
fn prune_empty_dirs(root: &Path, dir: &Path) {
    for d in dir.ancestors() {
        if d == root || !d.starts_with(root) {
            break;
        }
        if stdfs::remove_dir(d).is_err() {
            break;
        }
    }
}

/// Depth-first walk from `start` that never follows symlinks. `visit` sees each entry
/// with the state of its directory and returns the state for a subdirectory to
/// descend into, or `None` to skip it. Entries that vanish mid-walk are ignored.
fn walk<T>(
    start: PathBuf,
    state: T,
    mut visit: impl FnMut(&T, &stdfs::DirEntry, stdfs::FileType) -> io::Result<Option<T>>,
) -> io::Result<()> {
    let mut stack = vec![(start, state)];
    while let Some((dir, state)) = stack.pop() {
        let entries = match stdfs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let file_type = match entry.file_type() {
                Ok(t) => t,
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(e),
            };
            if let Some(sub) = visit(&state, &entry, file_type)? {
                stack.push((entry.path(), sub));
            }
        }
    }
    Ok(())
}

/// Keys under `<root>/<key_dir>` that start with `prefix` (`key_dir` is the part of
/// `prefix` up to its last `/`), sorted.
fn list_keys(root: &Path, key_dir: &str, prefix: &str) -> io::Result<Vec<String>> {
    let canonical_root = match stdfs::canonicalize(root) {
        Ok(p) => p,
        Err(e) if is_absent(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let start = root.join(key_dir);
    if !key_dir.is_empty() {
        // A symlinked directory on the way to `start` must not lead out of the root.
        match stdfs::canonicalize(&start) {
            Ok(p) if p.starts_with(&canonical_root) => {}
            Ok(_) => return Ok(Vec::new()),
            Err(e) if is_absent(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    }
    let mut keys = Vec::new();
    walk(start, key_dir.to_owned(), |dir_key, entry, file_type| {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Ok(None);
        };
        let key = format!("{dir_key}{name}");
        if file_type.is_dir() {
            let sub = key + "/";
            let relevant = sub.starts_with(prefix) || prefix.starts_with(&sub);
            return Ok(relevant.then_some(sub));
        }
        // Temp files fail `check_key`, as do names no key could have.
        if key.starts_with(prefix) && check_key(&key).is_ok() {
            let listed = if file_type.is_symlink() {
                symlink_to_file_inside(&entry.path(), &canonical_root)
            } else {
                file_type.is_file()
            };
            if listed {
                keys.push(key);
            }
        }
        Ok(None)
    })?;
    keys.sort_unstable();
    Ok(keys)
}

fn symlink_to_file_inside(link: &Path, canonical_root: &Path) -> bool {
    match stdfs::canonicalize(link) {
        Ok(target) => target.starts_with(canonical_root) && target.is_file(),
        Err(_) => false,
    }
}

fn sweep_temp_files(root: &Path, older_than: Duration) -> io::Result<usize> {
    let now = SystemTime::now();
    let mut removed = 0;
    walk(root.to_path_buf(), (), |(), entry, file_type| {
        if file_type.is_dir() {
            return Ok(Some(()));
        }
        let is_temp = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TEMP_PREFIX));
        if !file_type.is_file() || !is_temp {
            return Ok(None);
        }
        let modified = match entry.metadata().and_then(|m| m.modified()) {
            Ok(t) => t,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        // A clock that jumped backwards makes the age negative: treat as fresh.
        let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
        if age < older_than {
            return Ok(None);
        }
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(PARTIAL_SUFFIX) {
            removed += sweep_partial(&path)?;
        } else if let Some(data) = partial_of_state(&name) {
            // A resumable download's state goes with its data file; alone (a
            // crash between publishing and cleaning up), it is a leftover.
            if !path.with_file_name(data).exists() {
                removed += remove_present(&path)?;
            }
        } else {
            removed += remove_present(&path)?;
        }
        Ok(None)
    })?;
    Ok(removed)
}

/// Suffix of a resumable download's data file (see `resumable_path`).
const PARTIAL_SUFFIX: &str = ".partial";

/// `.tmp-x.partial.json` (or its `.new` temp) → `.tmp-x.partial`.
fn partial_of_state(name: &str) -> Option<&str> {
    let base = name
        .strip_suffix(".json.new")
        .or_else(|| name.strip_suffix(".json"))?;
    base.ends_with(PARTIAL_SUFFIX).then_some(base)
}

/// Removes an old resumable download and its state, unless a process is still
/// working on it: an old file can belong to a download that was adopted (and
/// locked) without being written to since.
fn sweep_partial(path: &Path) -> io::Result<usize> {
    use std::os::unix::fs::MetadataExt;
    let file = match stdfs::File::open(path) {
        Ok(f) => f,
        Err(e) if is_absent(&e) => return Ok(0),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(stdfs::TryLockError::WouldBlock) => return Ok(0),
        Err(stdfs::TryLockError::Error(e)) => return Err(e),
    }
    // Only the file we locked: the name may have moved on meanwhile.
    let (locked, named) = match (file.metadata(), stdfs::metadata(path)) {
        (Ok(l), Ok(n)) => (l, n),
        (_, Err(e)) if is_absent(&e) => return Ok(0),
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    if (locked.dev(), locked.ino()) != (named.dev(), named.ino()) {
        return Ok(0);
    }
    let mut state = path.as_os_str().to_owned();
    state.push(".json");
    let removed = remove_present(Path::new(&state))? + remove_present(path)?;
    Ok(removed)
}

fn remove_present(path: &Path) -> io::Result<usize> {
    match stdfs::remove_file(path) {
        Ok(()) => Ok(1),
        Err(e) if is_absent(&e) => Ok(0),
        Err(e) => Err(e),
    }
}

fn probe_root(root: &Path) -> io::Result<()> {
    let dir = root.display();
    let context = |what: String, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    create_dirs(root).map_err(|e| context(format!("cannot create storage directory {dir}"), e))?;
    let mut probe = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(root)
        .map_err(|e| context(format!("cannot create a file in {dir}"), e))?;
    probe
        .write_all(b"goproxy readiness probe\n")
        .and_then(|()| probe.as_file().sync_all())
        .map_err(|e| context(format!("cannot write and fsync a file in {dir}"), e))?;
    probe
        .close()
        .map_err(|e| context(format!("cannot remove a probe file from {dir}"), e))
}

/// Objects up to this size are read into memory in the same blocking call that
/// opens them; larger ones stream from the open file.
const READ_WHOLE_MAX: u64 = 64 * 1024;

/// The object of an open file, reading its bytes (when small) with reads that
/// may wait for the disk.
fn read_whole(file: stdfs::File) -> io::Result<Option<Object>> {
    let read = |file: &stdfs::File, buf: &mut [u8]| Some(cached_io::read_at_blocking(file, buf, 0));
    // Never `None`: the blocking read always answers.
    whole_object(file, read).unwrap_or_else(|| Err(io::Error::other("read did not complete")))
}

/// `open` and `read_whole` without waiting for the disk: `None` when the
/// lookup or the bytes are not in memory (the caller then takes the slow path).
fn open_whole_cached(path: &Path) -> Option<io::Result<Option<Object>>> {
    let file = match cached_io::open(path)? {
        Ok(f) => f,
        Err(e) if is_absent(&e) => return Some(Ok(None)),
        Err(e) => return Some(Err(e)),
    };
    whole_object(file, |file, buf| {
        let mut done = 0;
        while done < buf.len() {
            match cached_io::read_at(file, &mut buf[done..], done as u64)? {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(done))
    })
}

/// The object of an open file: its bytes when small (read with `read`, which
/// returns how many it read, or `None` if it would block), else the file.
fn whole_object(
    file: stdfs::File,
    read: impl FnOnce(&stdfs::File, &mut [u8]) -> Option<io::Result<usize>>,
) -> Option<io::Result<Option<Object>>> {
    // Stat the handle, not the path: the path may be replaced meanwhile, and the
    // size must describe the bytes this handle reads.
    let m = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Some(Err(e)),
    };
    if !m.is_file() {
        return Some(Ok(None));
    }
    let meta = match meta_of(&m) {
        Ok(meta) => meta,
        Err(e) => return Some(Err(e)),
    };
    if meta.size > READ_WHOLE_MAX {
        return Some(Ok(Some(Object {
            body: ObjectBody::File {
                file: tokio::fs::File::from_std(file),
                len: meta.size,
            },
            meta,
        })));
    }
    let mut buf = vec![0u8; meta.size as usize];
    match read(&file, &mut buf)? {
        Ok(n) if n as u64 == meta.size => {}
        Ok(_) => {
            return Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than its size",
            )));
        }
        Err(e) => return Some(Err(e)),
    }
    Some(Ok(Some(Object {
        body: ObjectBody::Bytes(Bytes::from(buf)),
        meta,
    })))
}

impl FsStorage {
    async fn write_bytes(
        &self,
        key: &str,
        data: Bytes,
        mode: PutMode,
        modified: Option<SystemTime>,
    ) -> Result<PutOutcome> {
        check_key(key)?;
        let target = self.path_of(key);
        blocking(key, move || {
            let mut tmp = temp_file_in(parent_dir(&target)?)?;
            tmp.write_all(&data)?;
            if let Some(modified) = modified {
                tmp.as_file().set_modified(modified)?;
            }
            publish(tmp, &target, mode)
        })
        .await
    }

    async fn open(&self, key: &str) -> Result<Option<(tokio::fs::File, ObjectMeta)>> {
        check_key(key)?;
        let file = match tokio::fs::File::open(self.path_of(key)).await {
            Ok(f) => f,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(io_err(key, e)),
        };
        // Stat the handle, not the path: the path may be replaced meanwhile, and the
        // size must describe the bytes this handle will read.
        let m = file.metadata().await.map_err(|e| io_err(key, e))?;
        if !m.is_file() {
            return Ok(None);
        }
        let meta = meta_of(&m).map_err(|e| io_err(key, e))?;
        Ok(Some((file, meta)))
    }
}

#[async_trait]
impl Storage for FsStorage {
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        check_key(key)?;
        match tokio::fs::metadata(self.path_of(key)).await {
            Ok(m) if m.is_file() => Ok(Some(meta_of(&m).map_err(|e| io_err(key, e))?)),
            Ok(_) => Ok(None),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(io_err(key, e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Object>> {
        check_key(key)?;
        let path = self.path_of(key);
        // Right here when the kernel has everything in memory (the usual hit):
        // each trip to the blocking pool costs more than the work itself.
        if let Some(found) = open_whole_cached(&path) {
            return found.map_err(|e| io_err(key, e));
        }
        // Not in the dentry cache: most often a miss for a version never
        // asked for. The lookup is made right here (in directory blocks the
        // page cache nearly always holds, as nginx does on every request);
        // only reading an existing file's bytes, which may wait for the disk,
        // goes to the blocking pool.
        let file = match stdfs::File::open(&path) {
            Ok(file) => file,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(io_err(key, e)),
        };
        blocking(key, move || read_whole(file)).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Option<Object>> {
        let Some((mut file, meta)) = self.open(key).await? else {
            return Ok(None);
        };
        if range.start > range.end || range.end > meta.size {
            return Err(StorageError::InvalidRange {
                start: range.start,
                end: range.end,
                size: meta.size,
            });
        }
        if range.start > 0 {
            file.seek(io::SeekFrom::Start(range.start))
                .await
                .map_err(|e| io_err(key, e))?;
        }
        Ok(Some(Object {
            meta,
            body: ObjectBody::File {
                file,
                len: range.end - range.start,
            },
        }))
    }

    async fn put_bytes(&self, key: &str, data: Bytes, mode: PutMode) -> Result<PutOutcome> {
        self.write_bytes(key, data, mode, None).await
    }

    async fn put_bytes_at(
        &self,
        key: &str,
        data: Bytes,
        mode: PutMode,
        modified: SystemTime,
    ) -> Result<PutOutcome> {
        self.write_bytes(key, data, mode, Some(modified)).await
    }

    async fn put_records(&self, records: Vec<(String, Bytes)>) -> Result<()> {
        let Some(first) = records.first().map(|(key, _)| key.clone()) else {
            return Ok(());
        };
        let mut targets = Vec::with_capacity(records.len());
        for (key, data) in records {
            check_key(&key)?;
            targets.push((self.path_of(&key), data));
        }
        // One trip to the blocking pool for all of them, and no fsync: a
        // record is derived from an object that was made durable itself, and
        // each fsync costs a disk flush (milliseconds on many disks).
        blocking(&first, move || {
            for (target, data) in targets {
                let mut tmp = temp_file_in(parent_dir(&target)?)?;
                tmp.write_all(&data)?;
                tmp.persist(&target).map_err(|e| e.error)?;
            }
            Ok(())
        })
        .await
    }

    async fn stage(&self, key: &str) -> Result<Staged> {
        check_key(key)?;
        let target = self.path_of(key);
        let tmp = blocking(key, move || temp_file_in(parent_dir(&target)?)).await?;
        Ok(Staged::new(key.to_owned(), tmp))
    }

    async fn resumable_path(&self, key: &str, create: bool) -> Result<Option<PathBuf>> {
        check_key(key)?;
        let target = self.path_of(key);
        let dir = parent_dir(&target).map_err(|e| io_err(key, e))?.to_owned();
        let name = target
            .file_name()
            .ok_or_else(|| io_err(key, io::Error::other("key has no file name")))?
            .to_string_lossy();
        // The temp prefix keeps it out of listings, and the startup sweep
        // removes it once it is a day old (unless a process holds its lock).
        let path = dir.join(format!("{TEMP_PREFIX}{name}{PARTIAL_SUFFIX}"));
        if create {
            blocking(key, move || create_dirs(&dir)).await?;
        }
        Ok(Some(path))
    }

    async fn commit(&self, staged: Staged, mode: PutMode) -> Result<PutOutcome> {
        let (key, tmp) = staged.into_parts();
        check_key(&key)?;
        let target = self.path_of(&key);
        blocking(&key, move || {
            let tmp = move_next_to(tmp, parent_dir(&target)?)?;
            publish(tmp, &target, mode)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        let root = self.root.clone();
        let path = self.path_of(key);
        blocking(key, move || {
            match stdfs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if is_absent(&e) => return Ok(false),
                Err(e) => return Err(e),
            }
            let dir = parent_dir(&path)?;
            // Make the removal durable before pruning, so a crash cannot resurrect
            // the object once the caller was told it is gone.
            sync_dir(dir)?;
            prune_empty_dirs(&root, dir);
            Ok(true)
        })
        .await
    }

    async fn list_with_meta(&self, prefix: &str) -> Result<Vec<(String, ObjectMeta)>> {
        check_prefix(prefix)?;
        let key_dir = match prefix.rfind('/') {
            Some(slash) => prefix[..=slash].to_owned(),
            None => String::new(),
        };
        let root = self.root.clone();
        let owned_prefix = prefix.to_owned();
        // One blocking task walks and stats everything: a cache of 100 000
        // versions is 300 000 files, too many for a task per file.
        blocking(prefix, move || {
            let mut out = Vec::new();
            for key in list_keys(&root, &key_dir, &owned_prefix)? {
                match stdfs::metadata(root.join(&key)) {
                    Ok(m) if m.is_file() => out.push((key, meta_of(&m)?)),
                    Ok(_) => {}
                    Err(e) if is_absent(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<usize> {
        for key in keys {
            check_key(key)?;
        }
        let root = self.root.clone();
        let paths: Vec<PathBuf> = keys.iter().map(|k| self.path_of(k)).collect();
        let label = keys.first().map(String::as_str).unwrap_or("");
        // Each directory is synced once after all its removals, not once per file.
        blocking(label, move || {
            let mut dirs = std::collections::BTreeSet::new();
            let mut removed = 0;
            for path in &paths {
                match stdfs::remove_file(path) {
                    Ok(()) => removed += 1,
                    Err(e) if is_absent(&e) => continue,
                    Err(e) => return Err(e),
                }
                dirs.insert(parent_dir(path)?.to_owned());
            }
            for dir in dirs.iter().rev() {
                sync_dir(dir)?;
                prune_empty_dirs(&root, dir);
            }
            Ok(removed)
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        check_prefix(prefix)?;
        let key_dir = match prefix.rfind('/') {
            Some(slash) => prefix[..=slash].to_owned(),
            None => String::new(),
        };
        let root = self.root.clone();
        let owned_prefix = prefix.to_owned();
        blocking(prefix, move || list_keys(&root, &key_dir, &owned_prefix)).await
    }

    async fn check_ready(&self) -> Result<()> {
        let root = self.root.clone();
        let label = root.display().to_string();
        blocking(&label, move || probe_root(&root)).await
    }

    fn describe(&self) -> String {
        format!("filesystem at {}", self.root.display())
    }

    fn local_root(&self) -> Option<PathBuf> {
        Some(self.root.clone())
    }
}
