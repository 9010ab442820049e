//! Module versions as they appear in proxy requests: canonical versions, which name
//! immutable artifacts, and queries (branch names, commit prefixes, non-canonical
//! semver) that only `.info` accepts.

use super::{GoModError, ModulePath};

/// A canonical version that `module.Check` accepts for its module
/// (`v1.2.3`, `v0.0.0-20190507143103-cc8cbe209b64`, `v2.0.0+incompatible`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(String);

impl Version {
    /// Accepts `version` only if it is canonical (`module.CanonicalVersion(v) == v`)
    /// and valid for `path` (`module.Check`: major version suffix, gopkg.in rules,
    /// `+incompatible`).
    pub fn parse_for(path: &ModulePath, version: &str) -> Result<Self, GoModError> {
        let _ = (path, version);
        unimplemented!()
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

/// `module.UnescapeVersion` followed by classification: a canonical version valid for
/// `path`, or a query. Errors for bad escapes and for strings that fail the element check.
pub fn parse_escaped_version(
    path: &ModulePath,
    escaped: &str,
) -> Result<RequestedVersion, GoModError> {
    let _ = (path, escaped);
    unimplemented!()
}

/// `module.CanonicalVersion`: `semver::canonical`, keeping a `+incompatible` build suffix.
pub fn canonical_version(v: &str) -> String {
    let _ = v;
    unimplemented!()
}

/// `module.Check(path, version)`.
pub fn check(path: &str, version: &str) -> Result<(), GoModError> {
    let _ = (path, version);
    unimplemented!()
}

/// `module.IsPseudoVersion`.
pub fn is_pseudo_version(v: &str) -> bool {
    let _ = v;
    unimplemented!()
}
