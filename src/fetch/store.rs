//! Fetch, verify, store: what the single leader of a fetch does for each kind of
//! artifact. Nothing becomes visible in storage before it has passed validation.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::body::{hex, read_limited, stream_to_file, unix_now};
use super::{FetchError, Fetcher, validate};
use crate::cache::{ArtifactKey, ArtifactKind, Sidecar};
use crate::gomod::version::RequestedVersion;
use crate::gomod::{self, zip::MAX_GO_MOD, zip::MAX_ZIP_FILE};
use crate::storage::{PutMode, Staged};
use crate::upstream::{BodyError, Fetched, UpstreamError};

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
        let outcome = match &key.kind {
            ArtifactKind::Zip(version) => self.fetch_zip(key, version).await,
            _ => self.fetch_small(key).await,
        };
        match outcome {
            Ok(sidecar) => {
                self.negative.remove(key);
                self.refresh_failed.remove(key);
                tracing::info!(artifact = %name, upstream = %sidecar.upstream, bytes = sidecar.size, elapsed_ms = started.elapsed().as_millis() as u64, "fetched");
                // Metadata is a convenience: failing to write it must not fail the fetch.
                if let Err(e) = self
                    .storage
                    .put_bytes(
                        &Sidecar::key_for(&path),
                        sidecar.to_bytes(),
                        PutMode::Overwrite,
                    )
                    .await
                {
                    tracing::warn!(artifact = %name, error = %e, "could not write sidecar metadata");
                }
                Ok(())
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
            Err(e) => Err(e),
        }
    }

    async fn fetch_small(&self, key: &ArtifactKey) -> Result<Sidecar, FetchError> {
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
                ArtifactKind::Mod(_) => validate::go_mod(body, &key.module),
                ArtifactKind::Zip(_) => Err("zips are not small".to_owned()),
            }
        };
        let fetched: Fetched<Bytes> = self
            .upstreams
            .fetch(&key.storage_key(), |response| async move {
                let body = read_limited(response, limit).await?;
                check(&body).map_err(BodyError::Invalid)?;
                Ok(body)
            })
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
    ) -> Result<Sidecar, FetchError> {
        let name = key.display_name();
        let storage_err = |source| FetchError::Storage {
            name: name.clone(),
            source,
        };
        // The temp file is created when an upstream first answers 200, so a miss
        // that ends in "not found" leaves nothing (not even directories) behind.
        let staged: tokio::sync::Mutex<Option<Staged>> = tokio::sync::Mutex::new(None);
        let module = key.module.clone();
        let version = version.clone();
        let fetched = self
            .upstreams
            .fetch(&key.storage_key(), |response| {
                let module = module.clone();
                let version = version.clone();
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
                    let check = tokio::task::spawn_blocking(move || {
                        gomod::zip::check_zip(&module, &version, &path)
                    })
                    .await
                    .map_err(|e| BodyError::Local(format!("zip check task failed: {e}")))?;
                    check.map_err(|e| BodyError::Invalid(e.to_string()))?;
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
            .map_err(storage_err)?;
        Ok(Sidecar {
            fetched_at: unix_now(),
            upstream: fetched.upstream,
            etag: fetched.etag,
            sha256,
            size,
        })
    }
}
