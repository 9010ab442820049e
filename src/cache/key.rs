//! `ArtifactKey` names everything the proxy stores and fetches. Its storage key is
//! the GOPROXY URL path itself, so a cache directory is also a valid
//! `GOPROXY=file://...` tree and the upstream request path is the same string.

use crate::gomod::version::RequestedVersion;
use crate::gomod::{ModulePath, Version};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    List,
    Latest,
    Info(RequestedVersion),
    Mod(Version),
    Zip(Version),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArtifactKey {
    pub module: ModulePath,
    pub kind: ArtifactKind,
}

impl ArtifactKey {
    pub fn new(module: ModulePath, kind: ArtifactKind) -> Self {
        ArtifactKey { module, kind }
    }

    /// The one place where the on-disk (and URL) layout is written down.
    pub fn storage_key(&self) -> String {
        let m = self.module.escaped();
        match &self.kind {
            ArtifactKind::List => format!("{m}/@v/list"),
            ArtifactKind::Latest => format!("{m}/@latest"),
            ArtifactKind::Info(RequestedVersion::Canonical(v)) => {
                format!("{m}/@v/{}.info", v.escaped())
            }
            ArtifactKind::Info(RequestedVersion::Query(q)) => {
                format!("{m}/@v/{}.info", q.escaped())
            }
            ArtifactKind::Mod(v) => format!("{m}/@v/{}.mod", v.escaped()),
            ArtifactKind::Zip(v) => format!("{m}/@v/{}.zip", v.escaped()),
        }
    }

    /// Immutable artifacts never change once stored: `.info`, `.mod` and `.zip` of a
    /// canonical version. Everything else is refreshed after the list TTL.
    pub fn is_immutable(&self) -> bool {
        matches!(
            self.kind,
            ArtifactKind::Info(RequestedVersion::Canonical(_))
                | ArtifactKind::Mod(_)
                | ArtifactKind::Zip(_)
        )
    }

    pub fn content_type(&self) -> &'static str {
        match self.kind {
            ArtifactKind::Info(_) | ArtifactKind::Latest => "application/json",
            ArtifactKind::List | ArtifactKind::Mod(_) => "text/plain; charset=utf-8",
            ArtifactKind::Zip(_) => "application/zip",
        }
    }

    /// The escaped version element of a version-level artifact (`.info`, `.mod`,
    /// `.zip`), as it appears in cache paths; None for `list` and `@latest`.
    pub fn escaped_version(&self) -> Option<String> {
        match &self.kind {
            ArtifactKind::List | ArtifactKind::Latest => None,
            ArtifactKind::Info(RequestedVersion::Canonical(v))
            | ArtifactKind::Mod(v)
            | ArtifactKind::Zip(v) => Some(v.escaped()),
            ArtifactKind::Info(RequestedVersion::Query(q)) => Some(q.escaped()),
        }
    }

    /// `module@version` or `module` for messages.
    pub fn display_name(&self) -> String {
        match &self.kind {
            ArtifactKind::List | ArtifactKind::Latest => self.module.to_string(),
            ArtifactKind::Info(RequestedVersion::Canonical(v))
            | ArtifactKind::Mod(v)
            | ArtifactKind::Zip(v) => {
                format!("{}@{}", self.module, v)
            }
            ArtifactKind::Info(RequestedVersion::Query(q)) => {
                format!("{}@{}", self.module, q.as_str())
            }
        }
    }
}
