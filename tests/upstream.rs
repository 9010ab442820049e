//! Upstream behaviour: fallback order, retries with backoff and Retry-After, the
//! deliberate 404-vs-502 decision, request deduplication and a disconnecting leader.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::{FakeUpstream, Fault, Module, TestProxy, client};

#[tokio::test]
async fn falls_back_in_order_on_not_found() {
    let first = FakeUpstream::start().await;
    let second = FakeUpstream::start().await;
    let m = Module::simple("example.com/fallback", "v1.0.0");
    second.add(m.clone());
    let proxy = TestProxy::start(&[&first.url, &second.url]).await;
    let r = proxy.get(&m.url_path("zip")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), m.zip.as_slice());
    assert_eq!(first.hits(&m.url_path("zip")), 1, "404 is not retried");
    assert_eq!(second.hits(&m.url_path("zip")), 1);
    // The first upstream that has it wins; later ones are not asked.
    first.add(m.clone());
    let r = proxy.get(&m.url_path("mod")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(first.hits(&m.url_path("mod")), 1);
    assert_eq!(second.hits(&m.url_path("mod")), 0);
}

#[tokio::test]
async fn transient_errors_are_retried_then_the_next_upstream_is_tried() {
    let first = FakeUpstream::start().await;
    let second = FakeUpstream::start().await;
    let m = Module::simple("example.com/retry", "v1.0.0");
    first.add(m.clone());
    second.add(m.clone());
    first.set_always(Some(Fault::Status(503)));
    let proxy = TestProxy::start_with(&[&first.url, &second.url], |s| {
        s.retry_attempts = 3;
        s.retry_backoff = Duration::from_millis(50);
    })
    .await;
    let started = Instant::now();
    let r = proxy.get(&m.url_path("info")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        first.hits(&m.url_path("info")),
        3,
        "retry_attempts is the total number of attempts"
    );
    assert_eq!(second.hits(&m.url_path("info")), 1);
    // Two backoffs of at least 50 ms and 100 ms (jitter only adds).
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_recovers_from_a_broken_connection_and_429() {
    let upstream = FakeUpstream::start().await;
    let m = Module::sized("example.com/recover", "v1.0.0", 256 << 10);
    upstream.add(m.clone());
    upstream.push_faults(
        &m.url_path("zip"),
        &[
            Fault::Truncate,
            Fault::RetryAfter(429, 0),
            Fault::Status(502),
        ],
    );
    let proxy = TestProxy::start_with(&[&upstream.url], |s| s.retry_attempts = 4).await;
    let r = proxy.get(&m.url_path("zip")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), m.zip.as_slice());
    assert_eq!(upstream.hits(&m.url_path("zip")), 4);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/later", "v1.0.0");
    upstream.add(m.clone());
    upstream.push_faults(&m.url_path("mod"), &[Fault::RetryAfter(503, 1)]);
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.retry_backoff = Duration::from_millis(1)
    })
    .await;
    let started = Instant::now();
    assert_eq!(proxy.get(&m.url_path("mod")).await.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn not_found_anywhere_plus_failures_elsewhere_is_404() {
    let broken = FakeUpstream::start().await;
    let empty = FakeUpstream::start().await;
    broken.set_always(Some(Fault::Status(500)));
    let proxy = TestProxy::start_with(&[&broken.url, &empty.url], |s| s.retry_attempts = 2).await;
    let r = proxy.get("/example.com/nowhere/@v/v1.0.0.info").await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "a 404 anywhere lets the go command fall through to direct"
    );
    let body = r.text().await.unwrap();
    assert!(
        body.contains("not found") && body.contains("example.com/nowhere@v1.0.0"),
        "{body}"
    );
    // Order does not matter.
    let proxy = TestProxy::start_with(&[&empty.url, &broken.url], |s| s.retry_attempts = 2).await;
    assert_eq!(
        proxy
            .get("/example.com/nowhere/@v/v1.0.1.info")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn every_upstream_failing_is_502_with_reasons() {
    let a = FakeUpstream::start().await;
    let b = FakeUpstream::start().await;
    a.set_always(Some(Fault::Status(503)));
    b.set_always(Some(Fault::Status(403)));
    // A closed port: connection refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let secret = format!(
        "http://user:hunter2@{}",
        b.url.trim_start_matches("http://")
    );
    let proxy = TestProxy::start_with(&[&a.url, &secret, &closed], |s| s.retry_attempts = 2).await;
    let r = proxy.get("/example.com/down/@v/list").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    let body = r.text().await.unwrap();
    assert!(body.contains("503"), "{body}");
    assert!(body.contains("403"), "{body}");
    assert!(body.contains("connection"), "{body}");
    assert!(
        !body.contains("hunter2"),
        "credentials never reach clients: {body}"
    );
    assert_eq!(b.hits("/example.com/down/@v/list"), 1, "403 is not retried");
    assert_eq!(a.hits("/example.com/down/@v/list"), 2);
}

#[tokio::test]
async fn concurrent_requests_share_one_upstream_fetch() {
    let upstream = FakeUpstream::start().await;
    let m = Module::sized("example.com/herd", "v1.0.0", 1 << 20);
    upstream.add(m.clone());
    upstream.push_faults(
        &m.url_path("zip"),
        &[Fault::Delay(Duration::from_millis(300))],
    );
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let url = format!("{}{}", proxy.url, m.url_path("zip"));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let r = client().get(url).send().await.unwrap();
            (r.status(), r.bytes().await.unwrap())
        }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.as_ref(), m.zip.as_slice());
    }
    assert_eq!(
        upstream.hits(&m.url_path("zip")),
        1,
        "exactly one upstream fetch for 50 requests"
    );
}

#[tokio::test]
async fn followers_share_the_leaders_error() {
    let upstream = FakeUpstream::start().await;
    upstream.set_always(Some(Fault::Delay(Duration::from_millis(200))));
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let url = format!("{}/example.com/ghost/@v/v1.0.0.mod", proxy.url);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            client().get(url).send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::NOT_FOUND);
    }
    assert_eq!(upstream.hits("/example.com/ghost/@v/v1.0.0.mod"), 1);
}

#[tokio::test]
async fn a_disconnecting_leader_cancels_nothing() {
    let upstream = FakeUpstream::start().await;
    let m = Module::sized("example.com/leader", "v1.0.0", 512 << 10);
    upstream.add(m.clone());
    upstream.push_faults(
        &m.url_path("zip"),
        &[Fault::Delay(Duration::from_millis(400))],
    );
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let url = format!("{}{}", proxy.url, m.url_path("zip"));
    // The leader gives up long before the upstream answers.
    let leader = client()
        .get(&url)
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(leader.is_err(), "the leader timed out");
    let follower = client().get(&url).send().await.unwrap();
    assert_eq!(follower.status(), StatusCode::OK);
    assert_eq!(follower.bytes().await.unwrap().as_ref(), m.zip.as_slice());
    assert_eq!(
        upstream.hits(&m.url_path("zip")),
        1,
        "the follower joined the leader's fetch"
    );
}

#[tokio::test]
async fn slow_headers_time_out_and_count_as_transient() {
    let slow = FakeUpstream::start().await;
    let good = FakeUpstream::start().await;
    let m = Module::simple("example.com/slow", "v1.0.0");
    slow.add(m.clone());
    good.add(m.clone());
    slow.set_always(Some(Fault::Delay(Duration::from_secs(10))));
    let proxy = TestProxy::start_with(&[&slow.url, &good.url], |s| {
        s.retry_attempts = 2;
        s.upstream_header_timeout = Duration::from_millis(200);
    })
    .await;
    let started = Instant::now();
    assert_eq!(
        proxy.get(&m.url_path("info")).await.status(),
        StatusCode::OK
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
