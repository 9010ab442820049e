//! Signed notes (`golang.org/x/mod/sumdb/note`) and the checksum database's tree
//! head text (`tlog.FormatTree` / `tlog.ParseTree`).
//!
//! A note is a text, a blank line, then one line per signature:
//! `— <name> <base64(key hash ‖ Ed25519 signature)>`. The checksum database
//! signs its tree head this way. The go command rejects anything these rules
//! reject, so they follow Go byte for byte: a note it would refuse must not get
//! past the proxy, and a note it accepts must not be refused here.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use ed25519_dalek::{Signature as Ed25519Signature, SigningKey, VerifyingKey};
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use thiserror::Error;

/// The verifier key of `sum.golang.org`, as built into the go command.
pub const SUM_GOLANG_ORG: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

/// Go decodes with `base64.StdEncoding`, which requires padding but ignores
/// non-zero bits in the last character. Decoding the same way avoids refusing a
/// signature the go command accepts.
const GO_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

const ALG_ED25519: u8 = 1;
/// Go's limit: past it, a note is refused before anyone spends time on it.
const MAX_SIGNATURES: usize = 100;
const SIG_PREFIX: &str = "— ";
const TREE_PREFIX: &str = "go.sum database tree\n";
const MAX_TREE_TEXT: usize = 1_000_000;

/// Why a key, note or tree head was refused. The messages are meant for logs
/// and HTTP error bodies, and never quote private key material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NoteError {
    #[error("invalid verifier key: {0}")]
    InvalidVerifierKey(KeyProblem),
    #[error("invalid signer key: {0}")]
    InvalidSignerKey(KeyProblem),
    /// Key names must be non-empty and contain neither whitespace nor `+`.
    #[error("invalid key name {0:?}")]
    InvalidName(String),
    #[error("malformed note")]
    MalformedNote,
    /// Two configured verifiers share a name and key hash, so neither can be
    /// trusted to be the right one.
    #[error("ambiguous verifier key {name}+{key_hash:08x}")]
    AmbiguousKey { name: String, key_hash: u32 },
    /// A signature from a trusted key that does not verify: the note was
    /// altered, or the server misbehaves.
    #[error("bad signature from {name}+{key_hash:08x}")]
    BadSignature { name: String, key_hash: u32 },
    /// The note parsed, but none of its signatures is from a trusted key.
    #[error("note has no verifiable signature from {expected}")]
    Unverified { expected: String },
    #[error("malformed tree note")]
    MalformedTree,
}

/// What is wrong with a key string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum KeyProblem {
    #[error("malformed")]
    Malformed,
    #[error("unknown algorithm")]
    UnknownAlgorithm,
    /// The stated key hash does not match the name and key: a typo, or a key
    /// that was tampered with.
    #[error("hash mismatch")]
    HashMismatch,
    #[error("not an Ed25519 public key")]
    NotEd25519,
}

/// A public key that checks signatures made under one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_hash: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// Parses a verifier key `<name>+<hash>+<base64(0x01 ‖ public key)>`, as
    /// given in `GOSUMDB`.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let bad = NoteError::InvalidVerifierKey;
        let (name, stated_hash, encoded) = split_key(vkey).map_err(bad)?;
        // Checked before the algorithm, as Go does, so a key whose hash was
        // made to match still fails on its own defect.
        if key_hash(name, &encoded) != stated_hash {
            return Err(bad(KeyProblem::HashMismatch));
        }
        let public = ed25519_payload(&encoded).map_err(bad)?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad(KeyProblem::NotEd25519))?;
        Ok(Verifier {
            name: name.to_owned(),
            key_hash: stated_hash,
            key,
        })
    }

    /// The name the key signs under, e.g. `sum.golang.org`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash that identifies this key in signature lines.
    pub fn key_hash(&self) -> u32 {
        self.key_hash
    }

    fn verifies(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(sig) else {
            return false;
        };
        // The non-strict check is the one Go's `ed25519.Verify` makes: it
        // rejects a non-canonical S but accepts small-order keys.
        self.key
            .verify(msg, &Ed25519Signature::from_bytes(&sig))
            .is_ok()
    }
}

/// A private key that signs notes, for serving a checksum database of our own
/// (tests build a fake one with it).
#[derive(Debug, Clone)]
pub struct Signer {
    name: String,
    key_hash: u32,
    key: SigningKey,
}

impl Signer {
    /// Parses a signer key `PRIVATE+KEY+<name>+<hash>+<base64(0x01 ‖ seed)>`.
    /// The hash is over the public key, so it is checked after deriving it.
    pub fn parse(skey: &str) -> Result<Self, NoteError> {
        let bad = NoteError::InvalidSignerKey;
        let rest = skey
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(bad(KeyProblem::Malformed))?;
        let (name, stated_hash, encoded) = split_key(rest).map_err(bad)?;
        let seed = ed25519_payload(&encoded).map_err(bad)?;
        let signer = Self::from_seed(name, seed);
        if signer.key_hash != stated_hash {
            return Err(bad(KeyProblem::HashMismatch));
        }
        Ok(signer)
    }

    /// Makes a signer from a name and an Ed25519 seed, and returns it with
    /// the matching verifier key string.
    pub fn generate(name: &str, seed: [u8; 32]) -> Result<(Signer, String), NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::InvalidName(name.to_owned()));
        }
        let signer = Self::from_seed(name, seed);
        let vkey = format!(
            "{name}+{:08x}+{}",
            signer.key_hash,
            STANDARD.encode(encode_public(&signer.key))
        );
        Ok((signer, vkey))
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> Signer {
        let key = SigningKey::from_bytes(&seed);
        Signer {
            name: name.to_owned(),
            key_hash: key_hash(name, &encode_public(&key)),
            key,
        }
    }

    /// The name the key signs under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash written in front of each signature.
    pub fn key_hash(&self) -> u32 {
        self.key_hash
    }

    /// Signs `text` and returns the complete note: the text, a blank line and
    /// this key's signature line. The text must be non-empty, end in `\n`, and
    /// hold no control character other than `\n`, or [`open`] would refuse
    /// the result.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') || has_forbidden_control(text) {
            return Err(NoteError::MalformedNote);
        }
        let sig = self.key.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(4 + 64);
        raw.extend_from_slice(&self.key_hash.to_be_bytes());
        raw.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(raw)
        ))
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub key_hash: u32,
    /// The signature as written: base64 of key hash ‖ signature bytes.
    pub base64: String,
}

/// A note whose signatures were checked by [`open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in `\n`.
    pub text: String,
    /// Signatures from the trusted keys; never empty.
    pub verified: Vec<Signature>,
    /// Signatures from keys nobody asked us to trust, kept as found.
    pub unverified: Vec<Signature>,
}

/// Parses a signed note and checks its signatures against `verifiers`.
///
/// Succeeds only if at least one trusted key signed it. Signatures from
/// unknown keys are kept unchecked; a signature from a trusted key that does
/// not verify fails the whole note. Repeated signatures are ignored.
pub fn open(msg: &[u8], verifiers: &[Verifier]) -> Result<Note, NoteError> {
    let msg = std::str::from_utf8(msg).map_err(|_| NoteError::MalformedNote)?;
    if has_forbidden_control(msg) {
        return Err(NoteError::MalformedNote);
    }
    // The last blank line, so that the text itself may contain blank lines.
    let split = msg.rfind("\n\n").ok_or(NoteError::MalformedNote)?;
    let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(NoteError::MalformedNote);
    };

    let mut note = Note {
        text: text.to_owned(),
        verified: Vec::new(),
        unverified: Vec::new(),
    };
    let mut seen_keys = HashSet::new();
    let mut seen_unknown = HashSet::new();
    for (index, line) in sigs.split('\n').enumerate() {
        let parsed = (index < MAX_SIGNATURES).then(|| parse_signature_line(line));
        let Some((signature, sig)) = parsed.flatten() else {
            return Err(NoteError::MalformedNote);
        };
        let (name, key_hash) = (signature.name.as_str(), signature.key_hash);
        let mut matching = verifiers
            .iter()
            .filter(|v| v.name == name && v.key_hash == key_hash);
        let Some(verifier) = matching.next() else {
            if seen_unknown.insert(line) {
                note.unverified.push(signature);
            }
            continue;
        };
        if matching.next().is_some() {
            let name = name.to_owned();
            return Err(NoteError::AmbiguousKey { name, key_hash });
        }
        if !seen_keys.insert((name.to_owned(), key_hash)) {
            continue;
        }
        if !verifier.verifies(text.as_bytes(), &sig) {
            let name = name.to_owned();
            return Err(NoteError::BadSignature { name, key_hash });
        }
        note.verified.push(signature);
    }

    if note.verified.is_empty() {
        let names: Vec<&str> = verifiers.iter().map(Verifier::name).collect();
        let expected = if names.is_empty() {
            "a trusted key (none configured)".to_owned()
        } else {
            names.join(", ")
        };
        return Err(NoteError::Unverified { expected });
    }
    Ok(note)
}

/// Splits `— <name> <base64>` into the signature and its bytes after the key
/// hash; `None` if the line is malformed.
fn parse_signature_line(line: &str) -> Option<(Signature, Vec<u8>)> {
    let (name, b64) = line.strip_prefix(SIG_PREFIX)?.split_once(' ')?;
    if !is_valid_name(name) || b64.is_empty() {
        return None;
    }
    let raw = GO_BASE64.decode(b64).ok()?;
    let (hash, sig) = raw.split_first_chunk::<4>()?;
    if sig.is_empty() {
        return None;
    }
    let signature = Signature {
        name: name.to_owned(),
        key_hash: u32::from_be_bytes(*hash),
        base64: b64.to_owned(),
    };
    Some((signature, sig.to_vec()))
}

/// A checksum database tree head: the number of records and the Merkle tree
/// root hash over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeHead {
    pub size: u64,
    pub hash: [u8; 32],
}

impl TreeHead {
    /// Parses the text of a tree note, `go.sum database tree\n<N>\n<base64 root>\n`.
    /// Lines after the third are ignored so that future additions stay
    /// readable, as in Go.
    pub fn parse_note_text(text: &str) -> Result<Self, NoteError> {
        if text.len() > MAX_TREE_TEXT {
            return Err(NoteError::MalformedTree);
        }
        let body = text
            .strip_prefix(TREE_PREFIX)
            .ok_or(NoteError::MalformedTree)?;
        // A third piece exists only if the hash line ends in `\n`.
        let mut lines = body.splitn(3, '\n');
        let (Some(size_text), Some(hash_text), Some(_)) =
            (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::MalformedTree);
        };
        // Go reads N as an int64 and insists that it round-trips, so "+5",
        // "05" and values past i64::MAX are refused.
        let size: u64 = size_text.parse().map_err(|_| NoteError::MalformedTree)?;
        if size > i64::MAX as u64 || size.to_string() != size_text {
            return Err(NoteError::MalformedTree);
        }
        let hash = GO_BASE64
            .decode(hash_text)
            .map_err(|_| NoteError::MalformedTree)?;
        let hash = <[u8; 32]>::try_from(hash).map_err(|_| NoteError::MalformedTree)?;
        Ok(TreeHead { size, hash })
    }

    /// The three-line tree note text, ready to be signed.
    pub fn format(&self) -> String {
        format!(
            "{TREE_PREFIX}{}\n{}\n",
            self.size,
            STANDARD.encode(self.hash)
        )
    }
}

/// A checksum database the go command knows by name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownSumdb {
    /// The database's name: the signer name in its notes and the `<name>`
    /// in `<proxy>/sumdb/<name>/…`.
    pub name: &'static str,
    /// Its verifier key.
    pub key: &'static str,
    /// Where to reach it directly.
    pub url: &'static str,
}

/// Maps a bare `GOSUMDB` name to the database the go command has built in.
/// `sum.golang.google.cn` is not a database of its own but another address
/// for `sum.golang.org`, with the same name and key.
pub fn known_sumdb(gosumdb: &str) -> Option<KnownSumdb> {
    let url = match gosumdb {
        "sum.golang.org" => "https://sum.golang.org",
        "sum.golang.google.cn" => "https://sum.golang.google.cn",
        _ => return None,
    };
    Some(KnownSumdb {
        name: "sum.golang.org",
        key: SUM_GOLANG_ORG,
        url,
    })
}

/// Splits `<name>+<hash>+<keydata>` at the first two `+`: the key data is
/// base64 and may itself contain `+`.
fn split_key(s: &str) -> Result<(&str, u32, Vec<u8>), KeyProblem> {
    let malformed = KeyProblem::Malformed;
    let (name, rest) = s.split_once('+').ok_or(malformed)?;
    let (hash_hex, key64) = rest.split_once('+').ok_or(malformed)?;
    if !is_valid_name(name)
        || hash_hex.len() != 8
        || !hash_hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(malformed);
    }
    let hash = u32::from_str_radix(hash_hex, 16).map_err(|_| malformed)?;
    let key = GO_BASE64.decode(key64).map_err(|_| malformed)?;
    if key.is_empty() {
        return Err(malformed);
    }
    Ok((name, hash, key))
}

/// The 32 key bytes after the algorithm byte, which must be Ed25519.
fn ed25519_payload(encoded: &[u8]) -> Result<[u8; 32], KeyProblem> {
    match encoded.split_first() {
        Some((&ALG_ED25519, key)) => key.try_into().map_err(|_| KeyProblem::Malformed),
        _ => Err(KeyProblem::UnknownAlgorithm),
    }
}

fn encode_public(key: &SigningKey) -> [u8; 33] {
    let mut encoded = [ALG_ED25519; 33];
    encoded[1..].copy_from_slice(key.verifying_key().as_bytes());
    encoded
}

/// First four bytes of SHA-256(name ‖ "\n" ‖ encoded key), big-endian.
fn key_hash(name: &str, encoded_key: &[u8]) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update(encoded_key)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Non-empty, and no `+` or Unicode whitespace, which would break key strings
/// and signature lines. (Rust's `char::is_whitespace` and Go's
/// `unicode.IsSpace` cover the same White_Space set.)
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c == '+' || c.is_whitespace())
}

/// Notes may hold no ASCII control character but `\n`. In valid UTF-8 a byte
/// below 0x20 is always such a character.
fn has_forbidden_control(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 && b != b'\n')
}

#[cfg(test)]
#[path = "note_tests.rs"]
mod tests;
