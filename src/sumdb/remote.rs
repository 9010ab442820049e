//! Reaching a checksum database: at its configured URL, through the first upstream
//! proxy that serves it (`<upstream>/sumdb/<name>/supported` answers 200), or
//! directly at `https://<name>`. Traffic goes through the shared upstream client,
//! so timeouts, retries and outbound settings apply as to any other request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Mutex;
use url::Url;

use crate::config::redact_url;
use crate::upstream::{Upstreams, UrlError};

/// Lookups, notes and tiles are small; anything larger is not a checksum database.
const MAX_BODY: u64 = 1 << 20;

pub struct Remote {
    name: String,
    url: Option<Url>,
    upstreams: Arc<Upstreams>,
    /// The base URL found, and until when to keep using it (None: for good).
    discovered: Mutex<Option<(Url, Option<Instant>)>>,
}

/// A direct-access fallback chosen while no upstream served the database is
/// reconsidered after this long, so a recovered upstream is used again.
const FALLBACK_RECHECK: Duration = Duration::from_secs(60);

impl Remote {
    pub fn new(name: String, url: Option<Url>, upstreams: Arc<Upstreams>) -> Self {
        Remote {
            name,
            url,
            upstreams,
            discovered: Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The base URL: the configured one; else the first upstream whose
    /// `supported` answers 200 (remembered); else, when every upstream said
    /// 404/410, `https://<name>` (reconsidered after a minute).
    pub async fn base_url(&self) -> Result<Url, UrlError> {
        if let Some(url) = &self.url {
            return Ok(url.clone());
        }
        let mut discovered = self.discovered.lock().await;
        if let Some((url, until)) = &*discovered
            && until.is_none_or(|t| Instant::now() < t)
        {
            return Ok(url.clone());
        }
        let supported = format!("sumdb/{}/supported", self.name);
        let mut found = None;
        for upstream in self.upstreams.bases() {
            let probe = upstream.join(&supported);
            match self
                .upstreams
                .fetch_url(&probe, &upstream.display, &|_response| async { Ok(()) })
                .await
            {
                Ok(_) => {
                    found = Some(upstream.join(&format!("sumdb/{}", self.name)));
                    break;
                }
                Err(UrlError::NotFound(status)) => {
                    tracing::debug!(upstream = %upstream.display, sumdb = %self.name, status, "upstream does not serve the checksum database")
                }
                // Like the go command: only "not found" means "ask the next one".
                // Any other failure leaves the question open, so nothing is
                // remembered and the request fails as unavailable.
                Err(e) => {
                    return Err(UrlError::Failed(format!(
                        "{} did not answer whether it serves the checksum database: {e}",
                        upstream.display
                    )));
                }
            }
        }
        let (url, until) = match found {
            Some(url) => (url, None),
            None => match Url::parse(&format!("https://{}", self.name)) {
                Ok(url) => (url, Some(Instant::now() + FALLBACK_RECHECK)),
                Err(e) => {
                    return Err(UrlError::Failed(format!(
                        "{:?} is not a host name: {e}",
                        self.name
                    )));
                }
            },
        };
        tracing::info!(sumdb = %self.name, url = %redact_url(&url), "checksum database is reached here");
        *discovered = Some((url.clone(), until));
        Ok(url)
    }

    /// GETs `path` (e.g. `lookup/rsc.io/quote@v1.5.2` or `tile/8/0/000`) below the base URL.
    pub async fn get(&self, path: &str) -> Result<Bytes, UrlError> {
        let base = self.base_url().await?;
        let mut url = base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            for seg in path.split('/') {
                segments.push(seg);
            }
        }
        let label = redact_url(&base);
        self.upstreams
            .fetch_url(&url, &label, &|response| {
                crate::upstream::read_limited(response, MAX_BODY)
            })
            .await
            .map(|(body, _)| body)
    }
}
