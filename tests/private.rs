//! Private upstreams: a module matching a `private_upstreams` pattern is fetched
//! from that upstream alone, with its credentials (basic, bearer, a header of
//! its own, the URL's user info or a .netrc entry) on every request; the name
//! never reaches a public upstream or a checksum database, whose request
//! counters prove it. GOPRIVATE/GONOPROXY modules without a private upstream
//! get a clear 404. Credentials never show in logs, error bodies or
//! `config show`.
//!
//! The private upstreams are fake GOPROXY servers that answer 401 unless the
//! expected header arrives, and record every request's headers.

mod support;

use goproxy::config::private::CredentialSource;
use goproxy::config::{CliArgs, PrivateUpstream, Secret, UpstreamAuth};
use goproxy::gomod::pattern::PrefixPatterns;
use goproxy::sumdb::config::GoSumDb;
use support::cli::{config_show, path_str, runtime, tempdir, write};
use support::process::ProxyProcess;
use support::{FakeSumDb, FakeUpstream, Fault, Module, TestProxy};

/// A private upstream entry as the config would produce it.
fn private(patterns: &str, url: &str, auth: Option<UpstreamAuth>) -> PrivateUpstream {
    let url = url::Url::parse(url).expect("private upstream URL");
    let credentials = match (&auth, url.username().is_empty()) {
        (Some(_), _) => CredentialSource::Config,
        (None, false) => CredentialSource::Url,
        (None, true) => CredentialSource::None,
    };
    PrivateUpstream {
        patterns: PrefixPatterns::parse(patterns).expect("patterns"),
        url,
        auth,
        credentials,
    }
}

fn bearer(token: &str) -> Option<UpstreamAuth> {
    Some(UpstreamAuth::Bearer(Secret::new(token)))
}

/// Every kind of request the go command makes for a module.
fn all_paths(m: &Module) -> Vec<String> {
    vec![
        format!("/{}/@v/list", m.escaped_path()),
        format!("/{}/@latest", m.escaped_path()),
        m.url_path("info"),
        m.url_path("mod"),
        m.url_path("zip"),
    ]
}

async fn assert_served(proxy: &TestProxy, m: &Module) {
    for path in all_paths(m) {
        let r = proxy.get(&path).await;
        let status = r.status();
        let body = r.bytes().await.unwrap();
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        if path.ends_with(".zip") {
            assert_eq!(body.as_ref(), m.zip.as_slice(), "{path}");
        }
    }
}

#[tokio::test]
async fn every_auth_type_is_sent_on_every_request_to_the_private_upstream() {
    let m = Module::simple("git.corp.example/team/tool", "v1.2.0");
    let cases: [(&str, Option<UpstreamAuth>, &str, &str); 4] = [
        (
            "basic",
            Some(UpstreamAuth::Basic {
                user: "ci".into(),
                password: Secret::new("s3cret"),
            }),
            "authorization",
            // base64("ci:s3cret")
            "Basic Y2k6czNjcmV0",
        ),
        (
            "bearer",
            bearer("tok-123"),
            "authorization",
            "Bearer tok-123",
        ),
        (
            "header",
            Some(UpstreamAuth::Header {
                name: "Private-Token".into(),
                value: Secret::new("glpat-xyz"),
            }),
            "private-token",
            "glpat-xyz",
        ),
        ("url", None, "authorization", "Basic Y2k6czNjcmV0"),
    ];
    for (kind, auth, header, value) in cases {
        let public = FakeUpstream::start().await;
        public.add(m.clone());
        let upstream = FakeUpstream::start().await;
        upstream.add(m.clone()).require_header(header, value);
        let url = match kind {
            "url" => upstream.url.replace("http://", "http://ci:s3cret@"),
            _ => upstream.url.clone(),
        };
        let proxy = TestProxy::start_with(&[&public.url], |s| {
            s.private_upstreams = vec![private("*.corp.example", &url, auth)];
        })
        .await;
        assert_served(&proxy, &m).await;
        let seen = upstream.header_values(header);
        assert_eq!(seen.len(), 5, "{kind}: {:?}", upstream.log());
        assert!(
            seen.iter().all(|v| v.as_deref() == Some(value)),
            "{kind}: {seen:?}"
        );
        assert_eq!(public.total_hits(), 0, "{kind}: {:?}", public.log());
        proxy.stop().await;
    }
}

#[tokio::test]
async fn without_its_credentials_the_private_upstream_refuses_and_nothing_else_is_asked() {
    let m = Module::simple("git.corp.example/team/tool", "v1.2.0");
    let public = FakeUpstream::start().await;
    public.add(m.clone());
    let upstream = FakeUpstream::start().await;
    upstream
        .add(m.clone())
        .require_header("authorization", "Bearer right");
    let proxy = TestProxy::start_with(&[&public.url], |s| {
        s.private_upstreams = vec![private("*.corp.example", &upstream.url, bearer("wrong"))];
    })
    .await;
    let r = proxy.get(&m.url_path("zip")).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(body.contains("401"), "{body}");
    assert!(
        !body.contains("wrong"),
        "credential in the error body: {body}"
    );
    assert_eq!(public.total_hits(), 0, "{:?}", public.log());
    proxy.stop().await;
}

#[tokio::test]
async fn a_private_name_never_reaches_a_public_upstream_or_the_checksum_database() {
    let public = FakeUpstream::start().await;
    let db = FakeSumDb::new("sum.test.example", 1);
    public.serve_sumdb(&db);
    let private_mod = Module::simple("git.corp.example/team/x", "v1.0.0");
    let public_mod = Module::simple("example.com/open", "v1.0.0");
    // The public side knows both, so a leak would be answered, not hidden.
    for m in [&private_mod, &public_mod] {
        public.add(m.clone());
        db.add(m);
    }
    let upstream = FakeUpstream::start().await;
    upstream.add(private_mod.clone());
    let proxy = TestProxy::start_with(&[&public.url], |s| {
        s.gosumdb = GoSumDb::parse(&db.vkey).unwrap();
        s.private_upstreams = vec![private("*.corp.example", &upstream.url, bearer("t"))];
    })
    .await;

    assert_served(&proxy, &private_mod).await;
    // Served unverified: no hash is claimed for it.
    let meta = proxy
        .cache_file(&format!(
            "{}/@v/{}.zip.meta",
            private_mod.escaped_path(),
            private_mod.escaped_version()
        ))
        .expect("zip metadata");
    let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    assert!(meta.get("h1").is_none(), "{meta}");
    assert_eq!(meta["upstream"], upstream.url.as_str(), "{meta}");

    // Clients asking the checksum database through the proxy are refused too.
    let lookup = format!(
        "/sumdb/{}/lookup/{}@{}",
        db.name, private_mod.path, private_mod.version
    );
    let r = proxy.get(&lookup).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("private upstream"));

    assert_eq!(db.total_hits(), 0, "database asked: {:?}", db.requests());
    assert!(
        !public.log().iter().any(|p| p.contains("corp.example")),
        "a private name reached the public upstream: {:?}",
        public.log()
    );

    // The counters do count: a public module goes to both.
    let r = proxy.get(&public_mod.url_path("zip")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(public.hits(&public_mod.url_path("zip")), 1);
    assert_eq!(
        db.hits(&format!(
            "lookup/{}@{}",
            public_mod.escaped_path(),
            public_mod.escaped_version()
        )),
        1
    );
    proxy.stop().await;
}

#[tokio::test]
async fn the_first_matching_pattern_routes_and_there_is_no_fallback() {
    let public = FakeUpstream::start().await;
    let first = FakeUpstream::start().await;
    let second = FakeUpstream::start().await;
    let team = Module::simple("git.corp.example/team/x", "v1.0.0");
    let other = Module::simple("other.example/y", "v0.3.0");
    let only_second = Module::simple("git.corp.example/z", "v1.0.0");
    for upstream in [&public, &second] {
        upstream.add(team.clone());
        upstream.add(other.clone());
        upstream.add(only_second.clone());
    }
    first.add(team.clone());
    let proxy = TestProxy::start_with(&[&public.url], |s| {
        s.private_upstreams = vec![
            private("*.corp.example", &first.url, None),
            private("git.corp.example/team,other.example", &second.url, None),
        ];
    })
    .await;

    // Both patterns match: the first entry wins.
    assert_eq!(proxy.get(&team.url_path("zip")).await.status(), 200);
    assert_eq!(first.hits(&team.url_path("zip")), 1);
    assert_eq!(second.hits(&team.url_path("zip")), 0);
    assert_eq!(proxy.get(&other.url_path("info")).await.status(), 200);
    assert_eq!(second.hits(&other.url_path("info")), 1);

    // Routed to the first, which lacks it: 404, though others have it.
    let r = proxy.get(&only_second.url_path("mod")).await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains(&first.url));
    assert_eq!(second.hits(&only_second.url_path("mod")), 0);

    // A failing private upstream is 502, with no fallback either.
    first.set_always(Some(Fault::Status(503)));
    let r = proxy.get(&team.url_path("mod")).await;
    assert_eq!(r.status(), 502);
    assert_eq!(first.hits(&team.url_path("mod")), 3, "retried");
    assert_eq!(second.hits(&team.url_path("mod")), 0);
    assert_eq!(public.total_hits(), 0, "{:?}", public.log());
    proxy.stop().await;
}

#[tokio::test]
async fn goprivate_and_gonoproxy_without_a_private_upstream_get_a_clear_404() {
    let public = FakeUpstream::start().await;
    let db = FakeSumDb::new("sum.test.example", 1);
    public.serve_sumdb(&db);
    let by_goprivate = Module::simple("git.internal.example/a", "v1.0.0");
    let by_gonoproxy = Module::simple("rsc.io/private/b", "v1.0.0");
    for m in [&by_goprivate, &by_gonoproxy] {
        public.add(m.clone());
        db.add(m);
    }
    let proxy = TestProxy::start_with(&[&public.url], |s| {
        s.gosumdb = GoSumDb::parse(&db.vkey).unwrap();
        s.goprivate = PrefixPatterns::parse("*.internal.example").unwrap();
        s.gonoproxy = PrefixPatterns::parse("*.internal.example,rsc.io/private").unwrap();
    })
    .await;
    for m in [&by_goprivate, &by_gonoproxy] {
        for path in all_paths(m) {
            let r = proxy.get(&path).await;
            assert_eq!(r.status(), 404, "{path}");
            let body = r.text().await.unwrap();
            assert!(
                body.contains("private module: configure a private upstream"),
                "{path}: {body}"
            );
        }
    }
    assert_eq!(public.total_hits(), 0, "{:?}", public.log());
    assert_eq!(db.total_hits(), 0, "{:?}", db.requests());
    proxy.stop().await;
}

#[tokio::test]
async fn gonoproxy_none_lets_goprivate_modules_through_but_never_to_the_database() {
    // The go command's recipe for a corporate proxy that serves private modules:
    // GOPRIVATE keeps them from the checksum database, GONOPROXY=none still
    // sends them to the proxy.
    let public = FakeUpstream::start().await;
    let db = FakeSumDb::new("sum.test.example", 1);
    public.serve_sumdb(&db);
    let m = Module::simple("git.internal.example/a", "v1.0.0");
    public.add(m.clone());
    let proxy = TestProxy::start_with(&[&public.url], |s| {
        s.gosumdb = GoSumDb::parse(&db.vkey).unwrap();
        s.goprivate = PrefixPatterns::parse("*.internal.example").unwrap();
        s.gonoproxy = PrefixPatterns::parse("none").unwrap();
    })
    .await;
    assert_served(&proxy, &m).await;
    assert_eq!(public.hits(&m.url_path("zip")), 1);
    assert_eq!(db.total_hits(), 0, "{:?}", db.requests());
    proxy.stop().await;
}

#[tokio::test]
async fn retries_carry_the_credential_and_redirects_elsewhere_drop_it() {
    let m = Module::simple("git.corp.example/team/tool", "v1.0.0");
    let mirror = FakeUpstream::start().await;
    mirror.add(m.clone());
    let upstream = FakeUpstream::start().await;
    upstream
        .add(m.clone())
        .require_header("private-token", "glpat-xyz");
    upstream.push_faults(&m.url_path("mod"), &[Fault::Status(503)]);
    upstream.redirect_zips_to(&mirror.url);
    let proxy = TestProxy::start_with(&[], |s| {
        s.private_upstreams = vec![private(
            "*.corp.example",
            &upstream.url,
            Some(UpstreamAuth::Header {
                name: "Private-Token".into(),
                value: Secret::new("glpat-xyz"),
            }),
        )];
    })
    .await;

    assert_eq!(proxy.get(&m.url_path("mod")).await.status(), 200);
    assert_eq!(upstream.hits(&m.url_path("mod")), 2, "one retry");
    let r = proxy.get(&m.url_path("zip")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), m.zip.as_slice());
    assert_eq!(
        upstream.header_values("private-token"),
        vec![Some("glpat-xyz".to_owned()); 3]
    );
    // The zip came from the mirror, which never saw the credential.
    assert_eq!(mirror.hits(&m.url_path("zip")), 1);
    assert_eq!(mirror.header_values("private-token"), vec![None]);
    assert_eq!(mirror.header_values("authorization"), vec![None]);
    proxy.stop().await;
}

#[tokio::test]
async fn netrc_supplies_credentials_for_private_upstreams_without_their_own() {
    let m = Module::simple("git.corp.example/team/tool", "v1.0.0");
    let upstream = FakeUpstream::start().await;
    let host_port = upstream.url.trim_start_matches("http://").to_owned();
    upstream
        .add(m.clone())
        // base64("robot:from-netrc")
        .require_header("authorization", "Basic cm9ib3Q6ZnJvbS1uZXRyYw==");
    let dir = tempdir();
    let netrc = write(
        dir.path(),
        "netrc",
        &format!(
            "machine other.example login x password y\n\
             machine {host_port}\n  login robot\n  password from-netrc\n"
        ),
    );
    let args = CliArgs {
        private_upstreams: Some(format!("*.corp.example={}", upstream.url)),
        netrc: Some(netrc),
        ..CliArgs::default()
    };
    let loaded = goproxy::config::load(&args, &|_| None).expect("settings");
    let shown = goproxy::config::render(&loaded);
    assert!(shown.contains("[basic robot:*** from netrc]"), "{shown}");
    assert!(!shown.contains("from-netrc"), "{shown}");
    let private_upstreams = loaded.settings.private_upstreams;
    let proxy = TestProxy::start_with(&[], |s| s.private_upstreams = private_upstreams).await;
    assert_served(&proxy, &m).await;
    proxy.stop().await;
}

#[test]
fn credentials_from_the_environment_never_reach_logs_error_bodies_or_config_show() {
    let rt = runtime();
    let upstream = rt.block_on(FakeUpstream::start());
    let m = Module::simple("git.corp.example/team/tool", "v1.0.0");
    upstream.add(m.clone());
    upstream.set_always(Some(Fault::Status(500)));
    let dir = tempdir();
    let config = write(
        dir.path(),
        "goproxy.yaml",
        &format!(
            "private_upstreams:\n\
             \x20 - pattern: \"*.corp.example\"\n\
             \x20   url: {}\n\
             \x20   auth:\n\
             \x20     type: header\n\
             \x20     name: X-JFrog-Art-Api\n\
             \x20     value: \"${{ART_KEY}}\"\n\
             log_level: debug\n",
            upstream.url
        ),
    );
    let secret = "AKCp8-very-secret-key";
    let env = [("ART_KEY", secret)];

    let shown = config_show(dir.path(), &["--config", &config], &env);
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("[header X-JFrog-Art-Api: ***]"), "{shown}");

    let cache = dir.path().join("cache");
    let proxy = ProxyProcess::spawn(
        dir.path(),
        &[
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
            "--cache",
            path_str(&cache),
            "--gosumdb",
            "off",
            "--retry-backoff",
            "10ms",
        ],
        &env,
    );
    let (status, _, body) = support::cli::get(&rt, &format!("{}{}", proxy.url, m.url_path("zip")));
    assert_eq!(status, 502);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("500"), "{body}");
    assert!(!body.contains(secret), "{body}");
    // The upstream got it on each of its three attempts.
    assert_eq!(
        upstream.header_values("x-jfrog-art-api"),
        vec![Some(secret.to_owned()); 3]
    );
    support::cli::wait_for_lines(&proxy, 1, |l| {
        support::cli::is_request_line(l, &m.url_path("zip"))
    });
    let logs = proxy.logs();
    assert!(logs.contains("upstream attempt failed"), "{logs}");
    assert!(!logs.contains(secret), "{logs}");

    // An unset variable is a startup error that names it.
    let stderr = support::cli::expect_failure(dir.path(), &["--config", &config], &[]);
    assert!(
        stderr.contains("auth.value: environment variable ART_KEY is not set"),
        "{stderr}"
    );
}
