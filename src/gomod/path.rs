//! Module path validation (`module.CheckPath`, `CheckImportPath`, `CheckFilePath`)
//! and the `!`-escaping used in proxy URLs and cache paths.
//!
//! The escaped form exists because URLs and cache directories may live on
//! case-insensitive file systems: `rsc.io/QUOTE` and `rsc.io/quote` must never need
//! two different casings of one file name, so capitals travel as `!` + lower case.

use super::GoModError;

/// A module path that passed `CheckPath`. Unescaped (real capitals), e.g. `github.com/Azure/go`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModulePath(String);

impl ModulePath {
    /// Validates an unescaped module path with Go's `module.CheckPath` rules.
    pub fn parse(path: &str) -> Result<Self, GoModError> {
        check_path(path)?;
        Ok(ModulePath(path.to_owned()))
    }

    /// Decodes a `!`-escaped module path (`module.UnescapePath`) and validates it.
    pub fn from_escaped(escaped: &str) -> Result<Self, GoModError> {
        let path = unescape_path(escaped)?;
        Ok(ModulePath(path))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `!`-escaped form used in URLs and on disk.
    pub fn escaped(&self) -> String {
        escape_string(&self.0)
    }
}

impl std::fmt::Display for ModulePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The three path flavours share one algorithm but differ in what an element may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PathKind {
    Module,
    Import,
    File,
}

/// `module.CheckPath`.
pub fn check_path(path: &str) -> Result<(), GoModError> {
    check_module_path(path).map_err(|reason| GoModError::InvalidPath {
        path: path.to_owned(),
        reason,
    })
}

fn check_module_path(path: &str) -> Result<(), String> {
    check_general_path(path, PathKind::Module)?;
    let first = path.split('/').next().unwrap_or_default();
    if first.is_empty() {
        return Err("leading slash".into());
    }
    // The first element is looked up as a host name, so it must look like one and
    // be lower case to keep the escaped form unambiguous.
    if !first.contains('.') {
        return Err("missing dot in first path element".into());
    }
    if first.starts_with('-') {
        return Err("leading dash in first path element".into());
    }
    if let Some(c) = first
        .chars()
        .find(|&c| !matches!(c, '-' | '.' | '0'..='9' | 'a'..='z'))
    {
        return Err(format!(
            "invalid char {} in first path element",
            go_quote_char(c)
        ));
    }
    if split_path_version(path).is_none() {
        return Err("invalid version".into());
    }
    Ok(())
}

/// `module.CheckImportPath`.
///
/// Reported as [`GoModError::InvalidPath`]; the reason names the import-path rule.
pub fn check_import_path(path: &str) -> Result<(), GoModError> {
    check_general_path(path, PathKind::Import).map_err(|reason| GoModError::InvalidPath {
        path: path.to_owned(),
        reason: format!("not a valid import path: {reason}"),
    })
}

/// `module.CheckFilePath`: a path of a file inside a module zip (without the prefix).
pub fn check_file_path(path: &str) -> Result<(), GoModError> {
    check_general_path(path, PathKind::File).map_err(|reason| GoModError::InvalidFilePath {
        path: path.to_owned(),
        reason,
    })
}

/// `checkElem(elem, filePath)`: what a version string must satisfy to be used as a
/// single file name in URLs and the cache.
pub(super) fn check_file_elem(elem: &str) -> Result<(), String> {
    check_elem(elem, PathKind::File)
}

fn check_general_path(path: &str, kind: PathKind) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty string".into());
    }
    // A leading dash would be read as a flag by the go command and by git.
    if path.starts_with('-') && kind != PathKind::File {
        return Err("leading dash".into());
    }
    if path.contains("//") {
        return Err("double slash".into());
    }
    if path.ends_with('/') {
        return Err("trailing slash".into());
    }
    path.split('/').try_for_each(|elem| check_elem(elem, kind))
}

fn check_elem(elem: &str, kind: PathKind) -> Result<(), String> {
    if elem.is_empty() {
        return Err("empty path element".into());
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err(format!("invalid path element {elem:?}"));
    }
    // Dot-files are fine inside a zip but would be hidden directories in the cache.
    if elem.starts_with('.') && kind == PathKind::Module {
        return Err("leading dot in path element".into());
    }
    // Windows silently strips trailing dots, which would alias two names.
    if elem.ends_with('.') {
        return Err("trailing dot in path element".into());
    }
    let char_ok = match kind {
        PathKind::Module => module_char_ok,
        PathKind::Import => import_char_ok,
        PathKind::File => file_char_ok,
    };
    if let Some(c) = elem.chars().find(|&c| !char_ok(c)) {
        return Err(format!("invalid char {}", go_quote_char(c)));
    }

    // Windows refuses these names even with an extension, in any case.
    let short = elem.split('.').next().unwrap_or_default();
    if WINDOWS_RESERVED
        .iter()
        .any(|bad| bad.eq_ignore_ascii_case(short))
    {
        return Err(format!(
            "{short:?} disallowed as path element component on Windows"
        ));
    }

    // `NAME~1` looks like a Windows 8.3 short name and could alias another
    // directory in the module cache; zip file names never reach the cache by that
    // route, so only module and import paths care.
    if kind != PathKind::File
        && let Some((_, digits)) = short.rsplit_once('~')
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("trailing tilde and digits in path element".into());
    }
    Ok(())
}

const WINDOWS_RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// `+` is excluded because proxies and form decoders may turn it into a space.
fn module_char_ok(c: char) -> bool {
    matches!(c, '-' | '.' | '_' | '~' | '0'..='9' | 'A'..='Z' | 'a'..='z')
}

/// Import paths additionally allow `+` (historic names such as `c++`).
fn import_char_ok(c: char) -> bool {
    module_char_ok(c) || c == '+'
}

fn file_char_ok(c: char) -> bool {
    if c.is_ascii() {
        // ASCII punctuation minus shell metacharacters (" ' * < > ? ` |) and the
        // separators / \ : that some operating system would interpret.
        return c.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(c);
    }
    is_unicode_letter(c)
}

/// Go accepts non-ASCII file names only if `unicode.IsLetter` holds. The standard
/// library has no General_Category query, so this uses Alphabetic minus numbers.
/// Compared exhaustively with Go 1.26 (Unicode 15), it accepts every letter Go
/// accepts; the extras are vowel signs and other marks that Unicode calls
/// alphabetic, circled letters, and letters newer than Go's tables. Plain
/// combining marks such as U+0301, which would allow normalization aliases, are
/// still rejected.
fn is_unicode_letter(c: char) -> bool {
    c.is_alphabetic() && !c.is_numeric()
}

/// Formats a character the way Go's `%q` does, so reasons read like Go's own.
fn go_quote_char(c: char) -> String {
    match c {
        '\'' => r"'\''".to_owned(),
        '\\' => r"'\\'".to_owned(),
        '\x07' => r"'\a'".to_owned(),
        '\x08' => r"'\b'".to_owned(),
        '\x0c' => r"'\f'".to_owned(),
        '\n' => r"'\n'".to_owned(),
        '\r' => r"'\r'".to_owned(),
        '\t' => r"'\t'".to_owned(),
        '\x0b' => r"'\v'".to_owned(),
        c if c.is_ascii_control() => format!(r"'\x{:02x}'", u32::from(c)),
        c if c.is_ascii() => format!("'{c}'"),
        // escape_debug escapes exactly the non-printable and combining characters.
        c if c.escape_debug().nth(1).is_some() => {
            let code = u32::from(c);
            if code <= 0xFFFF {
                format!(r"'\u{code:04x}'")
            } else {
                format!(r"'\U{code:08x}'")
            }
        }
        c => format!("'{c}'"),
    }
}

/// `module.SplitPathVersion`: splits off the major version suffix (`/vN` with
/// N ≥ 2, or gopkg.in's `.vN` / `.vN-unstable`), returning `(prefix, suffix)` with
/// `prefix + suffix == path`. The suffix is empty if there is none. `None` means the
/// last element looks like a version suffix but is not an allowed one (`/v1`,
/// `/v0`, `/v2.0`, `/v02`, or a gopkg.in path without `.vN`).
pub fn split_path_version(path: &str) -> Option<(&str, &str)> {
    if path.starts_with("gopkg.in/") {
        return split_gopkg_in(path);
    }
    let bytes = path.as_bytes();
    let digits_start = bytes
        .iter()
        .rposition(|&b| !(b.is_ascii_digit() || b == b'.'))
        .map_or(0, |i| i + 1);
    let no_suffix = Some((path, ""));
    if digits_start < 2
        || digits_start == bytes.len()
        || bytes[digits_start - 1] != b'v'
        || bytes[digits_start - 2] != b'/'
    {
        return no_suffix;
    }
    let (prefix, major) = path.split_at(digits_start - 2);
    let number = &major[2..];
    // Only a canonical major number may appear: no dots, no leading zero, and
    // /v1 is spelled without a suffix.
    if number.contains('.') || number.starts_with('0') || number == "1" {
        return None;
    }
    Some((prefix, major))
}

fn split_gopkg_in(path: &str) -> Option<(&str, &str)> {
    let stem = path.strip_suffix("-unstable").unwrap_or(path);
    let bytes = stem.as_bytes();
    let digits_start = bytes
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    if digits_start < 2 || bytes[digits_start - 1] != b'v' || bytes[digits_start - 2] != b'.' {
        return None;
    }
    let (prefix, major) = path.split_at(digits_start - 2);
    // gopkg.in allows a bare .v0 but otherwise no leading zeros. Go checks the
    // whole suffix here, so `.v0-unstable` is refused and `.v-unstable` passes.
    if major.len() <= 2 || (major.as_bytes()[2] == b'0' && major != ".v0") {
        return None;
    }
    Some((prefix, major))
}

/// `module.UnescapePath`: decode `!x` to `X`, rejecting bad escapes, then `CheckPath`.
pub fn unescape_path(escaped: &str) -> Result<String, GoModError> {
    let invalid = |reason: String| GoModError::InvalidEscapedPath {
        escaped: escaped.to_owned(),
        reason,
    };
    let path = unescape_string(escaped).map_err(invalid)?;
    check_module_path(&path).map_err(invalid)?;
    Ok(path)
}

/// Reverses [`escape_string`]. Every `!` must introduce a lower-case letter and
/// no raw capital may appear, so each path has exactly one escaped spelling.
pub(super) fn unescape_string(escaped: &str) -> Result<String, String> {
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '!' => match chars.next() {
                Some(next @ 'a'..='z') => out.push(next.to_ascii_uppercase()),
                Some(next) => {
                    return Err(format!(
                        "malformed escape: '!' followed by {} instead of a lower-case letter",
                        go_quote_char(next)
                    ));
                }
                None => return Err("malformed escape: trailing '!'".into()),
            },
            'A'..='Z' => {
                return Err(format!(
                    "malformed escape: upper-case {} must be written as '!{}'",
                    go_quote_char(c),
                    c.to_ascii_lowercase()
                ));
            }
            c if !c.is_ascii() => {
                return Err(format!("non-ASCII char {}", go_quote_char(c)));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Replace every ASCII capital with `!` + its lower case. Callers validate first.
pub fn escape_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
