//! The local file a zip download writes into: at a fixed place when the backend
//! allows it (so a restarted process resumes it), locked against other processes
//! sharing the cache, with its progress state beside it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

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
}

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

    /// Starts a new body: the file gets its final size (sparse) and the state
    /// records which body the bytes will belong to.
    pub async fn begin(&self, state: Option<PartialState>, size: Option<u64>) -> io::Result<()> {
        let opened = self.ensure_open().await.map_err(io::Error::other)?;
        let file = Arc::clone(&opened.file);
        let state_path = opened.state_path.clone();
        let to_save = state.clone();
        *self.state() = state;
        tokio::task::spawn_blocking(move || {
            file.set_len(0)?;
            if let Some(size) = size {
                file.set_len(size)?;
            }
            match (&state_path, to_save) {
                (Some(path), Some(state)) => state.save(path),
                (Some(path), None) => remove_if_present(path),
                (None, _) => Ok(()),
            }
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Forgets everything downloaded so far.
    pub async fn reset(&self) -> io::Result<()> {
        if self.opened.get().is_none() {
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
        let Some(snapshot) = self.state().clone() else {
            return Ok(());
        };
        let file = Arc::clone(&opened.file);
        tokio::task::spawn_blocking(move || {
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
        let staged = match opened.staged {
            Some(staged) => staged,
            None => Staged::from_path(key.clone(), opened.data.clone()).map_err(|source| {
                StorageError::Io {
                    key: key.clone(),
                    source,
                }
            })?,
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

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
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
        if state.is_none() && opened.len() > 0 {
            // Bytes without a trustworthy state are worthless: completeness is
            // never inferred from the data itself.
            file.set_len(0)?;
        }
        return Ok(Some((file, state)));
    }
    Err(io::Error::other(
        "the resumable download file keeps being replaced",
    ))
}
