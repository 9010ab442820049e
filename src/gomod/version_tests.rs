//! Vectors from golang.org/x/mod `module/module_test.go` (`checkTests`,
//! `TestMatchPathMajor`) and `module/pseudo_test.go`, plus the proxy's
//! classification of requested versions.

use super::*;

/// `checkTests`: (path, version, ok).
const CHECK_TESTS: &[(&str, &str, bool)] = &[
    ("rsc.io/quote", "0.1.0", false),
    ("rsc io/quote", "v1.0.0", false),
    ("github.com/go-yaml/yaml", "v0.8.0", true),
    ("github.com/go-yaml/yaml", "v1.0.0", true),
    ("github.com/go-yaml/yaml", "v2.0.0", false),
    ("github.com/go-yaml/yaml", "v2.1.5", false),
    ("github.com/go-yaml/yaml", "v3.0.0", false),
    ("github.com/go-yaml/yaml/v2", "v1.0.0", false),
    ("github.com/go-yaml/yaml/v2", "v2.0.0", true),
    ("github.com/go-yaml/yaml/v2", "v2.1.5", true),
    ("github.com/go-yaml/yaml/v2", "v3.0.0", false),
    ("gopkg.in/yaml.v0", "v0.8.0", true),
    ("gopkg.in/yaml.v0", "v1.0.0", false),
    ("gopkg.in/yaml.v0", "v2.0.0", false),
    ("gopkg.in/yaml.v0", "v2.1.5", false),
    ("gopkg.in/yaml.v0", "v3.0.0", false),
    ("gopkg.in/yaml.v1", "v0.8.0", false),
    ("gopkg.in/yaml.v1", "v1.0.0", true),
    ("gopkg.in/yaml.v1", "v2.0.0", false),
    ("gopkg.in/yaml.v1", "v2.1.5", false),
    ("gopkg.in/yaml.v1", "v3.0.0", false),
    ("gopkg.in/check.v1", "v0.0.0", false),
    (
        "gopkg.in/check.v1",
        "v0.0.0-20160102150405-abcdef123456",
        true,
    ),
    ("gopkg.in/yaml.v2", "v1.0.0", false),
    ("gopkg.in/yaml.v2", "v2.0.0", true),
    ("gopkg.in/yaml.v2", "v2.1.5", true),
    ("gopkg.in/yaml.v2", "v3.0.0", false),
    ("rsc.io/quote", "v17.0.0", false),
    ("rsc.io/quote", "v17.0.0+incompatible", true),
];

#[test]
fn check_vectors() {
    for &(path, version, ok) in CHECK_TESTS {
        assert_eq!(
            check(path, version).is_ok(),
            ok,
            "check({path:?}, {version:?})"
        );
    }
}

/// `TestMatchPathMajor`: (version, path major suffix, matches).
#[test]
fn check_path_major_vectors() {
    let tests = [
        ("v0.0.0", "", true),
        ("v0.0.0", "/v2", false),
        ("v0.0.0", ".v0", true),
        ("v0.0.0-20190510104115-cbcb75029529", ".v1", true),
        ("v1.0.0", "/v2", false),
        ("v1.0.0", ".v1", true),
        ("v1.0.0", ".v1-unstable", true),
        ("v2.0.0+incompatible", "", true),
        ("v2.0.0", "", false),
        ("v2.0.0", "/v2", true),
        ("v2.0.0", ".v2", true),
    ];
    for (v, path_major, want) in tests {
        assert_eq!(
            check_path_major(v, path_major).is_ok(),
            want,
            "check_path_major({v:?}, {path_major:?})"
        );
    }
}

/// module.Check only compares major versions, so these pass in Go too; the go
/// command refuses them elsewhere (modfetch), not in module.Check.
#[test]
fn check_is_as_lenient_as_go_about_incompatible() {
    assert!(check("rsc.io/quote", "v1.0.0+incompatible").is_ok());
    assert!(check("rsc.io/quote/v2", "v2.0.0+incompatible").is_ok());
    assert!(check("gopkg.in/yaml.v1-unstable", "v1.0.0").is_ok());
    assert!(check("rsc.io/quote/v2", "v3.0.0+incompatible").is_err());
}

#[test]
fn check_reports_what_is_wrong() {
    match check("rsc.io/quote", "v2.0.0") {
        Err(GoModError::VersionMismatch { reason, .. }) => {
            assert_eq!(reason, "should be v0 or v1, not v2");
        }
        other => panic!("unexpected: {other:?}"),
    }
    match check("gopkg.in/yaml.v2", "v3.0.0") {
        Err(GoModError::VersionMismatch { reason, .. }) => {
            assert_eq!(reason, "should be v2, not v3");
        }
        other => panic!("unexpected: {other:?}"),
    }
    assert!(matches!(
        check("rsc.io/quote", "1.0.0"),
        Err(GoModError::InvalidVersion { .. })
    ));
    assert!(matches!(
        check(".rsc.io/quote", "v1.0.0"),
        Err(GoModError::InvalidPath { .. })
    ));
}

#[test]
fn canonical_version_keeps_only_incompatible() {
    let tests = [
        ("v2.0.0+incompatible", "v2.0.0+incompatible"),
        ("v1.2.3+meta", "v1.2.3"),
        ("v1.2", "v1.2.0"),
        ("v1", "v1.0.0"),
        ("v1.2.3-pre+incompatible", "v1.2.3-pre+incompatible"),
        ("v2+incompatible", ""),
        ("master", ""),
        ("", ""),
    ];
    for (v, want) in tests {
        assert_eq!(canonical_version(v), want, "canonical_version({v:?})");
    }
}

/// `pseudoTests` from pseudo_test.go: (older version, pseudo-version built on it).
const PSEUDO_TESTS: &[(&str, &str)] = &[
    ("", "v0.0.0-20060102150405-hash"),
    ("", "v1.0.0-20060102150405-hash"),
    ("", "v2.0.0-20060102150405-hash"),
    ("v0.0.0", "v0.0.1-0.20060102150405-hash"),
    ("v1.2.3", "v1.2.4-0.20060102150405-hash"),
    (
        "v1.2.99999999999999999",
        "v1.2.100000000000000000-0.20060102150405-hash",
    ),
    ("v1.2.3-pre", "v1.2.3-pre.0.20060102150405-hash"),
    ("v1.3.0-pre", "v1.3.0-pre.0.20060102150405-hash"),
    ("v0.0.0--", "v0.0.0--.0.20060102150405-hash"),
    ("v1.0.0+metadata", "v1.0.1-0.20060102150405-hash+metadata"),
    (
        "v2.0.0+incompatible",
        "v2.0.1-0.20060102150405-hash+incompatible",
    ),
    (
        "v2.3.0-pre+incompatible",
        "v2.3.0-pre.0.20060102150405-hash+incompatible",
    ),
];

#[test]
fn is_pseudo_version_vectors() {
    for &(older, pseudo) in PSEUDO_TESTS {
        assert!(is_pseudo_version(pseudo), "{pseudo:?}");
        assert!(!is_pseudo_version(older), "{older:?}");
    }
}

#[test]
fn is_pseudo_version_rejects_near_misses() {
    for v in [
        "v0.0.0-2006010215040-hash",        // 13-digit time
        "v0.0.0-200601021504051-hash",      // 15-digit time
        "v0.0.0-20060102150405-",           // empty revision
        "v0.0.0-20060102150405-ha.sh",      // dot in revision
        "v0.0.0-20060102150405-hash+",      // empty build
        "v1.2.4-1.20060102150405-hash",     // marker is not 0
        "v1.2.4-pre.1.20060102150405-hash", // marker is not 0
        "v1.2.4-pre0.20060102150405-hash",  // marker glued to prerelease
        "v1.2.4-20060102150405-hash",       // no marker after a release
        "1.0.0-20060102150405-hash",        // no v
    ] {
        assert!(!is_pseudo_version(v), "{v:?}");
    }
    assert!(is_pseudo_version("v0.0.0-00000000000000-000000000000"));
    assert!(is_pseudo_version(
        "v1.2.4-0.20191109021931-daa7c04131f5+incompatible"
    ));
    assert!(is_pseudo_version(
        "v1.2.3-rc.1.0.20191109021931-daa7c04131f5"
    ));
}

fn module(path: &str) -> ModulePath {
    ModulePath::parse(path).expect("valid module path")
}

#[test]
fn version_parse_for_requires_canonical_and_matching() {
    let quote = module("rsc.io/quote");
    for ok in [
        "v1.5.2",
        "v0.0.0-20190507143103-cc8cbe209b64",
        "v2.0.0+incompatible",
        "v1.0.0-RC1",
    ] {
        let v = Version::parse_for(&quote, ok).expect(ok);
        assert_eq!(v.as_str(), ok);
    }
    for bad in ["v1.5", "v1.5.2+meta", "master", "v2.0.0", "", "v1.5.2 "] {
        assert!(Version::parse_for(&quote, bad).is_err(), "{bad:?}");
    }
    assert!(matches!(
        Version::parse_for(&quote, "v2.0.0"),
        Err(GoModError::VersionMismatch { .. })
    ));
    let v2 = module("rsc.io/quote/v2");
    assert!(Version::parse_for(&v2, "v2.0.1").is_ok());
    assert!(Version::parse_for(&v2, "v1.0.0").is_err());
}

#[test]
fn escaped_versions_classify() {
    let quote = module("rsc.io/quote");
    let canonical = |esc: &str| match parse_escaped_version(&quote, esc) {
        Ok(RequestedVersion::Canonical(v)) => v.as_str().to_owned(),
        other => panic!("{esc:?}: {other:?}"),
    };
    let query = |esc: &str| match parse_escaped_version(&quote, esc) {
        Ok(RequestedVersion::Query(q)) => q.as_str().to_owned(),
        other => panic!("{esc:?}: {other:?}"),
    };
    assert_eq!(canonical("v1.5.2"), "v1.5.2");
    assert_eq!(canonical("v1.0.0-!r!c1"), "v1.0.0-RC1");
    assert_eq!(canonical("v17.0.0+incompatible"), "v17.0.0+incompatible");
    assert_eq!(query("master"), "master");
    assert_eq!(query("v1.5"), "v1.5");
    assert_eq!(query("v1.5.2+meta"), "v1.5.2+meta");
    assert_eq!(query("!feature-!x"), "Feature-X");
    assert_eq!(query("abcdef123456"), "abcdef123456");

    // A canonical version this module cannot have is refused, not queried...
    assert!(matches!(
        parse_escaped_version(&quote, "v2.0.0"),
        Err(GoModError::VersionMismatch { .. })
    ));
    // ...except as an .info query, which the upstream resolves to +incompatible.
    assert!(matches!(
        parse_escaped_info_version(&quote, "v2.0.0"),
        Ok(RequestedVersion::Query(q)) if q.as_str() == "v2.0.0"
    ));
    assert!(matches!(
        parse_escaped_info_version(&quote, "v1.5.2"),
        Ok(RequestedVersion::Canonical(_))
    ));
    for bad in [
        "", ".", "..", "v1.0.", "a/b", "a\\b", "a:b", "V1.0.0", "!", "v1!", "!!a", "!0", "\u{e9}",
        "a b*", "con", "nul.txt", ".hidden", ".tmp-x",
    ] {
        assert!(
            matches!(
                parse_escaped_version(&quote, bad),
                Err(GoModError::InvalidVersion { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn escaped_forms_round_trip() {
    let quote = module("rsc.io/quote");
    let v = Version::parse_for(&quote, "v1.0.0-RC1").expect("canonical");
    assert_eq!(v.escaped(), "v1.0.0-!r!c1");
    assert_eq!(
        parse_escaped_version(&quote, &v.escaped()).expect("round trip"),
        RequestedVersion::Canonical(v)
    );
    let q = Query::parse("Feature-X").expect("query");
    assert_eq!(q.escaped(), "!feature-!x");
    assert_eq!(
        parse_escaped_version(&quote, &q.escaped()).expect("round trip"),
        RequestedVersion::Query(q)
    );
}

#[test]
fn query_parse_validates() {
    assert!(Query::parse("master").is_ok());
    assert!(Query::parse("v1.2").is_ok());
    for bad in [
        "v1.2.3",
        "v2.0.0+incompatible",
        "a!b",
        "a/b",
        "..",
        "",
        "x.",
    ] {
        assert!(Query::parse(bad).is_err(), "{bad:?}");
    }
}
