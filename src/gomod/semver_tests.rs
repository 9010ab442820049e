//! Vectors from golang.org/x/mod `semver/semver_test.go`.

use super::*;

/// Go's `tests` table: (input, canonical form or "" if invalid), listed in
/// ascending precedence; entries with equal canonical forms compare equal.
const TESTS: &[(&str, &str)] = &[
    ("bad", ""),
    ("v1-alpha.beta.gamma", ""),
    ("v1-pre", ""),
    ("v1+meta", ""),
    ("v1-pre+meta", ""),
    ("v1.2-pre", ""),
    ("v1.2+meta", ""),
    ("v1.2-pre+meta", ""),
    ("v1.0.0-alpha", "v1.0.0-alpha"),
    ("v1.0.0-alpha.1", "v1.0.0-alpha.1"),
    ("v1.0.0-alpha.beta", "v1.0.0-alpha.beta"),
    ("v1.0.0-beta", "v1.0.0-beta"),
    ("v1.0.0-beta.2", "v1.0.0-beta.2"),
    ("v1.0.0-beta.11", "v1.0.0-beta.11"),
    ("v1.0.0-rc.1", "v1.0.0-rc.1"),
    ("v1", "v1.0.0"),
    ("v1.0", "v1.0.0"),
    ("v1.0.0", "v1.0.0"),
    ("v1.2", "v1.2.0"),
    ("v1.2.0", "v1.2.0"),
    ("v1.2.3-456", "v1.2.3-456"),
    ("v1.2.3-456.789", "v1.2.3-456.789"),
    ("v1.2.3-456-789", "v1.2.3-456-789"),
    ("v1.2.3-456a", "v1.2.3-456a"),
    ("v1.2.3-pre", "v1.2.3-pre"),
    ("v1.2.3-pre+meta", "v1.2.3-pre"),
    ("v1.2.3-pre.1", "v1.2.3-pre.1"),
    ("v1.2.3-zzz", "v1.2.3-zzz"),
    ("v1.2.3", "v1.2.3"),
    ("v1.2.3+meta", "v1.2.3"),
    ("v1.2.3+meta-pre", "v1.2.3"),
    ("v1.2.3+meta-pre.sha.256a", "v1.2.3"),
];

#[test]
fn is_valid_and_canonical() {
    for &(input, want) in TESTS {
        assert_eq!(is_valid(input), !want.is_empty(), "is_valid({input:?})");
        assert_eq!(canonical(input), want, "canonical({input:?})");
    }
}

#[test]
fn major_prerelease_build() {
    for &(input, canon) in TESTS {
        let want_major = canon.split_once('.').map_or("", |(m, _)| m);
        assert_eq!(major(input), want_major, "major({input:?})");

        let want_pre = canon.find('-').map_or("", |i| &canon[i..]);
        assert_eq!(prerelease(input), want_pre, "prerelease({input:?})");

        let want_build = match input.find('+') {
            Some(i) if !canon.is_empty() => &input[i..],
            _ => "",
        };
        assert_eq!(build(input), want_build, "build({input:?})");
    }
}

#[test]
fn compare_follows_table_order() {
    for (i, &(a, a_canon)) in TESTS.iter().enumerate() {
        for (j, &(b, b_canon)) in TESTS.iter().enumerate() {
            let want = if a_canon == b_canon {
                Ordering::Equal
            } else {
                i.cmp(&j)
            };
            assert_eq!(compare(a, b), want, "compare({a:?}, {b:?})");
        }
    }
}

/// Go's `TestSort` golden order: `semver.Sort` is `compare` with a plain string
/// comparison as the tie-breaker.
#[test]
fn sort_matches_go_golden_order() {
    let golden = [
        "bad",
        "v1+meta",
        "v1-alpha.beta.gamma",
        "v1-pre",
        "v1-pre+meta",
        "v1.2+meta",
        "v1.2-pre",
        "v1.2-pre+meta",
        "v1.0.0-alpha",
        "v1.0.0-alpha.1",
        "v1.0.0-alpha.beta",
        "v1.0.0-beta",
        "v1.0.0-beta.2",
        "v1.0.0-beta.11",
        "v1.0.0-rc.1",
        "v1",
        "v1.0",
        "v1.0.0",
        "v1.2",
        "v1.2.0",
        "v1.2.3-456",
        "v1.2.3-456.789",
        "v1.2.3-456-789",
        "v1.2.3-456a",
        "v1.2.3-pre",
        "v1.2.3-pre+meta",
        "v1.2.3-pre.1",
        "v1.2.3-zzz",
        "v1.2.3",
        "v1.2.3+meta",
        "v1.2.3+meta-pre",
        "v1.2.3+meta-pre.sha.256a",
    ];
    let mut versions: Vec<&str> = TESTS.iter().rev().map(|&(v, _)| v).collect();
    versions.sort_by(|a, b| compare(a, b).then_with(|| a.cmp(b)));
    assert_eq!(versions, golden);
}

#[test]
fn numbers_are_unbounded_and_without_leading_zeros() {
    assert!(is_valid("v1.2.99999999999999999999999"));
    assert_eq!(
        compare(
            "v1.2.99999999999999999999999",
            "v1.2.100000000000000000000000"
        ),
        Ordering::Less
    );
    for bad in [
        "v01.2.3",
        "v1.02.3",
        "v1.2.03",
        "v1.2.3-01",
        "v1.2.3-pre.01",
        "v",
        "1.2.3",
    ] {
        assert!(!is_valid(bad), "{bad:?}");
    }
    // Leading zeros are fine in build metadata and in alphanumeric identifiers.
    for good in ["v1.2.3+01", "v1.2.3-0a", "v1.2.3-0", "v0.0.0"] {
        assert!(is_valid(good), "{good:?}");
    }
    for bad in [
        "v1.2.3-",
        "v1.2.3+",
        "v1.2.3-a..b",
        "v1.2.3+a.",
        "v1.2.3-\u{e9}",
        "v1.2.3 ",
    ] {
        assert!(!is_valid(bad), "{bad:?}");
    }
}

#[test]
fn prerelease_precedence() {
    // The example chain from the semver 2.0.0 specification.
    let chain = [
        "v1.0.0-alpha",
        "v1.0.0-alpha.1",
        "v1.0.0-alpha.beta",
        "v1.0.0-beta",
        "v1.0.0-beta.2",
        "v1.0.0-beta.11",
        "v1.0.0-rc.1",
        "v1.0.0",
    ];
    for pair in chain.windows(2) {
        assert_eq!(compare(pair[0], pair[1]), Ordering::Less, "{pair:?}");
        assert_eq!(compare(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
    }
    assert_eq!(compare("v1.0.0+a", "v1.0.0+b"), Ordering::Equal);
    assert_eq!(compare("v1.0.0-a-b", "v1.0.0-a"), Ordering::Greater);
}
