//! Plain DNS (UDP, TCP), DNS over TLS and DNS over QUIC through
//! hickory-resolver. Hickory addresses a name server by IP, so a server given
//! by name is first looked up ("bootstrapped") through `dns_bootstrap` or the
//! system resolver, on first use rather than at startup so a proxy that boots
//! before the network is up still starts.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use tokio::sync::OnceCell;

use super::server::{DnsServer, Transport};
use super::{Answer, LookupError};

pub(super) struct HickoryBackend {
    server: DnsServer,
    bootstrap: Vec<IpAddr>,
    timeout: Duration,
    tls: rustls::ClientConfig,
    resolver: OnceCell<TokioResolver>,
}

impl HickoryBackend {
    pub(super) fn new(
        server: DnsServer,
        bootstrap: Vec<IpAddr>,
        timeout: Duration,
        tls: rustls::ClientConfig,
    ) -> Self {
        HickoryBackend {
            server,
            bootstrap,
            timeout,
            tls,
            resolver: OnceCell::new(),
        }
    }

    pub(super) async fn lookup(&self, host: &str) -> Result<Answer, LookupError> {
        let resolver = self
            .resolver
            .get_or_try_init(|| self.build())
            .await
            .map_err(LookupError::Other)?;
        match resolver.lookup_ip(format!("{host}.")).await {
            Ok(lookup) => {
                let ttl = lookup
                    .valid_until()
                    .saturating_duration_since(Instant::now());
                Ok(Answer {
                    addrs: lookup.iter().collect(),
                    ttl,
                })
            }
            Err(e) if e.is_no_records_found() => Err(LookupError::NoRecords),
            // Hickory only logs why every connection failed; say what to check.
            Err(NetError::NoConnections) => Err(LookupError::Other(match self.server.transport {
                Transport::Tls | Transport::Quic => "cannot connect (check the address and port, \
                    and that the server's certificate is trusted: see dns_ca_file)"
                    .to_owned(),
                _ => "cannot connect (check the address and port)".to_owned(),
            })),
            Err(e) => Err(LookupError::Other(e.to_string())),
        }
    }

    async fn build(&self) -> Result<TokioResolver, String> {
        let ips = self.server_addresses().await?;
        let server_name: Arc<str> = Arc::from(self.server.host.as_str());
        let name_servers = ips
            .into_iter()
            .map(|ip| {
                let mut connections = match self.server.transport {
                    // Plain DNS falls back to TCP for truncated answers.
                    Transport::Udp => vec![ConnectionConfig::udp(), ConnectionConfig::tcp()],
                    Transport::Tcp => vec![ConnectionConfig::tcp()],
                    Transport::Tls => vec![ConnectionConfig::tls(Arc::clone(&server_name))],
                    Transport::Quic => vec![ConnectionConfig::quic(Arc::clone(&server_name))],
                    Transport::Https(_) => unreachable!("DNS over HTTPS has its own backend"),
                };
                for connection in &mut connections {
                    connection.port = self.server.port;
                }
                NameServerConfig::new(ip, true, connections)
            })
            .collect();
        let mut options = ResolverOpts::default();
        // Two tries within the lookup deadline, so one lost UDP packet is survived.
        options.timeout = (self.timeout / 2).max(Duration::from_millis(100));
        options.attempts = 1;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // Our cache sits in front of every transport; /etc/hosts is the system
        // resolver's business, not the configured server's.
        options.cache_size = 0;
        options.use_hosts_file = ResolveHosts::Never;
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        )
        .with_options(options)
        .with_tls_config(self.tls.clone())
        .build()
        .map_err(|e| format!("cannot set up the resolver: {e}"))
    }

    /// The server's IP addresses: its literal address, the bootstrap
    /// addresses, or what the system resolver says its name is.
    async fn server_addresses(&self) -> Result<Vec<IpAddr>, String> {
        if let Some(ip) = self.server.ip() {
            return Ok(vec![ip]);
        }
        if !self.bootstrap.is_empty() {
            return Ok(self.bootstrap.clone());
        }
        let host = self.server.host.as_str();
        let found = tokio::time::timeout(
            self.timeout,
            tokio::net::lookup_host((host, self.server.port)),
        )
        .await
        .map_err(|_| {
            format!(
                "the system resolver did not find the address of {host} in {:?} (set dns_bootstrap)",
                self.timeout
            )
        })?
        .map_err(|e| {
            format!("the system resolver cannot find the address of {host}: {e} (set dns_bootstrap)")
        })?;
        let mut ips: Vec<IpAddr> = Vec::new();
        for addr in found {
            if !ips.contains(&addr.ip()) {
                ips.push(addr.ip());
            }
        }
        if ips.is_empty() {
            return Err(format!(
                "the system resolver has no address for {host} (set dns_bootstrap)"
            ));
        }
        Ok(ips)
    }
}
