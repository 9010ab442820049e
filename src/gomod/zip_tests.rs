//! Cases ported from golang.org/x/mod `zip/testdata/{check_zip,unzip}` and
//! `zip_test.go` (size limits), plus malformed archives Go's reader refuses.

use super::testutil::{PREFIX, Raw, raw_zip, temp_file, unicode_path_extra, write_zip, zip_bytes};
use super::*;

fn check(entries: &[(&str, &[u8])]) -> Result<ZipSummary, GoModError> {
    let file = write_zip(entries);
    check_zip_with_prefix(PREFIX, file.path())
}

fn check_raw(entries: &[Raw]) -> Result<ZipSummary, GoModError> {
    check_bytes(&raw_zip(entries))
}

fn check_bytes(bytes: &[u8]) -> Result<ZipSummary, GoModError> {
    let file = temp_file(bytes);
    check_zip_with_prefix(PREFIX, file.path())
}

#[track_caller]
fn assert_invalid(result: Result<ZipSummary, GoModError>, want: &str) {
    match result {
        Err(GoModError::InvalidZip(reason)) => {
            assert!(
                reason.contains(want),
                "got {reason:?}, want it to contain {want:?}"
            )
        }
        other => panic!("got {other:?}, want InvalidZip containing {want:?}"),
    }
}

const V5_GO_MOD: &[u8] = b"module example.com/m\n\ngo 1.13\n";
const V5_M_GO: &[u8] = b"package m\n\nfunc Foo() int { return 42 }\n";

#[test]
fn simple() {
    let summary = check(&[
        ("example.com/m@v1.0.0/go.mod", V5_GO_MOD),
        ("example.com/m@v1.0.0/m.go", V5_M_GO),
        ("example.com/m@v1.0.0/cmd/hello/hello.go", b"package main\n"),
    ])
    .expect("valid zip");
    assert_eq!(
        summary,
        ZipSummary {
            files: 3,
            uncompressed_size: (V5_GO_MOD.len() + V5_M_GO.len() + 13) as u64,
        }
    );
}

#[test]
fn empty() {
    let summary = check(&[]).expect("an empty module zip is valid");
    assert_eq!(summary.files, 0);
}

#[test]
fn directories_and_prefix_entry_are_allowed() {
    let summary = check(&[
        (PREFIX, b""),
        ("example.com/m@v1.0.0/a/", b""),
        ("example.com/m@v1.0.0/a/a.go", b"package a\n"),
        ("example.com/m@v1.0.0/go.mod/a.go", b"package a\n"), // unzip/go_mod_dir.txt
    ])
    .expect("valid zip");
    assert_eq!(summary.files, 2);
}

#[test]
fn repeated_directory_is_rejected() {
    // Go accepts this and hashes both lines; the zip crate keeps only one of them,
    // so the hash would differ from the go command's.
    assert_invalid(
        check_raw(&[
            Raw::stored("example.com/m@v1.0.0/a/", b""),
            Raw::stored("example.com/m@v1.0.0/a/", b""),
        ]),
        "same name",
    );
}

#[test]
fn check_zip_various() {
    // check_zip/various.txt, one invalid entry at a time.
    let valid = ("example.com/m@v1.0.0/valid.go", &b""[..]);
    assert_invalid(
        check(&[valid, ("noprefix", b"")]),
        "noprefix: path does not have prefix \"example.com/m@v1.0.0/\"",
    );
    assert_invalid(
        check(&[valid, ("example.com/m@v1.0.0/not/../clean", b"")]),
        "example.com/m@v1.0.0/not/../clean: file path is not clean",
    );
    assert_invalid(
        check(&[valid, ("example.com/m@v1.0.0/invalid.go'", b"")]),
        "example.com/m@v1.0.0/invalid.go': malformed file path \"invalid.go'\": invalid char '\\''",
    );
    assert_invalid(
        check(&[valid, ("example.com/m@v1.0.0/GO.MOD", b"")]),
        "example.com/m@v1.0.0/GO.MOD: go.mod files must have lowercase names",
    );
    assert_invalid(
        check_raw(&[
            Raw::stored("example.com/m@v1.0.0/valid.go", b""),
            Raw::stored("example.com/m@v1.0.0/valid.go", b"duplicate\n"),
        ]),
        "more than one entry has the same name",
    );
}

#[test]
fn unzip_error_cases() {
    assert_invalid(
        check(&[("example.com/m@v1.0.0/bad.go'", b"package bad\n")]),
        "invalid char '\\''",
    );
    assert_invalid(
        check(&[("example.com/m@v1.0.0/GO.MOD", b"module example.com/m\n")]),
        "go.mod files must have lowercase names",
    );
    assert_invalid(
        check(&[
            ("example.com/m@v1.0.0/go.mod", V5_GO_MOD),
            (
                "example.com/m@v1.0.0/sub/go.mod",
                b"module example.com/m/sub\n",
            ),
        ]),
        "example.com/m@v1.0.0/sub/go.mod: go.mod file not in module root directory",
    );
    assert_invalid(
        check(&[
            ("example.com/m@v1.0.0/a.go", b"package a\n"),
            ("example.com/m@v1.0.0/b/GO.MOD", b"MODULE EXAMPLE.COM/M/B\n"),
            ("example.com/m@v1.0.0/b/b.go", b"package b\n"),
        ]),
        "go.mod file not in module root directory",
    );
    assert_invalid(
        check(&[
            ("example.com/m@v1.0.0/a.go", b"package a\n"),
            ("example.com/m@v1.0.0/a.go/b.go", b"package b\n"),
        ]),
        "entry \"a.go\" is both a file and a directory",
    );
    assert_invalid(
        check(&[
            ("example.com/m@v1.0.0/m.go", b"package m\n"),
            ("example.com/m@v1.0.0/M.GO", b"package m\n"),
        ]),
        "case-insensitive file name collision: \"m.go\" and \"M.GO\"",
    );
    assert_invalid(
        check(&[
            ("example.com/m@v1.0.0", b""),
            ("example.com/m@v1.0.0/go.mod", b"module example.com/m\n"),
        ]),
        "example.com/m@v1.0.0: path does not have prefix \"example.com/m@v1.0.0/\"",
    );
}

#[test]
fn duplicate_file_is_rejected() {
    // unzip/dup_file.txt; Go names the file, the zip crate merges the two entries.
    assert_invalid(
        check_raw(&[
            Raw::stored("example.com/m@v1.0.0/dup.go", b"package d1\n"),
            Raw::stored("example.com/m@v1.0.0/dup.go", b"package d2\n"),
        ]),
        "same name",
    );
}

#[test]
fn collisions_use_unicode_simple_folding() {
    // Expectations from Go's strings.EqualFold.
    let pairs: &[(&str, &str, bool)] = &[
        ("K", "\u{212A}", true), // KELVIN SIGN
        ("k", "\u{212A}", true),
        ("s", "\u{17F}", true), // LONG S
        ("\u{B5}", "\u{39C}", true),
        ("\u{B5}", "\u{3BC}", true),
        ("\u{DF}", "\u{1E9E}", true),
        ("\u{1C5}", "\u{1C6}", true),
        ("\u{1C4}", "\u{1C5}", true),
        ("\u{2126}", "\u{3C9}", true), // OHM SIGN
        ("\u{212B}", "\u{E5}", true),  // ANGSTROM SIGN
        ("\u{1F80}", "\u{1F88}", true),
        ("\u{3C2}", "\u{3A3}", true),
        ("\u{13A0}", "\u{AB70}", true), // Cherokee
        ("\u{130}", "i", false),        // case mappings but no folding
        ("\u{131}", "I", false),
        ("\u{131}", "i", false),
    ];
    for &(a, b, fold) in pairs {
        assert_eq!(fold_key(a) == fold_key(b), fold, "{a:?} vs {b:?}");
        let (fa, fb) = (format!("{PREFIX}{a}.go"), format!("{PREFIX}{b}.go"));
        let result = check(&[(&fa, b""), (&fb, b"")]);
        if fold {
            assert_invalid(result, "case-insensitive file name collision");
        } else {
            result.expect("distinct names");
        }
    }
    // A directory collides through the files under it too.
    assert_invalid(
        check(&[
            ("example.com/m@v1.0.0/a/", b""),
            ("example.com/m@v1.0.0/A/b.go", b""),
        ]),
        "case-insensitive file name collision: \"a\" and \"A\"",
    );
}

#[test]
fn clean_matches_go_path_clean() {
    // (p, path.Clean(p) == p), computed with Go's path package.
    let cases: &[(&str, bool)] = &[
        ("", false),
        (".", true),
        ("..", true),
        ("/", true),
        ("//", false),
        ("a", true),
        ("a/", false),
        ("/a", true),
        ("a//b", false),
        ("a/./b", false),
        ("./a", false),
        ("a/..", false),
        ("../a", true),
        ("../../a", true),
        ("a/../b", false),
        ("/..", false),
        ("/../a", false),
        ("../..", true),
        ("..a", true),
        ("a..", true),
        ("a/...", true),
        (".../a", true),
        ("a/b/c", true),
        ("a/b/", false),
        ("a/.", false),
        ("a/..b", true),
        ("../a/..", false),
        ("../a/b", true),
    ];
    for &(p, clean) in cases {
        assert_eq!(is_clean(p), clean, "{p:?}");
    }
}

#[test]
fn size_limits_on_declared_sizes() {
    // zip_test.go sizeLimitTests. The data is empty, so these zips can pass the name
    // and size checks but never the read.
    let max = u32::try_from(MAX_ZIP_FILE).expect("fits");
    let gomax = u32::try_from(MAX_GO_MOD).expect("fits");
    let at_limit: &[&[Raw]] = &[
        &[Raw::claiming("example.com/m@v1.0.0/large.go", max)],
        &[
            Raw::claiming("example.com/m@v1.0.0/small.go", 10),
            Raw::claiming("example.com/m@v1.0.0/large.go", max - 10),
        ],
        &[Raw::claiming("example.com/m@v1.0.0/go.mod", gomax)],
        &[Raw::claiming("example.com/m@v1.0.0/LICENSE", gomax)],
        // Only the root LICENSE is limited, and only with that exact spelling.
        &[Raw::claiming("example.com/m@v1.0.0/sub/LICENSE", gomax + 1)],
        &[Raw::claiming("example.com/m@v1.0.0/license", gomax + 1)],
    ];
    for entries in at_limit {
        let file = temp_file(&raw_zip(entries));
        let archive = open_archive(file.path()).expect("readable");
        check_names_and_sizes(&archive, PREFIX).expect("within limits");
        assert_invalid(check_zip_with_prefix(PREFIX, file.path()), "declared size");
    }
    let too_large: &[(&[Raw], &str)] = &[
        (
            &[Raw::claiming("example.com/m@v1.0.0/large.go", max + 1)],
            "total uncompressed size of module contents too large",
        ),
        (
            &[
                Raw::claiming("example.com/m@v1.0.0/small.go", 10),
                Raw::claiming("example.com/m@v1.0.0/large.go", max - 9),
            ],
            "total uncompressed size of module contents too large",
        ),
        (
            &[Raw::claiming("example.com/m@v1.0.0/go.mod", gomax + 1)],
            "go.mod file too large",
        ),
        (
            &[Raw::claiming("example.com/m@v1.0.0/LICENSE", gomax + 1)],
            "LICENSE file too large",
        ),
    ];
    for (entries, want) in too_large {
        assert_invalid(check_raw(entries), want);
    }
}

#[test]
fn largest_go_mod_is_accepted() {
    let content = vec![b'\n'; usize::try_from(MAX_GO_MOD).expect("fits")];
    let file = temp_file(&raw_zip(&[Raw::stored(
        "example.com/m@v1.0.0/go.mod",
        &content,
    )]));
    let summary = check_zip_with_prefix(PREFIX, file.path()).expect("exactly MaxGoMod");
    assert_eq!(summary.uncompressed_size, MAX_GO_MOD);
}

#[test]
fn zip_file_size_limit() {
    // zip_test.go large_zip / too_large_zip: sparse files, sized before parsing.
    let file = temp_file(b"");
    file.as_file().set_len(MAX_ZIP_FILE + 1).expect("grow");
    assert_invalid(
        check_zip_with_prefix(PREFIX, file.path()),
        "module zip file is too large",
    );
    file.as_file().set_len(MAX_ZIP_FILE).expect("shrink");
    let result = check_zip_with_prefix(PREFIX, file.path());
    assert!(
        matches!(result, Err(GoModError::InvalidZip(_))),
        "{result:?}"
    );
}

#[test]
fn size_is_a_lie() {
    // zip_test.go size_is_a_lie: a deflated go.mod of 0xBAD zero bytes whose
    // headers claim 0xAC.
    let mut bytes = zip_bytes(&[("example.com/m@v1.0.0/go.mod", &[0u8; 0x0BAD])]);
    let mut patched = 0;
    for i in 0..bytes.len() - 1 {
        if bytes[i..i + 2] == [0xAD, 0x0B] {
            bytes[i..i + 2].copy_from_slice(&[0xAC, 0x00]);
            patched += 1;
        }
    }
    assert!(patched >= 1);
    assert_invalid(check_bytes(&bytes), "larger than its declared");
}

#[test]
fn data_must_match_headers() {
    let name = "example.com/m@v1.0.0/a.go";
    let stored = Raw::stored(name, b"package a\n");
    assert_invalid(
        check_raw(&[Raw {
            declared_size: Some(20),
            ..stored.clone()
        }]),
        "a.go: uncompressed size is 10 bytes, declared size is 20 bytes",
    );
    assert_invalid(
        check_raw(&[Raw {
            declared_size: Some(4),
            ..stored.clone()
        }]),
        "a.go: File is larger than its declared uncompressed size",
    );
    assert_invalid(
        check_raw(&[Raw {
            crc: Some(0xDEAD_BEEF),
            ..stored.clone()
        }]),
        "a.go: Invalid checksum",
    );
    assert_invalid(
        check_raw(&[Raw {
            method: 12, // bzip2, which Go's reader does not register
            ..stored.clone()
        }]),
        "a.go: unsupported compression method",
    );
    assert_invalid(
        check_raw(&[Raw::stored("example.com/m@v1.0.0/dir/", b"x")]),
        "dir/: directory entry has 1 bytes of content",
    );
    assert_invalid(
        check_raw(&[Raw {
            name: b"example.com/m@v1.0.0/\xff.go".to_vec(),
            ..stored.clone()
        }]),
        "invalid UTF-8",
    );
}

#[test]
fn unicode_path_field_is_refused() {
    // Go reads the header name; the zip crate would substitute the extra field's.
    let original = b"example.com/m@v1.0.0/a.go";
    let renamed = Raw {
        extra: unicode_path_extra(original, "example.com/m@v1.0.0/b.go"),
        ..Raw::stored("example.com/m@v1.0.0/a.go", b"package a\n")
    };
    assert_invalid(check_raw(&[renamed]), "Unicode Path");
}

#[test]
fn truncated_or_corrupted_zips_fail_cleanly() {
    let bytes = zip_bytes(&[
        ("example.com/m@v1.0.0/go.mod", V5_GO_MOD),
        ("example.com/m@v1.0.0/m.go", V5_M_GO),
    ]);
    check_bytes(&bytes).expect("intact zip is valid");
    for len in 0..bytes.len() {
        let result = check_bytes(&bytes[..len]);
        assert!(
            matches!(result, Err(GoModError::InvalidZip(_))),
            "truncated to {len}: {result:?}"
        );
    }
    // A flipped byte may land in a field nobody reads; it must never panic, and
    // whatever passes must still hash.
    for i in 0..bytes.len() {
        let mut corrupt = bytes.clone();
        corrupt[i] ^= 0x55;
        let file = temp_file(&corrupt);
        if check_zip_with_prefix(PREFIX, file.path()).is_ok() {
            crate::gomod::dirhash::hash_zip(file.path()).expect("checked zip hashes");
        }
    }
}

#[test]
fn public_check_zip_uses_unescaped_path_and_version() {
    let check_for = |path: &str, version: &str, entries: &[(&str, &[u8])]| {
        let path = ModulePath::parse(path).expect("module path");
        let version = Version::parse_for(&path, version).expect("version");
        let file = write_zip(entries);
        check_zip(&path, &version, file.path())
    };
    let azure = "github.com/Azure/go@v36.0.0+incompatible/README.md";
    check_for(
        "github.com/Azure/go",
        "v36.0.0+incompatible",
        &[(azure, b"hi\n")],
    )
    .expect("unescaped capitals and +incompatible in the prefix");
    check_for(
        "gopkg.in/yaml.v2",
        "v2.4.0",
        &[("gopkg.in/yaml.v2@v2.4.0/yaml.go", b"package yaml\n")],
    )
    .expect("gopkg.in path");
    assert_invalid(
        check_for(
            "example.com/m",
            "v1.0.1",
            &[("example.com/m@v1.0.0/m.go", b"package m\n")],
        ),
        "path does not have prefix \"example.com/m@v1.0.1/\"",
    );
    assert_invalid(
        check_for(
            "github.com/Azure/go",
            "v36.0.0+incompatible",
            &[("github.com/!azure/go@v36.0.0+incompatible/README.md", b"")],
        ),
        "path does not have prefix",
    );
}
