//! Reading a YAML or JSON config file into raw key/value pairs.
//!
//! The document is read untyped and each key is then parsed by the same code
//! as its environment variable and flag, so all three accept the same forms
//! (`port: 12345` and the old project's `port: "12345"`, a list of upstreams
//! or one comma-separated string) and errors name the key in our own words.

use std::io::ErrorKind;

use serde_json::Value;

use super::Key;
use super::load::{ConfigError, ConfigFile, Raw, Source};
use super::value::{Invalid, redact_secrets};

enum Format {
    Yaml,
    Json,
}

/// The file's settings; keys set to null are left out, as if absent.
pub(super) fn read(config: &ConfigFile) -> Result<Vec<(Key, Raw)>, ConfigError> {
    let path = &config.path;
    let extension = path
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase);
    let format = match extension.as_deref() {
        Some("yaml" | "yml") => Format::Yaml,
        Some("json") => Format::Json,
        _ => return Err(ConfigError::FileType { path: path.clone() }),
    };
    let text = std::fs::read_to_string(path).map_err(|error| match error.kind() {
        ErrorKind::NotFound => ConfigError::FileNotFound {
            path: path.clone(),
            named_by: config.named_by.clone(),
        },
        _ => ConfigError::FileUnreadable {
            path: path.clone(),
            error,
        },
    })?;
    let document = parse(&text, &format).map_err(|message| ConfigError::FileSyntax {
        path: path.clone(),
        // Parsers quote the offending line, which may hold an upstream's
        // password.
        message: redact_secrets(&message),
    })?;
    let entries = match document {
        Value::Object(entries) => entries,
        // An empty YAML file (or one of only comments) sets nothing.
        Value::Null => return Ok(Vec::new()),
        _ => {
            return Err(ConfigError::FileSyntax {
                path: path.clone(),
                message: "expected a mapping of keys to values at the top level".to_owned(),
            });
        }
    };

    let mut settings = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        let Some(key) = Key::from_name(&name) else {
            return Err(ConfigError::UnknownKey {
                path: path.clone(),
                key: name,
            });
        };
        let raw = match raw(key, value) {
            Ok(Some(raw)) => raw,
            Ok(None) => continue,
            Err(shown) => {
                return Err(ConfigError::InvalidValue {
                    at: Source::File(path.clone()),
                    key,
                    message: Invalid::wrong_kind(key, &shown).0,
                });
            }
        };
        settings.push((key, raw));
    }
    Ok(settings)
}

fn parse(text: &str, format: &Format) -> Result<Value, String> {
    match format {
        Format::Yaml => {
            let options = serde_saphyr::options! {
                // YAML 1.1 reads `off`, `no` and even `y` as booleans, which
                // would turn `log_level: off` into `false`.
                strict_booleans: true,
                // One line naming line and column; the snippet would repeat
                // the file and its secrets.
                with_snippet: false,
            };
            serde_saphyr::from_str_with_options(text, options).map_err(|e| {
                // A hint to the programmer, not to the person editing the file.
                e.to_string()
                    .replace(", set DuplicateKeyPolicy in Options if acceptable", "")
            })
        }
        Format::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
    }
}

/// A scalar becomes text (numbers as written: `port: 12345`), a list of
/// texts a list, a list with mappings in it a structured list, null nothing.
/// Anything else is returned, printed, as the error.
fn raw(key: Key, value: Value) -> Result<Option<Raw>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(Raw::Text(text))),
        Value::Number(number) => Ok(Some(Raw::Text(number.to_string()))),
        // Only `true` and `false` are booleans (strict), and only a switch takes one.
        Value::Bool(flag) if key.is_switch() => Ok(Some(Raw::Text(flag.to_string()))),
        Value::Array(items) => {
            let texts: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Some(text.clone()),
                    _ => None,
                })
                .collect();
            if let Some(texts) = texts {
                return Ok(Some(Raw::List(texts)));
            }
            // Whether the key takes mappings is the key's business; it never
            // quotes them back, since they may hold credentials.
            if items.iter().any(Value::is_object) {
                return Ok(Some(Raw::Structured(items)));
            }
            Err(Value::Array(items).to_string())
        }
        other @ (Value::Bool(_) | Value::Object(_)) => Err(other.to_string()),
    }
}
