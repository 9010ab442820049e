//! Go's `h1:` hash (`golang.org/x/mod/sumdb/dirhash.Hash1`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::GoModError;
use super::zip::{archive_of, entry_name, open_archive, read_entry};

/// `dirhash.Hash1` over (name, SHA-256 of content) pairs.
pub fn hash1(files: &[(String, [u8; 32])]) -> Result<String, GoModError> {
    let mut sorted: Vec<&(String, [u8; 32])> = files.iter().collect();
    // Go sorts the names alone; the digest only breaks ties so that the input order
    // of duplicate names cannot change the result.
    sorted.sort_unstable_by(|a, b| (a.0.as_bytes(), &a.1).cmp(&(b.0.as_bytes(), &b.1)));
    // A newline would let one file's line impersonate several.
    if let Some((name, _)) = sorted.iter().find(|(name, _)| name.contains('\n')) {
        return Err(GoModError::InvalidFilePath {
            path: name.clone(),
            reason: "file names with newlines are not supported".into(),
        });
    }
    Ok(summary_hash(
        sorted.into_iter().map(|(n, d)| (n.as_str(), d)),
    ))
}

/// The `h1:` of summary lines already in order, with names free of newlines.
fn summary_hash<'a>(files: impl Iterator<Item = (&'a str, &'a [u8; 32])>) -> String {
    let mut summary = Sha256::new();
    for (name, digest) in files {
        summary.update(hex(digest));
        summary.update(b"  ");
        summary.update(name.as_bytes());
        summary.update(b"\n");
    }
    format!("h1:{}", STANDARD.encode(summary.finalize()))
}

/// The go.sum `h1:` of a module zip on disk (entry names with their `module@version/` prefix).
///
/// Every entry counts, directories too (with empty content), under its name exactly
/// as stored. Zips the go command would refuse to download or read are errors:
/// duplicate names, more than `MAX_ZIP_FILE` bytes on disk or declared uncompressed,
/// and entries whose data does not match their declared size or CRC.
/// Blocking: call from `spawn_blocking`.
pub fn hash_zip(zip: &std::path::Path) -> Result<String, GoModError> {
    hash_archive(open_archive(zip)?)
}

/// `hash_zip` for a zip held in memory.
pub fn hash_zip_bytes(zip: &[u8]) -> Result<String, GoModError> {
    hash_archive(archive_of(std::io::Cursor::new(zip), zip.len() as u64)?)
}

fn hash_archive<R: std::io::Read + std::io::Seek>(
    mut archive: ::zip::ZipArchive<R>,
) -> Result<String, GoModError> {
    let mut declared: u64 = 0;
    for index in 0..archive.len() {
        let size = archive
            .by_index_data(index)
            .map(|entry| entry.size())
            .map_err(|e| GoModError::InvalidZip(format!("entry {index}: {e}")))?;
        declared = declared.saturating_add(size);
    }
    if declared > super::zip::MAX_ZIP_FILE {
        return Err(GoModError::InvalidZip(format!(
            "total uncompressed size of module contents too large (max size is {} bytes)",
            super::zip::MAX_ZIP_FILE
        )));
    }
    let mut files = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let mut hasher = Sha256::new();
        read_entry(&mut archive, index, &mut |data| hasher.update(data))?;
        let name = archive
            .by_index_data(index)
            .map_err(|e| GoModError::InvalidZip(format!("entry {index}: {e}")))
            .and_then(|entry| entry_name(entry.name_raw()).map(str::to_owned))?;
        files.push((name, hasher.finalize().into()));
    }
    hash1(&files)
}

/// The go.sum `/go.mod h1:` of a go.mod's bytes (hashed as a single file named `go.mod`).
pub fn hash_go_mod(gomod: &[u8]) -> String {
    let digest: [u8; 32] = Sha256::digest(gomod).into();
    summary_hash(std::iter::once(("go.mod", &digest)))
}

fn hex(bytes: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    out
}

#[cfg(test)]
#[path = "dirhash_tests.rs"]
mod tests;
