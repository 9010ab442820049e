//! The one pooled HTTP client used for every upstream request.

use crate::config::Settings;

use super::UpstreamError;
use super::private::RedirectGuard;

pub fn build_client(settings: &Settings) -> Result<reqwest::Client, UpstreamError> {
    let guard = RedirectGuard::new(settings);
    // Like the go command, refuse to follow a redirect from https to http: it would
    // silently drop transport security for module content.
    let redirect = reqwest::redirect::Policy::custom(move |attempt| {
        if guard.stops(attempt.previous(), attempt.url()) {
            return attempt.stop();
        }
        let downgrade = attempt.url().scheme() == "http"
            && attempt
                .previous()
                .last()
                .is_some_and(|prev| prev.scheme() == "https");
        if downgrade {
            attempt.error("refusing redirect from https to http")
        } else if attempt.previous().len() >= 10 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .user_agent(concat!("goproxy/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(settings.upstream_connect_timeout)
        .read_timeout(settings.upstream_idle_timeout)
        .timeout(settings.upstream_timeout)
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .pool_max_idle_per_host(32)
        .redirect(redirect)
        // Never let the environment's proxy variables change where module traffic goes
        // behind the operator's back; outbound proxies are explicit settings.
        .no_proxy()
        .build()
        .map_err(|e| UpstreamError::Client(e.to_string()))
}
