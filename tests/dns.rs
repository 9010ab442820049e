//! The custom DNS resolver: upstreams are named `proxy.goproxy.test`, a name
//! only the test DNS server knows, so a download succeeds only if that server
//! was really asked. It answers over UDP, TCP, DNS over TLS, DNS over HTTPS
//! (RFC 8484 and the JSON API) and DNS over QUIC with certificates from a test
//! CA, and records which transport each question came over.

mod support;

use std::time::{Duration, Instant};

use goproxy::net::ca::CaFile;
use goproxy::net::dns::{DnsError, DnsServer, Resolver};
use goproxy::net::proxy::ProxySetting;
use goproxy::sumdb::config::GoSumDb;
use support::cli::{config_show, expect_failure, shown, tempdir};
use support::dns::{DNS_NAME, Mode, TestDns};
use support::socks::SocksServer;
use support::tls::TestCa;
use support::{FakeSumDb, FakeUpstream, Module, TestProxy};

const NAME: &str = "proxy.goproxy.test";

struct World {
    ca: TestCa,
    dns: TestDns,
    upstream: FakeUpstream,
    /// The upstream under its made-up name.
    url: String,
    module: Module,
}

async fn world() -> World {
    let ca = TestCa::new();
    let dns = TestDns::start(&ca).await;
    dns.add(NAME, "127.0.0.1", 300);
    let upstream = FakeUpstream::start().await;
    let module = Module::simple("example.com/resolved", "v1.0.0");
    upstream.add(module.clone());
    let port = url::Url::parse(&upstream.url).unwrap().port().unwrap();
    World {
        url: format!("http://{NAME}:{port}"),
        ca,
        dns,
        upstream,
        module,
    }
}

impl World {
    fn ca(&self) -> Option<CaFile> {
        Some(CaFile::load(&self.ca.pem_path).unwrap())
    }

    /// A proxy resolving through `dns`, with `tweak` applied last.
    async fn proxy(
        &self,
        dns: &str,
        tweak: impl FnOnce(&mut goproxy::config::Settings),
    ) -> TestProxy {
        let server = DnsServer::parse(dns).expect("dns value");
        TestProxy::start_with(&[&self.url], |s| {
            s.dns = server;
            tweak(s);
        })
        .await
    }

    /// Downloads the module's zip through `proxy` and checks it.
    async fn download(&self, proxy: &TestProxy) {
        let r = proxy.get(&self.module.url_path("zip")).await;
        let status = r.status();
        let body = r.bytes().await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body.as_ref(), self.module.zip.as_slice());
    }

    /// The transports the questions about the upstream came over.
    fn asked_via(&self) -> Vec<String> {
        let mut via: Vec<String> = self
            .dns
            .asked_about(NAME)
            .into_iter()
            .map(|a| a.via)
            .collect();
        via.dedup();
        via
    }
}

#[tokio::test]
async fn plain_dns_over_udp_and_tcp() {
    let w = world().await;
    for (dns, via) in [
        (w.dns.plain.to_string(), "udp"),
        (format!("udp://{}", w.dns.plain), "udp"),
        (format!("tcp://{}", w.dns.plain), "tcp"),
    ] {
        let before = w.dns.asked_about(NAME).len();
        let proxy = w.proxy(&dns, |_| {}).await;
        w.download(&proxy).await;
        let asked = w.dns.asked_about(NAME);
        assert!(asked.len() > before, "{dns}: not asked");
        assert!(
            asked[before..].iter().all(|a| a.via == via),
            "{dns}: {asked:?}"
        );
    }
}

#[tokio::test]
async fn dns_over_tls_bootstrapped_and_trusting_dns_ca_file() {
    let w = world().await;
    // The server's name is known only through dns_bootstrap.
    let dns = format!("tls://{DNS_NAME}:{}", w.dns.tls.port());
    let proxy = w
        .proxy(&dns, |s| {
            s.dns_bootstrap = vec!["127.0.0.1".parse().unwrap()];
            s.dns_ca_file = w.ca();
        })
        .await;
    w.download(&proxy).await;
    assert_eq!(w.asked_via(), ["tls"]);
}

#[tokio::test]
async fn an_untrusted_dns_server_certificate_is_refused_with_the_server_named() {
    let w = world().await;
    let dns = format!("tls://127.0.0.1:{}", w.dns.tls.port());
    let proxy = w.proxy(&dns, |s| s.retry_attempts = 1).await;
    let r = proxy.get(&w.module.url_path("info")).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "DNS server {dns} could not resolve {NAME}: cannot connect"
        )),
        "{body}"
    );
    assert!(body.contains("see dns_ca_file"), "{body}");
    assert!(w.dns.asked().is_empty(), "{:?}", w.dns.asked());
    assert_eq!(w.upstream.total_hits(), 0);
}

#[tokio::test]
async fn dns_over_https_in_wire_format() {
    let w = world().await;
    // `localhost` is found through the system resolver (no dns_bootstrap).
    let dns = format!("https://localhost:{}/dns-query", w.dns.https.port());
    let proxy = w.proxy(&dns, |s| s.dns_ca_file = w.ca()).await;
    w.download(&proxy).await;
    assert_eq!(w.asked_via(), ["https"]);
}

#[tokio::test]
async fn dns_over_https_with_the_json_api() {
    let w = world().await;
    let dns = format!("https://{DNS_NAME}:{}/resolve#json", w.dns.json.port());
    let proxy = w
        .proxy(&dns, |s| {
            s.dns_bootstrap = vec!["127.0.0.1".parse().unwrap()];
            s.dns_ca_file = w.ca();
        })
        .await;
    w.download(&proxy).await;
    assert_eq!(w.asked_via(), ["json"]);
}

#[tokio::test]
async fn dns_over_quic() {
    let w = world().await;
    let dns = format!("quic://{DNS_NAME}:{}", w.dns.quic.port());
    let proxy = w
        .proxy(&dns, |s| {
            s.dns_bootstrap = vec!["127.0.0.1".parse().unwrap()];
            s.dns_ca_file = w.ca();
        })
        .await;
    w.download(&proxy).await;
    assert_eq!(w.asked_via(), ["quic"]);
}

#[tokio::test]
async fn the_checksum_database_is_resolved_through_the_custom_dns() {
    let w = world().await;
    let db = FakeSumDb::new("sum.goproxy.test", 9);
    db.add(&w.module);
    let served = url::Url::parse(&db.serve("").await).unwrap();
    w.dns.add("sumdb.goproxy.test", "127.0.0.1", 300);
    let gosumdb = GoSumDb::parse(&format!(
        "{} http://sumdb.goproxy.test:{}",
        db.vkey,
        served.port().unwrap()
    ))
    .unwrap();
    let proxy = w
        .proxy(&format!("udp://{}", w.dns.plain), |s| s.gosumdb = gosumdb)
        .await;
    w.download(&proxy).await;
    assert!(db.total_hits() > 0);
    assert!(!w.dns.asked_about("sumdb.goproxy.test").is_empty());
}

#[tokio::test]
async fn dns_over_https_goes_through_the_outbound_proxy() {
    let w = world().await;
    let socks = SocksServer::start(None, &[]).await;
    let dns = format!("https://{DNS_NAME}:{}/dns-query", w.dns.https.port());
    let proxy = w
        .proxy(&dns, |s| {
            s.dns_bootstrap = vec!["127.0.0.1".parse().unwrap()];
            s.dns_ca_file = w.ca();
            s.proxy = ProxySetting::parse(&socks.url("socks5", None)).unwrap();
        })
        .await;
    w.download(&proxy).await;
    assert_eq!(w.asked_via(), ["https"]);
    let ports: Vec<u16> = socks.requests().iter().map(|r| r.port).collect();
    // The DoH query and the upstream request, both through SOCKS.
    assert!(ports.contains(&w.dns.https.port()), "{ports:?}");
    let upstream_port = url::Url::parse(&w.url).unwrap().port().unwrap();
    assert!(ports.contains(&upstream_port), "{ports:?}");
}

#[tokio::test]
async fn an_unknown_name_is_a_clear_error_naming_the_dns_server() {
    let w = world().await;
    let dns = format!("udp://{}", w.dns.plain);
    let port = url::Url::parse(&w.upstream.url).unwrap().port().unwrap();
    let proxy = TestProxy::start_with(&[&format!("http://nowhere.goproxy.test:{port}")], |s| {
        s.dns = DnsServer::parse(&dns).unwrap();
        s.retry_attempts = 1;
    })
    .await;
    let r = proxy.get(&w.module.url_path("info")).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "DNS server {dns} has no address (A or AAAA record) for nowhere.goproxy.test"
        )),
        "{body}"
    );
}

#[tokio::test]
async fn a_failing_or_silent_dns_server_is_a_bounded_clear_error() {
    let w = world().await;
    let dns = format!("udp://{}", w.dns.plain);

    w.dns.set_mode(Mode::ServFail);
    let proxy = w.proxy(&dns, |s| s.retry_attempts = 1).await;
    let r = proxy.get(&w.module.url_path("info")).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!("DNS server {dns} could not resolve {NAME}: ")),
        "{body}"
    );

    w.dns.set_mode(Mode::Silent);
    let proxy = w
        .proxy(&dns, |s| {
            s.retry_attempts = 1;
            s.dns_timeout = Duration::from_millis(400);
        })
        .await;
    let started = Instant::now();
    let r = proxy
        .get(&Module::simple("example.com/other", "v1.0.0").url_path("info"))
        .await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "DNS server {dns} did not answer for {NAME} within 400ms"
        )),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(w.upstream.total_hits(), 0);
}

/// The resolver itself, over one plain and one HTTPS transport: both address
/// families, IPv4 first, and answers kept for exactly their TTL.
#[tokio::test]
async fn a_and_aaaa_answers_cached_for_their_ttl() {
    let ca = TestCa::new();
    let dns = TestDns::start(&ca).await;
    dns.add("dual.goproxy.test", "::1", 1)
        .add("dual.goproxy.test", "127.0.0.2", 1);
    let ca_file = CaFile::load(&ca.pem_path).unwrap();
    let timeout = Duration::from_secs(2);
    let udp = Resolver::hickory(
        &DnsServer::parse(&format!("udp://{}", dns.plain))
            .unwrap()
            .unwrap(),
        Vec::new(),
        timeout,
        goproxy::net::ca::client_config([]).unwrap(),
    );
    let client = reqwest::Client::builder()
        .tls_certs_merge(ca_file.reqwest_certs())
        .build()
        .unwrap();
    let doh = Resolver::doh(
        &DnsServer::parse(&format!("https://127.0.0.1:{}/dns-query", dns.https.port()))
            .unwrap()
            .unwrap(),
        client,
        timeout,
    );
    for resolver in [&udp, &doh] {
        let questions = || dns.asked_about("dual.goproxy.test").len();
        let before = questions();
        let want: Vec<std::net::IpAddr> =
            vec!["127.0.0.2".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(resolver.lookup("dual.goproxy.test").await.unwrap(), want);
        let asked = questions() - before;
        assert_eq!(asked, 2, "one A and one AAAA question");
        assert_eq!(resolver.lookup("DUAL.goproxy.test.").await.unwrap(), want);
        assert_eq!(questions() - before, asked, "answered from the cache");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(resolver.lookup("dual.goproxy.test").await.unwrap(), want);
        assert_eq!(questions() - before, 2 * asked, "asked again after the TTL");
    }
    let error = udp.lookup("missing.goproxy.test").await.unwrap_err();
    assert!(matches!(error, DnsError::NoRecords { .. }), "{error}");

    // RFC 6761 names never reach a server, whatever the transport.
    let before = dns.asked().len();
    for resolver in [&udp, &doh] {
        let local = resolver.lookup("localhost").await.unwrap();
        assert_eq!(local[0], std::net::IpAddr::from([127, 0, 0, 1]));
        let error = resolver.lookup("upstream.invalid").await.unwrap_err();
        assert!(matches!(error, DnsError::NoRecords { .. }), "{error}");
    }
    assert_eq!(dns.asked().len(), before);
}

#[test]
fn malformed_dns_and_proxy_values_stop_startup() {
    let dir = tempdir();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            &["--dns", "ftp://dns.example"],
            &[],
            "flag --dns: invalid DNS server \"ftp://dns.example\" (scheme \"ftp\" is not supported",
        ),
        (
            &[],
            &[("DNS_SERVER", "quic://dns.example:0")],
            "environment variable DNS_SERVER: invalid DNS server \"quic://dns.example:0\" (invalid port \"0\"",
        ),
        (
            &["--proxy", "socks4://me:hunter2@p.example"],
            &[],
            "flag --proxy: invalid proxy URL \"socks4://***@p.example\" (scheme \"socks4\" is not supported",
        ),
        (
            &[],
            &[("HTTPS_PROXY", "http://p.example:99999")],
            "environment variable HTTPS_PROXY: invalid proxy URL \"http://p.example:99999\" (invalid port number",
        ),
    ];
    for (args, env, want) in cases {
        let stderr = expect_failure(dir.path(), args, env);
        assert!(stderr.contains(want), "\nwant: {want}\n got: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

#[test]
fn config_show_names_the_effective_proxy_and_its_source_without_credentials() {
    let dir = tempdir();
    let env = [
        ("HTTPS_PROXY", "http://alice:s3cret@proxy.corp.example:3128"),
        ("no_proxy", "localhost,.corp.example"),
        ("DNS_SERVER", "tls://dns.google"),
    ];
    let out = config_show(dir.path(), &[], &env);
    assert!(!out.contains("s3cret"), "{out}");
    assert_eq!(
        shown(&out, "proxy"),
        (
            "https: http://***@proxy.corp.example:3128, http: direct".to_owned(),
            "env HTTPS_PROXY".to_owned()
        )
    );
    assert_eq!(
        shown(&out, "no_proxy"),
        (
            ".localhost,.corp.example".to_owned(),
            "env no_proxy".to_owned()
        )
    );
    assert_eq!(
        shown(&out, "dns"),
        (
            "tls://dns.google:853".to_owned(),
            "env DNS_SERVER".to_owned()
        )
    );

    let out = config_show(dir.path(), &["--proxy", "off"], &env);
    assert_eq!(
        shown(&out, "proxy"),
        ("off".to_owned(), "flag --proxy".to_owned())
    );
}
