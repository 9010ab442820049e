//! Go's `h1:` hash (`golang.org/x/mod/sumdb/dirhash.Hash1`).

use super::GoModError;

/// `dirhash.Hash1` over (name, SHA-256 of content) pairs.
pub fn hash1(files: &[(String, [u8; 32])]) -> Result<String, GoModError> {
    let _ = files;
    unimplemented!()
}

/// The go.sum `h1:` of a module zip on disk (entry names with their `module@version/` prefix).
pub fn hash_zip(zip: &std::path::Path) -> Result<String, GoModError> {
    let _ = zip;
    unimplemented!()
}

/// The go.sum `/go.mod h1:` of a go.mod's bytes (hashed as a single file named `go.mod`).
pub fn hash_go_mod(gomod: &[u8]) -> String {
    let _ = gomod;
    unimplemented!()
}
