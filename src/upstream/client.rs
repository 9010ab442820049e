//! The HTTP clients for outbound traffic: the one pooled client used for every
//! upstream and checksum-database request, and the small one a DNS-over-HTTPS
//! resolver sends its queries through. Both go through the configured outbound
//! proxy and trust the same extra CAs; only the first uses the custom resolver.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::Settings;
use crate::net::ca;
use crate::net::dns::{DnsServer, Resolver, Transport};

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
    let mut connect_timeout = settings.upstream_connect_timeout;
    let mut builder = outbound(settings, upstream_roots(settings))?
        .read_timeout(settings.upstream_idle_timeout)
        .timeout(settings.upstream_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(32)
        .redirect(redirect);
    if let Some(server) = &settings.dns {
        builder = builder.dns_resolver(resolver(settings, server)?);
        // reqwest's connect timeout covers the lookup too; the lookup has its
        // own deadline, so a slow DNS server is reported as such rather than
        // as a connect timeout.
        connect_timeout += settings.dns_timeout;
    }
    builder
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|e| UpstreamError::Client(e.to_string()))
}

/// What every outbound client shares: the user agent, the outbound proxy
/// (never the process environment implicitly: `config` resolved it) and the
/// extra trusted CAs.
fn outbound(
    settings: &Settings,
    roots: Vec<reqwest::Certificate>,
) -> Result<reqwest::ClientBuilder, UpstreamError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("goproxy/", env!("CARGO_PKG_VERSION")))
        .no_proxy();
    let proxies = settings
        .proxy
        .reqwest_proxies(&settings.no_proxy)
        .map_err(UpstreamError::Client)?;
    for proxy in proxies {
        builder = builder.proxy(proxy);
    }
    if !roots.is_empty() {
        builder = builder.tls_certs_merge(roots);
    }
    Ok(builder)
}

fn upstream_roots(settings: &Settings) -> Vec<reqwest::Certificate> {
    settings
        .upstream_ca_file
        .iter()
        .flat_map(|ca| ca.reqwest_certs())
        .collect()
}

/// DNS servers are trusted through `dns_ca_file` as well as `upstream_ca_file`.
fn dns_roots(settings: &Settings) -> impl Iterator<Item = &ca::CaFile> {
    settings
        .upstream_ca_file
        .iter()
        .chain(settings.dns_ca_file.iter())
}

fn resolver(settings: &Settings, server: &DnsServer) -> Result<Resolver, UpstreamError> {
    if let Transport::Https(_) = server.transport {
        return Ok(Resolver::doh(
            server,
            doh_client(settings, server)?,
            settings.dns_timeout,
        ));
    }
    let tls = ca::client_config(dns_roots(settings).flat_map(|ca| ca.certs().iter().cloned()))
        .map_err(|e| UpstreamError::Client(format!("DNS server {server}: {e}")))?;
    Ok(Resolver::hickory(
        server,
        settings.dns_bootstrap.clone(),
        settings.dns_timeout,
        tls,
    ))
}

/// The client a DNS-over-HTTPS resolver queries through: the outbound proxy
/// applies, and the server's own name comes from `dns_bootstrap` or the system
/// resolver.
fn doh_client(settings: &Settings, server: &DnsServer) -> Result<reqwest::Client, UpstreamError> {
    let roots = dns_roots(settings)
        .flat_map(|ca| ca.reqwest_certs())
        .collect();
    let mut builder = outbound(settings, roots)?
        .https_only(true)
        .connect_timeout(settings.dns_timeout)
        .timeout(settings.dns_timeout)
        .pool_idle_timeout(Duration::from_secs(90));
    if server.ip().is_none() && !settings.dns_bootstrap.is_empty() {
        let addrs: Vec<SocketAddr> = settings
            .dns_bootstrap
            .iter()
            .map(|ip| SocketAddr::new(*ip, server.port))
            .collect();
        builder = builder.resolve_to_addrs(&server.host, &addrs);
    }
    builder
        .build()
        .map_err(|e| UpstreamError::Client(format!("DNS server {server}: {e}")))
}
