//! Outbound proxies: every upstream and checksum-database request goes through
//! the configured proxy. Real proxies run on 127.0.0.1: tinyproxy (HTTP
//! forwarding and CONNECT, basic auth), tinyproxy behind TLS (an `https://`
//! proxy), and a SOCKS5 server that records what it was asked, so `socks5`
//! (names resolved here, through the custom DNS) and `socks5h` (names resolved
//! by the proxy) are told apart by what the proxy saw.

mod support;

use std::collections::HashMap;

use goproxy::config::{CliArgs, load};
use goproxy::net::ca::CaFile;
use goproxy::net::dns::DnsServer;
use goproxy::net::proxy::ProxySetting;
use goproxy::sumdb::config::GoSumDb;
use support::dns::TestDns;
use support::http_proxy::Tinyproxy;
use support::socks::SocksServer;
use support::tls::{TestCa, TlsFront};
use support::{FakeSumDb, FakeUpstream, Module, TestProxy};

fn proxy(url: &str) -> ProxySetting {
    ProxySetting::parse(url).expect("proxy URL")
}

fn port_of(url: &str) -> u16 {
    url::Url::parse(url).unwrap().port().expect("port")
}

async fn upstream_with(m: &Module) -> FakeUpstream {
    let upstream = FakeUpstream::start().await;
    upstream.add(m.clone());
    upstream
}

async fn assert_serves(proxy: &TestProxy, m: &Module) {
    let r = proxy.get(&m.url_path("zip")).await;
    let status = r.status();
    let body = r.bytes().await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body.as_ref(), m.zip.as_slice());
}

/// The settings the binary would build from these environment variables.
fn settings_from_env(vars: &[(&str, &str)]) -> goproxy::config::Settings {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    load(&CliArgs::default(), &|name| vars.get(name).cloned())
        .expect("settings load")
        .settings
}

#[tokio::test]
async fn an_http_proxy_with_basic_auth_forwards_plain_http_requests() {
    let m = Module::simple("example.com/forwarded", "v1.0.0");
    let upstream = upstream_with(&m).await;
    let tinyproxy = Tinyproxy::start("alice", "s3cret");
    let p = TestProxy::start_with(&[&upstream.url], |s| {
        s.proxy = proxy(&tinyproxy.url(("alice", "s3cret")));
    })
    .await;
    assert_serves(&p, &m).await;
    let wanted = format!("GET {}{} HTTP/1.1", upstream.url, m.url_path("zip"));
    assert!(
        tinyproxy.requests().contains(&wanted),
        "{wanted} not in {:?}",
        tinyproxy.requests()
    );
}

#[tokio::test]
async fn a_wrong_proxy_password_fails_and_nothing_reaches_the_upstream() {
    let m = Module::simple("example.com/refused", "v1.0.0");
    let upstream = upstream_with(&m).await;
    let tinyproxy = Tinyproxy::start("alice", "s3cret");
    let p = TestProxy::start_with(&[&upstream.url], |s| {
        s.proxy = proxy(&tinyproxy.url(("alice", "wrong")));
        s.retry_attempts = 1;
    })
    .await;
    let r = p.get(&m.url_path("info")).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(body.contains("unexpected status 40"), "{body}");
    assert!(!body.contains("wrong"), "the password leaked: {body}");
    assert_eq!(upstream.total_hits(), 0);
}

#[tokio::test]
async fn https_upstreams_are_tunneled_through_the_http_proxy() {
    let m = Module::simple("example.com/tunneled", "v1.0.0");
    let upstream = upstream_with(&m).await;
    let ca = TestCa::new();
    let backend = format!("127.0.0.1:{}", port_of(&upstream.url))
        .parse()
        .unwrap();
    let https = TlsFront::start(&ca, &["localhost"], backend).await;
    let tinyproxy = Tinyproxy::start("alice", "s3cret");
    let url = format!("https://localhost:{}", https.addr.port());
    let p = TestProxy::start_with(&[&url], |s| {
        s.proxy = proxy(&tinyproxy.url(("alice", "s3cret")));
        s.upstream_ca_file = Some(CaFile::load(&ca.pem_path).unwrap());
    })
    .await;
    assert_serves(&p, &m).await;
    let wanted = format!("CONNECT localhost:{} HTTP/1.1", https.addr.port());
    assert!(
        tinyproxy.requests().contains(&wanted),
        "{wanted} not in {:?}",
        tinyproxy.requests()
    );
}

#[tokio::test]
async fn an_https_proxy_is_reached_over_tls_trusting_upstream_ca_file() {
    let m = Module::simple("example.com/tls-proxy", "v1.0.0");
    let upstream = upstream_with(&m).await;
    let ca = TestCa::new();
    let tinyproxy = Tinyproxy::start("alice", "s3cret");
    let front = TlsFront::start(&ca, &["localhost"], tinyproxy.addr).await;
    let url = format!("https://alice:s3cret@localhost:{}", front.addr.port());

    // The proxy's certificate is signed by the test CA: untrusted by default.
    let untrusting = TestProxy::start_with(&[&upstream.url], |s| {
        s.proxy = proxy(&url);
        s.retry_attempts = 1;
    })
    .await;
    let r = untrusting.get(&m.url_path("info")).await;
    assert_eq!(r.status(), 502);
    assert!(tinyproxy.requests().is_empty());

    let p = TestProxy::start_with(&[&upstream.url], |s| {
        s.proxy = proxy(&url);
        s.upstream_ca_file = Some(CaFile::load(&ca.pem_path).unwrap());
    })
    .await;
    assert_serves(&p, &m).await;
    let wanted = format!("GET {}{} HTTP/1.1", upstream.url, m.url_path("zip"));
    assert!(
        tinyproxy.requests().contains(&wanted),
        "{:?}",
        tinyproxy.requests()
    );
}

#[tokio::test]
async fn socks5_resolves_through_the_custom_dns_and_socks5h_leaves_names_to_the_proxy() {
    let m = Module::simple("example.com/socks", "v1.0.0");
    let upstream = upstream_with(&m).await;
    let port = port_of(&upstream.url);
    let ca = TestCa::new();
    let dns = TestDns::start(&ca).await;
    dns.add("proxy.goproxy.test", "127.0.0.1", 60);
    let socks = SocksServer::start(None, &[("proxy.goproxy.test", "127.0.0.1")]).await;
    let url = format!("http://proxy.goproxy.test:{port}");
    let dns_server = DnsServer::parse(&format!("udp://{}", dns.plain)).unwrap();

    let local = TestProxy::start_with(&[&url], |s| {
        s.proxy = proxy(&socks.url("socks5", None));
        s.dns = dns_server.clone();
    })
    .await;
    assert_serves(&local, &m).await;
    let asked = dns.asked_about("proxy.goproxy.test").len();
    assert!(asked > 0, "the custom DNS was not asked");
    let seen = socks.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].atyp, seen[0].host.as_str(), seen[0].port),
        (1, "127.0.0.1", port)
    );

    let remote = TestProxy::start_with(&[&url], |s| {
        s.proxy = proxy(&socks.url("socks5h", None));
        s.dns = dns_server.clone();
    })
    .await;
    assert_serves(&remote, &m).await;
    let seen = socks.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[1].atyp, seen[1].host.as_str(), seen[1].port),
        (3, "proxy.goproxy.test", port)
    );
    assert_eq!(
        dns.asked_about("proxy.goproxy.test").len(),
        asked,
        "socks5h must not resolve locally"
    );
}

#[tokio::test]
async fn socks5_credentials_from_the_url_are_sent_and_checked() {
    let m = Module::simple("example.com/socks-auth", "v1.0.0");
    let upstream = upstream_with(&m).await;
    let socks = SocksServer::start(Some(("bob", "pa:ss@word")), &[]).await;
    // Reserved characters are percent-encoded in the URL and decoded for SOCKS.
    let good = socks.url("socks5", Some(("bob", "pa%3Ass%40word")));
    let p = TestProxy::start_with(&[&upstream.url], |s| s.proxy = proxy(&good)).await;
    assert_serves(&p, &m).await;
    let seen = socks.requests();
    assert_eq!(
        seen[0].credentials,
        Some(("bob".to_owned(), "pa:ss@word".to_owned()))
    );

    let bad = socks.url("socks5h", Some(("bob", "guess")));
    let hits = upstream.total_hits();
    let p = TestProxy::start_with(&[&upstream.url], |s| {
        s.proxy = proxy(&bad);
        s.retry_attempts = 1;
    })
    .await;
    let r = p
        .get(&Module::simple("example.com/other", "v1.0.0").url_path("info"))
        .await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(!body.contains("guess"), "the password leaked: {body}");
    assert_eq!(socks.auth_failures(), 1);
    assert_eq!(upstream.total_hits(), hits);
}

#[tokio::test]
async fn proxy_environment_variables_are_used_and_no_proxy_bypasses_them() {
    let m = Module::simple("example.com/from-env", "v1.0.0");
    let upstream = upstream_with(&m).await;
    let socks = SocksServer::start(None, &[]).await;
    let tinyproxy = Tinyproxy::start("alice", "s3cret");

    // SOCKS5_PROXY covers http targets when HTTP_PROXY is not set.
    let from_env = settings_from_env(&[("SOCKS5_PROXY", &socks.url("socks5h", None))]);
    let p = TestProxy::start_with(&[&upstream.url], |s| s.proxy = from_env.proxy.clone()).await;
    assert_serves(&p, &m).await;
    assert_eq!(socks.requests().len(), 1);

    // HTTP_PROXY (here lower case) wins for http targets.
    let from_env = settings_from_env(&[
        ("SOCKS5_PROXY", &socks.url("socks5h", None)),
        ("http_proxy", &tinyproxy.url(("alice", "s3cret"))),
    ]);
    let p = TestProxy::start_with(&[&upstream.url], |s| s.proxy = from_env.proxy.clone()).await;
    assert_serves(&p, &m).await;
    assert_eq!(socks.requests().len(), 1);
    assert_eq!(tinyproxy.requests().len(), 1, "{:?}", tinyproxy.requests());

    // NO_PROXY sends the upstream's host direct.
    let from_env = settings_from_env(&[
        ("SOCKS5_PROXY", &socks.url("socks5h", None)),
        ("NO_PROXY", "localhost,127.0.0.0/8"),
    ]);
    let hits = upstream.total_hits();
    let p = TestProxy::start_with(&[&upstream.url], |s| {
        s.proxy = from_env.proxy.clone();
        s.no_proxy = from_env.no_proxy.clone();
    })
    .await;
    assert_serves(&p, &m).await;
    assert_eq!(socks.requests().len(), 1, "NO_PROXY was ignored");
    assert!(upstream.total_hits() > hits);
}

#[tokio::test]
async fn checksum_database_traffic_goes_through_the_proxy() {
    let m = Module::simple("example.com/verified", "v1.0.0");
    let upstream = upstream_with(&m).await;
    let db = FakeSumDb::new("sum.goproxy.test", 7);
    db.add(&m);
    let db_url = db.serve("").await;
    let socks = SocksServer::start(None, &[]).await;
    let gosumdb = GoSumDb::parse(&format!("{} {db_url}", db.vkey)).unwrap();
    let p = TestProxy::start_with(&[&upstream.url], |s| {
        s.proxy = proxy(&socks.url("socks5h", None));
        s.gosumdb = gosumdb;
    })
    .await;
    assert_serves(&p, &m).await;
    assert!(db.total_hits() > 0);
    let ports: Vec<u16> = socks.requests().iter().map(|r| r.port).collect();
    assert!(ports.contains(&port_of(&upstream.url)), "{ports:?}");
    assert!(ports.contains(&port_of(&db_url)), "{ports:?}");
}
