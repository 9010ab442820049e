//! Vectors from golang.org/x/mod `module/module_test.go`, plus checks that the
//! reasons users see name the actual problem.

use super::*;

/// `checkPathTests`: (path, CheckPath ok, CheckImportPath ok, CheckFilePath ok).
/// Go's `"x.y/\xFFz"` row is omitted: a Rust `&str` cannot hold invalid UTF-8.
const CHECK_PATH_TESTS: &[(&str, bool, bool, bool)] = &[
    ("x.y/z", true, true, true),
    ("x.y", true, true, true),
    ("", false, false, false),
    ("/x.y/z", false, false, false),
    ("x./z", false, false, false),
    (".x/z", false, true, true),
    ("-x/z", false, false, true),
    ("x..y/z", true, true, true),
    ("x.y/z/../../w", false, false, false),
    ("x.y//z", false, false, false),
    ("x.y/z//w", false, false, false),
    ("x.y/z/", false, false, false),
    ("x.y/z/v0", false, true, true),
    ("x.y/z/v1", false, true, true),
    ("x.y/z/v2", true, true, true),
    ("x.y/z/v2.0", false, true, true),
    ("X.y/z", false, true, true),
    ("!x.y/z", false, false, true),
    ("_x.y/z", false, true, true),
    ("x.y!/z", false, false, true),
    ("x.y\"/z", false, false, false),
    ("x.y#/z", false, false, true),
    ("x.y$/z", false, false, true),
    ("x.y%/z", false, false, true),
    ("x.y&/z", false, false, true),
    ("x.y'/z", false, false, false),
    ("x.y(/z", false, false, true),
    ("x.y)/z", false, false, true),
    ("x.y*/z", false, false, false),
    ("x.y+/z", false, true, true),
    ("x.y,/z", false, false, true),
    ("x.y-/z", true, true, true),
    ("x.y./zt", false, false, false),
    ("x.y:/z", false, false, false),
    ("x.y;/z", false, false, false),
    ("x.y</z", false, false, false),
    ("x.y=/z", false, false, true),
    ("x.y>/z", false, false, false),
    ("x.y?/z", false, false, false),
    ("x.y@/z", false, false, true),
    ("x.y[/z", false, false, true),
    ("x.y\\/z", false, false, false),
    ("x.y]/z", false, false, true),
    ("x.y^/z", false, false, true),
    ("x.y_/z", false, true, true),
    ("x.y`/z", false, false, false),
    ("x.y{/z", false, false, true),
    ("x.y}/z", false, false, true),
    ("x.y~/z", false, true, true),
    ("x.y/z!", false, false, true),
    ("x.y/z\"", false, false, false),
    ("x.y/z#", false, false, true),
    ("x.y/z$", false, false, true),
    ("x.y/z%", false, false, true),
    ("x.y/z&", false, false, true),
    ("x.y/z'", false, false, false),
    ("x.y/z(", false, false, true),
    ("x.y/z)", false, false, true),
    ("x.y/z*", false, false, false),
    ("x.y/z++", false, true, true),
    ("x.y/z,", false, false, true),
    ("x.y/z-", true, true, true),
    ("x.y/z.t", true, true, true),
    ("x.y/z/t", true, true, true),
    ("x.y/z:", false, false, false),
    ("x.y/z;", false, false, false),
    ("x.y/z<", false, false, false),
    ("x.y/z=", false, false, true),
    ("x.y/z>", false, false, false),
    ("x.y/z?", false, false, false),
    ("x.y/z@", false, false, true),
    ("x.y/z[", false, false, true),
    ("x.y/z\\", false, false, false),
    ("x.y/z]", false, false, true),
    ("x.y/z^", false, false, true),
    ("x.y/z_", true, true, true),
    ("x.y/z`", false, false, false),
    ("x.y/z{", false, false, true),
    ("x.y/z}", false, false, true),
    ("x.y/z~", true, true, true),
    ("x.y/x.foo", true, true, true),
    ("x.y/aux.foo", false, false, false),
    ("x.y/prn", false, false, false),
    ("x.y/prn2", true, true, true),
    ("x.y/com", true, true, true),
    ("x.y/com1", false, false, false),
    ("x.y/com1.txt", false, false, false),
    ("x.y/calm1", true, true, true),
    ("x.y/z~", true, true, true),
    ("x.y/z~0", false, false, true),
    ("x.y/z~09", false, false, true),
    ("x.y/z09", true, true, true),
    ("x.y/z09~", true, true, true),
    ("x.y/z09~09z", true, true, true),
    ("x.y/z09~09z~09", false, false, true),
    ("github.com/!123/logrus", false, false, true),
    ("github.com/user/unicode/испытание", false, false, true),
    ("../x", false, false, false),
    ("./y", false, false, false),
    ("x:y", false, false, false),
    (r"\temp\foo", false, false, false),
    (".gitignore", false, true, true),
    (".github/ISSUE_TEMPLATE", false, true, true),
    ("x☺y", false, false, false),
];

#[test]
fn check_path_vectors() {
    for &(path, ok, import_ok, file_ok) in CHECK_PATH_TESTS {
        assert_eq!(check_path(path).is_ok(), ok, "check_path({path:?})");
        assert_eq!(
            check_import_path(path).is_ok(),
            import_ok,
            "check_import_path({path:?})"
        );
        assert_eq!(
            check_file_path(path).is_ok(),
            file_ok,
            "check_file_path({path:?})"
        );
        assert_eq!(
            ModulePath::parse(path).is_ok(),
            ok,
            "ModulePath::parse({path:?})"
        );
    }
}

#[test]
fn split_path_version_vectors() {
    let tests = [
        ("x.y/z", ""),
        ("x.y/z", "/v2"),
        ("x.y/z", "/v3"),
        ("x.y/v", ""),
        ("gopkg.in/yaml", ".v0"),
        ("gopkg.in/yaml", ".v1"),
        ("gopkg.in/yaml", ".v2"),
        ("gopkg.in/yaml", ".v3"),
    ];
    for (prefix, major) in tests {
        let path = format!("{prefix}{major}");
        assert_eq!(split_path_version(&path), Some((prefix, major)), "{path:?}");
    }
    // Whatever the verdict, the two halves must add up to the input.
    for &(path, ..) in CHECK_PATH_TESTS {
        let (prefix, major) = split_path_version(path).unwrap_or((path, ""));
        assert_eq!(format!("{prefix}{major}"), path);
    }
}

#[test]
fn split_path_version_edge_cases() {
    assert_eq!(
        split_path_version("gopkg.in/yaml.v2-unstable"),
        Some(("gopkg.in/yaml", ".v2-unstable"))
    );
    assert_eq!(split_path_version("gopkg.in/yaml.v02"), None);
    assert_eq!(split_path_version("gopkg.in/yaml"), None);
    assert_eq!(split_path_version("gopkg.in/yaml.v"), None);
    // Go looks at the whole suffix including "-unstable" for these two.
    assert_eq!(split_path_version("gopkg.in/yaml.v0-unstable"), None);
    assert_eq!(
        split_path_version("gopkg.in/yaml.v-unstable"),
        Some(("gopkg.in/yaml", ".v-unstable"))
    );
    assert_eq!(split_path_version("x.y/z/v02"), None);
    assert_eq!(split_path_version("x.y/z/v0"), None);
    assert_eq!(split_path_version("x.y/z/v1"), None);
    assert_eq!(split_path_version("x.y/z/v1.2"), None);
    assert_eq!(split_path_version("x.y/z/v10"), Some(("x.y/z", "/v10")));
    assert_eq!(split_path_version("x.y/zv2"), Some(("x.y/zv2", "")));
    assert_eq!(split_path_version("v2"), Some(("v2", "")));
    assert!(check_path("gopkg.in/yaml").is_err());
    assert!(check_path("gopkg.in/yaml.v2-unstable").is_ok());
}

/// `escapeTests`: (path, escaped form).
const ESCAPE_TESTS: &[(&str, &str)] = &[
    (
        "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789",
        "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789",
    ),
    (
        "github.com/GoogleCloudPlatform/omega",
        "github.com/!google!cloud!platform/omega",
    ),
];

#[test]
fn escape_vectors() {
    for &(path, esc) in ESCAPE_TESTS {
        let parsed = ModulePath::parse(path).expect("valid path");
        assert_eq!(parsed.escaped(), esc);
        assert_eq!(escape_string(path), esc);
        assert_eq!(unescape_path(esc).expect("valid escape"), path);
        assert_eq!(ModulePath::from_escaped(esc).expect("valid escape"), parsed);
    }
}

/// `badUnescape`.
const BAD_UNESCAPE: &[&str] = &[
    "github.com/GoogleCloudPlatform/omega",
    "github.com/!google!cloud!platform!/omega",
    "github.com/!0google!cloud!platform/omega",
    "github.com/!_google!cloud!platform/omega",
    "github.com/!!google!cloud!platform/omega",
    "",
];

#[test]
fn unescape_rejects_bad_escapes_and_invalid_paths() {
    for &bad in BAD_UNESCAPE {
        assert!(unescape_path(bad).is_err(), "unescape_path({bad:?})");
    }
    for &(path, ok, ..) in CHECK_PATH_TESTS {
        if !ok {
            assert!(unescape_path(path).is_err(), "unescape_path({path:?})");
            assert!(ModulePath::from_escaped(path).is_err());
        }
    }
    assert!(unescape_path("github.com/!azure/go!").is_err());
    assert!(unescape_path("example.com/\u{e9}").is_err());
}

fn reason(err: GoModError) -> String {
    match err {
        GoModError::InvalidPath { reason, .. }
        | GoModError::InvalidFilePath { reason, .. }
        | GoModError::InvalidEscapedPath { reason, .. } => reason,
        other => panic!("unexpected error kind: {other:?}"),
    }
}

#[test]
fn reasons_name_the_problem() {
    let module_reason = |p: &str| reason(check_path(p).expect_err(p));
    assert_eq!(module_reason(".x/z"), "leading dot in path element");
    assert_eq!(module_reason("x.y/.z"), "leading dot in path element");
    assert_eq!(
        module_reason("rsc/quote"),
        "missing dot in first path element"
    );
    assert_eq!(module_reason("-x.y/z"), "leading dash");
    assert_eq!(module_reason("x.y/z/"), "trailing slash");
    assert_eq!(module_reason("x.y//z"), "double slash");
    assert_eq!(module_reason("x.y/./z"), "invalid path element \".\"");
    assert_eq!(module_reason("x.y/../z"), "invalid path element \"..\"");
    assert_eq!(module_reason("x./z"), "trailing dot in path element");
    assert_eq!(module_reason(r"x.y\z"), r"invalid char '\\'");
    assert_eq!(module_reason("x.y/a'b"), r"invalid char '\''");
    assert_eq!(module_reason("x.y/a\tb"), r"invalid char '\t'");
    assert_eq!(module_reason("x.y/a\u{0}b"), r"invalid char '\x00'");
    assert_eq!(module_reason("x.y/a b"), "invalid char ' '");
    assert_eq!(module_reason("x.y/a+b"), "invalid char '+'");
    assert_eq!(module_reason("x.y/\u{438}"), "invalid char '\u{438}'");
    assert_eq!(module_reason("x.y/a\u{200b}"), r"invalid char '\u200b'");
    assert_eq!(
        module_reason("X.y/z"),
        "invalid char 'X' in first path element"
    );
    assert_eq!(module_reason("x.y/z/v1"), "invalid version");
    assert_eq!(module_reason(""), "empty string");
    assert_eq!(
        module_reason("x.y/Aux.txt"),
        "\"Aux\" disallowed as path element component on Windows"
    );
    assert_eq!(
        module_reason("x.y/z~1"),
        "trailing tilde and digits in path element"
    );

    let escaped_reason = |p: &str| reason(unescape_path(p).expect_err(p));
    assert!(escaped_reason("github.com/Azure/go").starts_with("malformed escape"));
    assert!(escaped_reason("github.com/!Azure/go").starts_with("malformed escape"));
    assert!(escaped_reason("github.com/!azure/go!").starts_with("malformed escape"));
    assert_eq!(
        escaped_reason("github.com/.x"),
        "leading dot in path element"
    );

    let file_reason = |p: &str| reason(check_file_path(p).expect_err(p));
    assert_eq!(file_reason("a/b:c"), "invalid char ':'");
    assert!(matches!(
        check_file_path("a/../b"),
        Err(GoModError::InvalidFilePath { .. })
    ));
}

#[test]
fn file_names_allow_letters_but_not_marks_or_symbols() {
    for ok in [
        "x/\u{e9}t\u{e9}.go",
        "\u{4e2d}\u{6587}/a.go",
        ".gitignore",
        "a b/c d",
    ] {
        assert!(check_file_path(ok).is_ok(), "{ok:?}");
    }
    // U+0301 combining acute, U+263A smiley, U+2167 roman numeral eight, U+00A0.
    for bad in [
        "e\u{301}",
        "x\u{263a}y",
        "\u{2167}",
        "a\u{a0}b",
        "a|b",
        "a*b",
    ] {
        assert!(check_file_path(bad).is_err(), "{bad:?}");
    }
    // Short-name lookalikes only matter for module and import paths.
    assert!(check_file_path("x.y/z~1").is_ok());
    assert!(check_import_path("x.y/z~1").is_err());
}
