//! Loading the outbound network settings: the proxy's own precedence (flag >
//! config file > environment), NO_PROXY, the DNS server and CA files.

use super::load::tests::{ca_file, flags, load_with, write};
use super::{Key, Source, render};
use crate::net::proxy::ProxySetting;

fn error(args: &[&str], vars: &[(&str, &str)]) -> String {
    load_with(&flags(args), vars).unwrap_err().to_string()
}

fn shown_line(args: &[&str], vars: &[(&str, &str)], key: &str) -> String {
    let out = render(&load_with(&flags(args), vars).unwrap());
    let line = out
        .lines()
        .find(|line| line.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no {key} in\n{out}"));
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn proxy_flag_beats_file_beats_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.yaml", "proxy: http://file.example:3128\n");
    let env = [
        ("HTTPS_PROXY", "http://env.example:3128"),
        ("SOCKS5_PROXY", "socks5h://socks.example:1080"),
    ];

    let loaded = load_with(&flags(&[]), &env).unwrap();
    assert_eq!(loaded.source(Key::Proxy), &Source::Env("HTTPS_PROXY"));
    assert_eq!(
        shown_line(&[], &env, "proxy"),
        "proxy = https: http://env.example:3128, http: socks5h://socks.example:1080 \
         (env HTTPS_PROXY, env SOCKS5_PROXY)"
    );

    let loaded = load_with(&flags(&["--config", &file]), &env).unwrap();
    assert_eq!(
        loaded.source(Key::Proxy),
        &Source::File(file.clone().into())
    );
    assert_eq!(
        loaded.settings.proxy.to_string(),
        "http://file.example:3128"
    );

    let loaded = load_with(
        &flags(&["--config", &file, "--proxy", "socks5://u:pw@flag.example"]),
        &env,
    )
    .unwrap();
    assert_eq!(loaded.source(Key::Proxy), &Source::Flag("proxy"));
    assert_eq!(
        shown_line(
            &["--config", &file, "--proxy", "socks5://u:pw@flag.example"],
            &env,
            "proxy"
        ),
        "proxy = socks5://***@flag.example:1080 (flag --proxy)"
    );
}

#[test]
fn proxy_off_ignores_the_environment_even_a_broken_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.yaml", "proxy: off\n");
    let env = [("HTTP_PROXY", "ftp://not-a-proxy")];
    let loaded = load_with(&flags(&["--config", &file]), &env).unwrap();
    assert_eq!(loaded.settings.proxy, ProxySetting::Off);
    assert_eq!(
        shown_line(&["--config", &file], &env, "proxy"),
        format!("proxy = off (file {file})")
    );
    let loaded = load_with(&flags(&["--proxy", "OFF"]), &env).unwrap();
    assert_eq!(loaded.settings.proxy, ProxySetting::Off);

    // Without an override the broken variable is an error that names it.
    let got = error(&[], &env);
    assert!(
        got.starts_with(
            "environment variable HTTP_PROXY: invalid proxy URL \"ftp://not-a-proxy\" \
             (scheme \"ftp\" is not supported; expected off or a URL"
        ),
        "{got}"
    );
}

#[test]
fn lower_case_variables_and_no_proxy() {
    let env = [
        ("https_proxy", "proxy.corp:3128"),
        ("no_proxy", "localhost,*.corp.example"),
    ];
    let loaded = load_with(&flags(&[]), &env).unwrap();
    assert_eq!(loaded.source(Key::Proxy), &Source::Env("https_proxy"));
    assert_eq!(
        loaded.settings.proxy.to_string(),
        "https: http://proxy.corp:3128, http: direct"
    );
    assert_eq!(loaded.source(Key::NoProxy), &Source::Env("no_proxy"));
    assert_eq!(
        loaded.settings.no_proxy.to_string(),
        ".localhost,.corp.example"
    );

    // Upper case wins; the flag wins over both.
    let both = [("NO_PROXY", "a.example"), ("no_proxy", "b.example")];
    assert_eq!(
        load_with(&flags(&[]), &both)
            .unwrap()
            .settings
            .no_proxy
            .to_string(),
        ".a.example"
    );
    let loaded = load_with(&flags(&["--no-proxy", "10.0.0.0/8"]), &both).unwrap();
    assert_eq!(loaded.settings.no_proxy.to_string(), "10.0.0.0/8");

    // A list in the file.
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "c.yaml",
        "no_proxy:\n  - localhost\n  - 127.0.0.1\n",
    );
    let loaded = load_with(&flags(&["--config", &file]), &[]).unwrap();
    assert_eq!(loaded.settings.no_proxy.to_string(), ".localhost,127.0.0.1");

    let got = error(&[], &[("NO_PROXY", "localhost:8080")]);
    assert!(
        got.starts_with(
            "environment variable NO_PROXY: invalid no_proxy entry \"localhost:8080\" \
             (ports are not supported;"
        ),
        "{got}"
    );
}

#[test]
fn proxy_errors_name_the_setting_and_hide_passwords() {
    let got = error(&["--proxy", "socks4://me:hunter2@p:1080"], &[]);
    assert!(
        got.starts_with(
            "flag --proxy: invalid proxy URL \"socks4://***@p:1080\" (scheme \"socks4\" is not supported"
        ),
        "{got}"
    );
    assert!(!got.contains("hunter2"), "{got}");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.yaml", "proxy: http://p:70000\n");
    let got = error(&["--config", &file], &[]);
    assert!(
        got.starts_with(&format!(
            "config file {file}: proxy: invalid proxy URL \"http://p:70000\" (invalid port number"
        )),
        "{got}"
    );
}

#[test]
fn dns_settings() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(dir.path(), "dns-ca.pem");
    let file = write(
        dir.path(),
        "c.yaml",
        &format!(
            "dns: tls://dns.corp.example\ndns_bootstrap: [10.0.0.53, \"2001:db8::53\"]\n\
             dns_ca_file: {ca}\ndns_timeout: 2s\n"
        ),
    );
    let loaded = load_with(&flags(&["--config", &file]), &[]).unwrap();
    let s = &loaded.settings;
    assert_eq!(
        s.dns.as_ref().unwrap().to_string(),
        "tls://dns.corp.example:853"
    );
    assert_eq!(s.dns_bootstrap.len(), 2);
    assert_eq!(s.dns_ca_file.as_ref().unwrap().certs().len(), 1);
    assert_eq!(s.dns_timeout, std::time::Duration::from_secs(2));
    assert_eq!(
        shown_line(&["--config", &file], &[], "dns_bootstrap"),
        format!("dns_bootstrap = 10.0.0.53,2001:db8::53 (file {file})")
    );

    // DNS_SERVER=system goes back to the system resolver.
    let loaded = load_with(&flags(&["--config", &file]), &[("DNS_SERVER", "system")]).unwrap();
    assert!(loaded.settings.dns.is_none());
    assert_eq!(loaded.source(Key::Dns), &Source::Env("DNS_SERVER"));
}

#[test]
fn dns_errors() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 6] = [
        (
            &["--dns", "ftp://dns.example"],
            &[],
            "flag --dns: invalid DNS server \"ftp://dns.example\" (scheme \"ftp\" is not supported; expected system, an IP address",
        ),
        (
            &[],
            &[("DNS_SERVER", "tls://dns.example:99999")],
            "environment variable DNS_SERVER: invalid DNS server \"tls://dns.example:99999\" (invalid port \"99999\";",
        ),
        (
            &["--dns", "dns.google"],
            &[],
            "flag --dns: invalid DNS server \"dns.google\" (a host name needs a scheme",
        ),
        (
            &["--dns-bootstrap", "10.0.0.1,dns.example"],
            &[],
            "flag --dns-bootstrap: invalid IP address \"dns.example\" (expected comma-separated IP addresses",
        ),
        (
            &["--dns-timeout", "0s"],
            &[],
            "flag --dns-timeout: invalid duration \"0s\" (expected a duration above zero",
        ),
        (
            &["--upstream-ca-file", "/nonexistent/ca.pem"],
            &[],
            "flag --upstream-ca-file: invalid CA file \"/nonexistent/ca.pem\" (cannot read it: ",
        ),
    ];
    for (args, vars, want) in cases {
        let got = error(args, vars);
        assert!(got.starts_with(want), "\n got: {got}\nwant: {want}");
    }
    let dir = tempfile::tempdir().unwrap();
    let not_pem = write(dir.path(), "key.pem", "hello\n");
    let got = error(&["--dns-ca-file", &not_pem], &[]);
    assert!(
        got.contains("it holds no PEM certificate")
            && got.contains("expected the path of a PEM file"),
        "{got}"
    );
}
