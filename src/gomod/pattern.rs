//! GOPRIVATE / GONOSUMDB / GONOPROXY patterns (`module.MatchPrefixPatterns`):
//! comma-separated globs, each matched against the leading path elements of a
//! module path, so `*.corp.example.com` matches `git.corp.example.com/team/repo`.

/// A parsed, comma-separated list of glob patterns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixPatterns(Vec<String>);

impl PrefixPatterns {
    /// Splits a comma-separated list, dropping empty items. Each glob is checked
    /// for syntax so a typo is reported instead of silently never matching.
    pub fn parse(list: &str) -> Result<Self, String> {
        Self::from_items(list.split(','))
    }

    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for item in items {
            // Like the go command, `corp.example/` means `corp.example`.
            let item = item.trim().trim_end_matches('/');
            if item.is_empty() {
                continue;
            }
            // Matching the pattern against itself exercises the whole glob grammar.
            glob_match(item, "").map_err(|e| format!("invalid pattern {item:?}: {e}"))?;
            patterns.push(item.to_owned());
        }
        Ok(PrefixPatterns(patterns))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn items(&self) -> &[String] {
        &self.0
    }

    /// Whether any pattern matches a prefix of `path` with as many elements as the
    /// pattern has (`module.MatchPrefixPatterns`).
    pub fn matches(&self, path: &str) -> bool {
        self.0.iter().any(|pattern| {
            let elements = pattern.matches('/').count() + 1;
            let mut end = 0;
            let mut seen = 0;
            for (i, c) in path.char_indices() {
                if c == '/' {
                    seen += 1;
                    if seen == elements {
                        end = i;
                        break;
                    }
                }
            }
            let prefix = if seen == elements {
                &path[..end]
            } else if seen + 1 == elements {
                path
            } else {
                return false;
            };
            glob_match(pattern, prefix).unwrap_or(false)
        })
    }
}

impl std::fmt::Display for PrefixPatterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// Go's `path.Match`: `*` matches any run of non-`/` characters, `?` one non-`/`
/// character, `[...]` a class (`^` negates, ranges with `-`), `\` escapes.
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, String> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Validate the whole pattern first: Go reports ErrBadPattern even when an
    // earlier part already fails to match.
    check_syntax(&p)?;
    Ok(match_from(&p, &n))
}

fn check_syntax(p: &[char]) -> Result<(), String> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err("trailing backslash".into());
                }
                i += 2;
            }
            '[' => i = class_end(p, i)?,
            _ => i += 1,
        }
    }
    Ok(())
}

/// Index just past the `]` closing the class that starts at `start`.
fn class_end(p: &[char], start: usize) -> Result<usize, String> {
    let mut i = start + 1;
    if i < p.len() && p[i] == '^' {
        i += 1;
    }
    let mut first = true;
    loop {
        if i >= p.len() {
            return Err("unterminated character class".into());
        }
        if p[i] == ']' && !first {
            return Ok(i + 1);
        }
        first = false;
        let lo = class_char(p, &mut i)?;
        if i < p.len() && p[i] == '-' {
            i += 1;
            let hi = class_char(p, &mut i)?;
            if hi < lo {
                return Err("character range out of order".into());
            }
        }
    }
}

fn class_char(p: &[char], i: &mut usize) -> Result<char, String> {
    match p.get(*i) {
        None => Err("unterminated character class".into()),
        Some('-') | Some(']') => Err("bad character in class".into()),
        Some('\\') => {
            let c = *p.get(*i + 1).ok_or("trailing backslash")?;
            *i += 2;
            Ok(c)
        }
        Some(&c) => {
            *i += 1;
            Ok(c)
        }
    }
}

fn match_from(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => {
            // Try every split that does not cross a '/'.
            let rest = &p[1..];
            let mut k = 0;
            loop {
                if match_from(rest, &n[k..]) {
                    return true;
                }
                if k >= n.len() || n[k] == '/' {
                    return false;
                }
                k += 1;
            }
        }
        Some('?') => !n.is_empty() && n[0] != '/' && match_from(&p[1..], &n[1..]),
        Some('[') => {
            let Some(&c) = n.first() else { return false };
            if c == '/' {
                return false;
            }
            let Ok(end) = class_end(p, 0) else {
                return false;
            };
            class_matches(&p[1..end - 1], c) && match_from(&p[end..], &n[1..])
        }
        Some('\\') => p.len() > 1 && n.first() == Some(&p[1]) && match_from(&p[2..], &n[1..]),
        Some(&c) => n.first() == Some(&c) && match_from(&p[1..], &n[1..]),
    }
}

fn class_matches(class: &[char], c: char) -> bool {
    let (negated, mut body) = match class.first() {
        Some('^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut hit = false;
    while !body.is_empty() {
        let mut i = 0;
        let Ok(lo) = class_char(body, &mut i) else {
            return false;
        };
        let hi = if body.get(i) == Some(&'-') {
            i += 1;
            match class_char(body, &mut i) {
                Ok(hi) => hi,
                Err(_) => return false,
            }
        } else {
            lo
        };
        hit |= lo <= c && c <= hi;
        body = &body[i..];
    }
    hit != negated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path_match_vectors() {
        // From Go's path.Match tests.
        let cases = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(glob_match(pattern, name), Ok(want), "{pattern} {name}");
        }
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "*x\\",
        ] {
            assert!(glob_match(bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn prefix_patterns_match_leading_elements() {
        let p = PrefixPatterns::parse("*.corp.example.com, rsc.io/private ,,").unwrap();
        assert_eq!(p.items().len(), 2);
        assert!(p.matches("git.corp.example.com/team/repo"));
        assert!(p.matches("git.corp.example.com"));
        assert!(!p.matches("corp.example.com/x"));
        assert!(p.matches("rsc.io/private"));
        assert!(p.matches("rsc.io/private/sub/v2"));
        assert!(!p.matches("rsc.io/privatex"));
        assert!(!p.matches("rsc.io"));
        assert!(!p.matches("rsc.io/quote"));
        // From module.MatchPrefixPatterns tests.
        let q = PrefixPatterns::parse("github.com/user").unwrap();
        assert!(q.matches("github.com/user/repo"));
        assert!(!q.matches("github.com/username/repo"));
        assert!(
            PrefixPatterns::parse("*/quote")
                .unwrap()
                .matches("rsc.io/quote")
        );
        assert!(!PrefixPatterns::parse("").unwrap().matches("rsc.io/quote"));
        assert!(PrefixPatterns::parse("[").is_err());
        // A trailing slash is ignored, as by the go command.
        let slash = PrefixPatterns::parse("secret.example/,git.corp.example/team/").unwrap();
        assert!(slash.matches("secret.example/x"));
        assert!(slash.matches("git.corp.example/team/x"));
    }
}
