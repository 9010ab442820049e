//! The `GOSUMDB` setting, in the go command's syntax: `off`, a known database
//! name (`sum.golang.org`, `sum.golang.google.cn`), a verifier key
//! `<name>+<hash>+<keydata>`, either optionally followed by a URL.

use url::Url;

use super::note::{self, Verifier};

pub const DEFAULT_GOSUMDB: &str = "sum.golang.org";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GoSumDb {
    Off,
    On(Box<SumDbSpec>),
}

/// A checksum database to verify against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SumDbSpec {
    /// The database name, e.g. `sum.golang.org`; also its `/sumdb/<name>/` path.
    pub name: String,
    /// The key that signs its tree heads.
    pub verifier: Verifier,
    /// Where to reach it, when given explicitly (otherwise through an upstream
    /// that proxies it, or `https://<name>`).
    pub url: Option<Url>,
    /// The setting as written, for display.
    pub text: String,
}

impl GoSumDb {
    pub fn parse(text: &str) -> Result<GoSumDb, String> {
        let text = text.trim();
        if text == "off" {
            return Ok(GoSumDb::Off);
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (key, url) = match fields.as_slice() {
            [key] => (*key, None),
            [key, url] => (*key, Some(*url)),
            _ => {
                return Err(
                    "expected off, a database name or key, optionally followed by one URL"
                        .to_owned(),
                );
            }
        };
        let (verifier_key, default_url) = match note::known_sumdb(key) {
            // The go command reaches sum.golang.org through proxies first, but the
            // mirror name is itself an address.
            Some(known) => (known.key, (known.name != key).then_some(known.url)),
            None => (key, None),
        };
        let verifier = Verifier::parse(verifier_key).map_err(|e| e.to_string())?;
        let url = match url.or(default_url) {
            None => None,
            Some(u) => Some(parse_url(u)?),
        };
        Ok(GoSumDb::On(Box::new(SumDbSpec {
            name: verifier.name().to_owned(),
            verifier,
            url,
            text: text.to_owned(),
        })))
    }
}

impl std::fmt::Display for GoSumDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GoSumDb::Off => f.write_str("off"),
            // The URL may carry credentials: never print them.
            GoSumDb::On(spec) => match (&spec.url, spec.text.split_whitespace().next()) {
                (Some(url), Some(key)) if spec.text.split_whitespace().count() > 1 => {
                    write!(f, "{key} {}", crate::config::redact_url(url))
                }
                _ => f.write_str(&spec.text),
            },
        }
    }
}

fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("invalid URL {text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "invalid URL {text:?}: expected an absolute http or https URL"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "invalid URL {text:?}: a query or fragment is not allowed"
        ));
    }
    Ok(url)
}

/// A name in `proxied_sumdbs`: a database name (the host and optional path of
/// its URL), optionally followed by the URL to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxiedSumDb {
    pub name: String,
    pub url: Option<Url>,
}

impl ProxiedSumDb {
    pub fn parse(text: &str) -> Result<ProxiedSumDb, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (name, url) = match fields.as_slice() {
            [name] => (*name, None),
            [name, url] => (*name, Some(parse_url(url)?)),
            _ => {
                return Err(format!(
                    "{text:?}: expected a database name, optionally followed by a URL"
                ));
            }
        };
        // The name becomes part of request and upstream URLs: same rules as Go's
        // (a host with an optional path, nothing that needs escaping).
        let valid = !name.is_empty()
            && !name.starts_with('/')
            && !name.ends_with('/')
            && !name.contains("//")
            && name.split('/').all(|seg| seg != "." && seg != "..")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._/".contains(c))
            && name
                .split('/')
                .next()
                .is_some_and(|host| host.contains('.'));
        if !valid {
            return Err(format!(
                "{name:?} is not a checksum database name (expected e.g. sum.golang.org)"
            ));
        }
        Ok(ProxiedSumDb {
            name: name.to_owned(),
            url,
        })
    }
}

impl std::fmt::Display for ProxiedSumDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.url {
            Some(url) => write!(f, "{} {}", self.name, url),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_KEY: &str =
        "localhost.localdev/sumdb+00000c67+AcTrnkbUA+TU4heY3hkjiSES/DSQniBqIeQ/YppAUtK6";

    fn spec(text: &str) -> SumDbSpec {
        match GoSumDb::parse(text) {
            Ok(GoSumDb::On(spec)) => *spec,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn gosumdb_forms() {
        assert_eq!(GoSumDb::parse("off"), Ok(GoSumDb::Off));
        let default = spec("sum.golang.org");
        assert_eq!(default.name, "sum.golang.org");
        assert_eq!(
            default.url, None,
            "reached through proxies first, like the go command"
        );
        let mirror = spec("sum.golang.google.cn");
        assert_eq!(mirror.name, "sum.golang.org");
        assert_eq!(
            mirror.url.unwrap().as_str(),
            "https://sum.golang.google.cn/"
        );
        let custom = spec(TEST_KEY);
        assert_eq!(custom.name, "localhost.localdev/sumdb");
        assert_eq!(custom.url, None);
        let with_url = spec(&format!("{TEST_KEY} http://127.0.0.1:8080/sumdb"));
        assert_eq!(
            with_url.url.unwrap().as_str(),
            "http://127.0.0.1:8080/sumdb"
        );
        assert_eq!(
            spec("sum.golang.org https://mirror.example")
                .url
                .unwrap()
                .host_str(),
            Some("mirror.example")
        );
        assert_eq!(GoSumDb::parse(TEST_KEY).unwrap().to_string(), TEST_KEY);
        let secret = GoSumDb::parse(&format!("{TEST_KEY} https://u:hunter2@db.example/x")).unwrap();
        assert!(!secret.to_string().contains("hunter2"), "{secret}");
    }

    #[test]
    fn bad_gosumdb_values_are_refused() {
        for bad in [
            "",
            "sum.example.org",
            "localhost.localdev/sumdb+00000c68+AcTrnkbUA+TU4heY3hkjiSES/DSQniBqIeQ/YppAUtK6",
            "sum.golang.org ftp://x.example",
            "sum.golang.org https://x.example/?q=1",
            "sum.golang.org https://a.example https://b.example",
        ] {
            assert!(GoSumDb::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn proxied_sumdb_names() {
        assert_eq!(
            ProxiedSumDb::parse("sum.golang.org").unwrap().name,
            "sum.golang.org"
        );
        let with_url = ProxiedSumDb::parse("sum.example.com/db https://db.example").unwrap();
        assert_eq!(with_url.name, "sum.example.com/db");
        assert!(with_url.url.is_some());
        for bad in [
            "",
            "nodot",
            "a.example/../x",
            "a.example//x",
            "/a.example",
            "a.example/",
            "a b c",
            "a.example?x",
        ] {
            assert!(ProxiedSumDb::parse(bad).is_err(), "{bad:?}");
        }
    }
}
