//! `no_proxy`: hosts that are reached directly, whatever proxy is configured.

use std::fmt;
use std::net::IpAddr;

/// Hosts that are never reached through a proxy: names (matching the name and
/// its subdomains, with or without a leading `.` or `*.`), IP addresses, CIDR
/// ranges, or `*` for everything. The same rules as curl's `NO_PROXY`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy(Vec<String>);

pub const EXPECTED_NO_PROXY: &str = "expected comma-separated host names, .domains, IP addresses \
     or CIDR ranges, or * for all, e.g. localhost,.corp.example,10.0.0.0/8";

impl NoProxy {
    /// Blank entries are skipped; every other entry must be valid.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<NoProxy, String> {
        let mut out = Vec::new();
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            out.push(normalize_entry(entry).map_err(|reason| {
                format!("invalid no_proxy entry {entry:?} ({reason}; {EXPECTED_NO_PROXY})")
            })?);
        }
        Ok(NoProxy(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `host` (a name, an IP address, or a bracketed IPv6 address)
    /// bypasses the proxy.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip = host.parse::<IpAddr>().ok();
        self.0.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            if let Some(ip) = ip {
                return match entry.split_once('/') {
                    Some((net, bits)) => in_network(ip, net, bits),
                    None => entry.parse::<IpAddr>() == Ok(ip),
                };
            }
            let domain = entry.trim_start_matches('.');
            let host = host.trim_end_matches('.');
            host.eq_ignore_ascii_case(domain)
                || (host.len() > domain.len()
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                    && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain))
        })
    }

    pub(super) fn reqwest(&self) -> Option<reqwest::NoProxy> {
        if self.0.is_empty() {
            return None;
        }
        reqwest::NoProxy::from_string(&self.0.join(","))
    }
}

impl fmt::Display for NoProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

fn normalize_entry(entry: &str) -> Result<String, String> {
    if entry == "*" {
        return Ok(entry.to_owned());
    }
    if entry.contains("://") {
        return Err("a URL is not allowed, only the host".to_owned());
    }
    let unbracketed = entry.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    if let Some((net, bits)) = entry.split_once('/') {
        let ip: IpAddr = net
            .parse()
            .map_err(|_| "not an IP address range".to_owned())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match bits.parse::<u8>() {
            Ok(bits) if bits <= max => return Ok(format!("{ip}/{bits}")),
            _ => return Err(format!("the prefix length must be 0–{max}")),
        }
    }
    // `*.corp.example` is a common spelling of `.corp.example`.
    let domain = entry.strip_prefix("*.").map_or(entry, |rest| rest);
    let bare = domain.trim_start_matches('.');
    if bare.contains(':') {
        return Err("ports are not supported".to_owned());
    }
    let valid = !bare.is_empty()
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err("not a host name".to_owned());
    }
    Ok(format!(".{}", bare.to_ascii_lowercase()))
}

fn in_network(ip: IpAddr, net: &str, bits: &str) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_entries() {
        let np = NoProxy::parse(
            " localhost, *.corp.example,.svc , 10.0.0.0/8,[::1], 192.168.1.7 ,,".split(','),
        )
        .unwrap();
        assert_eq!(
            np.to_string(),
            ".localhost,.corp.example,.svc,10.0.0.0/8,::1,192.168.1.7"
        );
        for host in [
            "localhost",
            "corp.example",
            "git.corp.example",
            "a.b.svc",
            "10.1.2.3",
            "[::1]",
            "192.168.1.7",
            "LOCALHOST",
        ] {
            assert!(np.matches(host), "{host}");
        }
        for host in [
            "notcorp.example",
            "example",
            "11.0.0.1",
            "192.168.1.8",
            "::2",
        ] {
            assert!(!np.matches(host), "{host}");
        }
        assert!(NoProxy::parse(["*"]).unwrap().matches("anything.example"));
        for (bad, reason) in [
            ("proxy.corp:3128", "ports are not supported"),
            ("http://x.example", "a URL is not allowed"),
            ("10.0.0.0/33", "prefix length must be 0–32"),
            ("a..b", "not a host name"),
        ] {
            let error = NoProxy::parse([bad]).unwrap_err();
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }
}
