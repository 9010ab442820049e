//! Module versions as they appear in proxy requests: canonical versions, which name
//! immutable artifacts, and queries (branch names, commit prefixes, non-canonical
//! semver) that only `.info` accepts.

use super::path::{check_file_elem, check_path, split_path_version, unescape_string};
use super::{GoModError, ModulePath, semver};

/// A canonical version that `module.Check` accepts for its module
/// (`v1.2.3`, `v0.0.0-20190507143103-cc8cbe209b64`, `v2.0.0+incompatible`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(String);

impl Version {
    /// Accepts `version` only if it is canonical (`module.CanonicalVersion(v) == v`)
    /// and valid for `path` (`module.Check`: major version suffix, gopkg.in rules,
    /// `+incompatible`).
    pub fn parse_for(path: &ModulePath, version: &str) -> Result<Self, GoModError> {
        let canonical = canonical_version(version);
        if canonical != version {
            let reason = if canonical.is_empty() {
                "not a semantic version".to_owned()
            } else {
                format!("not in canonical form (that would be {canonical})")
            };
            return Err(invalid_version(version, reason));
        }
        check(path.as_str(), version)?;
        Ok(Version(version.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `!`-escaped form used in URLs and on disk.
    pub fn escaped(&self) -> String {
        super::path::escape_string(&self.0)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A version string that passed `module.UnescapeVersion`'s element check but is not
/// a canonical version (e.g. `master`, `v1.2`, `abcdef123456`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Query(String);

impl Query {
    /// Accepts an unescaped query: it must be usable as one file name in URLs and
    /// the cache (`module.EscapeVersion`'s rules) and must not be a canonical
    /// version, since those are [`Version`]s and name immutable artifacts.
    pub fn parse(query: &str) -> Result<Self, GoModError> {
        check_version_elem(query)?;
        if canonical_version(query) == query {
            return Err(invalid_version(
                query,
                "a canonical version, not a query".to_owned(),
            ));
        }
        Ok(Query(query.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn escaped(&self) -> String {
        super::path::escape_string(&self.0)
    }
}

/// What a version in a request URL turned out to be.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestedVersion {
    Canonical(Version),
    Query(Query),
}

impl RequestedVersion {
    /// Classifies an unescaped version for `path`. A canonical version that
    /// `module.Check` rejects for this module is an error rather than a query:
    /// no upstream can have it, so the proxy answers 404 without asking.
    pub fn parse(path: &ModulePath, version: &str) -> Result<Self, GoModError> {
        check_version_elem(version)?;
        if canonical_version(version) == version {
            check(path.as_str(), version)?;
            return Ok(RequestedVersion::Canonical(Version(version.to_owned())));
        }
        Ok(RequestedVersion::Query(Query(version.to_owned())))
    }
}

/// `module.UnescapeVersion` followed by classification: a canonical version valid for
/// `path`, or a query. Errors for bad escapes and for strings that fail the element check.
pub fn parse_escaped_version(
    path: &ModulePath,
    escaped: &str,
) -> Result<RequestedVersion, GoModError> {
    let version = unescape_string(escaped).map_err(|reason| invalid_version(escaped, reason))?;
    RequestedVersion::parse(path, &version)
}

/// `module.UnescapeVersion`: the version a `!`-escaped cache or URL element names.
pub fn unescape_version(escaped: &str) -> Result<String, GoModError> {
    let version = unescape_string(escaped).map_err(|reason| invalid_version(escaped, reason))?;
    check_version_elem(&version)?;
    Ok(version)
}

/// Like [`parse_escaped_version`], for `.info` requests: a canonical version that
/// `module.Check` rejects for this module is a query there, not an error. The go
/// command asks for `@v/v2.0.0.info` of a module without a `/v2` suffix, and the
/// upstream resolves it (to `v2.0.0+incompatible`).
pub fn parse_escaped_info_version(
    path: &ModulePath,
    escaped: &str,
) -> Result<RequestedVersion, GoModError> {
    let version = unescape_string(escaped).map_err(|reason| invalid_version(escaped, reason))?;
    match RequestedVersion::parse(path, &version) {
        Err(GoModError::VersionMismatch { .. }) => Ok(RequestedVersion::Query(Query(version))),
        other => other,
    }
}

/// Versions become a single URL segment and a single cache file name, so they
/// follow the file-name element rules. `!` and non-ASCII are refused because the
/// escaping could not represent them unambiguously.
fn check_version_elem(version: &str) -> Result<(), GoModError> {
    check_file_elem(version).map_err(|reason| invalid_version(version, reason))?;
    // No version starts with a dot, and such names would be hidden or reserved
    // files in the cache directory.
    if version.starts_with('.') {
        return Err(invalid_version(version, "leading dot".to_owned()));
    }
    if version.contains('!') {
        return Err(invalid_version(version, "'!' is not allowed".to_owned()));
    }
    if !version.is_ascii() {
        return Err(invalid_version(version, "non-ASCII char".to_owned()));
    }
    Ok(())
}

fn invalid_version(version: &str, reason: String) -> GoModError {
    GoModError::InvalidVersion {
        version: version.to_owned(),
        reason,
    }
}

/// `module.CanonicalVersion`: `semver::canonical`, keeping a `+incompatible` build suffix.
pub fn canonical_version(v: &str) -> String {
    let mut canonical = semver::canonical(v);
    // +incompatible is the one build suffix that carries meaning: it marks a v2+
    // release of a module that has no go.mod, so it must survive canonicalization.
    if semver::build(v) == "+incompatible" {
        canonical.push_str("+incompatible");
    }
    canonical
}

/// `module.Check(path, version)`.
pub fn check(path: &str, version: &str) -> Result<(), GoModError> {
    check_path(path)?;
    if !semver::is_valid(version) {
        return Err(invalid_version(
            version,
            "not a semantic version".to_owned(),
        ));
    }
    // check_path has already verified the suffix, so there is always a split.
    let path_major = split_path_version(path).map_or("", |(_, major)| major);
    check_path_major(version, path_major).map_err(|reason| GoModError::VersionMismatch {
        path: path.to_owned(),
        version: version.to_owned(),
        reason,
    })
}

/// `module.CheckPathMajor`: does `v`'s major version agree with the path suffix
/// (`""`, `/vN`, `.vN` or `.vN-unstable`)?
fn check_path_major(v: &str, path_major: &str) -> Result<(), String> {
    let path_major = if path_major.starts_with(".v") {
        path_major.strip_suffix("-unstable").unwrap_or(path_major)
    } else {
        path_major
    };
    // Early vgo wrote v0.0.0 pseudo-versions for gopkg.in .v1 modules, and
    // published go.mod files still require them.
    if v.starts_with("v0.0.0-") && path_major == ".v1" {
        return Ok(());
    }
    let major = semver::major(v);
    let want = match path_major.strip_prefix(['/', '.']) {
        None if path_major.is_empty() => {
            if major == "v0" || major == "v1" || semver::build(v) == "+incompatible" {
                return Ok(());
            }
            "v0 or v1"
        }
        None => path_major,
        Some(suffix_major) if suffix_major == major => return Ok(()),
        Some(suffix_major) => suffix_major,
    };
    Err(format!("should be {want}, not {major}"))
}

/// `module.IsPseudoVersion`.
pub fn is_pseudo_version(v: &str) -> bool {
    v.matches('-').count() >= 2 && semver::is_valid(v) && has_pseudo_shape(v)
}

/// Go's pseudo-version pattern,
/// `^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`,
/// matched by hand: the three forms are `vX.0.0-TIME-REV`,
/// `vX.Y.Z-0.TIME-REV` (after a release) and `vX.Y.Z-PRE.0.TIME-REV` (after a
/// prerelease), each optionally followed by build metadata.
fn has_pseudo_shape(v: &str) -> bool {
    let Some(rest) = v
        .strip_prefix('v')
        .and_then(skip_digits)
        .and_then(|r| r.strip_prefix('.'))
    else {
        return false;
    };
    if rest.strip_prefix("0.0-").is_some_and(is_time_rev_build) {
        return true;
    }
    let Some(after_dash) = skip_digits(rest)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(skip_digits)
        .and_then(|r| r.strip_prefix('-'))
    else {
        return false;
    };
    // TIME-REV has no dots before the build, so the dot that ends the `0.`
    // marker must be the last one before the first `+`.
    let before_build = after_dash.find('+').unwrap_or(after_dash.len());
    let Some(dot) = after_dash[..before_build].rfind('.') else {
        return false;
    };
    let marker = &after_dash[..dot];
    (marker == "0" || marker.ends_with(".0")) && is_time_rev_build(&after_dash[dot + 1..])
}

/// Strips one or more leading ASCII digits.
fn skip_digits(s: &str) -> Option<&str> {
    let rest = s.trim_start_matches(|c: char| c.is_ascii_digit());
    (rest.len() < s.len()).then_some(rest)
}

/// `\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?` over the whole of `s`.
fn is_time_rev_build(s: &str) -> bool {
    let Some((time, rest)) = s.split_at_checked(14) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix('-') else {
        return false;
    };
    if !time.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (rev, build) = match rest.split_once('+') {
        Some((rev, build)) => (rev, Some(build)),
        None => (rest, None),
    };
    let rev_ok = !rev.is_empty() && rev.bytes().all(|b| b.is_ascii_alphanumeric());
    let build_ok = build.is_none_or(|build| {
        build.split('.').all(|ident| {
            !ident.is_empty()
                && ident
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    });
    rev_ok && build_ok
}

#[cfg(test)]
#[path = "version_tests.rs"]
mod tests;
