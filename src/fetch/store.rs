//! Fetch, verify, store: what the single leader of a fetch does for each kind of
//! artifact. Nothing becomes visible in storage before it has passed validation
//! and, for `.mod` and `.zip`, the checksum database.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::body::{hex, unix_now};
use super::{FetchError, Fetcher, Ready, validate};
use crate::cache::{ArtifactKey, ArtifactKind, Sidecar};
use crate::download::{IN_MEMORY_MAX, Job, Target};
use crate::flight::Tail;
use crate::gomod::version::RequestedVersion;
use crate::gomod::{self, dirhash, zip::MAX_GO_MOD, zip::MAX_ZIP_FILE};
use crate::metrics::Verification;
use crate::storage::{Object, ObjectBody, PutMode, PutOutcome};
use crate::sumdb::client::{ModuleHashes, SumDbError};
use crate::upstream::{AttemptError, BodyError, Fetched, UpstreamError, read_limited};

/// A checksum mismatch seen while taking in an upstream's answer: (got, want).
type Mismatch = Mutex<Option<(String, String)>>;

/// Where a verified artifact is when the fetch answers its waiters.
enum Landing {
    /// Already published in storage.
    Stored,
    /// In memory only; written to storage behind the answer.
    Bytes(Bytes),
    /// In memory, and in a checked download file published behind the answer.
    Download { bytes: Bytes, target: Box<Target> },
}

impl Fetcher {
    /// Fetches and verifies `key`. What is fetched is handed back to the
    /// waiting requests at once; storing it (the artifact if it is still in
    /// memory, its metadata, the index) is the returned tail, so no request
    /// waits on fsyncs it does not need.
    pub(super) async fn fetch_and_store(
        self: Arc<Self>,
        key: ArtifactKey,
    ) -> Result<(Ready, Option<Tail>), FetchError> {
        let key = &key;
        let name = key.display_name();
        let path = key.storage_key();
        let started = std::time::Instant::now();
        // Zips wait for a download slot first; a zip that another fetch (or
        // process) stored while this one queued must not be downloaded a
        // second time. Without a wait, the cache was read just before this
        // fetch started, and a fetch stays registered until what it fetched
        // is stored: only a rare race can fetch something twice, and the
        // no-clobber publish keeps the first copy.
        let slot = match &key.kind {
            ArtifactKind::Zip(_) => Some(self.slots.acquire(&name).await),
            _ => None,
        };
        if slot.as_ref().is_some_and(|slot| slot.waited)
            && matches!(self.storage.head(&path).await, Ok(Some(_)))
        {
            return Ok((Ready::Stored, None));
        }
        let expected = self.expected_hashes(key).await.inspect_err(|e| {
            if matches!(e, FetchError::Sumdb { source, .. } if !matches!(source, SumDbError::NotFound { .. }))
            {
                self.metrics.verification(Verification::Failed);
            }
        })?;
        let mismatch: Mismatch = Mutex::new(None);
        let outcome = match &key.kind {
            ArtifactKind::Zip(version) => {
                self.fetch_zip(key, version, expected.as_deref(), &mismatch)
                    .await
            }
            _ => self.fetch_small(key, expected.as_deref(), &mismatch).await,
        };
        let mismatched = mismatch.lock().map(|m| m.is_some()).unwrap_or(false);
        if mismatched {
            self.metrics.verification(Verification::Mismatch);
        } else if expected.is_some() && outcome.is_ok() {
            self.metrics.verification(Verification::Ok);
        }
        match outcome {
            Ok((sidecar, landing)) => {
                self.negative.remove(key);
                self.refresh_failed.remove(key);
                self.prefetch_after(key);
                tracing::info!(artifact = %name, upstream = %sidecar.upstream, bytes = sidecar.size, verified = sidecar.h1.is_some(), elapsed_ms = started.elapsed().as_millis() as u64, "fetched");
                // The stored file gets this time too, so the validators of
                // this answer stay true for every later one.
                let modified = SystemTime::now();
                let ready = match &landing {
                    Landing::Bytes(bytes) | Landing::Download { bytes, .. } => Ready::Memory {
                        bytes: bytes.clone(),
                        modified,
                    },
                    Landing::Stored => Ready::Stored,
                };
                let this = Arc::clone(&self);
                let key = key.clone();
                let tail: Tail = Box::pin(async move {
                    this.store_behind(&key, sidecar, landing, modified).await;
                    // Held until the zip is stored: at most
                    // `max_concurrent_downloads` zips are in memory or being
                    // written, however slow the disk.
                    drop(slot);
                });
                Ok((ready, Some(tail)))
            }
            // A mismatch outranks whatever else the upstreams said: it is the news.
            Err(_) if mismatched => {
                let (got, want) = mismatch.into_inner().ok().flatten().unwrap_or_default();
                Err(FetchError::Security { name, got, want })
            }
            Err(FetchError::Upstream {
                source: source @ UpstreamError::NotFound { .. },
                ..
            }) => {
                // Only "not found everywhere" is remembered; a mix with failures
                // may turn out differently on the next try.
                if source.all_not_found() {
                    self.negative.insert(key.clone());
                }
                Err(FetchError::NotFound { name, source })
            }
            Err(FetchError::Upstream {
                source: UpstreamError::Local(reason),
                ..
            }) => Err(FetchError::Internal { name, reason }),
            Err(FetchError::Upstream {
                source: UpstreamError::Private { .. },
                ..
            }) => Err(FetchError::Private { name }),
            Err(e) => Err(e),
        }
    }

    /// The hashes the checksum database records for a `.mod` or `.zip`, or None
    /// when it is not consulted (off, GONOSUMDB, or a private module: GOPRIVATE,
    /// GONOPROXY or a private upstream's; such names never reach it, as the go
    /// command treats private modules as GONOSUMDB).
    async fn expected_hashes(
        &self,
        key: &ArtifactKey,
    ) -> Result<Option<Arc<ModuleHashes>>, FetchError> {
        let version = match &key.kind {
            ArtifactKind::Mod(v) | ArtifactKind::Zip(v) => v,
            _ => return Ok(None),
        };
        let Some(sumdb) = &self.sumdb else {
            return Ok(None);
        };
        let module = key.module.as_str();
        if self.settings.gonosumdb.matches(module) || self.settings.is_private(module) {
            return Ok(None);
        }
        sumdb
            .lookup(&key.module, version)
            .await
            .map(Some)
            .map_err(|source| FetchError::Sumdb {
                name: key.display_name(),
                source,
            })
    }

    /// The tail of a fetch: publishes what was answered from memory, keeps
    /// it in the memory cache (with the stored file's metadata, so both
    /// answer with the same validators), then writes the metadata. A failed
    /// store is logged; the artifact was served, and the next request for it
    /// fetches it again.
    async fn store_behind(
        &self,
        key: &ArtifactKey,
        sidecar: Sidecar,
        landing: Landing,
        modified: SystemTime,
    ) {
        let mode = if key.is_immutable() {
            PutMode::IfAbsent
        } else {
            PutMode::Overwrite
        };
        let skey = key.storage_key();
        let stored = match landing {
            Landing::Stored => Ok(None),
            Landing::Bytes(bytes) => self
                .storage
                .put_bytes_at(&skey, bytes.clone(), mode, modified)
                .await
                .map(|outcome| Some((outcome, bytes))),
            Landing::Download { bytes, target } => {
                // A rename keeps the time; a failure here only costs a
                // client's conditional request a full answer.
                if let Ok(file) = target.file() {
                    let _ = file.set_modified(modified);
                }
                target.commit().await.map(|outcome| Some((outcome, bytes)))
            }
        };
        match stored {
            Ok(Some((PutOutcome::Written(meta), bytes))) => {
                if let Some(hot) = &self.hot {
                    hot.offer(
                        key,
                        &skey,
                        Object {
                            meta,
                            body: ObjectBody::Bytes(bytes),
                        },
                    );
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(artifact = %key.display_name(), error = %e, "could not store a fetched artifact in the cache; it was served, and will be fetched again");
                self.metrics.store_failed();
                if !key.is_immutable() {
                    // As for a failed refresh: the cached copy (if any) is
                    // served for a while instead of asking the upstreams on
                    // every request.
                    self.refresh_failed.insert(key.clone());
                }
                return;
            }
        }
        self.metrics.cache_changed();
        self.write_metadata(key, &sidecar).await;
    }

    /// Sidecar metadata, and for zips the Go module cache's `.ziphash`, so the
    /// verified hash can be checked again later without the network. Both are
    /// conveniences: failing to write them must not fail the fetch.
    async fn write_metadata(&self, key: &ArtifactKey, sidecar: &Sidecar) {
        let path = key.storage_key();
        let mut writes = vec![(Sidecar::key_for(&path), sidecar.to_bytes())];
        if let (ArtifactKind::Zip(_), Some(h1)) = (&key.kind, &sidecar.h1) {
            writes.push((format!("{path}hash"), Bytes::from(format!("{h1}\n"))));
        }
        if let Err(e) = self.storage.put_records(writes).await {
            tracing::warn!(artifact = %key.display_name(), error = %e, "could not write metadata");
        }
    }

    async fn fetch_small(
        &self,
        key: &ArtifactKey,
        expected: Option<&ModuleHashes>,
        mismatch: &Mismatch,
    ) -> Result<(Sidecar, Landing), FetchError> {
        let name = key.display_name();
        let limit = match key.kind {
            ArtifactKind::List => validate::MAX_LIST,
            ArtifactKind::Mod(_) => MAX_GO_MOD,
            _ => validate::MAX_INFO,
        };
        let check = |body: &[u8]| -> Result<(), String> {
            match &key.kind {
                ArtifactKind::List => validate::list(body),
                ArtifactKind::Latest | ArtifactKind::Info(RequestedVersion::Query(_)) => {
                    validate::info(body, None)
                }
                ArtifactKind::Info(RequestedVersion::Canonical(v)) => validate::info(body, Some(v)),
                ArtifactKind::Mod(_) => {
                    validate::go_mod(body, &key.module)?;
                    match expected {
                        Some(want) => compare(dirhash::hash_go_mod(body), &want.go_mod, mismatch),
                        None => Ok(()),
                    }
                }
                ArtifactKind::Zip(_) => Err("zips are not small".to_owned()),
            }
        };
        let fetched: Fetched<Bytes> = self
            .upstreams
            .fetch(
                key.module.as_str(),
                &key.storage_key(),
                |response| async move {
                    let body = read_limited(response, limit).await?;
                    check(&body).map_err(BodyError::Invalid)?;
                    Ok(body)
                },
            )
            .await
            .map_err(|source| FetchError::Upstream {
                name: name.clone(),
                source,
            })?;
        self.metrics.upstream_bytes(
            crate::metrics::artifact_kind(&key.kind),
            fetched.value.len() as u64,
        );
        let sidecar = Sidecar {
            fetched_at: unix_now(),
            upstream: fetched.upstream,
            etag: fetched.etag,
            sha256: hex(&Sha256::digest(&fetched.value)),
            size: fetched.value.len() as u64,
            h1: expected.map(|e| e.go_mod.clone()),
        };
        Ok((sidecar, Landing::Bytes(fetched.value)))
    }

    async fn fetch_zip(
        &self,
        key: &ArtifactKey,
        version: &gomod::Version,
        expected: Option<&ModuleHashes>,
        mismatch: &Mismatch,
    ) -> Result<(Sidecar, Landing), FetchError> {
        let name = key.display_name();
        let path = key.storage_key();
        let storage_err = |source| FetchError::Storage {
            name: name.clone(),
            source,
        };
        let target = Target::open(Arc::clone(&self.storage), &path)
            .await
            .map_err(storage_err)?;
        let transfer = self.progress.start(name.clone());
        let (target_ref, transfer_ref) = (&target, &transfer);
        let fetched = self
            .upstreams
            .fetch_with(key.module.as_str(), &path, |endpoint| {
                let target = target_ref;
                let job = Job {
                    endpoint,
                    target,
                    settings: &self.settings,
                    transfer: transfer_ref,
                    limit: MAX_ZIP_FILE,
                    metrics: &self.metrics,
                };
                async move {
                    let etag = job.run().await?;
                    match self
                        .check_zip(key, version, target, expected, mismatch)
                        .await
                    {
                        Ok(checked) => Ok((checked, etag)),
                        Err(BodyError::Local(reason)) => Err(AttemptError::Local(reason)),
                        Err(BodyError::Invalid(reason) | BodyError::Transient(reason)) => {
                            // Bad content must not be resumed by the next attempt.
                            if let Err(e) = target.reset().await {
                                return Err(AttemptError::Local(format!(
                                    "cannot discard an invalid download: {e}"
                                )));
                            }
                            Err(AttemptError::Fatal(format!("invalid response: {reason}")))
                        }
                    }
                }
            })
            .await;
        let fetched = match fetched {
            Ok(fetched) => fetched,
            Err(source) => {
                transfer.failed(source.to_string());
                target.abandon().await;
                return Err(FetchError::Upstream { name, source });
            }
        };
        let (size, sha256, memory) = fetched.value;
        let (upstream, etag) = (fetched.upstream, fetched.etag);
        let sidecar = |sha256, size| Sidecar {
            fetched_at: unix_now(),
            upstream,
            etag,
            sha256,
            size,
            h1: expected.map(|e| e.zip.clone()),
        };
        let landing = match (memory, target.path().is_some()) {
            // Downloaded into memory: no file exists yet, the tail writes one.
            (Some(bytes), false) => Landing::Bytes(bytes),
            // Small enough to answer from memory; the file is published behind.
            (Some(bytes), true) => Landing::Download {
                bytes,
                target: Box::new(target),
            },
            (None, _) => match target.commit().await {
                Ok(_) => Landing::Stored,
                Err(e) => {
                    transfer.failed(e.to_string());
                    return Err(storage_err(e));
                }
            },
        };
        transfer.succeeded();
        Ok((sidecar(sha256, size), landing))
    }

    /// Checks a downloaded zip before it may become visible: a valid module
    /// zip for this module and version, and the checksum database's hash when
    /// there is one. Returns its size and SHA-256.
    async fn check_zip(
        &self,
        key: &ArtifactKey,
        version: &gomod::Version,
        target: &Target,
        expected: Option<&ModuleHashes>,
        mismatch: &Mismatch,
    ) -> Result<(u64, String, Option<Bytes>), BodyError> {
        let module = key.module.clone();
        let version = version.clone();
        let body = target.take_memory();
        let path = match &body {
            Some(_) => None,
            None => Some(
                target
                    .path()
                    .ok_or_else(|| BodyError::Local("the download left no file".to_owned()))?
                    .to_owned(),
            ),
        };
        let hash_h1 = expected.is_some();
        let inline = body
            .as_ref()
            .is_some_and(|b| b.len() as u64 <= INLINE_CHECK_MAX);
        let check = move || -> Result<_, String> {
            let text = |e: gomod::GoModError| e.to_string();
            let io = |e: std::io::Error| e.to_string();
            // A small file is read once, and the bytes checked are the bytes
            // answered.
            let body = match (body, &path) {
                (Some(bytes), _) => Some(bytes),
                (None, Some(path))
                    if std::fs::metadata(path).map_err(io)?.len() <= IN_MEMORY_MAX =>
                {
                    Some(Bytes::from(std::fs::read(path).map_err(io)?))
                }
                _ => None,
            };
            match (body, path) {
                (Some(bytes), _) => {
                    gomod::zip::check_zip_bytes(&module, &version, &bytes).map_err(text)?;
                    let sha256 = hex(&Sha256::digest(&bytes));
                    let h1 = match hash_h1 {
                        true => Some(dirhash::hash_zip_bytes(&bytes).map_err(text)?),
                        false => None,
                    };
                    Ok((bytes.len() as u64, sha256, h1, Some(bytes)))
                }
                (None, Some(path)) => {
                    gomod::zip::check_zip(&module, &version, &path).map_err(text)?;
                    let (size, sha256) = sha256_file(&path).map_err(io)?;
                    let h1 = match hash_h1 {
                        true => Some(dirhash::hash_zip(&path).map_err(text)?),
                        false => None,
                    };
                    Ok((size, sha256, h1, None))
                }
                (None, None) => Err("the download left nothing to check".to_owned()),
            }
        };
        // Validation and hashing read the whole zip: off the async threads,
        // unless it is so small that the trip to the blocking pool (a thread
        // wake-up each way) would take longer than the check.
        let checked = if inline {
            check()
        } else {
            tokio::task::spawn_blocking(check)
                .await
                .map_err(|e| BodyError::Local(format!("zip check task failed: {e}")))?
        };
        let (size, sha256, h1, bytes) = checked.map_err(BodyError::Invalid)?;
        if let (Some(got), Some(want)) = (h1, expected) {
            compare(got, &want.zip, mismatch).map_err(BodyError::Invalid)?;
        }
        Ok((size, sha256, bytes))
    }
}

/// Zips up to this size are checked on the async thread that downloaded
/// them: tens of microseconds of work at most.
const INLINE_CHECK_MAX: u64 = 64 * 1024;

/// Size and hex SHA-256 of a file, read in blocks.
fn sha256_file(path: &std::path::Path) -> std::io::Result<(u64, String)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex(&hasher.finalize())))
}

/// Compares a computed hash with the checksum database's, remembering a mismatch
/// so the final answer can say so even if another upstream is tried after it.
fn compare(got: String, want: &str, mismatch: &Mismatch) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    tracing::error!(
        got,
        want,
        "SECURITY ERROR: checksum mismatch with the checksum database"
    );
    let reason = format!("checksum mismatch: downloaded {got}, checksum database {want}");
    if let Ok(mut slot) = mismatch.lock() {
        *slot = Some((got, want.to_owned()));
    }
    Err(reason)
}
