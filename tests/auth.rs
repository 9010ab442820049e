//! Inbound authentication and the TLS listener: bearer tokens and basic users
//! (stored hashed), `auth_require: private` guarding only private modules, the
//! health probes always open, 401 with both challenges, HTTPS with a
//! certificate from a test CA, clear startup errors for broken TLS or auth
//! settings, `goproxy auth hash`, and the real `go` command authenticating with
//! its .netrc over HTTPS (it sends .netrc credentials over https only).

mod support;

use std::io::Write;
use std::process::Stdio;

use goproxy::config::private::CredentialSource;
use goproxy::config::{AuthRequire, PrivateUpstream, Settings, TokenHash, UserHash};
use goproxy::gomod::pattern::PrefixPatterns;
use goproxy::sumdb::config::ProxiedSumDb;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use support::cli::{expect_failure, path_str, proxy_args, runtime, tempdir, write};
use support::go::{GoEnv, expect_success};
use support::process::{ProxyProcess, command};
use support::server_tls::TestCa;
use support::{FakeUpstream, Module, TestProxy, client};

const TOKEN: &str = "tok-0123456789abcdef";

fn with_token(s: &mut Settings) {
    s.auth_tokens = vec![TokenHash::of(TOKEN)];
}

fn alice() -> UserHash {
    UserHash {
        name: "alice".into(),
        hash: goproxy::config::auth::hash_password("wonderland").expect("hash"),
    }
}

async fn get_with(url: &str, auth: Option<&str>) -> reqwest::Response {
    let mut request = client().get(url);
    if let Some(value) = auth {
        request = request.header(AUTHORIZATION, value);
    }
    request.send().await.expect("request to the proxy")
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

fn challenges(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn tokens_guard_every_request_but_the_health_probes() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/a", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], with_token).await;
    let url = |path: &str| format!("{}{path}", proxy.url);

    for open in ["/health", "/healthz", "/readyz"] {
        assert_eq!(get_with(&url(open), None).await.status(), 200, "{open}");
    }
    for path in [
        m.url_path("info"),
        m.url_path("zip"),
        "/example.com/a/@v/list".to_owned(),
        "/sumdb/sum.golang.org/latest".to_owned(),
        "/not-a-module".to_owned(),
    ] {
        let r = get_with(&url(&path), None).await;
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(
            challenges(&r),
            [
                r#"Basic realm="goproxy", charset="UTF-8""#,
                r#"Bearer realm="goproxy""#
            ],
            "{path}"
        );
        let body = r.text().await.unwrap();
        assert!(body.starts_with("authentication required"), "{body}");
    }
    for wrong in [
        "Bearer nope".to_owned(),
        format!("Bearer {TOKEN}x"),
        format!("Token {TOKEN}"),
        basic("anyone", "nope"),
    ] {
        let r = get_with(&url(&m.url_path("info")), Some(&wrong)).await;
        assert_eq!(r.status(), 401, "{wrong}");
        assert!(r.text().await.unwrap().starts_with("authentication failed"));
    }
    assert_eq!(upstream.total_hits(), 0, "refused requests went upstream");

    let r = get_with(&url(&m.url_path("zip")), Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), m.zip.as_slice());
    // A token as a basic password, under any name: what a .netrc entry sends.
    let r = get_with(&url(&m.url_path("mod")), Some(&basic("ci", TOKEN))).await;
    assert_eq!(r.status(), 200);
    proxy.stop().await;
}

#[tokio::test]
async fn users_authenticate_with_their_password() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/a", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| s.auth_users = vec![alice()]).await;
    let info = format!("{}{}", proxy.url, m.url_path("info"));

    // Twice: the second is answered from the remembered check.
    for _ in 0..2 {
        let r = get_with(&info, Some(&basic("alice", "wonderland"))).await;
        assert_eq!(r.status(), 200);
    }
    for wrong in [
        basic("alice", "Wonderland"),
        basic("bob", "wonderland"),
        basic("alice", ""),
        "Bearer wonderland".to_owned(),
    ] {
        let r = get_with(&info, Some(&wrong)).await;
        assert_eq!(r.status(), 401, "{wrong}");
        // No tokens configured: only the basic challenge.
        assert_eq!(
            challenges(&r),
            [r#"Basic realm="goproxy", charset="UTF-8""#]
        );
    }
    proxy.stop().await;
}

#[tokio::test]
async fn require_private_guards_only_private_modules() {
    let public = FakeUpstream::start().await;
    let private = FakeUpstream::start().await;
    let open = Module::simple("example.com/open", "v1.0.0");
    let closed = Module::simple("git.corp.example/team/x", "v1.0.0");
    public.add(open.clone());
    private.add(closed.clone());
    let proxy = TestProxy::start_with(&[&public.url], |s| {
        with_token(s);
        s.auth_require = AuthRequire::Private;
        s.goprivate = PrefixPatterns::parse("secret.example").unwrap();
        s.proxied_sumdbs = vec![ProxiedSumDb::parse("sum.golang.org").unwrap()];
        s.private_upstreams = vec![PrivateUpstream {
            patterns: PrefixPatterns::parse("*.corp.example").unwrap(),
            url: url::Url::parse(&private.url).unwrap(),
            auth: None,
            credentials: CredentialSource::None,
        }];
    })
    .await;
    let url = |path: &str| format!("{}{path}", proxy.url);
    let token = format!("Bearer {TOKEN}");

    for path in [open.url_path("zip"), "/example.com/open/@v/list".to_owned()] {
        assert_eq!(get_with(&url(&path), None).await.status(), 200, "{path}");
    }
    let guarded = [
        closed.url_path("info"),
        closed.url_path("mod"),
        closed.url_path("zip"),
        format!("/{}/@v/list", closed.path),
        format!("/{}/@latest", closed.path),
        "/secret.example/x/@v/list".to_owned(),
        format!("/sumdb/sum.golang.org/lookup/{}@v1.0.0", closed.path),
    ];
    for path in &guarded {
        assert_eq!(get_with(&url(path), None).await.status(), 401, "{path}");
    }
    assert_eq!(private.total_hits(), 0);
    for path in &guarded[..5] {
        assert_eq!(
            get_with(&url(path), Some(&token)).await.status(),
            200,
            "{path}"
        );
    }
    // Past authentication, a GOPRIVATE module without an upstream is the 404,
    // and a lookup of a private name the 403, they always were.
    assert_eq!(
        get_with(&url(&guarded[5]), Some(&token)).await.status(),
        404
    );
    assert_eq!(
        get_with(&url(&guarded[6]), Some(&token)).await.status(),
        403
    );
    proxy.stop().await;
}

#[tokio::test]
async fn the_tls_listener_serves_https_and_drops_plain_http() {
    let ca = TestCa::new();
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/a", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        with_token(s);
        s.tls_cert = Some(ca.cert.clone());
        s.tls_key = Some(ca.key.clone());
    })
    .await;
    let https = format!("https://127.0.0.1:{}", proxy.addr.port());
    let tls = ca.client();

    let r = tls.get(format!("{https}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = tls
        .get(format!("{https}{}", m.url_path("zip")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), m.zip.as_slice());
    let r = tls
        .get(format!("{https}{}", m.url_path("mod")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // No answer in clear, and a client that does not trust the CA stops at
    // the handshake.
    assert!(
        client()
            .get(format!("{}/healthz", proxy.url))
            .send()
            .await
            .is_err()
    );
    assert!(
        client()
            .get(format!("{https}/healthz"))
            .send()
            .await
            .is_err()
    );
    proxy.stop().await;
}

#[test]
fn broken_tls_and_auth_settings_are_startup_errors_that_say_what_to_fix() {
    let ca = TestCa::new();
    let dir = tempdir();
    let garbage = write(dir.path(), "garbage.pem", "not a certificate\n");
    let missing = dir.path().join("missing.pem");
    let (cert, key, other) = (
        path_str(&ca.cert),
        path_str(&ca.key),
        path_str(&ca.other_key),
    );
    let missing = path_str(&missing);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--tls-cert", cert],
            "only tls_cert is set: HTTPS needs both tls_cert and tls_key".to_owned(),
        ),
        (
            vec!["--tls-key", key],
            "only tls_key is set: HTTPS needs both tls_cert and tls_key".to_owned(),
        ),
        (
            vec!["--tls-cert", missing, "--tls-key", key],
            format!("tls_cert {missing}: cannot be read: "),
        ),
        (
            vec!["--tls-cert", cert, "--tls-key", missing],
            format!("tls_key {missing}: cannot be read: "),
        ),
        (
            vec!["--tls-cert", &garbage, "--tls-key", key],
            format!("tls_cert {garbage}: no certificate in it"),
        ),
        (
            vec!["--tls-cert", cert, "--tls-key", cert],
            format!("tls_key {cert}: no private key in it"),
        ),
        (
            vec!["--tls-cert", cert, "--tls-key", other],
            format!("tls_cert {cert} and tls_key {other} do not go together"),
        ),
        (
            vec!["--auth-require", "private"],
            "auth_require is private, but no auth_tokens or auth_users are set".to_owned(),
        ),
        (
            vec!["--auth-tokens", "secret-token"],
            "flag --auth-tokens: an entry is not a SHA-256 digest".to_owned(),
        ),
        (
            vec!["--auth-users", "alice:wonderland"],
            "flag --auth-users: entry 1 (alice): not a password hash".to_owned(),
        ),
    ];
    for (args, want) in cases {
        let stderr = expect_failure(dir.path(), &args, &[]);
        assert!(
            stderr.contains(&want),
            "{args:?}:\n got: {stderr}\nwant: {want}"
        );
        assert!(
            !stderr.contains("secret-token") && !stderr.contains("wonderland"),
            "{stderr}"
        );
    }
}

#[test]
fn auth_hash_prints_what_the_settings_take() {
    let dir = tempdir();
    let hash = |args: &[&str], input: &str| {
        let mut child = command(dir.path(), args, &[])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start goproxy auth hash");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write secret");
        let out = child.wait_with_output().expect("auth hash");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    };
    let token_hash = hash(&["auth", "hash", "--token"], &format!("{TOKEN}\n"));
    assert_eq!(token_hash, TokenHash::of(TOKEN).to_string());
    let password_hash = hash(&["auth", "hash"], "wonderland\n");
    assert!(password_hash.starts_with("$argon2id$"), "{password_hash}");
    let empty = command(dir.path(), &["auth", "hash"], &[])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no secret on standard input"));

    // Both work as the binary's own settings, from flags and the environment.
    let rt = runtime();
    let users = format!("alice:{password_hash}");
    let cache = dir.path().join("cache");
    let proxy = ProxyProcess::spawn(
        dir.path(),
        &proxy_args(&cache, "http://127.0.0.1:9", &["--auth-users", &users]),
        &[("AUTH_TOKENS", &token_hash)],
    );
    let status = |auth: Option<String>| {
        rt.block_on(async {
            get_with(
                &format!("{}/example.com/a/@v/list", proxy.url),
                auth.as_deref(),
            )
            .await
            .status()
            .as_u16()
        })
    };
    assert_eq!(status(None), 401);
    assert_eq!(
        status(Some(basic("alice", "wonderland"))),
        502,
        "past auth, upstream down"
    );
    assert_eq!(status(Some(format!("Bearer {TOKEN}"))), 502);
    assert_eq!(status(Some(basic("alice", "nope"))), 401);
    support::cli::wait_for_lines(&proxy, 4, |l| {
        support::cli::is_request_line(l, "/example.com/a/@v/list")
    });
    let logs = support::cli::strip_ansi(&proxy.logs());
    assert!(
        logs.contains("authentication failed") && logs.contains("user=alice"),
        "{logs}"
    );
    assert!(
        !logs.contains("wonderland") && !logs.contains(TOKEN),
        "{logs}"
    );
    assert!(logs.contains("credentials over plain http"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_command_authenticates_with_its_netrc_over_https() {
    let ca = TestCa::new();
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/a", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        with_token(s);
        s.auth_users = vec![alice()];
        s.tls_cert = Some(ca.cert.clone());
        s.tls_key = Some(ca.key.clone());
    })
    .await;
    let port = proxy.addr.port();
    let https = format!("https://127.0.0.1:{port}");
    let args = ["mod", "download", "-json", "example.com/a@v1.0.0"];

    // A user's password, then a token as the password.
    for (login, password) in [("alice", "wonderland"), ("ci", TOKEN)] {
        let go = GoEnv::new(&https);
        let netrc = write(
            go.root.path(),
            "netrc",
            &format!("machine 127.0.0.1:{port}\n  login {login}\n  password {password}\n"),
        );
        let out = go_with(
            &go,
            &args,
            &[("NETRC", &netrc), ("SSL_CERT_FILE", path_str(&ca.ca))],
        )
        .await;
        let out = expect_success(&args, out);
        let json: serde_json::Value = serde_json::from_str(&out).expect("go JSON");
        assert_eq!(json["Sum"], m.zip_hash().as_str(), "{json}");
    }
    assert_eq!(
        upstream.hits(&m.url_path("zip")),
        1,
        "the second go was a hit"
    );

    // Without credentials go shows the proxy's explanation.
    let go = GoEnv::new(&https);
    let empty = write(go.root.path(), "netrc", "");
    let out = go_with(
        &go,
        &args,
        &[("NETRC", &empty), ("SSL_CERT_FILE", path_str(&ca.ca))],
    )
    .await;
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("401"), "{all}");
    assert!(all.contains("authentication required"), "{all}");
    proxy.stop().await;
}

/// Runs `go` with extra environment variables on a blocking thread.
async fn go_with(go: &GoEnv, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = go.command(&go.work_dir(), args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("run go"))
        .await
        .expect("go thread")
}
