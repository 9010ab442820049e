//! A verifying checksum-database client, as the go command's: every lookup's
//! signed tree head is checked with the database's key, the record is proved to be
//! in that tree with hash tiles, and every tree head is proved consistent with
//! the last one trusted (kept in the cache, so a forked log is caught across
//! restarts too).

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Mutex;

use super::config::SumDbSpec;
use super::note::{self, TreeHead, Verifier};
use super::remote::Remote;
use super::tlog::{ConsistencyCheck, RecordCheck, Tile, TlogError, Tree};
use crate::flight::Flights;
use crate::gomod::{ModulePath, Version};
use crate::storage::{PutMode, Storage};
use crate::upstream::UrlError;

#[derive(Clone, Debug, thiserror::Error)]
pub enum SumDbError {
    #[error(
        "checksum database {name} is unreachable: {reason} (set GOSUMDB or --gosumdb to off to skip verification, \
         or to \"<key> <url>\" to reach the database at another address)"
    )]
    Unreachable { name: String, reason: String },
    #[error(
        "checksum database {name} has no record of {module} (for a private module, add its path to GONOSUMDB or GOPRIVATE)"
    )]
    NotFound { name: String, module: String },
    #[error("SECURITY ERROR: {0}")]
    Security(String),
    #[error("checksum database {name} sent an invalid response: {reason}")]
    Malformed { name: String, reason: String },
}

/// The go.sum hashes the database records for one module version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleHashes {
    pub zip: String,
    pub go_mod: String,
}

pub struct SumDb {
    spec: SumDbSpec,
    verifier: Verifier,
    remote: Arc<Remote>,
    storage: Arc<dyn Storage>,
    /// Serializes reading and advancing the trusted tree head.
    trusted: Mutex<()>,
    lookups: Flights<String, Arc<ModuleHashes>, SumDbError>,
}

impl SumDb {
    pub fn new(spec: SumDbSpec, remote: Arc<Remote>, storage: Arc<dyn Storage>) -> Self {
        let verifier = spec.verifier.clone();
        SumDb {
            spec,
            verifier,
            remote,
            storage,
            trusted: Mutex::new(()),
            lookups: Flights::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    fn unreachable(&self, reason: impl Into<String>) -> SumDbError {
        SumDbError::Unreachable {
            name: self.spec.name.clone(),
            reason: reason.into(),
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> SumDbError {
        SumDbError::Malformed {
            name: self.spec.name.clone(),
            reason: reason.into(),
        }
    }

    /// Where the database is reached, and a way to fetch from it.
    pub fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// The verified go.sum hashes of `module@version`.
    pub async fn lookup(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Arc<ModuleHashes>, SumDbError> {
        let this = Arc::clone(self);
        let (module, version) = (module.clone(), version.clone());
        let key = format!("{}@{}", module.escaped(), version.escaped());
        let (result, _) = self
            .lookups
            .run(
                key,
                move || async move { this.lookup_uncached(&module, &version).await.map(Arc::new) },
                || SumDbError::Malformed {
                    name: String::new(),
                    reason: "the lookup task panicked".to_owned(),
                },
            )
            .await;
        result.map_err(|e| (*e).clone())
    }

    async fn lookup_uncached(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<ModuleHashes, SumDbError> {
        let path = format!("lookup/{}@{}", module.escaped(), version.escaped());
        let cache_key = format!("sumdb/{}/{path}", self.spec.name);
        let cached = self.read_cached(&cache_key).await;
        let body = match cached {
            Some(body) => body,
            None => match self.remote.get(&path).await {
                Ok(body) => body,
                Err(UrlError::NotFound(_)) => {
                    return Err(SumDbError::NotFound {
                        name: self.spec.name.clone(),
                        module: format!("{module}@{version}"),
                    });
                }
                Err(e) => return Err(self.unreachable(e.to_string())),
            },
        };
        let record = self.verify_lookup(&body).await?;
        let hashes = self.hashes_of(record, module, version)?;
        if let Err(e) = self
            .storage
            .put_bytes(&cache_key, body.clone(), PutMode::IfAbsent)
            .await
        {
            tracing::warn!(error = %e, "could not cache a checksum database lookup");
        }
        Ok(hashes)
    }

    /// The hashes for `module@version` in a verified record. A verified record
    /// of another module is an answer to a different question (a swapped
    /// response): refused as a security error, never cached.
    pub fn hashes_of(
        &self,
        record: &[u8],
        module: &ModulePath,
        version: &Version,
    ) -> Result<ModuleHashes, SumDbError> {
        hashes_for(record, module, version).map_err(|e| {
            SumDbError::Security(format!("checksum database {} answered the lookup of {module}@{version} with another record: {e}", self.spec.name))
        })
    }

    /// Checks a lookup response completely (signed tree head, consistency with
    /// the trusted head, the record's inclusion proof) and returns its record
    /// text. Only lookups that pass are ever cached, by this client or by the
    /// `/sumdb/` pass-through.
    pub async fn verify_lookup<'a>(&self, body: &'a [u8]) -> Result<&'a [u8], SumDbError> {
        let (id, record, signed) = split_lookup(body).map_err(|e| self.malformed(e))?;
        let head = self.open_tree(signed)?;
        self.check_and_advance(&head, signed).await?;
        self.prove_record(&head, id, record).await?;
        Ok(record)
    }

    async fn read_cached(&self, key: &str) -> Option<Bytes> {
        match self.storage.get(key).await {
            Ok(Some(object)) => crate::storage::read_all(object).await.ok(),
            _ => None,
        }
    }

    /// Checks `head` against the last trusted tree head and, if it is newer and
    /// consistent, makes it the trusted one. Any inconsistency is a fork: the
    /// database (or someone in between) showed two different histories.
    async fn check_and_advance(&self, head: &TreeHead, signed: &[u8]) -> Result<(), SumDbError> {
        let _guard = self.trusted.lock().await;
        let key = format!("sumdb/{}/trusted-latest", self.spec.name);
        // Only a trusted head that is really absent means "first use": a read
        // error must fail closed, or a fork could be trusted unchecked.
        let stored = match self.storage.get(&key).await {
            Ok(Some(object)) => Some(crate::storage::read_all(object).await.map_err(|e| {
                SumDbError::Security(format!(
                    "cannot read the trusted checksum database tree head: {e}"
                ))
            })?),
            Ok(None) => None,
            Err(e) => {
                return Err(SumDbError::Security(format!(
                    "cannot read the trusted checksum database tree head: {e}"
                )));
            }
        };
        let trusted = match stored {
            Some(bytes) => Some(self.open_tree(&bytes)?),
            None => None,
        };
        let advance = match &trusted {
            None => true,
            Some(old) if old.size < head.size => {
                self.check_consistency(old, head).await?;
                true
            }
            Some(old) if old.size > head.size => {
                self.check_consistency(head, old).await?;
                false
            }
            Some(old) if old.hash != head.hash => {
                return Err(self.fork(old, head, "same size, different root"));
            }
            Some(_) => false,
        };
        if advance
            && let Err(e) = self
                .storage
                .put_bytes(&key, Bytes::copy_from_slice(signed), PutMode::Overwrite)
                .await
        {
            tracing::warn!(error = %e, "could not persist the trusted checksum database tree head");
        }
        Ok(())
    }

    async fn check_consistency(
        &self,
        older: &TreeHead,
        newer: &TreeHead,
    ) -> Result<(), SumDbError> {
        let check = ConsistencyCheck::new(tree(older), tree(newer), TILE_HEIGHT)
            .map_err(|e| self.malformed(format!("consistency check: {e}")))?;
        let data = self.read_tiles(check.tiles()).await?;
        match check.verify(&data) {
            Ok(()) => self.cache_tiles(check.tiles(), &data).await,
            // Tiles that do not authenticate are bad data, not proof of a fork.
            Err(e) if !matches!(e, TlogError::Inconsistent { .. }) => {
                Err(SumDbError::Security(format!(
                    "checksum database {}: tiles for the consistency check do not verify: {e}",
                    self.spec.name
                )))
            }
            Err(e) => {
                let (old, new) = if older.size <= newer.size {
                    (older, newer)
                } else {
                    (newer, older)
                };
                Err(self.fork(old, new, &e.to_string()))
            }
        }
    }

    fn fork(&self, trusted: &TreeHead, received: &TreeHead, why: &str) -> SumDbError {
        tracing::error!(
            sumdb = %self.spec.name,
            trusted = %trusted.format().replace('\n', " "),
            received = %received.format().replace('\n', " "),
            why,
            "SECURITY ERROR: checksum database tree heads are inconsistent (misbehaving database or an attack in between)"
        );
        SumDbError::Security(format!(
            "checksum database {} is inconsistent: tree of size {} does not extend tree of size {} ({why}); \
             refusing to trust it",
            self.spec.name,
            received.size.max(trusted.size),
            received.size.min(trusted.size)
        ))
    }

    /// Proves that record `id` with text `record` is in the tree `head`.
    async fn prove_record(
        &self,
        head: &TreeHead,
        id: u64,
        record: &[u8],
    ) -> Result<(), SumDbError> {
        let check = RecordCheck::new(tree(head), TILE_HEIGHT, id, record)
            .map_err(|e| self.malformed(format!("record proof: {e}")))?;
        let data = self.read_tiles(check.tiles()).await?;
        check.verify(&data).map_err(|e| {
            tracing::error!(sumdb = %self.spec.name, id, error = %e, "SECURITY ERROR: checksum database record is not in its signed tree");
            SumDbError::Security(format!("checksum database {}: record {id} is not proved by its signed tree: {e}", self.spec.name))
        })?;
        self.cache_tiles(check.tiles(), &data).await
    }

    /// Tile bytes, from the cache or the database. A partial tile the database no
    /// longer has is cut from the full tile, as the go command does.
    async fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Bytes>, SumDbError> {
        let mut out = Vec::with_capacity(tiles.len());
        for tile in tiles {
            let path = tile.path();
            if let Some(bytes) = self
                .read_cached(&format!("sumdb/{}/{path}", self.spec.name))
                .await
            {
                out.push(bytes);
                continue;
            }
            let bytes = match self.remote.get(&path).await {
                Ok(bytes) => bytes,
                Err(UrlError::NotFound(_)) if !tile.is_full() => {
                    let full = Tile {
                        w: 1 << tile.h,
                        ..*tile
                    };
                    let bytes = self
                        .remote
                        .get(&full.path())
                        .await
                        .map_err(|e| self.unreachable(e.to_string()))?;
                    let want = tile.w as usize * 32;
                    if bytes.len() < want {
                        return Err(self.malformed(format!("tile {} is too short", full.path())));
                    }
                    bytes.slice(..want)
                }
                Err(e) => return Err(self.unreachable(e.to_string())),
            };
            out.push(bytes);
        }
        Ok(out)
    }

    /// Tiles are cached only once they have been authenticated.
    async fn cache_tiles(&self, tiles: &[Tile], data: &[Bytes]) -> Result<(), SumDbError> {
        for (tile, bytes) in tiles.iter().zip(data) {
            let key = format!("sumdb/{}/{}", self.spec.name, tile.path());
            if let Err(e) = self
                .storage
                .put_bytes(&key, bytes.clone(), PutMode::IfAbsent)
                .await
            {
                tracing::warn!(error = %e, "could not cache a checksum database tile");
            }
        }
        Ok(())
    }

    fn open_tree(&self, signed: &[u8]) -> Result<TreeHead, SumDbError> {
        let opened = note::open(signed, std::slice::from_ref(&self.verifier)).map_err(|e| {
            SumDbError::Security(format!(
                "checksum database {}: tree head signature check failed: {e}",
                self.spec.name
            ))
        })?;
        TreeHead::parse_note_text(&opened.text)
            .map_err(|e| self.malformed(format!("tree head: {e}")))
    }
}

/// sum.golang.org and every database the go command talks to use height-8 tiles.
const TILE_HEIGHT: u8 = 8;

fn tree(head: &TreeHead) -> Tree {
    Tree {
        n: head.size,
        hash: head.hash,
    }
}

/// Splits a lookup response: `<id>\n<record lines>\n<signed tree note>`.
fn split_lookup(body: &[u8]) -> Result<(u64, &[u8], &[u8]), String> {
    let newline = body
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no record id line")?;
    let id_text = std::str::from_utf8(&body[..newline]).map_err(|_| "record id is not UTF-8")?;
    let canonical = !id_text.is_empty()
        && id_text.bytes().all(|b| b.is_ascii_digit())
        && (id_text == "0" || !id_text.starts_with('0'));
    let id: u64 = id_text
        .parse()
        .ok()
        .filter(|_| canonical)
        .ok_or_else(|| format!("invalid record id {id_text:?}"))?;
    let rest = &body[newline + 1..];
    let blank = rest
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or("no blank line after the record")?;
    Ok((id, &rest[..blank + 1], &rest[blank + 2..]))
}

/// The zip and go.mod hashes of `module@version` in a record's go.sum lines.
fn hashes_for(
    record: &[u8],
    module: &ModulePath,
    version: &Version,
) -> Result<ModuleHashes, String> {
    let text = std::str::from_utf8(record).map_err(|_| "record is not UTF-8")?;
    let go_mod_version = format!("{version}/go.mod");
    let (mut zip, mut go_mod) = (None, None);
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if let [path, vers, hash] = fields.as_slice()
            && *path == module.as_str()
        {
            if *vers == version.as_str() {
                zip = Some((*hash).to_owned());
            } else if *vers == go_mod_version {
                go_mod = Some((*hash).to_owned());
            }
        }
    }
    match (zip, go_mod) {
        (Some(zip), Some(go_mod)) => Ok(ModuleHashes { zip, go_mod }),
        _ => Err(format!(
            "the record for {module}@{version} lacks its hashes"
        )),
    }
}
