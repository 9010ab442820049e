//! Go's semantic version dialect (`golang.org/x/mod/semver`): a `v` prefix,
//! `vMAJOR[.MINOR[.PATCH[-PRE][+BUILD]]]`, shorthand `v1`/`v1.2` allowed but not canonical.

use std::cmp::Ordering;

/// `semver.IsValid`.
pub fn is_valid(v: &str) -> bool {
    let _ = v;
    unimplemented!()
}

/// `semver.Canonical`: fills in `.0`s and drops build metadata; "" for invalid input.
pub fn canonical(v: &str) -> String {
    let _ = v;
    unimplemented!()
}

/// `semver.Major`: e.g. "v2"; "" for invalid input.
pub fn major(v: &str) -> &str {
    let _ = v;
    unimplemented!()
}

/// `semver.Prerelease`: e.g. "-pre"; "" if none or invalid.
pub fn prerelease(v: &str) -> &str {
    let _ = v;
    unimplemented!()
}

/// `semver.Build`: e.g. "+incompatible"; "" if none or invalid.
pub fn build(v: &str) -> &str {
    let _ = v;
    unimplemented!()
}

/// `semver.Compare`: invalid versions sort below all valid ones and equal to each other.
pub fn compare(a: &str, b: &str) -> Ordering {
    let _ = (a, b);
    unimplemented!()
}
