//! The state file of a resumable download: which byte ranges of the partial file
//! are complete, and which upstream body (URL, size, validator) they belong to.
//!
//! It is only ever written after the data it describes has been synced to disk,
//! and replaced atomically, so a crash can lose progress but never mark bytes
//! complete that were not written.

use std::io::{self, Write};
use std::path::Path;

use reqwest::header::{ETAG, HeaderMap, HeaderValue, LAST_MODIFIED};
use serde::{Deserialize, Serialize};

use super::ranges::RangeSet;

/// Bumped when the format changes; other versions are discarded, not migrated.
const FORMAT: u32 = 1;

/// What identifies one version of an upstream's body for `If-Range`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validator {
    /// A strong ETag (weak ones may not be used with `If-Range`).
    Etag(String),
    LastModified(String),
}

impl Validator {
    /// The response's strong ETag, else its Last-Modified date.
    pub fn of(headers: &HeaderMap) -> Option<Validator> {
        let text = |v: &HeaderValue| v.to_str().ok().map(str::trim).map(str::to_owned);
        if let Some(etag) = headers.get(ETAG).and_then(text)
            && etag.starts_with('"')
        {
            return Some(Validator::Etag(etag));
        }
        headers
            .get(LAST_MODIFIED)
            .and_then(text)
            .filter(|d| httpdate::parse_http_date(d).is_ok())
            .map(Validator::LastModified)
    }

    /// The `If-Range` header value.
    pub fn as_header(&self) -> &str {
        match self {
            Validator::Etag(v) | Validator::LastModified(v) => v,
        }
    }

    /// Does a ranged response carry a different identity than the one we
    /// asked for? (A server that ignores `If-Range` would otherwise splice two
    /// bodies together.) A response that omits the header is not evidence.
    pub fn contradicted_by(&self, headers: &HeaderMap) -> bool {
        match Validator::of(headers) {
            Some(other) => match (self, &other) {
                (Validator::Etag(_), Validator::Etag(_))
                | (Validator::LastModified(_), Validator::LastModified(_)) => *self != other,
                // An ETag now where there was a date (or the reverse): compare
                // only what both have.
                (Validator::Etag(mine), Validator::LastModified(_)) => headers
                    .get(ETAG)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|e| e.trim() != mine),
                (Validator::LastModified(mine), Validator::Etag(_)) => headers
                    .get(LAST_MODIFIED)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|d| d.trim() != mine),
            },
            None => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialState {
    format: u32,
    /// The URL the bytes came from, credentials removed.
    pub source: String,
    pub size: u64,
    pub validator: Validator,
    pub done: RangeSet,
}

impl PartialState {
    pub fn new(source: String, size: u64, validator: Validator) -> Self {
        PartialState {
            format: FORMAT,
            source,
            size,
            validator,
            done: RangeSet::default(),
        }
    }

    /// The state at `path`, if there is one that makes sense for a data file of
    /// `data_len` bytes. Anything unreadable or inconsistent is `None`: the
    /// download then starts over, which is always safe.
    pub fn load(path: &Path, data_len: u64) -> Option<PartialState> {
        let bytes = std::fs::read(path).ok()?;
        let state: PartialState = serde_json::from_slice(&bytes).ok()?;
        let sane = state.format == FORMAT
            && state.size > 0
            && state.done.fits(state.size)
            // The data file is sized to the whole body before any byte is written.
            && data_len == state.size;
        sane.then_some(state)
    }

    /// Replaces the state file atomically (temp file, fsync, rename, directory
    /// fsync). The caller has synced the data file first.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let dir = path
            .parent()
            .ok_or_else(|| io::Error::other("state file has no directory"))?;
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::other("state file has no name"))?;
        let mut tmp_name = name.to_owned();
        tmp_name.push(".new");
        let tmp = dir.join(tmp_name);
        let body = serde_json::to_vec(self).map_err(io::Error::other)?;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&body)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn strong_etag_is_preferred_and_weak_ones_are_ignored() {
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(
            Validator::of(&headers(&[("etag", "\"abc\""), ("last-modified", date)])),
            Some(Validator::Etag("\"abc\"".into()))
        );
        assert_eq!(
            Validator::of(&headers(&[("etag", "W/\"abc\""), ("last-modified", date)])),
            Some(Validator::LastModified(date.into()))
        );
        assert_eq!(Validator::of(&headers(&[("etag", "W/\"abc\"")])), None);
        assert_eq!(
            Validator::of(&headers(&[("last-modified", "yesterday")])),
            None
        );
    }

    #[test]
    fn a_different_etag_contradicts_and_a_missing_one_does_not() {
        let v = Validator::Etag("\"a\"".into());
        assert!(v.contradicted_by(&headers(&[("etag", "\"b\"")])));
        assert!(!v.contradicted_by(&headers(&[("etag", "\"a\"")])));
        assert!(!v.contradicted_by(&headers(&[])));
    }

    #[test]
    fn saved_state_loads_back_and_inconsistent_state_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".tmp-x.zip.partial.json");
        let mut state = PartialState::new(
            "http://u/x.zip".into(),
            100,
            Validator::Etag("\"e\"".into()),
        );
        state.done.insert(0, 40);
        state.save(&path).unwrap();
        assert_eq!(PartialState::load(&path, 100), Some(state.clone()));
        // The data file is shorter than what the state claims: not trusted.
        assert_eq!(PartialState::load(&path, 10), None);
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(PartialState::load(&path, 100), None);
        let mut wrong = serde_json::to_value(&state).unwrap();
        wrong["format"] = 99.into();
        std::fs::write(&path, serde_json::to_vec(&wrong).unwrap()).unwrap();
        assert_eq!(PartialState::load(&path, 100), None);
        assert!(!dir.path().join(".tmp-x.zip.partial.json.new").exists());
    }
}
