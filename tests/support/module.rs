//! Synthetic module versions with real module zips.

use std::io::Write;

use goproxy::gomod::dirhash;

#[derive(Clone, Debug)]
pub struct Module {
    pub path: String,
    pub version: String,
    pub time: String,
    pub info: Vec<u8>,
    pub go_mod: Vec<u8>,
    pub zip: Vec<u8>,
    /// The files inside the zip, without the `path@version/` prefix.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Module {
    /// A module with a go.mod and one Go file.
    pub fn simple(path: &str, version: &str) -> Module {
        let go_mod = format!("module {path}\n\ngo 1.21\n");
        let pkg = path
            .rsplit('/')
            .next()
            .unwrap_or("m")
            .replace(['.', '-'], "_");
        let src = format!(
            "package {pkg}\n\n// Version is the version of this module.\nconst Version = \"{version}\"\n"
        );
        Module::with_files(path, version, Some(&go_mod), &[("lib.go", src.as_bytes())])
    }

    /// A module with the given files; `go_mod` None synthesizes `module <path>` as
    /// proxies do for modules without a go.mod (and leaves it out of the zip).
    pub fn with_files(
        path: &str,
        version: &str,
        go_mod: Option<&str>,
        files: &[(&str, &[u8])],
    ) -> Module {
        let mut all: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(n, c)| (n.to_string(), c.to_vec()))
            .collect();
        let mod_bytes = match go_mod {
            Some(text) => {
                all.insert(0, ("go.mod".to_owned(), text.as_bytes().to_vec()));
                text.as_bytes().to_vec()
            }
            None => format!("module {path}\n").into_bytes(),
        };
        let time = "2024-01-02T03:04:05Z".to_owned();
        let info = format!("{{\"Version\":\"{version}\",\"Time\":\"{time}\"}}").into_bytes();
        let zip = build_zip(&format!("{path}@{version}/"), &all);
        Module {
            path: path.to_owned(),
            version: version.to_owned(),
            time,
            info,
            go_mod: mod_bytes,
            zip,
            files: all,
        }
    }

    /// A module whose zip holds `size` bytes of incompressible data (for large-zip tests).
    pub fn sized(path: &str, version: &str, size: usize) -> Module {
        let mut data = vec![0u8; size];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let go_mod = format!("module {path}\n\ngo 1.21\n");
        Module::with_files(path, version, Some(&go_mod), &[("data.bin", &data)])
    }

    /// The go.sum hash of the zip content.
    pub fn zip_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let prefix = format!("{}@{}/", self.path, self.version);
        let files: Vec<(String, [u8; 32])> = self
            .files
            .iter()
            .map(|(n, c)| (format!("{prefix}{n}"), Sha256::digest(c).into()))
            .collect();
        dirhash::hash1(&files).expect("hash")
    }

    /// The go.sum `/go.mod` hash.
    pub fn mod_hash(&self) -> String {
        dirhash::hash_go_mod(&self.go_mod)
    }

    pub fn escaped_path(&self) -> String {
        escape(&self.path)
    }

    pub fn escaped_version(&self) -> String {
        escape(&self.version)
    }

    /// `/<escaped path>/@v/<escaped version>.<ext>`
    pub fn url_path(&self, ext: &str) -> String {
        format!(
            "/{}/@v/{}.{ext}",
            self.escaped_path(),
            self.escaped_version()
        )
    }
}

/// The `!`-escaped form used in proxy URLs.
pub fn escape(s: &str) -> String {
    goproxy::gomod::path::escape_string(s)
}

/// A module zip with `prefix` prepended to every file name, deflated like the go
/// command's; large files (the incompressible data of `Module::sized`) are
/// stored, which is just as valid and keeps multi-megabyte fixtures fast to build.
pub fn build_zip(prefix: &str, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in files {
        let method = if content.len() > 64 * 1024 {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(content.len() >= u32::MAX as usize);
        writer
            .start_file(format!("{prefix}{name}"), options)
            .expect("zip entry");
        writer.write_all(content).expect("zip write");
    }
    writer.finish().expect("zip finish").into_inner()
}
