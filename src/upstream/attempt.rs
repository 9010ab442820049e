//! One request to one upstream, and how its outcome is classified for retrying.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{ETAG, LOCATION, RETRY_AFTER};
use url::Url;

use super::Credential;
use crate::config::Settings;

/// How reading a 200 response's body went wrong.
#[derive(Debug)]
pub enum BodyError {
    /// The connection broke or stalled: worth retrying.
    Transient(String),
    /// The content is not acceptable (validation failed): try the next upstream.
    Invalid(String),
    /// A local failure (disk) that no other upstream can fix.
    Local(String),
}

/// How one attempt at one upstream failed; decides whether it is retried.
#[derive(Debug)]
pub enum AttemptError {
    NotFound(u16),
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    Fatal(String),
    /// A local failure (e.g. the disk): no other attempt or upstream can help.
    Local(String),
}

impl AttemptError {
    pub fn is_transient(&self) -> bool {
        matches!(self, AttemptError::Transient { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::NotFound(status) => write!(f, "{status} not found"),
            AttemptError::Transient { reason, .. }
            | AttemptError::Fatal(reason)
            | AttemptError::Local(reason) => f.write_str(reason),
        }
    }
}

/// One upstream URL to make requests to: the shared client, and the
/// upstream's credential for every request.
#[derive(Clone)]
pub struct Endpoint {
    pub client: reqwest::Client,
    pub url: Url,
    pub credential: Option<Credential>,
}

impl Endpoint {
    /// A GET of the URL with `headers` (and the credential), within the header
    /// timeout. A redirect that the client stopped at because it leaves a
    /// credentialed upstream's origin is followed here, without the credential:
    /// a header of our own would otherwise travel along to, say, the object
    /// store that serves the upstream's zips.
    pub async fn get(
        &self,
        settings: &Settings,
        headers: reqwest::header::HeaderMap,
    ) -> Result<reqwest::Response, AttemptError> {
        let mut request = self.client.get(self.url.clone()).headers(headers.clone());
        if let Some(credential) = &self.credential {
            request = request.header(credential.name.clone(), credential.value.clone());
        }
        let response = send(settings, request).await?;
        if response.status().is_redirection() && response.headers().contains_key(LOCATION) {
            let next = redirect_target(&response)?;
            tracing::debug!(
                from = response.url().path(),
                to_host = next.host_str().unwrap_or(""),
                "following a redirect off a private upstream without its credentials"
            );
            return send(settings, self.client.get(next).headers(headers)).await;
        }
        Ok(response)
    }
}

pub(super) async fn run<T, F, Fut>(
    endpoint: &Endpoint,
    settings: &Settings,
    consume: &F,
) -> Result<(T, Option<String>), AttemptError>
where
    F: Fn(reqwest::Response) -> Fut,
    Fut: Future<Output = Result<T, BodyError>>,
{
    let response = endpoint
        .get(settings, reqwest::header::HeaderMap::new())
        .await?;
    if response.status() != StatusCode::OK {
        return Err(classify_status(&response));
    }
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match consume(response).await {
        Ok(value) => Ok((value, etag)),
        Err(BodyError::Transient(reason)) => Err(AttemptError::Transient {
            reason,
            retry_after: None,
        }),
        Err(BodyError::Invalid(reason)) => {
            Err(AttemptError::Fatal(format!("invalid response: {reason}")))
        }
        Err(BodyError::Local(reason)) => Err(AttemptError::Local(reason)),
    }
}

/// The error for a response whose status is not the one wanted: 404/410 are
/// "not found", 5xx and 429 are retried (honouring Retry-After), the rest is final.
pub fn classify_status(response: &reqwest::Response) -> AttemptError {
    match response.status() {
        s @ (StatusCode::NOT_FOUND | StatusCode::GONE) => AttemptError::NotFound(s.as_u16()),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => AttemptError::Transient {
            reason: format!("status {s}"),
            retry_after: parse_retry_after(response.headers().get(RETRY_AFTER)),
        },
        s => AttemptError::Fatal(format!("unexpected status {s}")),
    }
}

/// Sends one request, waiting at most `upstream_header_timeout` for the headers.
async fn send(
    settings: &Settings,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, AttemptError> {
    match tokio::time::timeout(settings.upstream_header_timeout, request.send()).await {
        Err(_) => Err(AttemptError::Transient {
            reason: format!(
                "no response headers within {:?}",
                settings.upstream_header_timeout
            ),
            retry_after: None,
        }),
        Ok(Err(e)) => Err(AttemptError::Transient {
            reason: describe_reqwest_error(&e),
            retry_after: None,
        }),
        Ok(Ok(response)) => Ok(response),
    }
}

/// Where a redirect points, refusing a step down from https to http as the
/// client does for the redirects it follows itself.
fn redirect_target(response: &reqwest::Response) -> Result<Url, AttemptError> {
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AttemptError::Fatal("redirect with an unreadable Location".to_owned()))?;
    let next = response
        .url()
        .join(location)
        .map_err(|e| AttemptError::Fatal(format!("redirect to an invalid location: {e}")))?;
    if response.url().scheme() == "https" && next.scheme() != "https" {
        return Err(AttemptError::Fatal(
            "refusing redirect from https to http".to_owned(),
        ));
    }
    Ok(next)
}

/// reqwest's Display includes the URL, which may carry credentials; describe the
/// failure by kind instead, with the innermost cause.
pub fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else if e.is_body() || e.is_decode() {
        "body read failed"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    match last {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_owned(),
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(text).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("3"))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("soon"))),
            None
        );
        assert_eq!(parse_retry_after(None), None);
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60));
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_str(&past).unwrap())),
            Some(Duration::ZERO)
        );
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let got = parse_retry_after(Some(&HeaderValue::from_str(&future).unwrap())).unwrap();
        assert!(got > Duration::from_secs(100) && got <= Duration::from_secs(120));
    }
}
