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

/// `.mod`: must parse as a go.mod with a valid `module` directive.
///
/// The declared path may differ from the requested one: real modules do that
/// (`github.com/Sirupsen/logrus` declares `github.com/sirupsen/logrus`, old
/// `github.com/golang/lint` versions declare `golang.org/x/lint`) and the public
/// proxy serves them as they are. The go command reports such a mismatch itself,
/// with its own message, where it matters; refusing it here would only break
/// downloads that work everywhere else.
pub fn go_mod(body: &[u8], module: &ModulePath) -> Result<(), String> {
    let declared = modfile::module_path(body).map_err(|e| e.to_string())?;
    if declared != module.as_str() {
        tracing::debug!(
            module = module.as_str(),
            declared,
            "go.mod declares another module path"
        );
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

#[cfg(test)]
mod go_mod_tests {
    use super::*;

    #[test]
    fn go_mod_must_parse_but_may_declare_another_path() {
        let m = ModulePath::parse("github.com/Sirupsen/logrus").unwrap();
        assert!(go_mod(b"module github.com/sirupsen/logrus\n", &m).is_ok());
        assert!(go_mod(b"module github.com/Sirupsen/logrus\n\ngo 1.13\n", &m).is_ok());
        assert!(go_mod(b"<html>not found</html>\n", &m).is_err());
        assert!(go_mod(b"go 1.21\n", &m).is_err(), "no module directive");
        assert!(go_mod(&[0xff, 0xfe], &m).is_err());
    }
}
