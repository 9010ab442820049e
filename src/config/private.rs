//! `private_upstreams`: module path patterns routed to an upstream of their own,
//! with the credentials it needs.
//!
//! In a config file each entry is a mapping (`pattern`, `url`, optional `auth`
//! with `type` basic, bearer or header, `value` and, for header, `name`), whose
//! values may name environment variables as `${VAR}`. The environment variable
//! and the flag take `PATTERNS=URL` entries separated by spaces; their
//! credentials come from the URL or from a .netrc file. Credential values never
//! appear in messages: errors name the entry and the field instead.

use std::fmt;

use serde_json::{Map, Value};
use url::Url;

use super::netrc::Netrc;
use super::redact_url;
use super::value::{Invalid, upstream_url};
use crate::gomod::pattern::PrefixPatterns;

/// A credential. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How a private upstream is authenticated on every request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: Secret },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `<name>: <value>`, e.g. GitLab's `Private-Token` or Artifactory's
    /// `X-JFrog-Art-Api`.
    Header { name: String, value: Secret },
}

impl UpstreamAuth {
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamAuth::Basic { .. } => "basic",
            UpstreamAuth::Bearer(_) => "bearer",
            UpstreamAuth::Header { .. } => "header",
        }
    }
}

/// Where a private upstream's credentials come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// The config entry's `auth`.
    Config,
    /// `user:password@` in the URL.
    Url,
    /// The .netrc entry for the upstream's host.
    Netrc,
    /// No credentials: the upstream is private but open to this proxy.
    None,
}

#[derive(Clone, PartialEq, Eq)]
pub struct PrivateUpstream {
    /// Modules routed here (the go command's GOPRIVATE syntax).
    pub patterns: PrefixPatterns,
    /// The GOPROXY base URL, as `upstreams` are written.
    pub url: Url,
    /// Explicit credentials: from the config entry or from .netrc.
    pub auth: Option<UpstreamAuth>,
    pub credentials: CredentialSource,
}

impl fmt::Debug for PrivateUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateUpstream")
            .field("patterns", &self.patterns.to_string())
            .field("url", &redact_url(&self.url))
            .field("auth", &self.auth)
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// `PATTERNS=URL`, then where its credentials come from, with every secret as
/// `***`: `*.corp.example.com=https://nexus.example/go [bearer ***]`.
impl fmt::Display for PrivateUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.patterns, redact_url(&self.url))?;
        match (&self.auth, self.credentials) {
            (Some(UpstreamAuth::Basic { user, .. }), CredentialSource::Netrc) => {
                write!(f, " [basic {user}:*** from netrc]")
            }
            (Some(UpstreamAuth::Basic { user, .. }), _) => write!(f, " [basic {user}:***]"),
            (Some(UpstreamAuth::Bearer(_)), _) => f.write_str(" [bearer ***]"),
            (Some(UpstreamAuth::Header { name, .. }), _) => write!(f, " [header {name}: ***]"),
            (None, _) => Ok(()),
        }
    }
}

/// The environment and flag form: `PATTERNS=URL` entries separated by spaces.
pub(super) fn from_text(text: &str) -> Result<Vec<PrivateUpstream>, Invalid> {
    text.split_whitespace()
        .enumerate()
        .map(|(i, item)| from_pair(item, i + 1))
        .collect()
}

/// A config file's list: `PATTERNS=URL` strings or mappings, mixed at will.
pub(super) fn from_file(
    items: &[Value],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<PrivateUpstream>, Invalid> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(text) => from_pair(text.trim(), i + 1),
            Value::Object(map) => from_map(map, i + 1, env),
            _ => Err(Invalid(format!(
                "entry {}: expected a mapping with pattern, url and optional auth, \
                 or a \"PATTERNS=URL\" string",
                i + 1
            ))),
        })
        .collect()
}

fn from_pair(item: &str, entry: usize) -> Result<PrivateUpstream, Invalid> {
    let Some((patterns, url)) = item.split_once('=') else {
        return Err(Invalid(format!(
            "entry {entry}: expected PATTERNS=URL, e.g. *.corp.example.com=https://goproxy.corp.example.com \
             (entries are separated by spaces)"
        )));
    };
    build(entry, patterns, url, None)
}

const ENTRY_FIELDS: &str = "pattern, url, auth";
const AUTH_FIELDS: &str = "type, value, name";

fn from_map(
    map: &Map<String, Value>,
    entry: usize,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PrivateUpstream, Invalid> {
    let fail = |message: String| Invalid(format!("entry {entry}: {message}"));
    if let Some(unknown) = map
        .keys()
        .find(|k| !["pattern", "url", "auth"].contains(&k.as_str()))
    {
        return Err(fail(format!(
            "unknown field {unknown:?} (expected {ENTRY_FIELDS})"
        )));
    }
    let patterns = match map.get("pattern") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => {
            let texts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            texts
                .ok_or_else(|| fail("pattern: expected text or a list of texts".to_owned()))?
                .join(",")
        }
        Some(_) => return Err(fail("pattern: expected text".to_owned())),
        None => {
            return Err(fail(format!(
                "missing field \"pattern\" (fields: {ENTRY_FIELDS})"
            )));
        }
    };
    let url = match map.get("url") {
        Some(Value::String(text)) => expand(text, "url", env).map_err(fail)?,
        Some(_) => return Err(fail("url: expected text".to_owned())),
        None => {
            return Err(fail(format!(
                "missing field \"url\" (fields: {ENTRY_FIELDS})"
            )));
        }
    };
    let auth = match map.get("auth") {
        None | Some(Value::Null) => None,
        Some(Value::Object(auth)) => Some(auth_from_map(auth, env).map_err(fail)?),
        Some(_) => {
            return Err(fail(format!("auth: expected a mapping with {AUTH_FIELDS}")));
        }
    };
    build(entry, &patterns, &url, auth)
}

fn auth_from_map(
    map: &Map<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<UpstreamAuth, String> {
    if let Some(unknown) = map
        .keys()
        .find(|k| !["type", "value", "name"].contains(&k.as_str()))
    {
        return Err(format!(
            "auth: unknown field {unknown:?} (expected {AUTH_FIELDS})"
        ));
    }
    // Values are never quoted back: they may be the secret itself.
    let text = |field: &str| -> Result<Option<String>, String> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => expand(text, &format!("auth.{field}"), env).map(Some),
            Some(_) => Err(format!("auth.{field}: expected text")),
        }
    };
    let kind = text("type")?.ok_or("auth: missing field \"type\" (basic, bearer or header)")?;
    let value = text("value")?
        .filter(|v| !v.is_empty())
        .ok_or("auth: missing or empty field \"value\"")?;
    let name = text("name")?;
    if !is_header_value(&value) {
        return Err("auth.value: contains a line break or control character".to_owned());
    }
    match (kind.trim().to_ascii_lowercase().as_str(), name) {
        ("basic", None) => {
            let (user, password) = value.split_once(':').ok_or(
                "auth.value: a basic credential is written user:password (the value has no ':')",
            )?;
            Ok(UpstreamAuth::Basic {
                user: user.to_owned(),
                password: Secret::new(password),
            })
        }
        ("bearer", None) => Ok(UpstreamAuth::Bearer(Secret::new(value))),
        ("header", Some(name)) => {
            let name = name.trim().to_owned();
            if !is_token(&name) {
                return Err(format!("auth.name: {name:?} is not an HTTP header name"));
            }
            if ["host", "content-length", "transfer-encoding", "connection"]
                .contains(&name.to_ascii_lowercase().as_str())
            {
                return Err(format!("auth.name: {name:?} cannot carry a credential"));
            }
            Ok(UpstreamAuth::Header {
                name,
                value: Secret::new(value),
            })
        }
        ("header", None) => {
            Err("auth: type header needs a \"name\" (the header to send)".to_owned())
        }
        ("basic" | "bearer", Some(_)) => Err("auth.name: only type header takes a name".to_owned()),
        (other, _) => Err(format!(
            "auth.type: {other:?} is not supported (expected basic, bearer or header)"
        )),
    }
}

fn build(
    entry: usize,
    patterns: &str,
    url: &str,
    auth: Option<UpstreamAuth>,
) -> Result<PrivateUpstream, Invalid> {
    let patterns = PrefixPatterns::parse(patterns)
        .map_err(|reason| Invalid(format!("entry {entry}: {reason}")))?;
    if patterns.is_empty() {
        return Err(Invalid(format!(
            "entry {entry}: no module path pattern given (e.g. *.corp.example.com)"
        )));
    }
    let url = upstream_url(url.trim())
        .map_err(|Invalid(message)| Invalid(format!("entry {entry}: {message}")))?;
    let in_url = !url.username().is_empty() || url.password().is_some();
    if in_url && auth.is_some() {
        return Err(Invalid(format!(
            "entry {entry}: credentials are given both in the url and in auth; keep one"
        )));
    }
    let credentials = match (&auth, in_url) {
        (Some(_), _) => CredentialSource::Config,
        (None, true) => CredentialSource::Url,
        (None, false) => CredentialSource::None,
    };
    Ok(PrivateUpstream {
        patterns,
        url,
        auth,
        credentials,
    })
}

/// Gives upstreams without credentials of their own the .netrc entry for their
/// host (`host:port` first, then `host`), as the go command would use it.
pub(super) fn apply_netrc(upstreams: &mut [PrivateUpstream], netrc: &Netrc) {
    for upstream in upstreams {
        if upstream.credentials != CredentialSource::None {
            continue;
        }
        if let Some((login, password)) = netrc.lookup(&upstream.url) {
            upstream.auth = Some(UpstreamAuth::Basic {
                user: login.to_owned(),
                password: password.clone(),
            });
            upstream.credentials = CredentialSource::Netrc;
        }
    }
}

/// Replaces `${NAME}` with the environment variable's value; `$$` is a `$`.
/// The error names the variable and the field, never a value.
fn expand(text: &str, field: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(after) = after.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or_else(|| format!("{field}: \"${{\" without a closing \"}}\""))?;
            let name = &after[..end];
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "{field}: ${{{name}}} is not an environment variable name"
                ));
            }
            let value = env(name).ok_or_else(|| {
                format!(
                    "{field}: environment variable {name} is not set \
                     (set it, or write the value in the file)"
                )
            })?;
            out.push_str(&value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// RFC 9110 `token`: the characters of a header name.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Visible characters, spaces and tabs: no line break may smuggle a header in.
fn is_header_value(value: &str) -> bool {
    value.chars().all(|c| c == '\t' || !c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        move |name| vars.get(name).map(|v| (*v).to_owned())
    }

    fn parse(yaml_json: &str, vars: &[(&str, &str)]) -> Result<Vec<PrivateUpstream>, String> {
        let value: Value = serde_json::from_str(yaml_json).unwrap();
        let Value::Array(items) = value else {
            panic!("not a list")
        };
        from_file(&items, &env_of(vars)).map_err(|Invalid(m)| m)
    }

    #[test]
    fn text_entries() {
        let got = from_text(" *.corp.example.com,rsc.io/private=https://nexus.example/go/  git.example=http://u:p@git.example:8080 ")
            .unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].patterns.matches("git.corp.example.com/team/repo"));
        assert!(got[0].patterns.matches("rsc.io/private/x"));
        assert_eq!(got[0].url.as_str(), "https://nexus.example/go");
        assert_eq!(got[0].credentials, CredentialSource::None);
        assert_eq!(got[1].credentials, CredentialSource::Url);
        assert_eq!(
            got[1].to_string(),
            "git.example=http://***@git.example:8080"
        );
        let error = from_text("corp.example https://x").unwrap_err().0;
        assert!(
            error.starts_with("entry 1: expected PATTERNS=URL"),
            "{error}"
        );
        let error = from_text("a.example=https://x b.example=ftp://y")
            .unwrap_err()
            .0;
        assert!(
            error.starts_with("entry 2: invalid upstream URL"),
            "{error}"
        );
        let error = from_text("=https://x").unwrap_err().0;
        assert!(error.contains("no module path pattern"), "{error}");
        assert!(
            from_text("[=https://x")
                .unwrap_err()
                .0
                .contains("invalid pattern")
        );
    }

    #[test]
    fn every_auth_type_with_environment_values() {
        let got = parse(
            r#"[
              {"pattern": "a.example", "url": "https://a.example", "auth": {"type": "Basic", "value": "ci:${PASS}"}},
              {"pattern": ["b.example", "c.example/x"], "url": "https://b.example", "auth": {"type": "bearer", "value": "${TOKEN}"}},
              {"pattern": "d.example", "url": "https://d.example", "auth": {"type": "header", "name": "Private-Token", "value": "$${literal}"}},
              "e.example=https://e.example"
            ]"#,
            &[("PASS", "pa:ss"), ("TOKEN", "t0ken")],
        )
        .unwrap();
        assert_eq!(
            got[0].auth,
            Some(UpstreamAuth::Basic {
                user: "ci".into(),
                password: Secret::new("pa:ss")
            })
        );
        assert_eq!(
            got[1].auth,
            Some(UpstreamAuth::Bearer(Secret::new("t0ken")))
        );
        assert!(got[1].patterns.matches("c.example/x/y"));
        assert_eq!(
            got[2].auth,
            Some(UpstreamAuth::Header {
                name: "Private-Token".into(),
                value: Secret::new("${literal}")
            })
        );
        assert_eq!(got[3].auth, None);
        let shown: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "a.example=https://a.example [basic ci:***]",
                "b.example,c.example/x=https://b.example [bearer ***]",
                "d.example=https://d.example [header Private-Token: ***]",
                "e.example=https://e.example",
            ]
        );
        let debug = format!("{got:?}");
        assert!(
            !debug.contains("t0ken") && !debug.contains("pa:ss"),
            "{debug}"
        );
    }

    #[test]
    fn errors_name_the_entry_and_field_never_the_value() {
        let cases = [
            (
                r#"[{"url": "https://a"}]"#,
                "entry 1: missing field \"pattern\"",
            ),
            (r#"[{"pattern": "a"}]"#, "entry 1: missing field \"url\""),
            (
                r#"[{"pattern": "a", "url": "https://a", "patern": 1}]"#,
                "entry 1: unknown field \"patern\"",
            ),
            (
                r#"[{"pattern": "a", "url": "https://a", "auth": {"type": "digest", "value": "hunter2"}}]"#,
                "entry 1: auth.type: \"digest\" is not supported",
            ),
            (
                r#"[{"pattern": "a", "url": "https://a", "auth": {"type": "basic", "value": "hunter2"}}]"#,
                "entry 1: auth.value: a basic credential is written user:password",
            ),
            (
                r#"[{"pattern": "a", "url": "https://a", "auth": {"type": "bearer"}}]"#,
                "entry 1: auth: missing or empty field \"value\"",
            ),
            (
                r#"[{"pattern": "a", "url": "https://a", "auth": {"type": "header", "value": "hunter2"}}]"#,
                "entry 1: auth: type header needs a \"name\"",
            ),
            (
                r#"[{"pattern": "a", "url": "https://a", "auth": {"type": "header", "name": "Bad Name", "value": "hunter2"}}]"#,
                "entry 1: auth.name: \"Bad Name\" is not an HTTP header name",
            ),
            (
                r#"[{"pattern": "a", "url": "https://a", "auth": {"type": "bearer", "value": "hunter2\r\nX: y"}}]"#,
                "entry 1: auth.value: contains a line break",
            ),
            (
                r#"[{"pattern": "a", "url": "https://a", "auth": {"type": "bearer", "value": "${NOPE}"}}]"#,
                "entry 1: auth.value: environment variable NOPE is not set",
            ),
            (
                r#"[{"pattern": "a", "url": "https://a", "auth": {"type": "bearer", "value": "${BAD-NAME}"}}]"#,
                "entry 1: auth.value: ${BAD-NAME} is not an environment variable name",
            ),
            (
                r#"[{"pattern": "a", "url": "https://a", "auth": {"type": "bearer", "value": "${OPEN"}}]"#,
                "entry 1: auth.value: \"${\" without a closing",
            ),
            (
                r#"[{"pattern": "a", "url": "https://me:hunter2@a", "auth": {"type": "bearer", "value": "x"}}]"#,
                "entry 1: credentials are given both in the url and in auth",
            ),
            (
                r#"["ok.example=https://ok", 5]"#,
                "entry 2: expected a mapping",
            ),
        ];
        for (input, want) in cases {
            let got = parse(input, &[]).unwrap_err();
            assert!(got.starts_with(want), "\n got: {got}\nwant: {want}");
            assert!(!got.contains("hunter2"), "{got}");
        }
    }

    #[test]
    fn netrc_fills_in_only_missing_credentials() {
        let netrc = Netrc::parse(
            "machine nexus.example:8443 login ci password s3cret\n\
             machine git.example login other password pw\n",
        );
        let mut upstreams = from_text(
            "a.example=https://nexus.example:8443/go b.example=https://git.example/go \
             c.example=https://u:p@git.example d.example=https://unknown.example",
        )
        .unwrap();
        apply_netrc(&mut upstreams, &netrc);
        assert_eq!(upstreams[0].credentials, CredentialSource::Netrc);
        assert_eq!(
            upstreams[0].auth,
            Some(UpstreamAuth::Basic {
                user: "ci".into(),
                password: Secret::new("s3cret")
            })
        );
        assert_eq!(
            upstreams[0].to_string(),
            "a.example=https://nexus.example:8443/go [basic ci:*** from netrc]"
        );
        assert_eq!(upstreams[1].credentials, CredentialSource::Netrc);
        assert_eq!(upstreams[2].credentials, CredentialSource::Url);
        assert_eq!(upstreams[2].auth, None);
        assert_eq!(upstreams[3].credentials, CredentialSource::None);
    }
}
