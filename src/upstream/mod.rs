//! Talking to upstream GOPROXY servers: one pooled HTTP client, an ordered list of
//! upstreams (or a private module's own upstream), retries with backoff for
//! transient failures, and a deliberate final answer (404 if any upstream said
//! "not found", otherwise 502).

mod attempt;
mod body;
mod client;
mod error;
mod private;

pub use attempt::{
    AttemptError, BodyError, Endpoint, classify_status, describe_reqwest_error as describe_error,
};
pub use body::read_limited;
pub use client::build_client;
pub use error::{UpstreamError, UpstreamFailure, UrlError};
pub use private::{Credential, Route};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use url::Url;

use crate::config::{Settings, redact_url};
use crate::metrics::{Metrics, UpstreamResult};

/// Retry-After values longer than this are not waited for: the upstream is given up
/// on for this request instead of holding the client that long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// One configured upstream.
#[derive(Clone, Debug)]
pub struct UpstreamBase {
    pub url: Url,
    /// The URL with any password removed: the only form that reaches logs and clients.
    pub display: String,
    /// Sent with every request to this upstream (private upstreams only).
    pub credential: Option<Credential>,
}

impl UpstreamBase {
    pub fn new(url: Url) -> Self {
        let display = redact_url(&url);
        UpstreamBase {
            url,
            display,
            credential: None,
        }
    }

    /// `base` + `/` + the escaped request path, each segment percent-encoded as needed.
    pub fn join(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            for seg in path.split('/') {
                segments.push(seg);
            }
        }
        url
    }
}

/// What a successful fetch produced, and where it came from.
#[derive(Debug)]
pub struct Fetched<T> {
    pub value: T,
    pub upstream: String,
    pub etag: Option<String>,
}

pub struct Upstreams {
    client: reqwest::Client,
    bases: Vec<UpstreamBase>,
    private: private::PrivateBases,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
}

impl Upstreams {
    pub fn new(settings: Arc<Settings>, metrics: Arc<Metrics>) -> Result<Self, UpstreamError> {
        let client = build_client(&settings)?;
        let bases = settings
            .upstreams
            .iter()
            .cloned()
            .map(UpstreamBase::new)
            .collect();
        let private = private::PrivateBases::new(&settings)?;
        Ok(Upstreams {
            client,
            bases,
            private,
            settings,
            metrics,
        })
    }

    /// The public upstreams.
    pub fn bases(&self) -> &[UpstreamBase] {
        &self.bases
    }

    /// Where `module`'s artifacts are fetched from.
    pub fn route(&self, module: &str) -> Route<'_> {
        self.private.route(module, &self.bases)
    }

    /// Fetches `path` (an escaped GOPROXY path such as `rsc.io/quote/@v/list`) of
    /// `module` from its route's upstreams in order. `consume` reads and validates a
    /// 200 response's body; it is called again for every retry, so it must start
    /// from scratch each time.
    ///
    /// Per upstream: 404/410 moves on at once; network errors, 5xx and 429 are retried
    /// with exponential backoff and jitter (honouring Retry-After), then the next
    /// upstream is tried; a body that fails validation or any other status moves on
    /// without retrying. The final error is `NotFound` if any upstream said so,
    /// `Unavailable` otherwise.
    pub async fn fetch<T, F, Fut>(
        &self,
        module: &str,
        path: &str,
        consume: F,
    ) -> Result<Fetched<T>, UpstreamError>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: Future<Output = Result<T, BodyError>>,
    {
        let settings = &self.settings;
        let consume = &consume;
        self.fetch_with(module, path, |endpoint| async move {
            attempt::run(&endpoint, settings, consume).await
        })
        .await
    }

    /// Like [`fetch`](Self::fetch), but each attempt is the caller's own
    /// request sequence (e.g. ranged requests over several connections) to the
    /// given endpoint of one upstream. The routing, the retry policy, the
    /// fallback order and the final answer are the same.
    pub async fn fetch_with<T, F, Fut>(
        &self,
        module: &str,
        path: &str,
        attempt: F,
    ) -> Result<Fetched<T>, UpstreamError>
    where
        F: Fn(Endpoint) -> Fut,
        Fut: Future<Output = Result<(T, Option<String>), AttemptError>>,
    {
        let bases = match self.route(module) {
            Route::Private(base) => std::slice::from_ref(base),
            Route::Public(bases) => bases,
            Route::Refused => {
                return Err(UpstreamError::Private {
                    module: module.to_owned(),
                });
            }
        };
        let mut failures = Vec::new();
        let mut not_found = false;
        for base in bases {
            let url = base.join(path);
            let endpoint = Endpoint {
                client: self.client.clone(),
                url: url.clone(),
                credential: base.credential.clone(),
            };
            let started = std::time::Instant::now();
            let result = self
                .retrying(&url, &base.display, || attempt(endpoint.clone()))
                .await;
            self.metrics
                .upstream_fetch(&base.display, outcome_of(&result), started.elapsed());
            match result {
                Ok((value, etag)) => {
                    return Ok(Fetched {
                        value,
                        upstream: base.display.clone(),
                        etag,
                    });
                }
                Err(UrlError::NotFound(status)) => {
                    tracing::debug!(upstream = %base.display, path, status, "not found upstream");
                    not_found = true;
                    failures.push(UpstreamFailure {
                        upstream: base.display.clone(),
                        reason: format!("{status} not found"),
                        not_found: true,
                    });
                }
                // The disk (or another local resource) failed: no upstream can fix
                // that, and downloading the artifact again elsewhere only wastes time.
                Err(UrlError::Local(reason)) => return Err(UpstreamError::Local(reason)),
                Err(err) => {
                    tracing::warn!(upstream = %base.display, path, error = %err, "upstream failed");
                    failures.push(UpstreamFailure {
                        upstream: base.display.clone(),
                        reason: err.to_string(),
                        not_found: false,
                    });
                }
            }
        }
        if not_found {
            Err(UpstreamError::NotFound { failures })
        } else {
            Err(UpstreamError::Unavailable { failures })
        }
    }

    /// Fetches one URL with the retry policy: network errors, 5xx and 429 are
    /// retried with exponential backoff and jitter (honouring Retry-After).
    /// `label` names the server in logs (never a URL with credentials).
    pub async fn fetch_url<T, F, Fut>(
        &self,
        url: &Url,
        label: &str,
        consume: &F,
    ) -> Result<(T, Option<String>), UrlError>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: Future<Output = Result<T, BodyError>>,
    {
        let endpoint = Endpoint {
            client: self.client.clone(),
            url: url.clone(),
            credential: None,
        };
        let attempt = || attempt::run(&endpoint, &self.settings, consume);
        let started = std::time::Instant::now();
        let result = self.retrying(url, label, attempt).await;
        self.metrics
            .upstream_fetch(label, outcome_of(&result), started.elapsed());
        result
    }

    /// Runs `attempt` with the retry policy.
    async fn retrying<T, A, Fut>(&self, url: &Url, label: &str, attempt: A) -> Result<T, UrlError>
    where
        A: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.settings.retry_backoff)
            .with_max_delay(
                self.settings
                    .retry_backoff
                    .saturating_mul(32)
                    .max(Duration::from_secs(1)),
            )
            .with_max_times(self.settings.retry_attempts.saturating_sub(1) as usize)
            .with_jitter();
        attempt
            .retry(backoff)
            .when(AttemptError::is_transient)
            .adjust(|err, delay| match (err.retry_after(), delay) {
                (_, None) => None,
                (Some(wait), Some(_)) if wait > MAX_RETRY_AFTER => None,
                (Some(wait), Some(_)) => Some(wait),
                (None, Some(d)) => Some(d),
            })
            .notify(|err, delay| {
                tracing::warn!(upstream = %label, path = url.path(), error = %err, retry_in = ?delay, "upstream attempt failed, retrying");
            })
            .await
            .map_err(|err| match err {
                AttemptError::NotFound(status) => UrlError::NotFound(status),
                AttemptError::Local(reason) => UrlError::Local(reason),
                other => UrlError::Failed(other.to_string()),
            })
    }

    /// Counters shared with the rest of the server.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The shared HTTP client (pooled, with the configured timeouts).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// How one upstream's fetch ended, for the metrics.
fn outcome_of<T>(result: &Result<T, UrlError>) -> UpstreamResult {
    match result {
        Ok(_) => UpstreamResult::Ok,
        Err(UrlError::NotFound(_)) => UpstreamResult::NotFound,
        Err(_) => UpstreamResult::Error,
    }
}
