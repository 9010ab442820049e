//! Parsing and printing of single setting values. The parsers take text as a
//! person typed it, so a file, an environment variable and a flag accept the
//! same forms and are rejected with the same words.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::{Key, LogFormat, ProgressMode};
use crate::gomod::pattern::PrefixPatterns;
use crate::net::ca::CaFile;
use crate::net::dns::{DnsServer, EXPECTED_DNS};
use crate::net::proxy::{EXPECTED_NO_PROXY, EXPECTED_PROXY, NoProxy, ProxySetting};
use crate::sumdb::config::{GoSumDb, ProxiedSumDb};

/// A rejected value: the part of the message after "<where it came from>: ".
#[derive(Debug)]
pub(super) struct Invalid(pub(super) String);

impl Invalid {
    fn new(what: &str, value: &str, expected: &str) -> Invalid {
        Invalid(format!(
            "invalid {what} {:?} ({expected})",
            redact_secrets(value)
        ))
    }

    /// For a file value of the wrong kind (a list, a boolean, a mapping),
    /// shown in the file's own notation.
    pub(super) fn wrong_kind(key: Key, shown: &str) -> Invalid {
        Invalid(format!(
            "invalid value {} ({})",
            redact_secrets(shown),
            expected(key)
        ))
    }
}

const EXPECT_DURATION: &str = "expected e.g. 100ms, 2s, 1m30s";
const EXPECT_TIMEOUT: &str = "expected a duration above zero, e.g. 10s, 1m30s";

/// What `key` accepts, worded for the end of an error message.
pub(super) fn expected(key: Key) -> &'static str {
    match key {
        Key::Port => "expected a port number 0–65535",
        Key::Listen => "expected host:port, e.g. 0.0.0.0:12345, 127.0.0.1:8080 or [::1]:8080",
        Key::CacheDir => "expected a directory path",
        Key::Upstreams => {
            "expected absolute http or https URLs without query or fragment, \
             comma-separated, e.g. https://proxy.golang.org"
        }
        Key::RetryAttempts => "expected a whole number ≥ 1",
        Key::RetryBackoff | Key::ListTtl | Key::NegativeTtl | Key::ShutdownTimeout => {
            EXPECT_DURATION
        }
        Key::UpstreamConnectTimeout
        | Key::UpstreamHeaderTimeout
        | Key::UpstreamIdleTimeout
        | Key::UpstreamTimeout => EXPECT_TIMEOUT,
        Key::LogFormat => "expected text or json",
        Key::LogLevel => "expected a level or tracing filter, e.g. info or goproxy=debug,warn",
        Key::Progress => "expected auto, bars, lines or off",
        Key::Gosumdb => {
            "expected off, sum.golang.org, a verifier key <name>+<hash>+<key>, \
             optionally followed by a URL"
        }
        Key::Gonosumdb | Key::Goprivate | Key::Gonoproxy => {
            "expected comma-separated module path patterns, e.g. *.corp.example.com,rsc.io/private"
        }
        Key::PrivateUpstreams => {
            "expected PATTERNS=URL entries separated by spaces, e.g. \
             *.corp.example.com=https://goproxy.corp.example.com, or in a config file \
             a list of mappings with pattern, url and optional auth"
        }
        Key::Netrc | Key::TlsCert | Key::TlsKey => "expected a file path",
        Key::AuthTokens => {
            "expected SHA-256 digests of tokens, sha256:<64 hex digits>, comma-separated \
             (goproxy auth hash --token prints one)"
        }
        Key::AuthUsers => {
            "expected name:hash entries separated by spaces, the hash an Argon2 PHC string \
             (goproxy auth hash prints one)"
        }
        Key::AuthRequire => {
            "expected all, private or comma-separated module path patterns \
             (e.g. github.com/acme,*.corp.example.com)"
        }
        Key::ProxiedSumdbs => {
            "expected comma-separated checksum database names, e.g. sum.golang.org"
        }
        Key::MaxCacheAge => "expected a duration, e.g. 720h or 30d (0s keeps everything)",
        Key::MaxCacheSize => "expected a size, e.g. 50GiB, 500MB or 1TB (0 means no limit)",
        Key::CleanupInterval => EXPECT_TIMEOUT,
        Key::DownloadConnections => {
            "expected a whole number from 1 to 64 (1 disables parallel downloads)"
        }
        Key::DownloadParallelThreshold => "expected a size, e.g. 512KiB or 4MiB",
        Key::MaxConcurrentDownloads => "expected a whole number (0 means no limit)",
        Key::Prefetch => "expected on or off",
        Key::MemoryCacheSize => {
            "expected a size, e.g. 32MiB or 256MB (0 turns the memory cache off)"
        }
        Key::Proxy => EXPECTED_PROXY,
        Key::NoProxy => EXPECTED_NO_PROXY,
        Key::Dns => EXPECTED_DNS,
        Key::DnsBootstrap => {
            "expected comma-separated IP addresses of the dns server, e.g. 8.8.8.8,2001:4860:4860::8888"
        }
        Key::DnsCaFile | Key::UpstreamCaFile => {
            "expected the path of a PEM file of CA certificates"
        }
        Key::DnsTimeout => EXPECT_TIMEOUT,
    }
}

pub(super) fn proxy(text: &str) -> Result<ProxySetting, Invalid> {
    ProxySetting::parse(text).map_err(Invalid)
}

pub(super) fn no_proxy<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<NoProxy, Invalid> {
    NoProxy::parse(entries).map_err(Invalid)
}

pub(super) fn dns(text: &str) -> Result<Option<DnsServer>, Invalid> {
    DnsServer::parse(text)
        .map_err(|reason| Invalid::new("DNS server", text, &format!("{reason}; {EXPECTED_DNS}")))
}

/// Blank items are dropped; at least one address must remain.
pub(super) fn dns_bootstrap<'a>(
    items: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<IpAddr>, Invalid> {
    let mut ips = Vec::new();
    for item in items.into_iter().map(str::trim).filter(|i| !i.is_empty()) {
        let ip = item
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| Invalid::new("IP address", item, expected(Key::DnsBootstrap)))?;
        ips.push(ip);
    }
    if ips.is_empty() {
        return Err(Invalid(format!(
            "no address given ({})",
            expected(Key::DnsBootstrap)
        )));
    }
    Ok(ips)
}

/// The file is read now, so a wrong path or a broken bundle stops startup
/// with the setting's name rather than failing the first TLS handshake.
pub(super) fn ca_file(key: Key, text: &str) -> Result<CaFile, Invalid> {
    let path = text.trim();
    if path.is_empty() {
        return Err(Invalid::new("value", text, expected(key)));
    }
    CaFile::load(std::path::Path::new(path))
        .map_err(|reason| Invalid::new("CA file", path, &format!("{reason}; {}", expected(key))))
}

pub(super) fn port(text: &str) -> Result<u16, Invalid> {
    whole_number(text.trim()).ok_or_else(|| Invalid::new("value", text, expected(Key::Port)))
}

/// Digits only: `from_str` would also take a leading `+`.
fn whole_number<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A validated `host:port`; an IPv6 host keeps its brackets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ListenAddr {
    host: String,
    port: u16,
}

impl ListenAddr {
    pub(super) fn with_port(&self, port: u16) -> String {
        format!("{}:{port}", self.host)
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

pub(super) fn listen(text: &str) -> Result<ListenAddr, Invalid> {
    parse_listen(text.trim()).ok_or_else(|| Invalid::new("value", text, expected(Key::Listen)))
}

fn parse_listen(text: &str) -> Option<ListenAddr> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (ip, port) = rest.split_once("]:")?;
            ip.parse::<Ipv6Addr>().ok()?;
            (format!("[{ip}]"), port)
        }
        None => {
            let (host, port) = text.rsplit_once(':')?;
            // Go writes "all interfaces" as ":8080"; std's bind wants a host.
            let host = if host.is_empty() { "0.0.0.0" } else { host };
            if !is_host(host) {
                return None;
            }
            (host.to_owned(), port)
        }
    };
    Some(ListenAddr {
        host,
        port: whole_number(port)?,
    })
}

fn is_host(host: &str) -> bool {
    if host.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    // Digits and dots that are no IPv4 address (e.g. 300.1.1.1) are a typo,
    // not a host name.
    let numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    !numeric
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

pub(super) fn file(key: Key, text: &str) -> Result<PathBuf, Invalid> {
    match text.trim() {
        "" => Err(Invalid::new("value", text, expected(key))),
        path => Ok(PathBuf::from(path)),
    }
}

pub(super) fn dir(text: &str) -> Result<PathBuf, Invalid> {
    match text.trim() {
        "" => Err(Invalid::new("value", text, expected(Key::CacheDir))),
        path => Ok(PathBuf::from(path)),
    }
}

/// A comma-separated list, as `--upstream`, `UPSTREAM_PROXY` and the old
/// project's config strings write it.
pub(super) fn upstream_list(text: &str) -> Result<Vec<Url>, Invalid> {
    upstreams(text.split(','))
}

/// Blank items are dropped, so `a, b,` and a list with an empty line work.
pub(super) fn upstreams<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Vec<Url>, Invalid> {
    let urls = items
        .into_iter()
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(upstream_url)
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err(Invalid(format!(
            "no upstream URL given ({})",
            expected(Key::Upstreams)
        )));
    }
    Ok(urls)
}

/// One upstream base URL: http or https, with a host, no query or fragment,
/// no trailing slash.
pub(super) fn upstream_url(item: &str) -> Result<Url, Invalid> {
    let fail = |reason: &str| {
        Invalid::new(
            "upstream URL",
            item,
            &format!("{reason}; {}", expected(Key::Upstreams)),
        )
    };
    let mut url = Url::parse(item).map_err(|error| fail(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(fail(&format!("scheme {:?} is not supported", url.scheme())));
    }
    if url.host().is_none() {
        return Err(fail("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(fail("a query or fragment is not allowed"));
    }
    // Request paths are appended as "/<module>/@v/…"; a trailing slash would
    // double it.
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

pub(super) fn attempts(text: &str) -> Result<u32, Invalid> {
    match whole_number(text.trim()) {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(Invalid::new("value", text, expected(Key::RetryAttempts))),
    }
}

/// More connections than this buys nothing from one server and looks like abuse.
const MAX_DOWNLOAD_CONNECTIONS: u32 = 64;

pub(super) fn connections(text: &str) -> Result<u32, Invalid> {
    match whole_number(text.trim()) {
        Some(n) if (1..=MAX_DOWNLOAD_CONNECTIONS).contains(&n) => Ok(n),
        _ => Err(Invalid::new(
            "value",
            text,
            expected(Key::DownloadConnections),
        )),
    }
}

pub(super) fn download_limit(text: &str) -> Result<u32, Invalid> {
    whole_number(text.trim())
        .ok_or_else(|| Invalid::new("value", text, expected(Key::MaxConcurrentDownloads)))
}

pub(super) fn threshold(text: &str) -> Result<u64, Invalid> {
    size(text)
        .map(|s| s.unwrap_or(0))
        .map_err(|_| Invalid::new("size", text, expected(Key::DownloadParallelThreshold)))
}

pub(super) fn duration(text: &str) -> Result<Duration, Invalid> {
    parse_go_duration(text).ok_or_else(|| Invalid::new("duration", text, EXPECT_DURATION))
}

/// A duration that must not be zero: a zero timeout would fail every request.
pub(super) fn timeout(text: &str) -> Result<Duration, Invalid> {
    match parse_go_duration(text) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(Invalid::new("duration", text, EXPECT_TIMEOUT)),
    }
}

/// Go's `time.ParseDuration` grammar (`1h30m`, `1.5h`, `300ms`, `2us`, a bare
/// `0`), plus `d` for 24h. Negative durations mean nothing here and are
/// refused. humantime would also take these, but it accepts forms Go does not
/// (`1 hour`, `2years`) and lacks Go's `0`, so files written for the old
/// project and for this one could drift apart.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (int, after) = split_digits(rest);
        let (frac, after) = match after.strip_prefix('.') {
            Some(after) => split_digits(after),
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_end = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            _ => return None,
        };
        let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        nanos = nanos.checked_add(int.checked_mul(unit_nanos)?)?;
        if !frac.is_empty() {
            // Digits past the 18th are below a nanosecond for every unit.
            let digits = &frac[..frac.len().min(18)];
            let scale = 10u128.pow(u32::try_from(digits.len()).ok()?);
            let frac: u128 = digits.parse().ok()?;
            nanos = nanos.checked_add(frac * unit_nanos / scale)?;
        }
        rest = after;
    }
    u64::try_from(nanos).ok().map(Duration::from_nanos)
}

fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

/// Prints a duration so that [`parse_go_duration`] reads it back: `1m30s`,
/// `100ms`, `30d`.
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let secs = duration.as_secs();
    let nanos = duration.subsec_nanos();
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3_600, "h"),
        (secs % 3_600 / 60, "m"),
        (secs % 60, "s"),
        (u64::from(nanos / 1_000_000), "ms"),
        (u64::from(nanos / 1_000 % 1_000), "us"),
        (u64::from(nanos % 1_000), "ns"),
    ];
    let mut out = String::new();
    for (count, unit) in parts {
        if count > 0 {
            let _ = write!(out, "{count}{unit}");
        }
    }
    out
}

pub(super) fn log_format(text: &str) -> Result<LogFormat, Invalid> {
    match text.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(Invalid::new("value", text, expected(Key::LogFormat))),
    }
}

pub(super) fn on_off(key: Key, text: &str) -> Result<bool, Invalid> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(Invalid::new("value", text, expected(key))),
    }
}

pub(super) fn progress(text: &str) -> Result<ProgressMode, Invalid> {
    match text.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(ProgressMode::Auto),
        "bars" => Ok(ProgressMode::Bars),
        "lines" => Ok(ProgressMode::Lines),
        "off" => Ok(ProgressMode::Off),
        _ => Err(Invalid::new("value", text, expected(Key::Progress))),
    }
}

/// Checked here so that a typo fails at startup with the key's name, not
/// later inside the logging setup.
pub(super) fn log_level(text: &str) -> Result<String, Invalid> {
    let filter = text.trim();
    if filter.is_empty() {
        return Err(Invalid::new("value", text, expected(Key::LogLevel)));
    }
    match tracing_subscriber::EnvFilter::builder().parse(filter) {
        Ok(_) => Ok(filter.to_owned()),
        Err(error) => Err(Invalid::new(
            "value",
            text,
            &format!("{error}; {}", expected(Key::LogLevel)),
        )),
    }
}

/// The URL for people to read: credentials become `***` and the lone `/` of
/// an empty path is dropped.
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    if !url.username().is_empty() || url.password().is_some() {
        // Both setters only fail for URLs without a host, which have no
        // credentials to hide.
        let _ = shown.set_password(None);
        let _ = shown.set_username("***");
    }
    let text = shown.as_str();
    match text.strip_suffix('/') {
        Some(trimmed) if shown.path() == "/" => trimmed.to_owned(),
        _ => text.to_owned(),
    }
}

/// Hides the user-info part of anything URL-like in free text, such as a
/// value that failed to parse or a parser's message quoting the file. Errs on
/// the side of hiding: everything from `://` to the last `@` of the word goes.
pub fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (head, tail) = rest.split_at(start + 3);
        out.push_str(head);
        let word_end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | '<' | '>'))
            .unwrap_or(tail.len());
        let (word, after) = tail.split_at(word_end);
        match word.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&word[at..]);
            }
            None => out.push_str(word),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The memory cache budget: a size, 0 for none.
pub(super) fn memory_cache_size(text: &str) -> Result<u64, Invalid> {
    size(text)
        .map(Option::unwrap_or_default)
        .map_err(|_| Invalid::new("size", text, expected(Key::MemoryCacheSize)))
}

/// A byte size: a number with an optional unit, decimal (kB, MB, GB, TB) or
/// binary (KiB, MiB, GiB, TiB); `0` means no limit.
pub(super) fn size(text: &str) -> Result<Option<u64>, Invalid> {
    let fail = || Invalid::new("size", text, expected(Key::MaxCacheSize));
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| fail())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        _ => return Err(fail()),
    };
    let bytes = number * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(fail());
    }
    let bytes = bytes.round() as u64;
    Ok((bytes > 0).then_some(bytes))
}

/// Prints a size the way [`size`] reads it back, in the largest exact binary unit.
pub fn format_size(bytes: u64) -> String {
    for (unit, scale) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    format!("{bytes}B")
}

/// An approximate size for people, e.g. `1.2 GiB`.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

pub(super) fn gosumdb(text: &str) -> Result<GoSumDb, Invalid> {
    GoSumDb::parse(text).map_err(|reason| {
        Invalid::new(
            "checksum database",
            text,
            &format!("{reason}; {}", expected(Key::Gosumdb)),
        )
    })
}

pub(super) fn patterns<'a>(
    key: Key,
    items: impl IntoIterator<Item = &'a str>,
) -> Result<PrefixPatterns, Invalid> {
    PrefixPatterns::from_items(items)
        .map_err(|reason| Invalid(format!("{reason} ({})", expected(key))))
}

pub(super) fn proxied_sumdbs<'a>(
    items: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<ProxiedSumDb>, Invalid> {
    items
        .into_iter()
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            ProxiedSumDb::parse(item)
                .map_err(|reason| Invalid(format!("{reason} ({})", expected(Key::ProxiedSumdbs))))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn go_durations() {
        let cases = [
            ("100ms", Duration::from_millis(100)),
            ("300ms", Duration::from_millis(300)),
            ("2s", secs(2)),
            ("1m30s", secs(90)),
            ("1h30m", secs(5400)),
            ("1.5h", secs(5400)),
            (".5s", Duration::from_millis(500)),
            ("720h", secs(720 * 3600)),
            ("30d", secs(30 * 86_400)),
            ("1d12h", secs(36 * 3600)),
            ("2us", Duration::from_micros(2)),
            ("2µs", Duration::from_micros(2)),
            ("2μs", Duration::from_micros(2)),
            ("15ns", Duration::from_nanos(15)),
            ("1.000000001s", Duration::from_nanos(1_000_000_001)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("+5m", secs(300)),
            (" 10s ", secs(10)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_duration(text), Some(want), "{text}");
        }
    }

    #[test]
    fn bad_durations() {
        for text in [
            "",
            "fast",
            "100",
            "-1s",
            "1h 30m",
            "1x",
            "s",
            ".s",
            "1..5s",
            "1 day",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_go_duration(text), None, "{text}");
        }
    }

    #[test]
    fn durations_print_as_they_parse() {
        for (d, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(100), "100ms"),
            (secs(90), "1m30s"),
            (secs(1800), "30m"),
            (secs(30 * 86_400), "30d"),
            (Duration::from_millis(1500), "1s500ms"),
            (Duration::from_nanos(1_002_003), "1ms2us3ns"),
        ] {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_go_duration(text), Some(d));
        }
    }

    #[test]
    fn timeouts_refuse_zero() {
        let error = timeout("0s").unwrap_err();
        assert_eq!(
            error.0,
            r#"invalid duration "0s" (expected a duration above zero, e.g. 10s, 1m30s)"#
        );
        assert_eq!(duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn listen_forms() {
        let ok = [
            ("0.0.0.0:12345", "0.0.0.0:12345"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("localhost:8080", "localhost:8080"),
            ("[::1]:8080", "[::1]:8080"),
            ("[::]:80", "[::]:80"),
            (":8080", "0.0.0.0:8080"),
            (" my-host.example:1 ", "my-host.example:1"),
        ];
        for (text, want) in ok {
            assert_eq!(listen(text).unwrap().to_string(), want, "{text}");
        }
        for text in [
            "8080",
            "::1:8080",
            "[::1]",
            "[nope]:80",
            "host:",
            "host:65536",
            "host:+80",
            "300.1.1.1:80",
            "a b:80",
            "http://x:80",
            "",
        ] {
            assert!(listen(text).is_err(), "{text}");
        }
        assert_eq!(listen("[::1]:8080").unwrap().with_port(9000), "[::1]:9000");
    }

    #[test]
    fn ports() {
        assert_eq!(port("0").unwrap(), 0);
        assert_eq!(port(" 65535 ").unwrap(), 65535);
        let error = port("70000").unwrap_err();
        assert_eq!(
            error.0,
            r#"invalid value "70000" (expected a port number 0–65535)"#
        );
        assert!(port("-1").is_err());
        assert!(port("").is_err());
    }

    #[test]
    fn attempts_need_at_least_one() {
        assert_eq!(attempts("1").unwrap(), 1);
        assert_eq!(attempts(" 5 ").unwrap(), 5);
        for text in ["0", "-1", "three", "2.5", ""] {
            let error = attempts(text).unwrap_err();
            assert!(
                error.0.ends_with("(expected a whole number ≥ 1)"),
                "{}",
                error.0
            );
        }
    }

    #[test]
    fn upstream_lists() {
        let urls = upstream_list(" https://a.example/ ,, http://b.example/go/ , ").unwrap();
        let shown: Vec<&str> = urls.iter().map(Url::as_str).collect();
        assert_eq!(shown, ["https://a.example/", "http://b.example/go"]);
        assert_eq!(redact_url(&urls[0]), "https://a.example");

        let error = upstream_list(" , ").unwrap_err();
        assert!(
            error.0.starts_with("no upstream URL given (expected"),
            "{}",
            error.0
        );
        for (text, reason) in [
            ("ftp://a.example", r#"scheme "ftp" is not supported"#),
            ("proxy.golang.org", "relative URL without a base"),
            (
                "https://a.example/?x=1",
                "a query or fragment is not allowed",
            ),
            (
                "https://a.example/#top",
                "a query or fragment is not allowed",
            ),
        ] {
            let error = upstream_list(text).unwrap_err();
            assert!(
                error.0.starts_with(&format!(
                    "invalid upstream URL {text:?} ({reason}; expected"
                )),
                "{}",
                error.0
            );
        }
    }

    #[test]
    fn upstream_credentials_are_kept_but_redacted() {
        let urls = upstream_list("https://user:pa%24s@goproxy.corp.example/mods").unwrap();
        assert_eq!(urls[0].password(), Some("pa%24s"));
        assert_eq!(
            redact_url(&urls[0]),
            "https://***@goproxy.corp.example/mods"
        );

        let error = upstream_list("https://user:hunter2@corp.example/?x").unwrap_err();
        assert!(!error.0.contains("hunter2"), "{}", error.0);
        assert!(
            error.0.contains("https://***@corp.example/?x"),
            "{}",
            error.0
        );
    }

    #[test]
    fn redacting_free_text() {
        assert_eq!(
            redact_secrets("see https://u:p@h.example/x and http://plain.example, ftp://tok@x"),
            "see https://***@h.example/x and http://plain.example, ftp://***@x"
        );
        assert_eq!(redact_secrets("no urls here"), "no urls here");
    }

    #[test]
    fn log_settings() {
        assert_eq!(log_format(" JSON ").unwrap(), LogFormat::Json);
        assert!(log_format("xml").is_err());
        assert_eq!(progress(" Bars ").unwrap(), ProgressMode::Bars);
        assert_eq!(progress("off").unwrap(), ProgressMode::Off);
        assert_eq!(
            progress("fancy").unwrap_err().0,
            r#"invalid value "fancy" (expected auto, bars, lines or off)"#
        );
        assert_eq!(
            log_level("goproxy=debug,warn").unwrap(),
            "goproxy=debug,warn"
        );
        assert_eq!(log_level("off").unwrap(), "off");
        let error = log_level("goproxy=loud").unwrap_err();
        assert!(
            error.0.starts_with(r#"invalid value "goproxy=loud" ("#),
            "{}",
            error.0
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(size("50GiB").unwrap(), Some(50 << 30));
        assert_eq!(size("500MB").unwrap(), Some(500_000_000));
        assert_eq!(size("1.5 GiB").unwrap(), Some(3 << 29));
        assert_eq!(size("1024").unwrap(), Some(1024));
        assert_eq!(size("0").unwrap(), None);
        for bad in ["", "GiB", "-1GiB", "5 parsecs", "1e3"] {
            assert!(size(bad).is_err(), "{bad:?}");
        }
        for bytes in [1, 1023, 1 << 10, 50 << 30, 3 << 40] {
            assert_eq!(size(&format_size(bytes)).unwrap(), Some(bytes), "{bytes}");
        }
    }
}
