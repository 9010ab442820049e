//! What the cache holds, grouped the way eviction works: one entry per module
//! version (its `.info`, `.mod`, `.zip` and their metadata files), plus each
//! module's own files (`list`, `@latest`). Nested modules are separate modules:
//! `cloud.google.com/go` and `cloud.google.com/go/storage` never share an entry.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use crate::storage::{Storage, StorageError};

/// One module version and every file that belongs to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionEntry {
    /// Escaped module path, as in cache paths.
    pub module: String,
    /// Escaped version (or query), as in cache paths.
    pub version: String,
    pub keys: Vec<String>,
    pub size: u64,
    /// Newest modification time of its files, Unix seconds.
    pub modified: i64,
}

#[derive(Clone, Debug, Default)]
pub struct Scan {
    pub versions: BTreeMap<(String, String), VersionEntry>,
    /// Files of a module rather than of one version: `list`, `@latest` and their
    /// metadata, keyed by escaped module path, with their total size.
    pub module_files: BTreeMap<String, (Vec<String>, u64)>,
}

impl Scan {
    pub fn total_size(&self) -> u64 {
        self.versions.values().map(|v| v.size).sum::<u64>()
            + self
                .module_files
                .values()
                .map(|(_, size)| size)
                .sum::<u64>()
    }
}

enum Owner {
    Version(String, String),
    Module(String),
}

/// Which module version or module a cache key belongs to; None for keys that are
/// not module artifacts (the checksum database cache, the usage database).
fn owner(key: &str) -> Option<Owner> {
    if key.starts_with("sumdb/") || key.starts_with('.') {
        return None;
    }
    if let Some(module) = key
        .strip_suffix("/@latest")
        .or_else(|| key.strip_suffix("/@latest.meta"))
    {
        return Some(Owner::Module(module.to_owned()));
    }
    let (module, file) = key.rsplit_once("/@v/")?;
    if file == "list" || file == "list.meta" {
        return Some(Owner::Module(module.to_owned()));
    }
    let file = file.strip_suffix(".meta").unwrap_or(file);
    let file = file
        .strip_suffix(".ziphash")
        .map(|v| format!("{v}.zip"))
        .unwrap_or_else(|| file.to_owned());
    let (version, ext) = file.rsplit_once('.')?;
    matches!(ext, "info" | "mod" | "zip")
        .then(|| Owner::Version(module.to_owned(), version.to_owned()))
}

/// Lists and stats everything in the cache. Files that change meanwhile are
/// simply seen as they were (or not at all): eviction only deletes what it saw.
pub async fn scan(storage: &dyn Storage) -> Result<Scan, StorageError> {
    let mut out = Scan::default();
    for (key, meta) in storage.list_with_meta("").await? {
        let Some(owner) = owner(&key) else { continue };
        let modified = meta
            .modified
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        match owner {
            Owner::Version(module, version) => {
                let entry = out
                    .versions
                    .entry((module.clone(), version.clone()))
                    .or_insert_with(|| VersionEntry {
                        module,
                        version,
                        ..VersionEntry::default()
                    });
                entry.keys.push(key);
                entry.size += meta.size;
                entry.modified = entry.modified.max(modified);
            }
            Owner::Module(module) => {
                let files = out.module_files.entry(module).or_default();
                files.0.push(key);
                files.1 += meta.size;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_of(key: &str) -> Option<(String, String)> {
        match owner(key)? {
            Owner::Version(m, v) => Some((m, v)),
            Owner::Module(_) => None,
        }
    }

    #[test]
    fn keys_belong_to_their_own_module_version() {
        let v = |m: &str, ver: &str| Some((m.to_owned(), ver.to_owned()));
        assert_eq!(
            version_of("cloud.google.com/go/@v/v0.1.0.zip"),
            v("cloud.google.com/go", "v0.1.0")
        );
        assert_eq!(
            version_of("cloud.google.com/go/storage/@v/v1.0.0.mod"),
            v("cloud.google.com/go/storage", "v1.0.0")
        );
        assert_eq!(
            version_of("a.example/m/@v/v1.0.0.zip.meta"),
            v("a.example/m", "v1.0.0")
        );
        assert_eq!(
            version_of("a.example/m/@v/v1.0.0.ziphash"),
            v("a.example/m", "v1.0.0")
        );
        assert_eq!(
            version_of("a.example/m/@v/v2.0.0+incompatible.info"),
            v("a.example/m", "v2.0.0+incompatible")
        );
        assert_eq!(
            version_of("a.example/m/@v/master.info"),
            v("a.example/m", "master")
        );
        assert!(
            matches!(owner("a.example/m/@v/list"), Some(Owner::Module(m)) if m == "a.example/m")
        );
        assert!(
            matches!(owner("a.example/m/@latest"), Some(Owner::Module(m)) if m == "a.example/m")
        );
        assert!(matches!(
            owner("a.example/m/@latest.meta"),
            Some(Owner::Module(_))
        ));
        assert!(owner("sumdb/sum.golang.org/tile/8/0/000").is_none());
        assert!(owner(".usage.db").is_none());
        assert!(owner("a.example/m/@v/v1.0.0.tar").is_none());
    }
}
