//! Helpers for the cache-lifecycle tests: keeping a proxy's cache directory after
//! it stops, opening its usage database and storage directly, dating files, and
//! listing what belongs to one module version.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use goproxy::cache::USAGE_DB_FILE;
use goproxy::cache::usage::UsageDb;
use goproxy::storage::Storage;
use goproxy::storage::fs::FsStorage;
use tempfile::TempDir;

use super::module::Module;
use super::{TestProxy, walk};

impl TestProxy {
    /// Shuts the server down (which flushes its usage database) and hands back
    /// the cache directory instead of deleting it.
    pub async fn stop_keep_cache(mut self) -> TempDir {
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(5)).await;
        }
        self.cache
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

pub fn open_usage(cache: &Path) -> Arc<UsageDb> {
    Arc::new(UsageDb::open(cache.join(USAGE_DB_FILE)).expect("open the usage database"))
}

pub fn fs_storage(cache: &Path) -> Arc<dyn Storage> {
    Arc::new(FsStorage::new(cache.to_owned()))
}

/// Every usage row as sorted `(module, version)` pairs (escaped forms).
pub fn rows(db: &UsageDb) -> Vec<(String, String)> {
    let mut keys: Vec<_> = db
        .last_used_all()
        .expect("read usage rows")
        .into_keys()
        .collect();
    keys.sort();
    keys
}

pub fn key(module: &str, version: &str) -> (String, String) {
    (module.to_owned(), version.to_owned())
}

/// Module files below `root` (relative, `/`-separated, sorted), leaving out the
/// usage database and its journal files.
pub fn cache_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.retain(|f| !f.starts_with(USAGE_DB_FILE));
    out.sort();
    out
}

/// Like [`cache_files`], with each file's size and content.
pub fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    cache_files(root)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(root.join(&f)).expect("read cached file");
            (f, bytes)
        })
        .collect()
}

/// Total bytes of the module files below `root`.
pub fn total_bytes(root: &Path) -> u64 {
    cache_files(root)
        .iter()
        .map(|f| std::fs::metadata(root.join(f)).expect("stat").len())
        .sum()
}

/// The files of one module version (`<module>/@v/<version>.*`), escaped forms.
pub fn version_files(files: &[String], module: &str, version: &str) -> Vec<String> {
    let prefix = format!("{module}/@v/{version}.");
    files
        .iter()
        .filter(|f| f.starts_with(&prefix))
        .cloned()
        .collect()
}

/// The module's own files: `<module>/@v/list` and `<module>/@latest` (and metadata).
pub fn module_files(files: &[String], module: &str) -> Vec<String> {
    let list = format!("{module}/@v/list");
    let latest = format!("{module}/@latest");
    files
        .iter()
        .filter(|f| {
            f.strip_prefix(&list)
                .or_else(|| f.strip_prefix(&latest))
                .is_some_and(|rest| rest.is_empty() || rest == ".meta")
        })
        .cloned()
        .collect()
}

/// Bytes of the named files below `root`.
pub fn bytes_of(root: &Path, files: &[String]) -> u64 {
    files
        .iter()
        .map(|f| std::fs::metadata(root.join(f)).expect("stat").len())
        .sum()
}

/// Sets the modification time of a file.
pub fn set_mtime(path: &Path, at: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(at))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

pub fn unix_to_system(at: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(at as u64)
}

/// Writes a module version's .info, .mod and .zip into the cache by hand, the
/// way an imported `GOMODCACHE/cache/download` tree looks: no usage row, no
/// metadata.
pub fn write_version(cache: &Path, m: &Module) -> Vec<std::path::PathBuf> {
    let dir = cache.join(m.escaped_path()).join("@v");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let v = m.escaped_version();
    [
        (format!("{v}.info"), &m.info),
        (format!("{v}.mod"), &m.go_mod),
        (format!("{v}.zip"), &m.zip),
    ]
    .into_iter()
    .map(|(name, bytes)| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write module file");
        path
    })
    .collect()
}

/// GETs a version's .info, .mod and .zip through the proxy and checks the bytes.
pub async fn fetch_version(proxy: &TestProxy, m: &Module) {
    for (ext, want) in [("info", &m.info), ("mod", &m.go_mod), ("zip", &m.zip)] {
        let response = proxy.get(&m.url_path(ext)).await;
        assert_eq!(response.status(), 200, "GET {}", m.url_path(ext));
        let body = response.bytes().await.expect("body");
        assert!(body[..] == want[..], "GET {}: wrong bytes", m.url_path(ext));
    }
}

/// GETs a module's `list` and `@latest` through the proxy.
pub async fn fetch_module_files(proxy: &TestProxy, escaped_module: &str) {
    for path in [
        format!("/{escaped_module}/@v/list"),
        format!("/{escaped_module}/@latest"),
    ] {
        let response = proxy.get(&path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.bytes().await.expect("body");
    }
}

/// A module whose zip holds `size` bytes of incompressible data, stored rather
/// than deflated so that large zips are cheap to build.
pub fn stored_module(path: &str, version: &str, size: usize) -> Module {
    let base = Module::sized(path, version, 16);
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let files = vec![
        ("go.mod".to_owned(), base.go_mod.clone()),
        ("data.bin".to_owned(), data),
    ];
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in &files {
        writer
            .start_file(format!("{path}@{version}/{name}"), options)
            .expect("zip entry");
        writer.write_all(content).expect("zip write");
    }
    let zip = writer.finish().expect("zip finish").into_inner();
    Module { zip, files, ..base }
}

/// `goproxy cache stats`-style human size.
pub fn human(bytes: u64) -> String {
    goproxy::config::human_size(bytes)
}
