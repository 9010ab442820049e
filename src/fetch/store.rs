//! Fetch, verify, store: what the single leader of a fetch does for each kind of
//! artifact. Nothing becomes visible in storage before it has passed validation
//! and, for `.mod` and `.zip`, the checksum database.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::body::{hex, stream_to_file, unix_now};
use super::{FetchError, Fetcher, validate};
use crate::cache::{ArtifactKey, ArtifactKind, Sidecar};
use crate::gomod::version::RequestedVersion;
use crate::gomod::{self, dirhash, zip::MAX_GO_MOD, zip::MAX_ZIP_FILE};
use crate::storage::{PutMode, Staged};
use crate::sumdb::client::ModuleHashes;
use crate::upstream::{BodyError, Fetched, UpstreamError, read_limited};

/// A checksum mismatch seen while taking in an upstream's answer: (got, want).
type Mismatch = Mutex<Option<(String, String)>>;

impl Fetcher {
    pub(super) async fn fetch_and_store(&self, key: &ArtifactKey) -> Result<(), FetchError> {
        let name = key.display_name();
        let path = key.storage_key();
        let started = std::time::Instant::now();
        // A request that missed just before another fetch stored this artifact
        // must not download it a second time.
        if key.is_immutable() && matches!(self.storage.head(&path).await, Ok(Some(_))) {
            return Ok(());
        }
        let expected = self.expected_hashes(key).await?;
        let mismatch: Mismatch = Mutex::new(None);
        let outcome = match &key.kind {
            ArtifactKind::Zip(version) => {
                self.fetch_zip(key, version, expected.as_deref(), &mismatch)
                    .await
            }
            _ => self.fetch_small(key, expected.as_deref(), &mismatch).await,
        };
        match outcome {
            Ok(sidecar) => {
                self.negative.remove(key);
                self.refresh_failed.remove(key);
                tracing::info!(artifact = %name, upstream = %sidecar.upstream, bytes = sidecar.size, verified = sidecar.h1.is_some(), elapsed_ms = started.elapsed().as_millis() as u64, "fetched");
                self.write_metadata(key, &sidecar).await;
                Ok(())
            }
            // A mismatch outranks whatever else the upstreams said: it is the news.
            Err(_) if mismatch.lock().map(|m| m.is_some()).unwrap_or(false) => {
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

    /// Sidecar metadata, and for zips the Go module cache's `.ziphash`, so the
    /// verified hash can be checked again later without the network. Both are
    /// conveniences: failing to write them must not fail the fetch.
    async fn write_metadata(&self, key: &ArtifactKey, sidecar: &Sidecar) {
        let path = key.storage_key();
        let mut writes = vec![(Sidecar::key_for(&path), sidecar.to_bytes())];
        if let (ArtifactKind::Zip(_), Some(h1)) = (&key.kind, &sidecar.h1) {
            writes.push((format!("{path}hash"), Bytes::from(format!("{h1}\n"))));
        }
        for (meta_key, data) in writes {
            if let Err(e) = self
                .storage
                .put_bytes(&meta_key, data, PutMode::Overwrite)
                .await
            {
                tracing::warn!(artifact = %key.display_name(), error = %e, "could not write metadata");
            }
        }
    }

    async fn fetch_small(
        &self,
        key: &ArtifactKey,
        expected: Option<&ModuleHashes>,
        mismatch: &Mismatch,
    ) -> Result<Sidecar, FetchError> {
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
        let sidecar = Sidecar {
            fetched_at: unix_now(),
            upstream: fetched.upstream,
            etag: fetched.etag,
            sha256: hex(&Sha256::digest(&fetched.value)),
            size: fetched.value.len() as u64,
            h1: expected.map(|e| e.go_mod.clone()),
        };
        let mode = if key.is_immutable() {
            PutMode::IfAbsent
        } else {
            PutMode::Overwrite
        };
        self.storage
            .put_bytes(&key.storage_key(), fetched.value, mode)
            .await
            .map_err(|source| FetchError::Storage { name, source })?;
        Ok(sidecar)
    }

    async fn fetch_zip(
        &self,
        key: &ArtifactKey,
        version: &gomod::Version,
        expected: Option<&ModuleHashes>,
        mismatch: &Mismatch,
    ) -> Result<Sidecar, FetchError> {
        let name = key.display_name();
        // The temp file is created when an upstream first answers 200, so a miss
        // that ends in "not found" leaves nothing (not even directories) behind.
        let staged: tokio::sync::Mutex<Option<Staged>> = tokio::sync::Mutex::new(None);
        let want = expected.map(|e| e.zip.clone());
        let fetched = self
            .upstreams
            .fetch(key.module.as_str(), &key.storage_key(), |response| {
                let module = key.module.clone();
                let version = version.clone();
                let want = want.clone();
                let staged = &staged;
                async move {
                    let path = {
                        let mut slot = staged.lock().await;
                        let file = match slot.take() {
                            Some(file) => file,
                            None => self.storage.stage(&key.storage_key()).await.map_err(|e| {
                                BodyError::Local(format!(
                                    "cannot create a temp file in the cache: {e}"
                                ))
                            })?,
                        };
                        let path = file.path().to_owned();
                        *slot = Some(file);
                        path
                    };
                    let (size, sha256) = stream_to_file(response, &path, MAX_ZIP_FILE).await?;
                    // Validation and hashing read the whole zip: off the async threads.
                    let checked =
                        tokio::task::spawn_blocking(move || -> Result<Option<String>, String> {
                            gomod::zip::check_zip(&module, &version, &path)
                                .map_err(|e| e.to_string())?;
                            match want {
                                Some(_) => dirhash::hash_zip(&path)
                                    .map(Some)
                                    .map_err(|e| e.to_string()),
                                None => Ok(None),
                            }
                        })
                        .await
                        .map_err(|e| BodyError::Local(format!("zip check task failed: {e}")))?;
                    let got = checked.map_err(BodyError::Invalid)?;
                    if let (Some(got), Some(want)) = (got, &expected) {
                        compare(got, &want.zip, mismatch).map_err(BodyError::Invalid)?;
                    }
                    Ok((size, sha256))
                }
            })
            .await
            .map_err(|source| FetchError::Upstream {
                name: name.clone(),
                source,
            })?;
        let Some(staged) = staged.into_inner() else {
            return Err(FetchError::Internal {
                name,
                reason: "the download left no temp file".to_owned(),
            });
        };
        let (size, sha256) = fetched.value;
        self.storage
            .commit(staged, PutMode::IfAbsent)
            .await
            .map_err(|source| FetchError::Storage {
                name: name.clone(),
                source,
            })?;
        Ok(Sidecar {
            fetched_at: unix_now(),
            upstream: fetched.upstream,
            etag: fetched.etag,
            sha256,
            size,
            h1: want,
        })
    }
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
