//! Inbound authentication settings: the bearer tokens and users that may use
//! the proxy, stored as hashes only, and which requests need them.
//!
//! Tokens are kept as SHA-256 digests: they are long random strings, so a fast
//! hash cannot be brute-forced and lets every request be checked in
//! microseconds. Passwords are chosen by people and get Argon2id (PHC strings,
//! as `goproxy auth hash` prints them).

use std::fmt;

use argon2::password_hash::phc::PasswordHash;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Key;
use super::value::{Invalid, expected};
use crate::gomod::pattern::PrefixPatterns;

/// Which requests need credentials once tokens or users are configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthRequire {
    /// Every request but the health probes.
    All,
    /// Only requests naming a private module (`private_upstreams`, `goprivate`,
    /// `gonoproxy`).
    Private,
    /// Requests naming a private module or one matching these patterns.
    Modules(PrefixPatterns),
}

impl fmt::Display for AuthRequire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthRequire::All => f.write_str("all"),
            AuthRequire::Private => f.write_str("private"),
            AuthRequire::Modules(patterns) => write!(f, "{patterns}"),
        }
    }
}

/// The SHA-256 digest of a bearer token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }
}

/// `sha256:<hex>`, the form the settings take.
impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A user for basic authentication and the Argon2 hash of its password.
#[derive(Clone, PartialEq, Eq)]
pub struct UserHash {
    pub name: String,
    /// A validated PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
    pub hash: String,
}

/// The name only: a password hash still helps whoever guesses passwords.
impl fmt::Display for UserHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (argon2)", self.name)
    }
}

impl fmt::Debug for UserHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The Argon2id PHC string of `password`, with a fresh random salt and the
/// crate's recommended parameters.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// `all`, `private`, or module path patterns (which never read as either
/// word: the first element of a module path has a dot).
pub(super) fn require(text: &str) -> Result<AuthRequire, Invalid> {
    let fail = |reason: &str| {
        Invalid(format!(
            "invalid value {:?} ({reason}{})",
            text.trim(),
            expected(Key::AuthRequire)
        ))
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "all" => Ok(AuthRequire::All),
        "private" => Ok(AuthRequire::Private),
        _ => match PrefixPatterns::parse(text) {
            Ok(patterns) if !patterns.is_empty() => Ok(AuthRequire::Modules(patterns)),
            Ok(_) => Err(fail("")),
            Err(reason) => Err(fail(&format!("{reason}; "))),
        },
    }
}

pub(super) fn tokens<'a>(
    items: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<TokenHash>, Invalid> {
    items
        .into_iter()
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(token)
        .collect()
}

fn token(item: &str) -> Result<TokenHash, Invalid> {
    let hex = item.strip_prefix("sha256:").unwrap_or(item);
    let mut digest = [0u8; 32];
    let valid = hex.len() == 64
        && hex.is_ascii()
        && digest.iter_mut().enumerate().all(|(i, byte)| {
            u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map(|b| *byte = b)
                .is_ok()
        });
    if !valid {
        // Not echoed: a token pasted here by mistake is a secret.
        return Err(Invalid(format!(
            "an entry is not a SHA-256 digest ({})",
            expected(Key::AuthTokens)
        )));
    }
    Ok(TokenHash(digest))
}

/// The environment and flag form: `name:hash` entries separated by spaces
/// (Argon2 hashes contain commas).
pub(super) fn users_text(text: &str) -> Result<Vec<UserHash>, Invalid> {
    text.split_whitespace()
        .enumerate()
        .map(|(i, item)| user_entry(item, i + 1))
        .collect()
}

/// A config file's list: `name:hash` strings or `{name, password_hash}` mappings.
pub(super) fn users_file(items: &[Value]) -> Result<Vec<UserHash>, Invalid> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(text) => user_entry(text.trim(), i + 1),
            Value::Object(map) => {
                if let Some(unknown) = map
                    .keys()
                    .find(|k| !["name", "password_hash"].contains(&k.as_str()))
                {
                    return Err(Invalid(format!(
                        "entry {}: unknown field {unknown:?} (expected name, password_hash)",
                        i + 1
                    )));
                }
                match (map.get("name"), map.get("password_hash")) {
                    (Some(Value::String(name)), Some(Value::String(hash))) => {
                        user(name.trim(), hash.trim(), i + 1)
                    }
                    _ => Err(Invalid(format!(
                        "entry {}: expected text fields name and password_hash",
                        i + 1
                    ))),
                }
            }
            _ => Err(Invalid(format!(
                "entry {}: expected name:hash or a mapping with name and password_hash",
                i + 1
            ))),
        })
        .collect()
}

fn user_entry(item: &str, entry: usize) -> Result<UserHash, Invalid> {
    match item.split_once(':') {
        Some((name, hash)) => user(name, hash, entry),
        None => Err(Invalid(format!(
            "entry {entry}: expected name:hash ({})",
            expected(Key::AuthUsers)
        ))),
    }
}

fn user(name: &str, hash: &str, entry: usize) -> Result<UserHash, Invalid> {
    // Basic authentication cannot carry a ':' in the user name.
    if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
        return Err(Invalid(format!(
            "entry {entry}: user name {name:?} must be non-empty, without ':' or spaces"
        )));
    }
    let parsed = PasswordHash::new(hash).map_err(|e| {
        Invalid(format!(
            "entry {entry} ({name}): not a password hash: {e} ({})",
            expected(Key::AuthUsers)
        ))
    })?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(Invalid(format!(
            "entry {entry} ({name}): {} hashes are not supported ({})",
            parsed.algorithm.as_str(),
            expected(Key::AuthUsers)
        )));
    }
    Ok(UserHash {
        name: name.to_owned(),
        hash: hash.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `goproxy auth hash` of "correct horse".
    const SAMPLE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$d+uwN1a15JWTgq2mp7udOQ$rz2YtkFsM988bzYazTqmSr6qbhS+ERzpv813dAPTufY";

    #[test]
    fn tokens_are_sha256_digests() {
        let digest = TokenHash::of("s3cret-token");
        let shown = digest.to_string();
        assert!(shown.starts_with("sha256:") && shown.len() == 71, "{shown}");
        assert_eq!(tokens([shown.as_str()]).unwrap(), [digest]);
        assert_eq!(tokens([&shown[7..]]).unwrap(), [digest]);
        assert_eq!(
            tokens([shown.to_uppercase().replace("SHA256:", "").as_str()]).unwrap(),
            [digest]
        );
        for bad in ["s3cret-token", "sha256:abc", &format!("{}zz", &shown[..69])] {
            let error = tokens([bad]).unwrap_err().0;
            assert!(!error.contains("s3cret"), "{error}");
            assert!(
                error.starts_with("an entry is not a SHA-256 digest"),
                "{error}"
            );
        }
        assert!(tokens([" ", ""]).unwrap().is_empty());
    }

    #[test]
    fn users_need_argon2_hashes() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_ne!(hash, SAMPLE_HASH, "a fresh salt every time");
        use argon2::password_hash::PasswordVerifier;
        let verify = |password: &str, hash: &str| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &PasswordHash::new(hash).unwrap())
                .is_ok()
        };
        assert!(verify("correct horse", &hash));
        assert!(verify("correct horse", SAMPLE_HASH));
        assert!(!verify("correct horse!", SAMPLE_HASH));
        let users = users_text(&format!("alice:{hash}  bob:{SAMPLE_HASH}")).unwrap();
        assert_eq!(users[0].name, "alice");
        assert_eq!(users[0].hash, hash);
        assert_eq!(users[1].to_string(), "bob (argon2)");
        let from_file: Vec<Value> = serde_json::from_str(&format!(
            r#"["carol:{SAMPLE_HASH}", {{"name": "dave", "password_hash": "{SAMPLE_HASH}"}}]"#
        ))
        .unwrap();
        let users = users_file(&from_file).unwrap();
        assert_eq!(users[1].name, "dave");

        for (text, want) in [
            ("alice", "entry 1: expected name:hash"),
            ("alice:plain", "entry 1 (alice): not a password hash"),
            (
                ":$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA",
                "entry 1: user name \"\" must be",
            ),
            (
                "x:$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
                "entry 1 (x): not a password hash",
            ),
            (
                "x:$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
                "entry 1 (x): scrypt hashes are not supported",
            ),
        ] {
            let error = users_text(text).unwrap_err().0;
            assert!(error.starts_with(want), "\n got: {error}\nwant: {want}");
        }
    }

    #[test]
    fn require_values() {
        assert_eq!(require(" Private ").unwrap(), AuthRequire::Private);
        assert_eq!(require("all").unwrap(), AuthRequire::All);
        let patterns = require("github.com/acme,*.corp.example").unwrap();
        assert_eq!(patterns.to_string(), "github.com/acme,*.corp.example");
        for (bad, want) in [
            ("", r#"invalid value "" (expected all, private or"#),
            (" , ", r#"invalid value "," (expected all, private or"#),
            ("[x", r#"invalid value "[x" (invalid pattern "[x": "#),
        ] {
            let error = require(bad).unwrap_err().0;
            assert!(error.starts_with(want), "{error}");
        }
    }
}
