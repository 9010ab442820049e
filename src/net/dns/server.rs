//! The `dns` setting: which DNS server resolves upstream host names, and how
//! to talk to it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use url::Url;

use crate::config::redact_url;

/// How queries reach the DNS server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Plain DNS over UDP, retried over TCP when an answer is truncated.
    Udp,
    /// Plain DNS over TCP only.
    Tcp,
    /// DNS over TLS (RFC 7858).
    Tls,
    /// DNS over QUIC (RFC 9250).
    Quic,
    /// DNS over HTTPS.
    Https(DohFormat),
}

/// What a DNS-over-HTTPS server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DohFormat {
    /// RFC 8484 `application/dns-message`.
    Wire,
    /// The JSON API (`application/dns-json`) of Google, Cloudflare and others.
    Json,
}

/// A validated `dns` value. `Display` gives the canonical form, credentials hidden.
#[derive(Clone, PartialEq, Eq)]
pub struct DnsServer {
    pub transport: Transport,
    /// An IP address or a host name, without brackets.
    pub host: String,
    pub port: u16,
    /// DNS over HTTPS only: the endpoint, without the `#json` marker.
    pub url: Option<Url>,
}

pub const EXPECTED_DNS: &str = "expected system, an IP address (8.8.8.8, 8.8.8.8:53, \
     [2001:4860:4860::8888]:53), udp://host[:53], tcp://host[:53], tls://host[:853], \
     quic://host[:853] or https://host/dns-query (https://host/path#json for the JSON API)";

impl DnsServer {
    /// `system` (the operating system's resolver) gives None.
    pub fn parse(text: &str) -> Result<Option<DnsServer>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("system") {
            return Ok(None);
        }
        if text.is_empty() {
            return Err("no DNS server given".to_owned());
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return bare_address(text).map(Some);
        };
        let (transport, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "udp" => (Transport::Udp, 53),
            "tcp" => (Transport::Tcp, 53),
            "tls" => (Transport::Tls, 853),
            "quic" => (Transport::Quic, 853),
            "https" => return https(text).map(Some),
            other => return Err(format!("scheme {other:?} is not supported")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err("only host and port are allowed after the scheme".to_owned());
        }
        let (host, port) = host_port(rest, default_port)?;
        Ok(Some(DnsServer {
            transport,
            host,
            port,
            url: None,
        }))
    }

    /// The server's address when `host` is an IP address (no bootstrap needed).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl fmt::Display for DnsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Quic => "quic",
            Transport::Https(format) => {
                let url = self.url.as_ref().map(redact_url).unwrap_or_default();
                let marker = if format == DohFormat::Json {
                    "#json"
                } else {
                    ""
                };
                return write!(f, "{url}{marker}");
            }
        };
        match self.ip() {
            Some(IpAddr::V6(ip)) => write!(f, "{scheme}://[{ip}]:{}", self.port),
            _ => write!(f, "{scheme}://{}:{}", self.host, self.port),
        }
    }
}

impl fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DnsServer({self})")
    }
}

/// `8.8.8.8`, `8.8.8.8:53`, `2001:db8::1` or `[2001:db8::1]:53`: plain DNS.
fn bare_address(text: &str) -> Result<DnsServer, String> {
    let (ip, port) = if let Ok(addr) = text.parse::<SocketAddr>() {
        (addr.ip(), addr.port())
    } else if let Ok(ip) = text.trim_start_matches('[').trim_end_matches(']').parse() {
        (ip, 53)
    } else {
        return Err(
            "a host name needs a scheme, e.g. udp://dns.corp.example or tls://dns.google"
                .to_owned(),
        );
    };
    if port == 0 {
        return Err("port 0 is not a DNS server's port".to_owned());
    }
    Ok(DnsServer {
        transport: Transport::Udp,
        host: ip.to_string(),
        port,
        url: None,
    })
}

fn host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed [ in the address".to_owned())?;
        ip.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{ip:?} is not an IPv6 address"))?;
        match after {
            "" => (ip, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (ip, Some(port)),
                None => return Err("expected :port after the IPv6 address".to_owned()),
            },
        }
    } else if text.matches(':').count() > 1 {
        return Err("write an IPv6 address in brackets, e.g. [2001:db8::1]:53".to_owned());
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("it has no host".to_owned());
    }
    if host.parse::<IpAddr>().is_err() && !is_host_name(host) {
        return Err(format!("{host:?} is not a host name or IP address"));
    }
    let port = match port {
        None => default_port,
        Some(port) => match port.parse::<u16>() {
            Ok(number) if number > 0 && port.bytes().all(|b| b.is_ascii_digit()) => number,
            _ => return Err(format!("invalid port {port:?}")),
        },
    };
    Ok((host.to_ascii_lowercase(), port))
}

fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn https(text: &str) -> Result<DnsServer, String> {
    let mut url = Url::parse(text).map_err(|e| e.to_string())?;
    let format = match url.fragment() {
        None | Some("") => DohFormat::Wire,
        Some(marker) if marker.eq_ignore_ascii_case("json") => DohFormat::Json,
        Some(other) => {
            return Err(format!(
                "unknown marker #{other} (only #json, for the JSON API, is known)"
            ));
        }
    };
    url.set_fragment(None);
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials are not supported in a DNS server URL".to_owned());
    }
    let host = match url.host() {
        Some(url::Host::Domain(name)) => name.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err("it has no host".to_owned()),
    };
    if url.path() == "/" {
        // RFC 8484's well-known endpoint.
        url.set_path("/dns-query");
    }
    let port = url.port_or_known_default().unwrap_or(443);
    Ok(DnsServer {
        transport: Transport::Https(format),
        host,
        port,
        url: Some(url),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        DnsServer::parse(text).unwrap().unwrap().to_string()
    }

    #[test]
    fn accepted_forms() {
        let cases = [
            ("8.8.8.8", "udp://8.8.8.8:53"),
            ("8.8.8.8:5353", "udp://8.8.8.8:5353"),
            ("2001:4860:4860::8888", "udp://[2001:4860:4860::8888]:53"),
            (
                "[2001:4860:4860::8888]:54",
                "udp://[2001:4860:4860::8888]:54",
            ),
            ("udp://127.0.0.1:5300", "udp://127.0.0.1:5300"),
            ("UDP://dns.corp.example", "udp://dns.corp.example:53"),
            ("tcp://[::1]", "tcp://[::1]:53"),
            ("tls://dns.google", "tls://dns.google:853"),
            ("tls://1.1.1.1:8853/", "tls://1.1.1.1:8853"),
            (
                "quic://dns.adguard-dns.com",
                "quic://dns.adguard-dns.com:853",
            ),
            ("https://dns.google", "https://dns.google/dns-query"),
            (
                "https://cloudflare-dns.com:8443/dns-query",
                "https://cloudflare-dns.com:8443/dns-query",
            ),
            (
                "https://dns.google/resolve#json",
                "https://dns.google/resolve#json",
            ),
            (
                "https://[::1]:444/q?ct=x#JSON",
                "https://[::1]:444/q?ct=x#json",
            ),
        ];
        for (given, want) in cases {
            assert_eq!(shown(given), want, "{given}");
        }
        assert_eq!(DnsServer::parse(" System ").unwrap(), None);

        let doh = DnsServer::parse("https://dns.google/resolve#json")
            .unwrap()
            .unwrap();
        assert_eq!(doh.transport, Transport::Https(DohFormat::Json));
        assert_eq!(doh.url.unwrap().as_str(), "https://dns.google/resolve");
        assert_eq!(doh.port, 443);
        let ip = DnsServer::parse("tls://[::1]:853").unwrap().unwrap();
        assert_eq!(ip.ip(), Some("::1".parse().unwrap()));
        assert_eq!(ip.host, "::1");
        let named = DnsServer::parse("quic://Dns.Example").unwrap().unwrap();
        assert_eq!((named.ip(), named.host.as_str()), (None, "dns.example"));
    }

    #[test]
    fn rejected_forms() {
        let cases = [
            ("dns.google", "a host name needs a scheme"),
            ("8.8.8.8:0", "port 0"),
            ("ftp://dns.example", "scheme \"ftp\" is not supported"),
            ("h3://dns.example", "scheme \"h3\" is not supported"),
            ("tls://dns.google:99999", "invalid port \"99999\""),
            ("tls://dns.google:dot", "invalid port \"dot\""),
            ("udp://", "it has no host"),
            ("udp://2001:db8::1", "write an IPv6 address in brackets"),
            ("tcp://dns.example/path", "only host and port"),
            ("tls://bad_name!", "is not a host name"),
            ("tls://300.1.1.1", "is not a host name"),
            ("https://dns.google/q#xml", "unknown marker #xml"),
            (
                "https://u:p@dns.example/dns-query",
                "credentials are not supported",
            ),
            ("https://:443/dns-query", "empty host"),
        ];
        for (given, want) in cases {
            let error = DnsServer::parse(given).unwrap_err();
            assert!(error.contains(want), "{given}: {error}");
        }
    }
}
