//! The local file a zip download writes into: at a fixed place when the backend
//! allows it (so a restarted process resumes it), locked against other processes
//! sharing the cache, with its progress state beside it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use super::state::PartialState;
use crate::storage::{PutMode, PutOutcome, Staged, Storage, StorageError};

/// The local file a zip download writes into. Nothing is created until the
/// first upstream answer arrives, so a miss that ends in "not found" leaves no
/// trace in the cache.
pub struct Target {
    key: String,
    storage: Arc<dyn Storage>,
    /// The backend keeps resumable files (and no other process holds this one).
    resumable: bool,
    opened: OnceLock<Opened>,
    state: Mutex<Option<PartialState>>,
    /// Which body the file holds now, bumped by every `begin`. Writes and
    /// checkpoints hold it shared and check it; `begin` holds it exclusively,
    /// so a write still in flight from an abandoned attempt (its future gone,
    /// its blocking task not) can never land in the next body, nor a stale
    /// checkpoint overwrite the next body's state.
    generation: Arc<RwLock<u64>>,
    /// Serialises checkpoints (they share the state file's temp name).
    saving: Arc<Mutex<()>>,
    /// A small body kept in memory instead of a file (`begin_in_memory`).
    memory: Mutex<Option<Vec<u8>>>,
}

/// Bodies up to this size may be downloaded into memory: a file, its
/// creation and its fsyncs cost more than the transfer itself.
pub const IN_MEMORY_MAX: u64 = 1024 * 1024;

struct Opened {
    data: PathBuf,
    /// Where progress is persisted; `None` when the file is a throwaway temp.
    state_path: Option<PathBuf>,
    /// Held (and, for a resumable file, locked) for the whole download.
    file: Arc<std::fs::File>,
    /// A non-resumable temp file, deleted if never committed.
    staged: Option<Staged>,
}

impl Target {
    /// Adopts an interrupted download of `key` if one is on disk (and no other
    /// process is working on it); otherwise prepares to start a new one.
    pub async fn open(storage: Arc<dyn Storage>, key: &str) -> Result<Target, StorageError> {
        let mut target = Target {
            key: key.to_owned(),
            resumable: false,
            opened: OnceLock::new(),
            state: Mutex::new(None),
            generation: Arc::new(RwLock::new(0)),
            saving: Arc::new(Mutex::new(())),
            memory: Mutex::new(None),
            storage,
        };
        let Some(data) = target.storage.resumable_path(key, false).await? else {
            return Ok(target);
        };
        target.resumable = true;
        let path = data.clone();
        let found = blocking(key, move || {
            if !path.exists() {
                return Ok(None);
            }
            open_locked(&path).map(Some)
        })
        .await?;
        match found {
            Some(Some((file, state))) => {
                if let Some(state) = &state {
                    tracing::info!(
                        artifact = key,
                        done = state.done.covered(),
                        size = state.size,
                        "resuming an interrupted download"
                    );
                }
                *target.state() = state;
                target.adopt(data, file);
            }
            Some(None) => {
                tracing::info!(
                    artifact = key,
                    "another process is downloading this file; downloading separately"
                );
                target.resumable = false;
            }
            None => {}
        }
        Ok(target)
    }

    fn adopt(&self, data: PathBuf, file: std::fs::File) {
        let _ = self.opened.set(Opened {
            state_path: Some(state_path(&data)),
            data,
            file: Arc::new(file),
            staged: None,
        });
    }

    /// Creates the file on first use: the resumable one when possible, a
    /// throwaway temp otherwise.
    async fn ensure_open(&self) -> Result<&Opened, StorageError> {
        if let Some(opened) = self.opened.get() {
            return Ok(opened);
        }
        if self.resumable
            && let Some(data) = self.storage.resumable_path(&self.key, true).await?
        {
            let path = data.clone();
            if let Some((file, _)) = blocking(&self.key, move || open_locked(&path)).await? {
                // Whatever a racing process left there is not ours to trust.
                file.set_len(0).map_err(|e| self.io_err(e))?;
                self.adopt(data, file);
                return self.opened.get().ok_or_else(|| self.io_err(lost()));
            }
        }
        let staged = self.storage.stage(&self.key).await?;
        let file = staged.file().try_clone().map_err(|e| self.io_err(e))?;
        let _ = self.opened.set(Opened {
            data: staged.path().to_owned(),
            state_path: None,
            file: Arc::new(file),
            staged: Some(staged),
        });
        self.opened.get().ok_or_else(|| self.io_err(lost()))
    }

    fn io_err(&self, source: io::Error) -> StorageError {
        StorageError::Io {
            key: self.key.clone(),
            source,
        }
    }

    #[cfg(test)]
    fn state_path_for_test(&self) -> Option<PathBuf> {
        self.opened.get().and_then(|o| o.state_path.clone())
    }

    /// The file's path (once something has been written).
    pub fn path(&self) -> Option<&Path> {
        self.opened.get().map(|o| o.data.as_path())
    }

    /// The open file, for positioned writes.
    pub fn file(&self) -> io::Result<Arc<std::fs::File>> {
        self.opened
            .get()
            .map(|o| Arc::clone(&o.file))
            .ok_or_else(lost)
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, Option<PartialState>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a new body of `size` bytes in memory, when it is small and no
    /// file has been opened for this download; `false` otherwise (then use
    /// `begin`). Such a body is not resumable.
    pub fn begin_in_memory(&self, size: u64) -> bool {
        if size > IN_MEMORY_MAX || self.opened.get().is_some() {
            return false;
        }
        let mut generation = self.generation.write().unwrap_or_else(|e| e.into_inner());
        *generation += 1;
        *self.state() = None;
        *self.memory() = Some(vec![0; size as usize]);
        true
    }

    /// The finished body, if it was downloaded into memory (taken: the
    /// target holds nothing afterwards).
    pub fn take_memory(&self) -> Option<bytes::Bytes> {
        self.memory().take().map(bytes::Bytes::from)
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Option<Vec<u8>>> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a new body: the file gets its final size (sparse) and the state
    /// records which body the bytes will belong to.
    pub async fn begin(&self, state: Option<PartialState>, size: Option<u64>) -> io::Result<()> {
        *self.memory() = None;
        let opened = self.ensure_open().await.map_err(io::Error::other)?;
        let file = Arc::clone(&opened.file);
        let state_path = opened.state_path.clone();
        let generation = Arc::clone(&self.generation);
        let to_save = state.clone();
        *self.state() = state;
        tokio::task::spawn_blocking(move || {
            let mut generation = generation.write().unwrap_or_else(|e| e.into_inner());
            *generation += 1;
            // The old state goes first: were it still there when the file has
            // its size again, a crash now would let it vouch for zeros.
            if let Some(path) = &state_path
                && remove_if_present(path)?
            {
                sync_parent(path)?;
            }
            file.set_len(0)?;
            if let Some(size) = size {
                file.set_len(size)?;
            }
            match (&state_path, to_save) {
                (Some(path), Some(state)) => state.save(path),
                _ => Ok(()),
            }
        })
        .await
        .map_err(io::Error::other)?
    }

    /// The body the file holds now (see `write_at`).
    pub fn generation(&self) -> u64 {
        *self.generation.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `data` at `at`, unless the file has started another body since
    /// `generation` was read; `false` then.
    pub async fn write_at(&self, generation: u64, data: Vec<u8>, at: u64) -> io::Result<bool> {
        {
            let current = self.generation.read().unwrap_or_else(|e| e.into_inner());
            let mut memory = self.memory();
            if let Some(body) = memory.as_mut() {
                if *current != generation {
                    return Ok(false);
                }
                let range = usize::try_from(at)
                    .ok()
                    .and_then(|at| Some(at..at.checked_add(data.len())?))
                    .filter(|range| range.end <= body.len())
                    .ok_or_else(|| io::Error::other("write beyond the end of the body"))?;
                body[range].copy_from_slice(&data);
                return Ok(true);
            }
        }
        let file = self.file()?;
        let current = Arc::clone(&self.generation);
        tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let current = current.read().unwrap_or_else(|e| e.into_inner());
            if *current != generation {
                return Ok(false);
            }
            file.write_all_at(&data, at).map(|()| true)
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Forgets everything downloaded so far.
    pub async fn reset(&self) -> io::Result<()> {
        if self.opened.get().is_none() {
            // In-flight writes of an in-memory body must not land in the next.
            *self.generation.write().unwrap_or_else(|e| e.into_inner()) += 1;
            *self.memory() = None;
            *self.state() = None;
            return Ok(());
        }
        self.begin(None, None).await
    }

    /// Records that `[start, end)` has been written.
    pub fn mark(&self, start: u64, end: u64) {
        if let Some(state) = self.state().as_mut() {
            state.done.insert(start, end);
        }
    }

    /// The parts of `[start, end)` not written yet.
    pub fn missing_between(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        match self.state().as_ref() {
            Some(state) => state.done.missing_between(start, end),
            None => vec![(start, end)],
        }
    }

    /// Makes the recorded progress durable: data first, then the state that
    /// describes it, so the state never claims bytes a crash could lose.
    pub async fn checkpoint(&self) -> io::Result<()> {
        let Some(opened) = self.opened.get() else {
            return Ok(());
        };
        let Some(path) = opened.state_path.clone() else {
            return Ok(());
        };
        // Read together, so the snapshot belongs to that generation's body.
        let (taken_at, snapshot) = {
            let generation = self.generation.read().unwrap_or_else(|e| e.into_inner());
            (*generation, self.state().clone())
        };
        let Some(snapshot) = snapshot else {
            return Ok(());
        };
        let file = Arc::clone(&opened.file);
        let generation = Arc::clone(&self.generation);
        let saving = Arc::clone(&self.saving);
        tokio::task::spawn_blocking(move || {
            // One checkpoint at a time, even if an abandoned one still runs.
            let _one = saving.lock().unwrap_or_else(|e| e.into_inner());
            let current = generation.read().unwrap_or_else(|e| e.into_inner());
            if *current != taken_at {
                return Ok(());
            }
            file.sync_data()?;
            snapshot.save(&path)
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Publishes the finished file under its key and removes its state.
    pub async fn commit(self) -> Result<PutOutcome, StorageError> {
        let Target {
            key,
            storage,
            opened,
            ..
        } = self;
        let opened = opened.into_inner().ok_or_else(|| StorageError::Io {
            key: key.clone(),
            source: lost(),
        })?;
        let io_err = |source| StorageError::Io {
            key: key.clone(),
            source,
        };
        let staged = match opened.staged {
            Some(staged) => staged,
            None => {
                same_file(&opened.file, &opened.data).map_err(io_err)?;
                Staged::from_path(key.clone(), opened.data.clone()).map_err(io_err)?
            }
        };
        // The lock is held (through `opened.file`) until the file has its final
        // name, so no other process can adopt and truncate it on the way.
        let outcome = storage.commit(staged, PutMode::IfAbsent).await;
        if let Some(path) = opened.state_path {
            let _ = tokio::task::spawn_blocking(move || remove_if_present(&path)).await;
        }
        drop(opened.file);
        outcome
    }

    /// After a failure: keep the file only if it holds resumable progress.
    pub async fn abandon(self) {
        let keep = self.state().as_ref().is_some_and(|s| s.done.covered() > 0);
        let Some(opened) = self.opened.into_inner() else {
            return;
        };
        if keep || opened.staged.is_some() {
            // A throwaway temp file deletes itself when `staged` drops.
            return;
        }
        let (data, state_path) = (opened.data, opened.state_path);
        let _ = tokio::task::spawn_blocking(move || {
            let _ = remove_if_present(&data);
            if let Some(path) = state_path {
                let _ = remove_if_present(&path);
            }
        })
        .await;
    }
}

/// The name still points at the file we hold (and locked).
fn same_file(file: &std::fs::File, path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let (held, named) = (file.metadata()?, std::fs::metadata(path)?);
    if (held.dev(), held.ino()) != (named.dev(), named.ino()) {
        return Err(io::Error::other(
            "the download file was replaced by another process",
        ));
    }
    Ok(())
}

fn lost() -> io::Error {
    io::Error::other("the download file is not open")
}

async fn blocking<T: Send + 'static>(
    key: &str,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    let io_err = |source| StorageError::Io {
        key: key.to_owned(),
        source,
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io_err(io::Error::other(e)))?
        .map_err(io_err)
}

fn state_path(data: &Path) -> PathBuf {
    let mut name = data.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// Makes a removal or rename in `path`'s directory durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Whether there was something to remove.
fn remove_if_present(path: &Path) -> io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Opens and locks the resumable file at `path`, and loads its state. `None`
/// when another process holds the lock.
fn open_locked(path: &Path) -> io::Result<Option<(std::fs::File, Option<PartialState>)>> {
    use std::os::unix::fs::MetadataExt;
    // A file we locked may have been renamed into the cache (published) by its
    // previous owner between our open and our lock; then the name points
    // elsewhere and we must not touch what we opened. Retry with the new file.
    for _ in 0..8 {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let opened = file.metadata()?;
        let named = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if (opened.dev(), opened.ino()) != (named.dev(), named.ino()) {
            continue;
        }
        let state = PartialState::load(&state_path(path), opened.len());
        if state.is_none() {
            // Bytes without a trustworthy state are worthless: completeness is
            // never inferred from the data itself. An untrusted state goes too,
            // so that it can never match the file again later.
            remove_if_present(&state_path(path))?;
            file.set_len(0)?;
        }
        return Ok(Some((file, state)));
    }
    Err(io::Error::other(
        "the resumable download file keeps being replaced",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::download::state::Validator;
    use crate::storage::fs::FsStorage;

    async fn target(dir: &Path) -> Target {
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir));
        Target::open(storage, "m/@v/v1.0.0.zip").await.unwrap()
    }

    fn state(size: u64) -> PartialState {
        PartialState::new("http://u/x".into(), size, Validator::Etag("\"a\"".into()))
    }

    #[tokio::test]
    async fn a_write_from_an_abandoned_body_never_lands_in_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path()).await;
        t.begin(Some(state(8)), Some(8)).await.unwrap();
        let old = t.generation();
        assert!(t.write_at(old, b"old!".to_vec(), 0).await.unwrap());
        t.reset().await.unwrap();
        t.begin(Some(state(8)), Some(8)).await.unwrap();
        assert!(!t.write_at(old, b"late".to_vec(), 4).await.unwrap());
        let data = std::fs::read(t.path().unwrap()).unwrap();
        assert_eq!(data, vec![0; 8], "neither the old bytes nor the late write");
    }

    #[tokio::test]
    async fn a_small_body_in_memory_leaves_no_file_and_ignores_late_writes() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path()).await;
        assert!(
            !t.begin_in_memory(IN_MEMORY_MAX + 1),
            "too large for memory"
        );
        assert!(t.begin_in_memory(8));
        let old = t.generation();
        assert!(t.write_at(old, b"abcd".to_vec(), 4).await.unwrap());
        assert!(
            t.write_at(old, b"xyz".to_vec(), 6).await.is_err(),
            "past the end"
        );
        t.reset().await.unwrap();
        assert!(t.take_memory().is_none(), "reset forgets the body");
        assert!(t.begin_in_memory(8));
        let current = t.generation();
        assert!(!t.write_at(old, b"late".to_vec(), 0).await.unwrap());
        assert!(t.write_at(current, b"0123".to_vec(), 0).await.unwrap());
        assert!(t.write_at(current, b"4567".to_vec(), 4).await.unwrap());
        assert_eq!(t.take_memory().unwrap().as_ref(), b"01234567");
        assert!(t.path().is_none());
        assert!(
            !dir.path().join("m").exists(),
            "nothing was created on disk"
        );
    }

    #[tokio::test]
    async fn a_body_goes_to_a_file_once_one_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path()).await;
        t.begin(Some(state(8)), Some(8)).await.unwrap();
        assert!(!t.begin_in_memory(8), "the open file is used");
        t.begin(None, Some(8)).await.unwrap();
        assert!(t.take_memory().is_none());
        assert!(
            t.write_at(t.generation(), b"abcd".to_vec(), 0)
                .await
                .unwrap()
        );
        assert_eq!(std::fs::read(t.path().unwrap()).unwrap()[..4], *b"abcd");
    }

    #[tokio::test]
    async fn a_new_body_removes_the_old_state_before_resizing_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path()).await;
        let mut done = state(8);
        done.done.insert(0, 8);
        t.begin(Some(done), Some(8)).await.unwrap();
        t.checkpoint().await.unwrap();
        let state_file = state_path(t.path().unwrap());
        assert!(state_file.exists());
        // No state for the new body (no validator): the old one must not survive.
        t.begin(None, Some(8)).await.unwrap();
        assert!(!state_file.exists());
        drop(t);
        // Reopened, nothing is trusted: the file starts empty.
        let again = target(dir.path()).await;
        assert!(again.state().is_none());
    }

    #[tokio::test]
    async fn a_locked_download_is_left_to_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let first = target(dir.path()).await;
        first.begin(Some(state(4)), Some(4)).await.unwrap();
        let second = target(dir.path()).await;
        second.begin(None, Some(4)).await.unwrap();
        assert_ne!(
            first.path(),
            second.path(),
            "the second one got a temp of its own"
        );
        assert!(second.state_path_for_test().is_none());
    }
}
