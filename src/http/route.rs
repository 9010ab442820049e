//! Parses a request path into a typed request, or refuses it. Nothing here touches
//! the disk or the network: a request that fails validation never reaches either.

use axum::http::StatusCode;

use crate::cache::{ArtifactKey, ArtifactKind};
use crate::gomod::ModulePath;
use crate::gomod::version::{RequestedVersion, parse_escaped_info_version, parse_escaped_version};

/// Longer request paths are refused outright (module paths are far shorter).
pub const MAX_PATH_LEN: usize = 2048;

/// Each element becomes a file or directory name (plus suffixes such as `.meta`),
/// and file systems refuse names over 255 bytes.
const MAX_ELEMENT_LEN: usize = 200;

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Health,
    Ready,
    /// `/sumdb/<name>/...`: the path after `/sumdb/`.
    SumDb(String),
    Artifact(ArtifactKey),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: StatusCode,
    pub message: String,
}

fn reject(status: StatusCode, message: impl Into<String>) -> Rejection {
    Rejection {
        status,
        message: message.into(),
    }
}

/// `raw_path` is the path exactly as received (still percent-encoded).
pub fn parse(raw_path: &str) -> Result<Route, Rejection> {
    if raw_path.len() > MAX_PATH_LEN {
        return Err(reject(
            StatusCode::URI_TOO_LONG,
            format!("request path longer than {MAX_PATH_LEN} bytes"),
        ));
    }
    let path = percent_decode(raw_path)?;
    check_shape(&path)?;
    match path.as_str() {
        "/health" | "/healthz" => return Ok(Route::Health),
        "/readyz" => return Ok(Route::Ready),
        _ => {}
    }
    // "sumdb" has no dot, so it can never be the first element of a module path.
    if let Some(rest) = path.strip_prefix("/sumdb/") {
        return Ok(Route::SumDb(rest.to_owned()));
    }
    let rest = &path[1..];
    if let Some(module) = rest.strip_suffix("/@latest") {
        let module = module_path(module)?;
        return Ok(Route::Artifact(ArtifactKey::new(
            module,
            ArtifactKind::Latest,
        )));
    }
    let Some((module, file)) = rest.rsplit_once("/@v/") else {
        return Err(reject(
            StatusCode::NOT_FOUND,
            "not a module proxy path (expected /<module>/@v/... or /<module>/@latest)",
        ));
    };
    let module = module_path(module)?;
    if file == "list" {
        return Ok(Route::Artifact(ArtifactKey::new(
            module,
            ArtifactKind::List,
        )));
    }
    let known = file
        .rsplit_once('.')
        .filter(|(_, ext)| matches!(*ext, "info" | "mod" | "zip"));
    let Some((escaped_version, ext)) = known else {
        return Err(reject(
            StatusCode::NOT_FOUND,
            format!("unknown file {file:?} (expected list, <version>.info, .mod or .zip)"),
        ));
    };
    let parsed = if ext == "info" {
        parse_escaped_info_version(&module, escaped_version)
    } else {
        parse_escaped_version(&module, escaped_version)
    };
    let version = parsed.map_err(|e| match e {
        crate::gomod::GoModError::VersionMismatch { .. } => {
            reject(StatusCode::NOT_FOUND, e.to_string())
        }
        other => reject(StatusCode::BAD_REQUEST, other.to_string()),
    })?;
    let kind = match (ext, version) {
        ("info", v) => ArtifactKind::Info(v),
        (_, RequestedVersion::Query(q)) => {
            return Err(reject(
                StatusCode::NOT_FOUND,
                format!(
                    "{}@{}: .{ext} is only served for canonical versions (resolve it with .info first)",
                    module,
                    q.as_str()
                ),
            ));
        }
        ("mod", RequestedVersion::Canonical(v)) => ArtifactKind::Mod(v),
        // Only "zip" is left: other extensions were refused above.
        (_, RequestedVersion::Canonical(v)) => ArtifactKind::Zip(v),
    };
    Ok(Route::Artifact(ArtifactKey::new(module, kind)))
}

fn module_path(escaped: &str) -> Result<ModulePath, Rejection> {
    // A malformed escape is a broken client (400); a well-formed path that is not a
    // valid module path is simply not here, so the go command may try elsewhere (404).
    ModulePath::from_escaped(escaped).map_err(|e| match e {
        crate::gomod::GoModError::InvalidEscapedPath { .. } => {
            reject(StatusCode::BAD_REQUEST, e.to_string())
        }
        other => reject(StatusCode::NOT_FOUND, other.to_string()),
    })
}

/// Structural checks on the decoded path, before any Go rule: these are never valid
/// in a module proxy URL and are refused as malformed.
fn check_shape(path: &str) -> Result<(), Rejection> {
    let bad = |what: &str| {
        Err(reject(
            StatusCode::BAD_REQUEST,
            format!("malformed request path: {what}"),
        ))
    };
    if !path.starts_with('/') {
        return bad("it must start with '/'");
    }
    if path.contains('\0') || path.chars().any(char::is_control) {
        return bad("control character");
    }
    if path.contains('\\') {
        return bad("backslash");
    }
    if path.len() > 1 && path[1..].split('/').any(|seg| seg.is_empty()) {
        return bad("empty path element ('//' or trailing '/')");
    }
    if path[1..].split('/').any(|seg| seg == "." || seg == "..") {
        return bad("'.' or '..' path element");
    }
    if path.split('/').any(|seg| seg.len() > MAX_ELEMENT_LEN) {
        return bad("a path element is longer than 200 bytes");
    }
    Ok(())
}

/// Strict percent-decoding: malformed escapes and non-UTF-8 results are refused.
fn percent_decode(raw: &str) -> Result<String, Rejection> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            let value = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            match value {
                Some(v) => out.push(v),
                None => {
                    return Err(reject(
                        StatusCode::BAD_REQUEST,
                        "malformed request path: bad percent-encoding",
                    ));
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| reject(StatusCode::BAD_REQUEST, "malformed request path: not UTF-8"))
}
