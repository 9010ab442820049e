//! Expectations checked against `go mod edit -json` (Go 1.26) where the go command
//! and this parser agree; the backquoted form follows `modfile.ModulePath` instead.

use super::*;

fn path_of(gomod: &str) -> String {
    module_path(gomod.as_bytes()).unwrap_or_else(|e| panic!("{gomod:?}: {e}"))
}

#[track_caller]
fn assert_invalid(gomod: &[u8], want: &str) {
    match module_path(gomod) {
        Err(GoModError::InvalidGoMod(reason)) => {
            assert!(reason.contains(want), "got {reason:?}, want {want:?}")
        }
        other => panic!(
            "{:?}: got {other:?}, want InvalidGoMod containing {want:?}",
            String::from_utf8_lossy(gomod)
        ),
    }
}

#[test]
fn quoted_module_line() {
    // rsc.io/quote v1.5.2's go.mod (cmd/go/testdata/mod/rsc.io_quote_v1.5.2.txt).
    assert_eq!(
        path_of("module \"rsc.io/quote\"\n\nrequire \"rsc.io/sampler\" v1.3.0\n"),
        "rsc.io/quote"
    );
    assert_eq!(path_of("module \"a.b/\\u0063\"\n"), "a.b/c");
    assert_eq!(path_of("module \"a.b/\\x63\\143\\U00000063\"\n"), "a.b/ccc");
}

#[test]
fn bare_module_line_with_comments() {
    assert_eq!(
        path_of("module example.com/m // comment\n"),
        "example.com/m"
    );
    assert_eq!(path_of("module example.com/m//comment"), "example.com/m");
    assert_eq!(
        path_of("// leading comment\n\n  module\texample.com/m\r\n\ngo 1.21 // x\n"),
        "example.com/m"
    );
}

#[test]
fn backquoted_module_line() {
    assert_eq!(path_of("module `example.com/m`\n"), "example.com/m");
}

#[test]
fn block_form() {
    assert_eq!(path_of("module (\n\texample.com/m\n)\n"), "example.com/m");
    assert_eq!(
        path_of("module ( // why\n\t// the path:\n\n\texample.com/m // yes\n) // end"),
        "example.com/m"
    );
}

#[test]
fn other_directives_are_ignored() {
    let gomod = "go 1.22\n\
        toolchain go1.22.1\n\
        require (\n\trsc.io/quote v1.5.2 // indirect\n\t\"x.y/z\" v1.0.0\n)\n\
        replace x.y/z => ../z\n\
        retract [v1.0.0, v1.1.0] // broken\n\
        exclude x.y/z v0.1.0\n\
        ignore ./third_party\n\
        frobnicate { whatever , }\n\
        module example.com/m\n";
    assert_eq!(path_of(gomod), "example.com/m");
}

#[test]
fn missing_module() {
    assert_invalid(b"go 1.21\n", "no module directive");
    assert_invalid(b"", "no module directive");
    assert_invalid(b"// module example.com/m\n", "no module directive");
    assert_invalid(b"module ()\n", "no module directive");
    // modfile skips blocks whose header is more than a verb.
    assert_invalid(b"module x (\n\texample.com/m\n)\n", "no module directive");
    assert_invalid(b"modules example.com/m\n", "no module directive");
}

#[test]
fn duplicate_module() {
    assert_invalid(
        b"module example.com/a\nmodule example.com/b\n",
        "line 2: repeated module statement",
    );
    assert_invalid(
        b"module (\n\texample.com/a\n\texample.com/b\n)\n",
        "line 3: repeated module statement",
    );
    assert_invalid(
        b"module example.com/a\nmodule (\n\texample.com/a\n)\n",
        "repeated module statement",
    );
}

#[test]
fn wrong_argument_count() {
    assert_invalid(b"module\n", "usage: module module/path");
    assert_invalid(b"module a.b/c a.b/d\n", "usage: module module/path");
    assert_invalid(b"module ( a.b/c )\n", "usage: module module/path");
}

#[test]
fn bad_strings() {
    assert_invalid(b"module a'b\n", "unquoted string cannot contain quote");
    assert_invalid(b"module a\"b\"\n", "unquoted string cannot contain quote");
    assert_invalid(b"module \"a.b/c\n", "unexpected newline in string");
    assert_invalid(b"module \"a.b/c", "unexpected EOF in string");
    assert_invalid(b"module \"a.b/\\q\"\n", "invalid quoted string");
    assert_invalid(b"module \"a.b/\\'\"\n", "invalid quoted string");
    assert_invalid(b"module \"a.b/\\400\"\n", "invalid quoted string");
    assert_invalid(b"module \"a.b/\\ud800\"\n", "invalid quoted string");
    assert_invalid(b"module \"a.b/\\xff\"\n", "invalid quoted string");
}

#[test]
fn malformed_path() {
    assert_invalid(b"module \"a b\"\n", "line 1: malformed module path");
    assert_invalid(b"module \"a.b/c\\n\"\n", "malformed module path");
    assert_invalid(b"module \"a.b//c\"\n", "malformed module path");
    assert_invalid(b"module -a.b/c\n", "malformed module path");
}

#[test]
fn syntax_errors_anywhere_fail_the_file() {
    assert_invalid(b"\xef\xbb\xbfmodule a.b/c\n", "unexpected input character");
    assert_invalid(b"module a.b/c\n/* x */\n", "not /* */ comments");
    assert_invalid(b"module a.b/c/*x*/\n", "not /* */ comments");
    assert_invalid(
        b"module a.b/c\nrequire (\n\tx.y/z v1.0.0\n",
        "unterminated block",
    );
    assert_invalid(
        b"module (\n\ta.b/c\n) x\n",
        "expected newline after closing paren",
    );
    assert_invalid(b"module a.b/c\ngo 1.21\x01\n", "unexpected input character");
    assert_invalid(
        b"module a.b/c\nrequire x.y/z \"v1\n",
        "unexpected newline in string",
    );
}

#[test]
fn not_utf8() {
    assert_invalid(b"module a.b/c\n// \xff\n", "not UTF-8");
}
