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

#[derive(Debug)]
pub(super) enum AttemptError {
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
    pub(super) fn is_transient(&self) -> bool {
        matches!(self, AttemptError::Transient { .. })
    }

    pub(super) fn retry_after(&self) -> Option<Duration> {
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

pub(super) async fn run<T, F, Fut>(
    client: &reqwest::Client,
    settings: &Settings,
    url: &Url,
    credential: Option<&Credential>,
    consume: &F,
) -> Result<(T, Option<String>), AttemptError>
where
    F: Fn(reqwest::Response) -> Fut,
    Fut: Future<Output = Result<T, BodyError>>,
{
    let mut request = client.get(url.clone());
    if let Some(credential) = credential {
        request = request.header(credential.name.clone(), credential.value.clone());
    }
    let mut response = send(settings, request).await?;
    // The client stops at a redirect that leaves a credentialed upstream's
    // origin (see `client::build_client`); it is followed here, without the
    // credential: a header of our own would otherwise travel along to, say, the
    // object store that serves the upstream's zips.
    if response.status().is_redirection() && response.headers().contains_key(LOCATION) {
        let next = redirect_target(&response)?;
        tracing::debug!(
            from = response.url().path(),
            to_host = next.host_str().unwrap_or(""),
            "following a redirect off a private upstream without its credentials"
        );
        response = send(settings, client.get(next)).await?;
    }
    let status = response.status();
    match status {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND | StatusCode::GONE => {
            return Err(AttemptError::NotFound(status.as_u16()));
        }
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            let retry_after = parse_retry_after(response.headers().get(RETRY_AFTER));
            return Err(AttemptError::Transient {
                reason: format!("status {s}"),
                retry_after,
            });
        }
        s => return Err(AttemptError::Fatal(format!("unexpected status {s}"))),
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
