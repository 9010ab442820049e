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
    assert_eq!(mixed(["a0", "B", "a/b", "é"]), mixed(["é", "a/b", "B", "a0"]));
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
