//! The custom DNS resolver (`dns` setting): every host name the proxy connects
//! to (upstreams, checksum databases, the outbound proxy's own name, targets of
//! a `socks5://` proxy) is looked up through it, over UDP, TCP, TLS, QUIC or
//! HTTPS. A and AAAA are asked together; answers are cached for their TTL; a
//! lookup has a deadline, and its failure names the server.

mod cache;
mod doh;
mod hickory;
mod server;

pub use server::{DnsServer, DohFormat, EXPECTED_DNS, Transport};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache::Cache;
use doh::DohBackend;
use hickory::HickoryBackend;

/// Why a lookup failed. The message always names the DNS server, so a failed
/// download says which resolver to look at.
#[derive(Clone, Debug, thiserror::Error)]
pub enum DnsError {
    #[error("DNS server {server} has no address (A or AAAA record) for {host}")]
    NoRecords { server: String, host: String },
    #[error("DNS server {server} did not answer for {host} within {after:?}")]
    Timeout {
        server: String,
        host: String,
        after: Duration,
    },
    #[error("DNS server {server} could not resolve {host}: {reason}")]
    Failed {
        server: String,
        host: String,
        reason: String,
    },
}

/// What a backend found: addresses and how long they may be kept.
struct Answer {
    addrs: Vec<IpAddr>,
    ttl: Duration,
}

enum LookupError {
    NoRecords,
    Other(String),
}

enum Backend {
    // Boxed: hickory's resolver state is large and lives as long as the proxy.
    Hickory(Box<HickoryBackend>),
    Doh(DohBackend),
}

struct Inner {
    /// The server as shown to people (canonical, without credentials).
    label: String,
    backend: Backend,
    cache: Cache,
    timeout: Duration,
}

/// A resolver for one DNS server; cheap to clone (clones share the cache).
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

impl Resolver {
    /// A resolver for plain DNS, DNS over TLS or DNS over QUIC. `tls` holds
    /// the trust roots for TLS and QUIC; `bootstrap` the server's addresses
    /// when it is given by name (empty: ask the system resolver).
    ///
    /// # Panics
    /// If `server` is DNS over HTTPS: use [`Resolver::doh`].
    pub fn hickory(
        server: &DnsServer,
        bootstrap: Vec<IpAddr>,
        timeout: Duration,
        tls: rustls::ClientConfig,
    ) -> Resolver {
        assert!(
            !matches!(server.transport, Transport::Https(_)),
            "DNS over HTTPS goes through Resolver::doh"
        );
        let backend = HickoryBackend::new(server.clone(), bootstrap, timeout, tls);
        Self::with_backend(server, Backend::Hickory(Box::new(backend)), timeout)
    }

    /// A resolver for DNS over HTTPS, sending its queries through `client`
    /// (which must not use this resolver).
    ///
    /// # Panics
    /// If `server` is not DNS over HTTPS.
    pub fn doh(server: &DnsServer, client: reqwest::Client, timeout: Duration) -> Resolver {
        let (Transport::Https(format), Some(url)) = (server.transport, &server.url) else {
            panic!("Resolver::doh needs a DNS-over-HTTPS server");
        };
        let backend = DohBackend::new(url.clone(), format, client);
        Self::with_backend(server, Backend::Doh(backend), timeout)
    }

    fn with_backend(server: &DnsServer, backend: Backend, timeout: Duration) -> Resolver {
        Resolver {
            inner: Arc::new(Inner {
                label: server.to_string(),
                backend,
                cache: Cache::default(),
                timeout,
            }),
        }
    }

    /// The addresses of `host`, IPv4 first (a SOCKS proxy is given only the
    /// first one, and IPv4 is what most networks route).
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let inner = &self.inner;
        // RFC 6761 names are answered here, whatever the transport, as hickory
        // does for the ones it serves: never sent to a server.
        if host == "localhost" || host.ends_with(".localhost") {
            return Ok(vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]);
        }
        if host == "invalid" || host.ends_with(".invalid") {
            return Err(DnsError::NoRecords {
                server: inner.label.clone(),
                host,
            });
        }
        if let Some(addrs) = inner.cache.get(&host, Instant::now()) {
            return Ok(addrs);
        }
        let lookup = async {
            match &inner.backend {
                Backend::Hickory(backend) => backend.lookup(&host).await,
                Backend::Doh(backend) => backend.lookup(&host).await,
            }
        };
        let server = || inner.label.clone();
        let answer = match tokio::time::timeout(inner.timeout, lookup).await {
            Err(_) => {
                return Err(DnsError::Timeout {
                    server: server(),
                    host,
                    after: inner.timeout,
                });
            }
            Ok(Err(LookupError::NoRecords)) => {
                return Err(DnsError::NoRecords {
                    server: server(),
                    host,
                });
            }
            Ok(Err(LookupError::Other(reason))) => {
                return Err(DnsError::Failed {
                    server: server(),
                    host,
                    reason,
                });
            }
            Ok(Ok(answer)) => answer,
        };
        let mut addrs = answer.addrs;
        if addrs.is_empty() {
            return Err(DnsError::NoRecords {
                server: server(),
                host,
            });
        }
        // Stable: the server's order is kept within each family.
        addrs.sort_by_key(IpAddr::is_ipv6);
        addrs.dedup();
        tracing::debug!(server = %inner.label, host, ?addrs, ttl = ?answer.ttl, "resolved");
        inner.cache.put(&host, &addrs, answer.ttl, Instant::now());
        Ok(addrs)
    }

    /// The DNS server, as shown to people.
    pub fn server(&self) -> &str {
        &self.inner.label
    }
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.clone();
        Box::pin(async move {
            let addrs = resolver.lookup(name.as_str()).await?;
            // Port 0: reqwest puts in the URL's port.
            let addrs: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
