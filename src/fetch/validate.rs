//! Checks on what upstreams send, before anything is stored. A response that fails
//! is refused: never cached, never served.

use crate::gomod::{ModulePath, Version, modfile, semver, version};

/// Bodies larger than these are refused while they are being read.
pub const MAX_LIST: u64 = 16 << 20;
pub const MAX_INFO: u64 = 1 << 20;

/// `@v/list`: UTF-8 lines, each a valid version optionally followed by more fields
/// (newer upstreams may append a timestamp).
pub fn list(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|_| "list is not UTF-8".to_owned())?;
    for line in text.lines() {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        if !semver::is_valid(first) {
            return Err(format!(
                "list line {line:?} does not start with a valid version"
            ));
        }
    }
    Ok(())
}

/// `.info` and `@latest`: a JSON object whose `Version` is a canonical version; for
/// a canonical request it must be exactly the requested version (the go command
/// rejects anything else), and `Time`, when present, must be a string.
pub fn info(body: &[u8], requested: Option<&Version>) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("info is not valid JSON: {e}"))?;
    let object = value.as_object().ok_or("info is not a JSON object")?;
    let version = object
        .get("Version")
        .and_then(|v| v.as_str())
        .ok_or("info has no string \"Version\" field")?;
    if !semver::is_valid(version) || version::canonical_version(version) != version {
        return Err(format!(
            "info Version {version:?} is not a canonical version"
        ));
    }
    if let Some(expected) = requested
        && version != expected.as_str()
    {
        return Err(format!("info for {expected} has Version {version:?}"));
    }
    if let Some(time) = object.get("Time")
        && !time.is_string()
    {
        return Err("info \"Time\" is not a string".to_owned());
    }
    Ok(())
}

/// `.mod`: must parse as a go.mod that declares the requested module path.
pub fn go_mod(body: &[u8], module: &ModulePath) -> Result<(), String> {
    let declared = modfile::module_path(body).map_err(|e| e.to_string())?;
    if declared != module.as_str() {
        return Err(format!(
            "go.mod declares module {declared:?}, not {module:?}",
            module = module.as_str()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_accepts_versions_and_timestamps() {
        assert!(list(b"").is_ok());
        assert!(list(b"v1.0.0\nv1.1.0 2019-01-01T00:00:00Z\n").is_ok());
        assert!(list(b"v1.0.0\n\n").is_ok());
        assert!(list(b"<html>\n").is_err());
        assert!(list(&[0xff, 0xfe]).is_err());
    }
}
