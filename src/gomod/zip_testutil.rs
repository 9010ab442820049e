//! Zip builders for the zip and dirhash tests: the zip crate's writer for well-formed
//! archives, and a byte-level writer for the malformed ones it refuses to produce.

use std::io::Write;

use ::zip::write::SimpleFileOptions;
use ::zip::{CompressionMethod, ZipWriter};
use tempfile::NamedTempFile;

pub(crate) const PREFIX: &str = "example.com/m@v1.0.0/";

pub(crate) fn temp_file(bytes: &[u8]) -> NamedTempFile {
    let mut file = NamedTempFile::new().expect("create temp file");
    file.write_all(bytes).expect("write temp file");
    file.flush().expect("flush temp file");
    file
}

/// A deflated zip of `(name, content)` in order; names ending in `/` become
/// directory entries (their content is ignored).
pub(crate) fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, content) in entries {
        if name.ends_with('/') {
            writer.add_directory(*name, options).expect("add directory");
        } else {
            writer.start_file(*name, options).expect("start file");
            writer.write_all(content).expect("write file");
        }
    }
    writer.finish().expect("finish zip").into_inner()
}

pub(crate) fn write_zip(entries: &[(&str, &[u8])]) -> NamedTempFile {
    temp_file(&zip_bytes(entries))
}

/// One entry of a hand-assembled zip. The data is written as is; the header
/// fields default to what a correct writer would put there.
#[derive(Clone)]
pub(crate) struct Raw {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    pub method: u16,
    pub declared_size: Option<u32>,
    pub crc: Option<u32>,
    pub extra: Vec<u8>,
}

impl Raw {
    pub(crate) fn stored(name: &str, data: &[u8]) -> Raw {
        Raw {
            name: name.as_bytes().to_vec(),
            data: data.to_vec(),
            method: 0,
            declared_size: None,
            crc: None,
            extra: Vec::new(),
        }
    }

    /// An entry whose data is empty but whose header claims `size` bytes.
    pub(crate) fn claiming(name: &str, size: u32) -> Raw {
        Raw {
            declared_size: Some(size),
            ..Raw::stored(name, b"")
        }
    }
}

pub(crate) fn raw_zip(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = u32::try_from(out.len()).expect("small test zip");
        let crc = e.crc.unwrap_or_else(|| crc32(&e.data));
        let compressed = u32::try_from(e.data.len()).expect("small test entry");
        let size = e.declared_size.unwrap_or(compressed);
        let name_len = u16::try_from(e.name.len()).expect("short name");
        let extra_len = u16::try_from(e.extra.len()).expect("short extra");
        // Fields shared by the local and central headers, from "version needed" on.
        let mut common = Vec::new();
        common.extend_from_slice(&20u16.to_le_bytes());
        common.extend_from_slice(&0x0800u16.to_le_bytes()); // UTF-8 names
        common.extend_from_slice(&e.method.to_le_bytes());
        common.extend_from_slice(&0u16.to_le_bytes()); // time
        common.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
        common.extend_from_slice(&crc.to_le_bytes());
        common.extend_from_slice(&compressed.to_le_bytes());
        common.extend_from_slice(&size.to_le_bytes());
        common.extend_from_slice(&name_len.to_le_bytes());
        common.extend_from_slice(&extra_len.to_le_bytes());

        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&common);
        out.extend_from_slice(&e.name);
        out.extend_from_slice(&e.extra);
        out.extend_from_slice(&e.data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&0x031eu16.to_le_bytes()); // made by: Unix, 3.0
        central.extend_from_slice(&common);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&e.name);
        central.extend_from_slice(&e.extra);
    }
    let cd_offset = u32::try_from(out.len()).expect("small test zip");
    let cd_size = u32::try_from(central.len()).expect("small test zip");
    let count = u16::try_from(entries.len()).expect("few entries");
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// An Info-ZIP Unicode Path extra field (0x7075) naming `name`, valid for `original`.
pub(crate) fn unicode_path_extra(original: &[u8], name: &str) -> Vec<u8> {
    let mut extra = Vec::new();
    extra.extend_from_slice(&0x7075u16.to_le_bytes());
    let len = u16::try_from(5 + name.len()).expect("short name");
    extra.extend_from_slice(&len.to_le_bytes());
    extra.push(1);
    extra.extend_from_slice(&crc32(original).to_le_bytes());
    extra.extend_from_slice(name.as_bytes());
    extra
}

pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
