//! Vectors from golang.org/x/mod (`zip/testdata`, `sumdb/client_test.go`) and
//! hashes worked out with `sha256sum | base64` for the cases Go publishes no literal for.

use super::*;
use crate::gomod::zip::testutil::{PREFIX, Raw, raw_zip, temp_file, write_zip};

const V5_GO_MOD: &[u8] = b"module example.com/m\n\ngo 1.13\n";
const V5_M_GO: &[u8] = b"package m\n\nfunc Foo() int { return 42 }\n";
const V5_HELLO_GO: &[u8] = b"package main\n\nimport (\n  \"fmt\"\n  \"example.com/m\"\n)\n\nfunc main() {\n  fmt.Println(m.Foo())\n}\n";

fn zip_hash(entries: &[(&str, &[u8])]) -> String {
    let file = write_zip(entries);
    hash_zip(file.path()).expect("hash_zip")
}

fn digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[test]
fn empty_list() {
    assert_eq!(
        hash1(&[]).expect("hash1"),
        "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
}

#[test]
fn empty_zip() {
    assert_eq!(
        zip_hash(&[]),
        "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
}

#[test]
fn published_zip_vectors() {
    // V2, exclude_submodule.txt: only the root go.mod is left.
    assert_eq!(
        zip_hash(&[("example.com/m@v1.0.0/go.mod", V5_GO_MOD)]),
        "h1:XduFAgX/GaspZa8Jv4pfzoGEzNaU/r88PiCunijw5ok="
    );
    // V3, exclude_cap_go_mod_submodule.txt.
    assert_eq!(
        zip_hash(&[("example.com/m@v1.0.0/a.go", b"package a\n")]),
        "h1:xctQQey8/y7IcBjFZDP/onWLSXhlqcsC3i1fgSdpMHk="
    );
    // V4, go_mod_dir.txt.
    assert_eq!(
        zip_hash(&[("example.com/m@v1.0.0/go.mod/a.go", b"package a\n")]),
        "h1:Mun5l9cBlDnnV6JasTpio2aZJSbFj++h+814mnKC/OM="
    );
    // V5, simple.txt.
    assert_eq!(
        zip_hash(&[
            ("example.com/m@v1.0.0/go.mod", V5_GO_MOD),
            ("example.com/m@v1.0.0/m.go", V5_M_GO),
            ("example.com/m@v1.0.0/cmd/hello/hello.go", V5_HELLO_GO),
        ]),
        "h1:tpqYOOmuilagXzyqoJ3roUjp8gneQeTv5YVpL6BG7/k="
    );
}

#[test]
fn zip_entry_order_and_compression_do_not_matter() {
    let stored = raw_zip(&[
        Raw::stored("example.com/m@v1.0.0/cmd/hello/hello.go", V5_HELLO_GO),
        Raw::stored("example.com/m@v1.0.0/m.go", V5_M_GO),
        Raw::stored("example.com/m@v1.0.0/go.mod", V5_GO_MOD),
    ]);
    let file = temp_file(&stored);
    assert_eq!(
        hash_zip(file.path()).expect("hash_zip"),
        "h1:tpqYOOmuilagXzyqoJ3roUjp8gneQeTv5YVpL6BG7/k="
    );
}

#[test]
fn directory_entries_are_hashed_as_empty_files() {
    let with_dirs = zip_hash(&[
        (PREFIX, b""),
        ("example.com/m@v1.0.0/a/", b""),
        ("example.com/m@v1.0.0/a/a.go", b"package a\n"),
    ]);
    assert_eq!(with_dirs, "h1:97py6tiSJUCJuAjAsgII2/tOUSMOL8b+bK6KzlmJ0uE=");
    let empty = digest(b"");
    let expected = hash1(&[
        ("example.com/m@v1.0.0/a/a.go".into(), digest(b"package a\n")),
        ("example.com/m@v1.0.0/a/".into(), empty),
        (PREFIX.into(), empty),
    ]);
    assert_eq!(expected.expect("hash1"), with_dirs);
}

#[test]
fn hash1_sorts_names_bytewise() {
    // dirhash's TestHash1 files; its expectation is computed at run time in Go.
    let files = [
        ("xyz".to_owned(), digest(b"data for xyz")),
        ("abc".to_owned(), digest(b"data for abc")),
    ];
    let want = "h1:EP6WfDoQTSk9klnxcjriWJOGztueJUywHNmWeq+efB8=";
    assert_eq!(hash1(&files).expect("hash1"), want);
    let reversed = [files[1].clone(), files[0].clone()];
    assert_eq!(hash1(&reversed).expect("hash1"), want);
    // Bytewise: "B" (0x42) sorts before "a" (0x61), and "a/b" before "a0" ('/' < '0').
    let mixed = |names: [&str; 4]| {
        let files: Vec<_> = names.iter().map(|n| (n.to_string(), digest(b""))).collect();
        hash1(&files).expect("hash1")
    };
    assert_eq!(
        mixed(["a0", "B", "a/b", "é"]),
        mixed(["é", "a/b", "B", "a0"])
    );
}

#[test]
fn hash1_rejects_newlines() {
    let files = [("a\nb".to_owned(), digest(b""))];
    let err = hash1(&files).expect_err("newline in name");
    assert!(err.to_string().contains("newlines"), "{err}");
}

#[test]
fn go_mod_hashes() {
    // rsc.io/quote v1.5.2 and rsc.io/sampler v1.3.0 (sumdb/client_test.go; the .mod
    // sections of cmd/go/testdata/mod are byte-identical).
    assert_eq!(
        hash_go_mod(b"module \"rsc.io/quote\"\n\nrequire \"rsc.io/sampler\" v1.3.0\n"),
        "h1:LzX7hefJvL54yjefDEDHNONDjII0t9xZLPXsUe+TKr0="
    );
    assert_eq!(
        hash_go_mod(
            b"module \"rsc.io/sampler\"\n\nrequire \"golang.org/x/text\" v0.0.0-20170915032832-14c0d48ead0c\n"
        ),
        "h1:T1hPZKmBbMNahiBKFy5HrXp6adAjACjK9JXDnKaTXpA="
    );
    // golang.org/x/text v0.3.0 has no go.mod; the go command synthesizes this one.
    assert_eq!(
        hash_go_mod(b"module golang.org/x/text\n"),
        "h1:NqM8EUOU14njkJ3fqMW+pc6Ldnwhi/IjpwHt7yyuwOQ="
    );
}

#[test]
fn hash_zip_rejects_duplicates() {
    let zip = raw_zip(&[
        Raw::stored("example.com/m@v1.0.0/a.go", b"package a\n"),
        Raw::stored("example.com/m@v1.0.0/a.go", b"package b\n"),
    ]);
    let file = temp_file(&zip);
    let err = hash_zip(file.path()).expect_err("duplicate names");
    assert!(matches!(err, GoModError::InvalidZip(_)), "{err}");
}

#[test]
fn hash_zip_rejects_bad_data() {
    let bad_crc = Raw {
        crc: Some(1),
        ..Raw::stored("example.com/m@v1.0.0/a.go", b"package a\n")
    };
    let file = temp_file(&raw_zip(&[bad_crc]));
    let err = hash_zip(file.path()).expect_err("bad CRC");
    assert!(matches!(err, GoModError::InvalidZip(_)), "{err}");

    let file = temp_file(b"not a zip at all");
    let err = hash_zip(file.path()).expect_err("not a zip");
    assert!(matches!(err, GoModError::InvalidZip(_)), "{err}");
}

/// simple.txt's zip as Go's `archive/zip` writes it (deflate, sizes and CRC in data
/// descriptors after each entry), produced with Go 1.26.
const GO_WRITTEN_V5_ZIP: &[&[u8]] = &[
    b"\x50\x4b\x03\x04\x14\x00\x08\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    b"\x00\x00\x1b\x00\x00\x00\x65\x78\x61\x6d\x70\x6c\x65\x2e\x63\x6f\x6d\x2f\x6d\x40\x76\x31\x2e\x30",
    b"\x2e\x30\x2f\x67\x6f\x2e\x6d\x6f\x64\xca\xcd\x4f\x29\xcd\x49\x55\x48\xad\x48\xcc\x2d\xc8\x49\xd5",
    b"\x4b\xce\xcf\xd5\xcf\xe5\xe2\x4a\xcf\x57\x30\xd4\x33\x34\xe6\x02\x04\x00\x00\xff\xff\x50\x4b\x07",
    b"\x08\x49\xcd\xe4\x1b\x24\x00\x00\x00\x1e\x00\x00\x00\x50\x4b\x03\x04\x14\x00\x08\x00\x08\x00\x00",
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x19\x00\x00\x00\x65\x78\x61\x6d\x70",
    b"\x6c\x65\x2e\x63\x6f\x6d\x2f\x6d\x40\x76\x31\x2e\x30\x2e\x30\x2f\x6d\x2e\x67\x6f\x2a\x48\x4c\xce",
    b"\x4e\x4c\x4f\x55\xc8\xe5\xe2\x4a\x2b\xcd\x4b\x56\x70\xcb\xcf\xd7\xd0\x54\xc8\xcc\x2b\x51\xa8\x56",
    b"\x28\x4a\x2d\x29\x2d\xca\x53\x30\x31\x52\xa8\xe5\x02\x04\x00\x00\xff\xff\x50\x4b\x07\x08\xce\xb2",
    b"\x7f\x42\x2e\x00\x00\x00\x28\x00\x00\x00\x50\x4b\x03\x04\x14\x00\x08\x00\x08\x00\x00\x00\x00\x00",
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x27\x00\x00\x00\x65\x78\x61\x6d\x70\x6c\x65\x2e",
    b"\x63\x6f\x6d\x2f\x6d\x40\x76\x31\x2e\x30\x2e\x30\x2f\x63\x6d\x64\x2f\x68\x65\x6c\x6c\x6f\x2f\x68",
    b"\x65\x6c\x6c\x6f\x2e\x67\x6f\x1c\xcb\x31\x0a\x42\x31\x0c\x06\xe0\xfd\x3f\x45\xe8\xd4\x2c\xf5\x16",
    b"\xce\x5e\x21\x94\x56\x8a\xef\x4f\xca\x23\x82\x20\xde\x5d\x74\xfa\xa6\x6f\x5b\x7f\xd8\x7d\x08\x6d",
    b"\x39\xb0\xb8\xe3\x4c\xa9\x10\x29\x93\x59\x7e\x8e\x97\x71\x1f\xa3\xf5\xe0\x85\x05\x0a\xcc\xa7\xf7",
    b"\x7f\xa8\x2a\x6f\x88\x4c\x66\xbb\x9d\xcb\xf3\xf0\xca\x76\x8d\xa8\xaa\xf8\xe0\x1b\x00\x00\xff\xff",
    b"\x50\x4b\x07\x08\x74\x2c\x24\xc2\x59\x00\x00\x00\x5b\x00\x00\x00\x50\x4b\x01\x02\x14\x00\x14\x00",
    b"\x08\x00\x08\x00\x00\x00\x00\x00\x49\xcd\xe4\x1b\x24\x00\x00\x00\x1e\x00\x00\x00\x1b\x00\x00\x00",
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x65\x78\x61\x6d\x70\x6c\x65\x2e\x63\x6f",
    b"\x6d\x2f\x6d\x40\x76\x31\x2e\x30\x2e\x30\x2f\x67\x6f\x2e\x6d\x6f\x64\x50\x4b\x01\x02\x14\x00\x14",
    b"\x00\x08\x00\x08\x00\x00\x00\x00\x00\xce\xb2\x7f\x42\x2e\x00\x00\x00\x28\x00\x00\x00\x19\x00\x00",
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x6d\x00\x00\x00\x65\x78\x61\x6d\x70\x6c\x65\x2e\x63",
    b"\x6f\x6d\x2f\x6d\x40\x76\x31\x2e\x30\x2e\x30\x2f\x6d\x2e\x67\x6f\x50\x4b\x01\x02\x14\x00\x14\x00",
    b"\x08\x00\x08\x00\x00\x00\x00\x00\x74\x2c\x24\xc2\x59\x00\x00\x00\x5b\x00\x00\x00\x27\x00\x00\x00",
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xe2\x00\x00\x00\x65\x78\x61\x6d\x70\x6c\x65\x2e\x63\x6f",
    b"\x6d\x2f\x6d\x40\x76\x31\x2e\x30\x2e\x30\x2f\x63\x6d\x64\x2f\x68\x65\x6c\x6c\x6f\x2f\x68\x65\x6c",
    b"\x6c\x6f\x2e\x67\x6f\x50\x4b\x05\x06\x00\x00\x00\x00\x03\x00\x03\x00\xe5\x00\x00\x00\x90\x01\x00",
    b"\x00\x00\x00",
];

#[test]
fn zip_written_by_go() {
    let file = temp_file(&GO_WRITTEN_V5_ZIP.concat());
    assert_eq!(
        hash_zip(file.path()).expect("hash_zip"),
        "h1:tpqYOOmuilagXzyqoJ3roUjp8gneQeTv5YVpL6BG7/k="
    );
    let summary = crate::gomod::zip::check_zip_with_prefix(PREFIX, file.path()).expect("valid");
    assert_eq!(summary.files, 3);
}
