//! Module zip validation (`golang.org/x/mod/zip.CheckZip`).
//!
//! Beyond Go's name and size rules, every entry is decompressed once, so a zip that
//! passes here is one the go command can both unzip and hash (`dirhash.HashZip`).
//! The zip crate differs from Go's `archive/zip` in two ways that matter for that
//! promise, and both are refused rather than papered over: it keys entries by name
//! (so duplicates would silently vanish), and it replaces an entry's name with an
//! Info-ZIP Unicode Path extra field, which Go ignores.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use ::zip::result::ZipError;
use ::zip::{CompressionMethod, ExtraField, ZipArchive};

use super::{GoModError, ModulePath, Version};

/// `zip.MaxZipFile`: the largest module zip, and the largest total uncompressed size.
pub const MAX_ZIP_FILE: u64 = 500 << 20;
/// `zip.MaxGoMod` and `MaxLICENSE`.
pub const MAX_GO_MOD: u64 = 16 << 20;

/// Facts about a zip that passed `check_zip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    pub files: usize,
    pub uncompressed_size: u64,
}

/// Checks a module zip on disk like `zip.CheckZip`: size limits, every entry under
/// `module@version/`, clean valid file paths, no case-fold collisions or duplicates,
/// go.mod only at the root and lower case. Blocking: call from `spawn_blocking`.
pub fn check_zip(
    path: &ModulePath,
    version: &Version,
    zip: &std::path::Path,
) -> Result<ZipSummary, GoModError> {
    check_zip_with_prefix(&format!("{path}@{version}/"), zip)
}

/// `check_zip` for a zip held in memory. CPU-bound: call from `spawn_blocking`
/// unless it is small.
pub fn check_zip_bytes(
    path: &ModulePath,
    version: &Version,
    zip: &[u8],
) -> Result<ZipSummary, GoModError> {
    let archive = archive_of(std::io::Cursor::new(zip), zip.len() as u64)?;
    check_archive(archive, &format!("{path}@{version}/"))
}

/// `check_zip` for an already formatted `module@version/` prefix.
pub(crate) fn check_zip_with_prefix(prefix: &str, zip: &Path) -> Result<ZipSummary, GoModError> {
    check_archive(open_archive(zip)?, prefix)
}

fn check_archive<R: Read + Seek>(
    mut archive: ZipArchive<R>,
    prefix: &str,
) -> Result<ZipSummary, GoModError> {
    let summary = check_names_and_sizes(&archive, prefix)?;
    // Names first: they are cheap, and a zip with a bad name is not worth inflating.
    for index in 0..archive.len() {
        read_entry(&mut archive, index, &mut |_| {})?;
    }
    Ok(summary)
}

fn check_names_and_sizes<R: Read + Seek>(
    archive: &ZipArchive<R>,
    prefix: &str,
) -> Result<ZipSummary, GoModError> {
    let mut collisions = CollisionChecker::default();
    let mut summary = ZipSummary {
        files: 0,
        uncompressed_size: 0,
    };
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|e| zip_error(&format!("entry {index}: "), e))?;
        let full = entry_name(entry.name_raw())?;
        let invalid = |reason: &dyn std::fmt::Display| bad(format!("{full}: {reason}"));
        let Some(rest) = full.strip_prefix(prefix) else {
            return Err(invalid(&format_args!(
                "path does not have prefix {prefix:?}"
            )));
        };
        let size = entry.size();
        let (name, is_dir) = match rest.strip_suffix('/') {
            Some(dir) => (dir, true),
            None => (rest, false),
        };
        if is_dir && size != 0 {
            // Go's zip reader fails to open such an entry, so HashZip would fail.
            return Err(invalid(&format_args!(
                "directory entry has {size} bytes of content"
            )));
        }
        if rest.is_empty() {
            continue;
        }
        if !is_clean(name) {
            return Err(invalid(&"file path is not clean"));
        }
        super::path::check_file_path(name).map_err(|e| invalid(&e))?;
        collisions.check(name, is_dir).map_err(|e| invalid(&e))?;
        if is_dir {
            continue;
        }
        let base = name.rsplit('/').next().unwrap_or(name);
        if fold_key(base) == "go.mod" {
            if base != name {
                return Err(invalid(&"go.mod file not in module root directory"));
            }
            if name != "go.mod" {
                return Err(invalid(&"go.mod files must have lowercase names"));
            }
        }
        if size > MAX_ZIP_FILE - summary.uncompressed_size {
            return Err(bad(format!(
                "total uncompressed size of module contents too large (max size is {MAX_ZIP_FILE} bytes)"
            )));
        }
        summary.uncompressed_size += size;
        summary.files += 1;
        if (name == "go.mod" || name == "LICENSE") && size > MAX_GO_MOD {
            return Err(invalid(&format_args!(
                "{name} file too large (max size is {MAX_GO_MOD} bytes)"
            )));
        }
    }
    Ok(summary)
}

/// Opens a zip for checking or hashing, refusing what this crate and Go would read
/// differently or what the go command would never download.
pub(crate) fn open_archive(zip: &Path) -> Result<ZipArchive<BufReader<File>>, GoModError> {
    let file = File::open(zip)?;
    let size = file.metadata()?.len();
    archive_of(BufReader::new(file), size)
}

/// `open_archive` for any seekable reader of `size` bytes.
pub(crate) fn archive_of<R: Read + Seek>(
    reader: R,
    size: u64,
) -> Result<ZipArchive<R>, GoModError> {
    if size > MAX_ZIP_FILE {
        return Err(bad(format!(
            "module zip file is too large ({size} bytes; limit is {MAX_ZIP_FILE} bytes)"
        )));
    }
    let archive = ZipArchive::new(reader).map_err(|e| zip_error("", e))?;
    if archive.has_duplicate_names() {
        return Err(bad(
            "more than one entry has the same name (the zip reader keeps only one of them)".into(),
        ));
    }
    Ok(archive)
}

/// Entry names must be UTF-8 for CheckFilePath anyway, and hashing needs a `String`.
pub(crate) fn entry_name(raw: &[u8]) -> Result<&str, GoModError> {
    std::str::from_utf8(raw)
        .map_err(|_| bad(format!("{}: invalid UTF-8", String::from_utf8_lossy(raw))))
}

/// Decompresses entry `index` into `sink`, insisting on the declared size and CRC
/// the way Go's `archive/zip` does. Directory entries yield nothing.
pub(crate) fn read_entry<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<(), GoModError> {
    let mut file = archive
        .by_index(index)
        .map_err(|e| zip_error(&format!("entry {index}: "), e))?;
    let name = entry_name(file.name_raw())?.to_owned();
    let invalid = |reason: &dyn std::fmt::Display| bad(format!("{name}: {reason}"));
    if file
        .extra_data_fields()
        .any(|field| matches!(field, ExtraField::UnicodePath(_)))
    {
        return Err(invalid(
            &"has a Unicode Path extra field, which could rename it for this reader only",
        ));
    }
    let declared = file.size();
    if name.ends_with('/') {
        return if declared == 0 {
            Ok(())
        } else {
            Err(invalid(&format_args!(
                "directory entry has {declared} bytes of content"
            )))
        };
    }
    let method = file.compression();
    if method != CompressionMethod::Stored && method != CompressionMethod::Deflated {
        return Err(invalid(&format_args!(
            "unsupported compression method {method}"
        )));
    }
    // Sized to the entry: zeroing a 64 KiB buffer for each small file was
    // most of the cost of checking a small module's zip. One byte more than
    // declared, so a longer entry shows up as such.
    let mut buf = vec![0u8; declared.saturating_add(1).min(64 * 1024) as usize];
    let mut total: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if is_format_error(&e) => return Err(invalid(&e)),
            Err(e) => return Err(GoModError::Io(e)),
        };
        total = total.saturating_add(n as u64);
        if total > declared {
            return Err(invalid(&format_args!(
                "uncompressed size is larger than declared size ({declared} bytes)"
            )));
        }
        sink(&buf[..n]);
    }
    if total != declared {
        return Err(invalid(&format_args!(
            "uncompressed size is {total} bytes, declared size is {declared} bytes"
        )));
    }
    Ok(())
}

fn bad(reason: String) -> GoModError {
    GoModError::InvalidZip(reason)
}

/// Corrupt or truncated data surfaces as these kinds; anything else is the disk's fault.
fn is_format_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    matches!(e.kind(), InvalidData | InvalidInput | UnexpectedEof)
}

fn zip_error(context: &str, e: ZipError) -> GoModError {
    match e {
        ZipError::Io(io) if !is_format_error(&io) => GoModError::Io(io),
        other => bad(format!("{context}{other}")),
    }
}

/// `path.Clean(p) == p`, without building the cleaned path.
fn is_clean(p: &str) -> bool {
    if p == "/" || p == "." {
        return true;
    }
    let (rooted, body) = match p.strip_prefix('/') {
        Some(body) => (true, body),
        None => (false, p),
    };
    if body.is_empty() {
        return false;
    }
    // Clean keeps leading ".." only in relative paths, where nothing precedes them.
    let mut only_dotdot_so_far = true;
    body.split('/').all(|elem| match elem {
        "" | "." => false,
        ".." => !rooted && only_dotdot_so_far,
        _ => {
            only_dotdot_so_far = false;
            true
        }
    })
}

/// Finds names equal under Unicode case folding, and names used both as a file and
/// as a directory. Every parent directory of a path is recorded as a directory.
#[derive(Default)]
struct CollisionChecker {
    seen: HashMap<String, (String, bool)>,
}

impl CollisionChecker {
    fn check(&mut self, path: &str, is_dir: bool) -> Result<(), String> {
        let mut path = path;
        let mut is_dir = is_dir;
        loop {
            let key = fold_key(path).into_owned();
            match self.seen.get(&key) {
                Some((other, _)) if other != path => {
                    return Err(format!(
                        "case-insensitive file name collision: {other:?} and {path:?}"
                    ));
                }
                Some((_, other_is_dir)) if *other_is_dir != is_dir => {
                    return Err(format!("entry {path:?} is both a file and a directory"));
                }
                Some(_) if !is_dir => return Err(format!("multiple entries for file {path:?}")),
                // The parents were recorded when this directory first was.
                Some(_) => return Ok(()),
                None => {
                    self.seen.insert(key, (path.to_owned(), is_dir));
                }
            }
            match path.rfind('/') {
                Some(slash) => {
                    path = &path[..slash];
                    is_dir = true;
                }
                None => return Ok(()),
            }
        }
    }
}

/// A string that is equal for two names exactly when Go's `strings.EqualFold` says
/// they are equal (Go's `strToFold`).
///
/// Go folds each rune to the smallest member of its simple case-folding orbit. Taking
/// the simple lower case of the simple upper case picks a different representative
/// of the same orbit; checked against every rune of Go 1.26's Unicode 15 tables, the
/// two agree except for U+0130 and U+0131, which have case mappings but no folding.
/// Rust's multi-rune (full) mappings stand in for "no simple mapping"; where that
/// loses a simple mapping (ᾀ's upper case ᾈ), the partner's lower case still meets it.
fn fold_key(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(fold_char).collect())
}

fn fold_char(c: char) -> char {
    if c == '\u{130}' || c == '\u{131}' {
        return c;
    }
    let upper = single(c.to_uppercase()).unwrap_or(c);
    single(upper.to_lowercase()).unwrap_or(upper)
}

fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
    match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
#[path = "zip_testutil.rs"]
pub(crate) mod testutil;

#[cfg(test)]
#[path = "zip_tests.rs"]
mod tests;
