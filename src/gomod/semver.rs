//! Go's semantic version dialect (`golang.org/x/mod/semver`): a `v` prefix,
//! `vMAJOR[.MINOR[.PATCH[-PRE][+BUILD]]]`, shorthand `v1`/`v1.2` allowed but not canonical.
//!
//! Numbers are kept as digit strings, never parsed into integers, so arbitrarily
//! large components (which Go accepts) neither overflow nor get rejected.

use std::cmp::Ordering;

/// The pieces of a valid version; every field is a slice of the input except the
/// defaults filled in for shorthand forms.
struct Parsed<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    /// What shorthand input lacks to be complete: ".0.0", ".0" or "".
    short: &'static str,
    /// Including the leading `-`, or empty.
    prerelease: &'a str,
    /// Including the leading `+`, or empty.
    build: &'a str,
}

fn parse(v: &str) -> Option<Parsed<'_>> {
    let rest = v.strip_prefix('v')?;
    let (major, rest) = split_number(rest)?;
    if rest.is_empty() {
        return Some(Parsed::short(major, "0", ".0.0"));
    }
    let (minor, rest) = split_number(rest.strip_prefix('.')?)?;
    if rest.is_empty() {
        return Some(Parsed::short(major, minor, ".0"));
    }
    let (patch, rest) = split_number(rest.strip_prefix('.')?)?;
    let (prerelease, rest) = match rest.strip_prefix('-') {
        Some(after) => split_prerelease(after, rest)?,
        None => ("", rest),
    };
    let build = match rest.strip_prefix('+') {
        Some(after) if valid_identifiers(after, false) => rest,
        Some(_) => return None,
        None if rest.is_empty() => "",
        None => return None,
    };
    Some(Parsed {
        major,
        minor,
        patch,
        short: "",
        prerelease,
        build,
    })
}

impl<'a> Parsed<'a> {
    fn short(major: &'a str, minor: &'a str, short: &'static str) -> Self {
        Parsed {
            major,
            minor,
            patch: "0",
            short,
            prerelease: "",
            build: "",
        }
    }
}

/// Splits a leading decimal number without leading zeros off `s`.
fn split_number(s: &str) -> Option<(&str, &str)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 || (len > 1 && s.starts_with('0')) {
        return None;
    }
    Some(s.split_at(len))
}

/// `after` is the text following the `-` of `with_dash`; returns the prerelease
/// (with its `-`) and what follows it.
fn split_prerelease<'a>(after: &str, with_dash: &'a str) -> Option<(&'a str, &'a str)> {
    let len = after.find('+').unwrap_or(after.len());
    if !valid_identifiers(&after[..len], true) {
        return None;
    }
    Some(with_dash.split_at(len + 1))
}

/// Dot-separated, non-empty `[0-9A-Za-z-]` identifiers; prerelease identifiers
/// that are purely numeric must not have leading zeros (build identifiers may).
fn valid_identifiers(s: &str, prerelease: bool) -> bool {
    s.split('.').all(|ident| {
        !ident.is_empty()
            && ident
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !(prerelease && is_number(ident) && ident.len() > 1 && ident.starts_with('0'))
    })
}

fn is_number(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// `semver.IsValid`.
pub fn is_valid(v: &str) -> bool {
    parse(v).is_some()
}

/// `semver.Canonical`: fills in `.0`s and drops build metadata; "" for invalid input.
pub fn canonical(v: &str) -> String {
    match parse(v) {
        None => String::new(),
        Some(p) => {
            let without_build = &v[..v.len() - p.build.len()];
            format!("{without_build}{}", p.short)
        }
    }
}

/// `semver.Major`: e.g. "v2"; "" for invalid input.
pub fn major(v: &str) -> &str {
    parse(v).map_or("", |p| &v[..1 + p.major.len()])
}

/// `semver.Prerelease`: e.g. "-pre"; "" if none or invalid.
pub fn prerelease(v: &str) -> &str {
    parse(v).map_or("", |p| p.prerelease)
}

/// `semver.Build`: e.g. "+incompatible"; "" if none or invalid.
pub fn build(v: &str) -> &str {
    parse(v).map_or("", |p| p.build)
}

/// `semver.Compare`: invalid versions sort below all valid ones and equal to each other.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => compare_number(a.major, b.major)
            .then_with(|| compare_number(a.minor, b.minor))
            .then_with(|| compare_number(a.patch, b.patch))
            .then_with(|| compare_prerelease(a.prerelease, b.prerelease)),
    }
}

/// Digit strings without leading zeros: the longer one is larger.
fn compare_number(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Semver §11: a release outranks its prereleases; identifiers compare left to
/// right, numeric ones numerically and below alphanumeric ones, and a longer list
/// wins when one is a prefix of the other.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    match (a.strip_prefix('-'), b.strip_prefix('-')) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => {
            let mut a_idents = a.split('.');
            let mut b_idents = b.split('.');
            loop {
                match (a_idents.next(), b_idents.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some(x), Some(y)) => {
                        let order = compare_identifier(x, y);
                        if order != Ordering::Equal {
                            return order;
                        }
                    }
                }
            }
        }
    }
}

fn compare_identifier(a: &str, b: &str) -> Ordering {
    match (is_number(a), is_number(b)) {
        (true, true) => compare_number(a, b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

#[cfg(test)]
#[path = "semver_tests.rs"]
mod tests;
