//! `goproxy config show`: the effective settings, one per line, with where
//! each came from. Keys are the config file's, so a line can be copied into
//! a file; upstream credentials are shown as `***`, and of the users only
//! their names.

use super::value::{format_duration, format_size, redact_url};
use super::{Key, Loaded, Source};
use crate::net::proxy::ProxySetting;

/// Values up to this wide line up their sources in one column.
const MAX_VALUE_COLUMN: usize = 60;

pub fn render(loaded: &Loaded) -> String {
    let s = &loaded.settings;
    let from = |key: Key| loaded.source(key).to_string();
    let mut rows: Vec<(&str, String, String)> = Vec::new();
    if let Some(file) = &loaded.config_file {
        rows.push((
            "config",
            file.path.display().to_string(),
            file.named_by.to_string(),
        ));
    }
    rows.push(("listen", s.listen.clone(), listen_source(loaded)));
    rows.push((
        Key::CacheDir.name(),
        s.cache_dir.display().to_string(),
        from(Key::CacheDir),
    ));
    let upstreams: Vec<String> = s.upstreams.iter().map(redact_url).collect();
    rows.push((
        Key::Upstreams.name(),
        upstreams.join(","),
        from(Key::Upstreams),
    ));
    rows.push((
        Key::RetryAttempts.name(),
        s.retry_attempts.to_string(),
        from(Key::RetryAttempts),
    ));
    for (key, duration) in [
        (Key::RetryBackoff, s.retry_backoff),
        (Key::ListTtl, s.list_ttl),
        (Key::NegativeTtl, s.negative_ttl),
    ] {
        rows.push((key.name(), format_duration(duration), from(key)));
    }
    rows.push((
        Key::LogFormat.name(),
        s.log_format.to_string(),
        from(Key::LogFormat),
    ));
    rows.push((
        Key::LogLevel.name(),
        s.log_level.clone(),
        from(Key::LogLevel),
    ));
    rows.push((
        Key::Progress.name(),
        s.progress.to_string(),
        from(Key::Progress),
    ));
    for (key, duration) in [
        (Key::ShutdownTimeout, s.shutdown_timeout),
        (Key::UpstreamConnectTimeout, s.upstream_connect_timeout),
        (Key::UpstreamHeaderTimeout, s.upstream_header_timeout),
        (Key::UpstreamIdleTimeout, s.upstream_idle_timeout),
        (Key::UpstreamTimeout, s.upstream_timeout),
    ] {
        rows.push((key.name(), format_duration(duration), from(key)));
    }
    rows.push((Key::Proxy.name(), s.proxy.to_string(), proxy_source(loaded)));
    rows.push((
        Key::NoProxy.name(),
        s.no_proxy.to_string(),
        from(Key::NoProxy),
    ));
    let dns = s
        .dns
        .as_ref()
        .map_or_else(|| "system".to_owned(), ToString::to_string);
    rows.push((Key::Dns.name(), dns, from(Key::Dns)));
    let bootstrap: Vec<String> = s.dns_bootstrap.iter().map(ToString::to_string).collect();
    rows.push((
        Key::DnsBootstrap.name(),
        bootstrap.join(","),
        from(Key::DnsBootstrap),
    ));
    let ca = |file: &Option<crate::net::ca::CaFile>| {
        file.as_ref().map(ToString::to_string).unwrap_or_default()
    };
    rows.push((
        Key::DnsCaFile.name(),
        ca(&s.dns_ca_file),
        from(Key::DnsCaFile),
    ));
    rows.push((
        Key::DnsTimeout.name(),
        format_duration(s.dns_timeout),
        from(Key::DnsTimeout),
    ));
    rows.push((
        Key::UpstreamCaFile.name(),
        ca(&s.upstream_ca_file),
        from(Key::UpstreamCaFile),
    ));
    rows.push((
        Key::Gosumdb.name(),
        s.gosumdb.to_string(),
        from(Key::Gosumdb),
    ));
    rows.push((
        Key::Gonosumdb.name(),
        s.gonosumdb.to_string(),
        from(Key::Gonosumdb),
    ));
    rows.push((
        Key::Goprivate.name(),
        s.goprivate.to_string(),
        from(Key::Goprivate),
    ));
    rows.push((
        Key::Gonoproxy.name(),
        s.gonoproxy.to_string(),
        from(Key::Gonoproxy),
    ));
    let private: Vec<String> = s
        .private_upstreams
        .iter()
        .map(ToString::to_string)
        .collect();
    rows.push((
        Key::PrivateUpstreams.name(),
        private.join(" "),
        from(Key::PrivateUpstreams),
    ));
    rows.push((
        Key::Netrc.name(),
        path(s.netrc.as_deref()),
        from(Key::Netrc),
    ));
    let proxied: Vec<String> = s.proxied_sumdbs.iter().map(ToString::to_string).collect();
    rows.push((
        Key::ProxiedSumdbs.name(),
        proxied.join(","),
        from(Key::ProxiedSumdbs),
    ));
    rows.push((
        Key::MaxCacheAge.name(),
        format_duration(s.max_cache_age),
        from(Key::MaxCacheAge),
    ));
    let max_size = s
        .max_cache_size
        .map(format_size)
        .unwrap_or_else(|| "0 (no limit)".to_owned());
    rows.push((Key::MaxCacheSize.name(), max_size, from(Key::MaxCacheSize)));
    rows.push((
        Key::CleanupInterval.name(),
        format_duration(s.cleanup_interval),
        from(Key::CleanupInterval),
    ));
    let tokens: Vec<String> = s.auth_tokens.iter().map(ToString::to_string).collect();
    rows.push((
        Key::AuthTokens.name(),
        tokens.join(","),
        from(Key::AuthTokens),
    ));
    let users: Vec<&str> = s.auth_users.iter().map(|u| u.name.as_str()).collect();
    rows.push((Key::AuthUsers.name(), users.join(" "), from(Key::AuthUsers)));
    rows.push((
        Key::AuthRequire.name(),
        s.auth_require.to_string(),
        from(Key::AuthRequire),
    ));
    rows.push((
        Key::TlsCert.name(),
        path(s.tls_cert.as_deref()),
        from(Key::TlsCert),
    ));
    rows.push((
        Key::TlsKey.name(),
        path(s.tls_key.as_deref()),
        from(Key::TlsKey),
    ));

    rows.push((
        Key::DownloadConnections.name(),
        s.download_connections.to_string(),
        from(Key::DownloadConnections),
    ));
    rows.push((
        Key::DownloadParallelThreshold.name(),
        format_size(s.download_parallel_threshold),
        from(Key::DownloadParallelThreshold),
    ));
    let limit = match s.max_concurrent_downloads {
        0 => "0 (no limit)".to_owned(),
        n => n.to_string(),
    };
    rows.push((
        Key::MaxConcurrentDownloads.name(),
        limit,
        from(Key::MaxConcurrentDownloads),
    ));
    let memory = match s.memory_cache_size {
        0 => "0 (off)".to_owned(),
        n => format_size(n),
    };
    rows.push((
        Key::MemoryCacheSize.name(),
        memory,
        from(Key::MemoryCacheSize),
    ));
    rows.push((
        Key::Prefetch.name(),
        if s.prefetch { "on" } else { "off" }.to_owned(),
        from(Key::Prefetch),
    ));
    let key_width = rows.iter().map(|(key, _, _)| key.len()).max().unwrap_or(0);
    // A long value (several private upstreams) runs past the column rather
    // than pushing every source far to the right.
    let value_width = rows
        .iter()
        .map(|(_, value, _)| value.chars().count())
        .filter(|width| *width <= MAX_VALUE_COLUMN)
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(key, value, source)| {
            format!("{key:<key_width$} = {value:<value_width$}   ({source})\n")
        })
        .collect()
}

fn path(path: Option<&std::path::Path>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}

/// Proxies from the environment may come from several variables.
fn proxy_source(loaded: &Loaded) -> String {
    match &loaded.settings.proxy {
        ProxySetting::Environment(env) if !env.is_empty() => env
            .vars()
            .iter()
            .map(|var| Source::Env(var).to_string())
            .collect::<Vec<_>>()
            .join(", "),
        _ => loaded.source(Key::Proxy).to_string(),
    }
}

/// `listen` has no key of its own when only `port` was set, and both a
/// `listen` and a higher-layer `port` when the port was replaced.
fn listen_source(loaded: &Loaded) -> String {
    let listen = loaded.source(Key::Listen);
    let port = loaded.source(Key::Port);
    if !loaded.port_replaces_listen_port() {
        listen.to_string()
    } else if *listen == Source::Default {
        port.to_string()
    } else {
        format!("{listen}; port: {port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::tests::{flags, load_with, write};

    fn squash(text: &str) -> String {
        text.lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
            .collect()
    }

    #[test]
    fn defaults() {
        let loaded = load_with(&flags(&[]), &[]).unwrap();
        // Compared with runs of spaces squashed: the alignment (checked below)
        // depends on the longest key name, not on what each row says.
        assert_eq!(
            squash(&render(&loaded)),
            "\
listen = 0.0.0.0:12345 (default)
cache_dir = ./cache (default)
upstreams = https://proxy.golang.org (default)
retry_attempts = 3 (default)
retry_backoff = 100ms (default)
list_ttl = 1m (default)
negative_ttl = 1m (default)
log_format = text (default)
log_level = info (default)
progress = auto (default)
shutdown_timeout = 10s (default)
upstream_connect_timeout = 10s (default)
upstream_header_timeout = 1m (default)
upstream_idle_timeout = 1m (default)
upstream_timeout = 30m (default)
proxy = none (default)
no_proxy = (default)
dns = system (default)
dns_bootstrap = (default)
dns_ca_file = (default)
dns_timeout = 5s (default)
upstream_ca_file = (default)
gosumdb = sum.golang.org (default)
gonosumdb = (default)
goprivate = (default)
gonoproxy = (default)
private_upstreams = (default)
netrc = (default)
proxied_sumdbs = (default)
max_cache_age = 0s (default)
max_cache_size = 0 (no limit) (default)
cleanup_interval = 1d (default)
auth_tokens = (default)
auth_users = (default)
auth_require = all (default)
tls_cert = (default)
tls_key = (default)
download_connections = 4 (default)
download_parallel_threshold = 512KiB (default)
max_concurrent_downloads = 4 (default)
memory_cache_size = 32MiB (default)
prefetch = off (default)
"
        );
    }

    #[test]
    fn sources_and_redaction() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "goproxy.yaml",
            "listen: 127.0.0.1:8080\nupstreams: https://me:hunter2@corp.example/go/,https://proxy.golang.org\n",
        );
        let args = flags(&["-config", &file, "-negative-ttl", "30d"]);
        let vars = [("PORT", "3000"), ("LOG_LEVEL", "goproxy=debug,warn")];
        let shown = render(&load_with(&args, &vars).unwrap());
        let lines: Vec<&str> = shown.lines().collect();
        assert!(
            squash(lines[0]).starts_with(&format!("config = {file} ")),
            "{}",
            lines[0]
        );
        assert!(lines[0].ends_with("   (flag --config)"), "{}", lines[0]);
        assert!(
            squash(lines[1]).starts_with("listen = 127.0.0.1:3000 "),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].ends_with(&format!("(file {file}; port: env PORT)")),
            "{}",
            lines[1]
        );
        assert!(
            lines[3].contains("= https://***@corp.example/go,https://proxy.golang.org   (file "),
            "{}",
            lines[3]
        );
        assert!(
            squash(lines[7]).starts_with("negative_ttl = 30d "),
            "{}",
            lines[7]
        );
        assert!(
            lines[7].ends_with("   (flag --negative-ttl)"),
            "{}",
            lines[7]
        );
        assert!(lines[9].ends_with("   (env LOG_LEVEL)"), "{}", lines[9]);
        assert!(!shown.contains("hunter2"));
        // Values line up in one column.
        let value_column = lines[0].find(" = ").unwrap();
        assert!(
            lines
                .iter()
                .all(|line| line.find(" = ") == Some(value_column))
        );
    }

    #[test]
    fn listen_source_names_the_port_when_it_came_from_port() {
        let first_line = |args: &[&str], vars: &[(&str, &str)]| {
            let shown = render(&load_with(&flags(args), vars).unwrap());
            let line = shown.lines().next().unwrap_or_default();
            line.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        assert_eq!(
            first_line(&["--port", "1"], &[]),
            "listen = 0.0.0.0:1 (flag --port)"
        );
        assert_eq!(
            first_line(&["--listen", "[::1]:5"], &[("PORT", "1")]),
            "listen = [::1]:5 (flag --listen)"
        );
        assert_eq!(
            first_line(&["--port", "1"], &[("LISTEN", "[::1]:5")]),
            "listen = [::1]:1 (env LISTEN; port: flag --port)"
        );
    }
}
