//! Module zip validation (`golang.org/x/mod/zip.CheckZip`).

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
    let _ = (path, version, zip);
    unimplemented!()
}
