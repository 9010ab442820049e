//! Where cached bytes live. A small async trait shaped so that an object store can
//! implement it as well as a filesystem: keys are `/`-separated relative paths
//! (e.g. `github.com/!azure/go/@v/v1.0.0.zip`), values are immutable blobs except
//! where the caller overwrites on purpose (lists).

pub mod cached_io;
#[cfg(test)]
mod compliance;
pub mod fs;
pub mod memory;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid storage key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("range {start}..{end} is outside an object of {size} bytes")]
    InvalidRange { start: u64, end: u64, size: u64 },
    #[error("storage I/O error on {key:?}: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, StorageError>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub modified: SystemTime,
}

impl ObjectMeta {
    /// A strong validator (`ETag`). Stored objects are never modified in
    /// place (they are replaced by rename), so size and modification time
    /// identify the bytes.
    pub fn etag(&self) -> String {
        let nanos = self
            .modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(std::time::Duration::ZERO)
            .as_nanos();
        format!("\"{nanos:x}-{:x}\"", self.size)
    }

    /// The modification time as an HTTP date (`Last-Modified`).
    pub fn http_date(&self) -> String {
        httpdate::fmt_http_date(self.modified)
    }
}

/// The bytes of an object (or of the requested range of it).
pub enum ObjectBody {
    /// An open file positioned at the start of the requested bytes; read exactly `len`.
    File {
        file: tokio::fs::File,
        len: u64,
    },
    Bytes(Bytes),
}

pub struct Object {
    /// Metadata of the whole object (not of the range).
    pub meta: ObjectMeta,
    pub body: ObjectBody,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Replace what is there (atomically: readers see the old or the new object).
    Overwrite,
    /// Keep an existing object; the new bytes are dropped.
    IfAbsent,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    Written(ObjectMeta),
    /// `PutMode::IfAbsent` found an object already there.
    AlreadyExists(ObjectMeta),
}

impl PutOutcome {
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            PutOutcome::Written(m) | PutOutcome::AlreadyExists(m) => m,
        }
    }
}

/// A local file that a large object is written into before it is committed under
/// its key. Dropping it without `commit` deletes the file.
pub struct Staged {
    key: String,
    file: tempfile::NamedTempFile,
}

impl Staged {
    pub fn new(key: String, file: tempfile::NamedTempFile) -> Self {
        Staged { key, file }
    }
    pub fn key(&self) -> &str {
        &self.key
    }
    pub fn path(&self) -> &Path {
        self.file.path()
    }
    pub fn file(&self) -> &std::fs::File {
        self.file.as_file()
    }
    /// Adopts an existing local file (e.g. a finished resumable download) as the
    /// staged content of `key`; it is deleted if never committed.
    pub fn from_path(key: String, path: PathBuf) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)?;
        let path = tempfile::TempPath::try_from_path(path)?;
        Ok(Staged {
            key,
            file: tempfile::NamedTempFile::from_parts(file, path),
        })
    }
    pub fn into_parts(self) -> (String, tempfile::NamedTempFile) {
        (self.key, self.file)
    }
}

/// The storage contract. Every method is safe to call concurrently, from several
/// processes too for backends that are shared.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Metadata of `key`, or `None` if absent.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>>;
    /// The whole object, or `None` if absent. A reader never sees a partial object.
    async fn get(&self, key: &str) -> Result<Option<Object>>;
    /// Bytes `range` of the object; `InvalidRange` if it does not fit inside it.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Option<Object>>;
    /// Store small bytes under `key`, atomically.
    async fn put_bytes(&self, key: &str, data: Bytes, mode: PutMode) -> Result<PutOutcome>;
    /// As `put_bytes`, with the object's modification time set to `modified`,
    /// so validators already given out for these bytes stay true. Backends
    /// that cannot set it store the bytes with their own time.
    async fn put_bytes_at(
        &self,
        key: &str,
        data: Bytes,
        mode: PutMode,
        modified: std::time::SystemTime,
    ) -> Result<PutOutcome> {
        let _ = modified;
        self.put_bytes(key, data, mode).await
    }
    /// Stores small records derived from other objects (metadata), each
    /// replacing what is under its key whole, never seen half-written. They
    /// are not made durable one by one as objects are: after a crash one may
    /// be missing or empty, and readers must treat such a record as absent.
    /// Backends that can write several at once should.
    async fn put_records(&self, records: Vec<(String, Bytes)>) -> Result<()> {
        for (key, data) in records {
            self.put_bytes(&key, data, PutMode::Overwrite).await?;
        }
        Ok(())
    }

    /// A local temp file to fill with the future content of `key` (for large objects).
    async fn stage(&self, key: &str) -> Result<Staged>;
    /// A fixed local path where a download of `key` can keep its bytes across
    /// restarts, so an interrupted download resumes instead of starting over;
    /// with `create`, its directory is created. `None`: this backend keeps no
    /// such files, and downloads use `stage` instead. Commit it with
    /// [`Staged::from_path`].
    async fn resumable_path(&self, key: &str, create: bool) -> Result<Option<PathBuf>> {
        let _ = (key, create);
        Ok(None)
    }
    /// Publish a staged file under its key, atomically (fsync before it becomes visible).
    async fn commit(&self, staged: Staged, mode: PutMode) -> Result<PutOutcome>;
    /// Remove `key`; `false` if it was absent.
    async fn delete(&self, key: &str) -> Result<bool>;
    /// Every key that starts with `prefix`, sorted. Temp files are never listed.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Like `list`, with each object's metadata; objects removed meanwhile are
    /// left out. Backends override it when they can do better than a `head` per key.
    async fn list_with_meta(&self, prefix: &str) -> Result<Vec<(String, ObjectMeta)>> {
        let mut out = Vec::new();
        for key in self.list(prefix).await? {
            if let Some(meta) = self.head(&key).await? {
                out.push((key, meta));
            }
        }
        Ok(out)
    }
    /// Removes many keys; returns how many existed. Backends override it when a
    /// batch is cheaper than one `delete` per key.
    async fn delete_many(&self, keys: &[String]) -> Result<usize> {
        let mut removed = 0;
        for key in keys {
            if self.delete(key).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }
    /// Can we read and write right now? (readiness probe)
    async fn check_ready(&self) -> Result<()>;
    /// A human description for logs, e.g. `filesystem at ./cache`.
    fn describe(&self) -> String;
    /// The local directory of a filesystem backend (used to serve `file://`-style trees).
    fn local_root(&self) -> Option<PathBuf> {
        None
    }
}

/// Rejects keys that could escape a root or alias another key: empty, absolute,
/// `.`/`..`/empty segments, backslashes, NUL and other control characters.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |reason| {
        Err(StorageError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > 4096 {
        return bad("too long");
    }
    if key.starts_with('/') {
        return bad("absolute");
    }
    if key.contains('\\') {
        return bad("backslash");
    }
    if key.chars().any(|c| c.is_control()) {
        return bad("control character");
    }
    for seg in key.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return bad("empty, '.' or '..' segment");
        }
    }
    Ok(())
}

/// Reads a whole object into memory; for small objects only.
pub async fn read_all(object: Object) -> std::io::Result<Bytes> {
    use tokio::io::AsyncReadExt;
    match object.body {
        ObjectBody::Bytes(bytes) => Ok(bytes),
        ObjectBody::File { file, len } => {
            let mut buf = Vec::with_capacity(len.min(1 << 20) as usize);
            file.take(len).read_to_end(&mut buf).await?;
            Ok(Bytes::from(buf))
        }
    }
}
