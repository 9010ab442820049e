use std::fmt;

/// Why one upstream did not deliver.
#[derive(Clone, Debug)]
pub struct UpstreamFailure {
    /// Redacted upstream URL.
    pub upstream: String,
    pub reason: String,
    /// The upstream answered 404 or 410.
    pub not_found: bool,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum UpstreamError {
    /// At least one upstream answered 404/410 and none delivered.
    #[error("not found upstream ({})", Summary(.failures))]
    NotFound { failures: Vec<UpstreamFailure> },
    /// Every upstream failed for another reason (network, 5xx, 429, invalid content).
    #[error("all upstreams failed ({})", Summary(.failures))]
    Unavailable { failures: Vec<UpstreamFailure> },
    #[error("cannot build the upstream HTTP client: {0}")]
    Client(String),
    /// A local failure while taking in a response (e.g. the disk is full).
    #[error("{0}")]
    Local(String),
    /// GONOPROXY (or GOPRIVATE) without a private upstream: asked of no one.
    #[error("{module} is private (GOPRIVATE/GONOPROXY) and has no private upstream")]
    Private { module: String },
}

impl UpstreamError {
    /// Every upstream said "not found" (none failed in another way): the only
    /// answer that may be remembered as a negative result.
    pub fn all_not_found(&self) -> bool {
        matches!(self, UpstreamError::NotFound { failures } if failures.iter().all(|f| f.not_found))
    }
}

struct Summary<'a>(&'a [UpstreamFailure]);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no upstreams configured");
        }
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", failure.upstream, failure.reason)?;
        }
        Ok(())
    }
}

/// How fetching one URL failed, after retries.
#[derive(Clone, Debug, thiserror::Error)]
pub enum UrlError {
    #[error("{0} not found")]
    NotFound(u16),
    #[error("{0}")]
    Failed(String),
    /// A local failure (e.g. the disk) while taking in the response.
    #[error("{0}")]
    Local(String),
}
