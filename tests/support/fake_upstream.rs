//! A fake upstream GOPROXY on 127.0.0.1 serving modules that the tests build,
//! counting requests per path and injecting faults on demand.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use goproxy::gomod::{semver, version};

use super::module::{Module, escape};
use super::ranged;
pub use super::ranged::RangeMode;
use super::sumdb::{DbAnswer, FakeSumDb};

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and a short text body.
    Status(u16),
    /// Answer with this status and a `Retry-After: <secs>` header.
    RetryAfter(u16, u64),
    /// Wait this long before answering normally.
    Delay(Duration),
    /// Send headers (with the full Content-Length) and half the body, then break the connection.
    Truncate,
    /// Answer 200 with this body instead of the real one.
    Body(Vec<u8>),
    /// Send the body slowly: this many bytes per 10 ms.
    Slow(usize),
    /// Send this many bytes of the (possibly ranged) body, then break the connection.
    TruncateAt(usize),
    /// Send only this many bytes of the (possibly ranged) body, ending cleanly
    /// (the Content-Length says so too).
    Short(usize),
    /// From this request on, the zip at this path is these bytes (a new ETag);
    /// this request is answered from the new body.
    ChangeZip(Vec<u8>),
    /// Answer normally (to let earlier requests through before a fault).
    Pass,
}

#[derive(Default)]
struct Inner {
    modules: BTreeMap<(String, String), Module>,
    hits: HashMap<String, usize>,
    log: Vec<String>,
    faults: HashMap<String, VecDeque<Fault>>,
    always: Option<Fault>,
    active: usize,
    max_active: usize,
    /// Paths answered 200 with an empty list even though no module is known.
    empty_lists: Vec<String>,
    /// Checksum databases proxied under `/sumdb/<name>/`.
    sumdbs: Vec<FakeSumDb>,
    /// How `Range` requests are answered (off: always the whole body, 200).
    ranges: RangeMode,
    /// Bytes per second per response, for bodies of this size or more.
    throttle: Option<(u64, usize)>,
    /// Body bytes handed to the network, per path.
    sent: HashMap<String, u64>,
    /// `Range` header of every request (None: no header), per path.
    range_log: HashMap<String, Vec<Option<String>>>,
    /// Zip paths being answered right now, and the most at once.
    zips_active: HashMap<String, usize>,
    max_zips_active: usize,
    /// The most zip bodies being sent at once (any paths).
    max_zip_streams: usize,
    /// Replaced zip bodies (see `Fault::ChangeZip`).
    changed: HashMap<String, ranged::Body>,
    /// Each module's zip, shared by every response.
    zips: HashMap<(String, String), ranged::Body>,
    /// A header every request must carry (name, value), or get 401.
    required: Option<(String, String)>,
    /// Each request's path and headers, in arrival order.
    seen: Vec<(String, HeaderMap)>,
    /// Zips are answered with a redirect to this base URL + the path.
    redirect_zips: Option<String>,
}

#[derive(Clone)]
pub struct FakeUpstream {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeUpstream {
    pub async fn start() -> FakeUpstream {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake upstream");
        let addr = listener.local_addr().expect("addr");
        // Like a real server: without TCP_NODELAY, the tail of every body chunk
        // waits for the client's delayed ACK (40 ms per response).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeUpstream {
            url: format!("http://{addr}"),
            inner,
        }
    }

    pub fn add(&self, module: Module) -> &Self {
        let key = (module.path.clone(), module.version.clone());
        let mut st = self.lock();
        st.zips
            .insert(key.clone(), ranged::Body::new(module.zip.clone()));
        st.modules.insert(key, module);
        drop(st);
        self
    }

    pub fn remove(&self, path: &str, version: &str) {
        self.lock()
            .modules
            .remove(&(path.to_owned(), version.to_owned()));
    }

    /// Requests seen for exactly this path (e.g. `/rsc.io/quote/@v/list`).
    pub fn hits(&self, path: &str) -> usize {
        self.lock().hits.get(path).copied().unwrap_or(0)
    }

    pub fn total_hits(&self) -> usize {
        self.lock().hits.values().sum()
    }

    /// Every request path, in arrival order.
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    /// The most requests that were being answered at the same moment.
    pub fn max_concurrent(&self) -> usize {
        self.lock().max_active
    }

    /// Faults applied to the next requests for `path`, one per request, in order.
    pub fn push_faults(&self, path: &str, faults: &[Fault]) {
        self.lock()
            .faults
            .entry(path.to_owned())
            .or_default()
            .extend(faults.iter().cloned());
    }

    /// A fault applied to every request until cleared with `None`.
    pub fn set_always(&self, fault: Option<Fault>) {
        self.lock().always = fault;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Active(Arc<Mutex<Inner>>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).active -= 1;
    }
}

async fn serve(State(inner): State<Arc<Mutex<Inner>>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    let (fault, answer, ranges, throttle) = {
        let mut st = inner.lock().unwrap_or_else(|e| e.into_inner());
        *st.hits.entry(path.clone()).or_default() += 1;
        st.log.push(path.clone());
        let range = headers
            .get("range")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        st.range_log.entry(path.clone()).or_default().push(range);
        st.seen.push((path.clone(), headers.clone()));
        if let Some((name, value)) = &st.required
            && headers.get(name.as_str()).and_then(|v| v.to_str().ok()) != Some(value.as_str())
        {
            let mut r = text(401, "credentials required\n".to_owned());
            r.headers_mut().insert(
                "www-authenticate",
                "Basic realm=\"fake\"".parse().expect("header"),
            );
            return r;
        }
        if let Some(base) = &st.redirect_zips
            && path.ends_with(".zip")
        {
            let mut r = text(302, "moved\n".to_owned());
            r.headers_mut()
                .insert("location", format!("{base}{path}").parse().expect("header"));
            return r;
        }
        st.active += 1;
        st.max_active = st.max_active.max(st.active);
        let fault = match st.faults.get_mut(&path).and_then(VecDeque::pop_front) {
            Some(f) => Some(f),
            None => st.always.clone(),
        };
        if let Some(Fault::ChangeZip(body)) = &fault {
            st.changed
                .insert(path.clone(), ranged::Body::new(body.clone()));
        }
        let answer = match (sumdb_answer(&st, &path), st.changed.get(&path)) {
            (Some(answer), _) => answer,
            (None, Some(body)) => Answer::Zip(body.clone()),
            (None, None) => lookup(&st, &path),
        };
        (fault, answer, st.ranges, st.throttle)
    };
    let guard = Active(Arc::clone(&inner));
    let plain_fault = matches!(
        fault,
        None | Some(Fault::TruncateAt(_) | Fault::Short(_) | Fault::ChangeZip(_) | Fault::Pass)
    );
    if let (Answer::Zip(body), true) = (&answer, plain_fault) {
        let reply = ranged::Reply {
            mode: ranges,
            throttle: throttle
                .filter(|(min, _)| body.bytes.len() as u64 >= *min)
                .map(|(_, rate)| rate),
            fault: fault.clone(),
        };
        let response = reply.respond(body, &headers, ZipMeter::new(&inner, &path));
        drop(guard);
        return response;
    }
    let response = match fault {
        Some(Fault::Status(code)) => text(code, format!("injected status {code}\n")),
        Some(Fault::RetryAfter(code, secs)) => {
            let mut r = text(code, "slow down\n".to_owned());
            r.headers_mut()
                .insert("retry-after", secs.to_string().parse().expect("header"));
            r
        }
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            answer.into_response()
        }
        Some(Fault::Body(body)) => ok(Bytes::from(body)),
        Some(Fault::Truncate) => match answer {
            Answer::Found(body) => truncated(body),
            Answer::Zip(body) => truncated(body.bytes),
            other => other.into_response(),
        },
        Some(Fault::Slow(step)) => match answer {
            Answer::Found(body) => slow(body, step),
            Answer::Zip(body) => slow(body.bytes, step),
            other => other.into_response(),
        },
        Some(Fault::TruncateAt(_) | Fault::Short(_) | Fault::ChangeZip(_) | Fault::Pass) | None => {
            answer.into_response()
        }
    };
    drop(guard);
    response
}

/// Counts a zip response's bytes, and its path as active until the body ends.
struct ZipMeter {
    inner: Arc<Mutex<Inner>>,
    path: String,
}

impl ZipMeter {
    fn new(inner: &Arc<Mutex<Inner>>, path: &str) -> ZipMeter {
        let mut st = inner.lock().unwrap_or_else(|e| e.into_inner());
        *st.zips_active.entry(path.to_owned()).or_default() += 1;
        let distinct = st.zips_active.values().filter(|n| **n > 0).count();
        st.max_zips_active = st.max_zips_active.max(distinct);
        let streams = st.zips_active.values().sum();
        st.max_zip_streams = st.max_zip_streams.max(streams);
        ZipMeter {
            inner: Arc::clone(inner),
            path: path.to_owned(),
        }
    }
}

impl ranged::Meter for ZipMeter {
    fn add(&self, bytes: u64) {
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *st.sent.entry(self.path.clone()).or_default() += bytes;
    }
}

impl Drop for ZipMeter {
    fn drop(&mut self) {
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = st.zips_active.get_mut(&self.path) {
            *n = n.saturating_sub(1);
        }
    }
}

enum Answer {
    Found(Bytes),
    /// A zip, answered by `ranged` (with its ETag) unless a fault says otherwise.
    Zip(ranged::Body),
    NotFound(String),
    /// What a proxied checksum database answered.
    Db(DbAnswer),
}

impl Answer {
    fn into_response(self) -> Response {
        match self {
            Answer::Found(body) => ok(body),
            Answer::Zip(body) => ok(body.bytes),
            Answer::NotFound(msg) => text(404, msg),
            Answer::Db(answer) => answer.into_response(),
        }
    }
}

/// `/sumdb/<name>/...` for a database this upstream proxies (the longest
/// matching name, since names may contain `/`); 404 for any other name, like
/// proxy.golang.org for databases it does not serve.
fn sumdb_answer(st: &Inner, path: &str) -> Option<Answer> {
    let rest = path.strip_prefix("/sumdb/")?;
    let db = st
        .sumdbs
        .iter()
        .filter(|db| {
            rest.strip_prefix(db.name.as_str())
                .is_some_and(|r| r.starts_with('/'))
        })
        .max_by_key(|db| db.name.len());
    Some(match db {
        Some(db) => Answer::Db(db.handle(&rest[db.name.len() + 1..])),
        None => Answer::NotFound(format!("no checksum database here: {rest}\n")),
    })
}

fn modules_of<'a>(st: &'a Inner, escaped: &'a str) -> impl Iterator<Item = &'a Module> + 'a {
    st.modules
        .values()
        .filter(move |m| escape(&m.path) == escaped)
}

fn lookup(st: &Inner, path: &str) -> Answer {
    let rest = path.trim_start_matches('/');
    if let Some(module) = rest.strip_suffix("/@latest") {
        let mut versions: Vec<&Module> = modules_of(st, module).collect();
        versions.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then(semver::compare(&a.version, &b.version))
        });
        return match versions.last() {
            Some(m) => Answer::Found(Bytes::from(m.info.clone())),
            None => Answer::NotFound(format!("not found: {module}@latest\n")),
        };
    }
    let Some((module, file)) = rest.rsplit_once("/@v/") else {
        return Answer::NotFound("not found\n".to_owned());
    };
    if file == "list" {
        let mut versions: Vec<String> = modules_of(st, module)
            .filter(|m| !version::is_pseudo_version(&m.version))
            .map(|m| m.version.clone())
            .collect();
        if versions.is_empty()
            && modules_of(st, module).next().is_none()
            && !st.empty_lists.iter().any(|p| p == module)
        {
            return Answer::NotFound(format!("not found: {module}\n"));
        }
        versions.sort_by(|a, b| semver::compare(a, b));
        let body: String = versions.iter().map(|v| format!("{v}\n")).collect();
        return Answer::Found(Bytes::from(body));
    }
    let Some((ver, ext)) = file.rsplit_once('.') else {
        return Answer::NotFound("not found\n".to_owned());
    };
    match modules_of(st, module).find(|m| escape(&m.version) == ver) {
        Some(m) => match ext {
            "info" => Answer::Found(Bytes::from(m.info.clone())),
            "mod" => Answer::Found(Bytes::from(m.go_mod.clone())),
            // Shared, not copied: zips may be large and asked for in many pieces.
            "zip" => match st.zips.get(&(m.path.clone(), m.version.clone())) {
                Some(zip) => Answer::Zip(zip.clone()),
                None => Answer::Zip(ranged::Body::new(m.zip.clone())),
            },
            _ => Answer::NotFound("not found\n".to_owned()),
        },
        // Like the public proxy, resolve a bare vN.x.y query of a module without a
        // /vN suffix to its +incompatible version.
        None if ext == "info" => {
            match modules_of(st, module).find(|m| m.version == format!("{ver}+incompatible")) {
                Some(m) => Answer::Found(Bytes::from(m.info.clone())),
                None => Answer::NotFound(format!("not found: {module}@{ver}\n")),
            }
        }
        None => Answer::NotFound(format!("not found: {module}@{ver}\n")),
    }
}

/// Releases above pre-releases above pseudo-versions, as `@latest` prefers.
fn rank(m: &Module) -> u8 {
    if version::is_pseudo_version(&m.version) {
        0
    } else if !semver::prerelease(&m.version).is_empty() {
        1
    } else {
        2
    }
}

fn ok(body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::OK;
    r
}

fn text(code: u16, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(code).expect("status");
    r.headers_mut().insert(
        "content-type",
        "text/plain; charset=utf-8".parse().expect("header"),
    );
    r
}

fn truncated(body: Bytes) -> Response {
    let full = body.len();
    let half = body.slice(..full / 2);
    let stream = futures_util::stream::iter(vec![
        Ok::<Bytes, std::io::Error>(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected truncation",
        )),
    ]);
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert("content-length", full.to_string().parse().expect("header"));
    r
}

fn slow(body: Bytes, step: usize) -> Response {
    let full = body.len();
    let chunks: Vec<Bytes> = body
        .chunks(step.max(1))
        .map(Bytes::copy_from_slice)
        .collect();
    let stream = futures_util::stream::unfold(chunks.into_iter(), |mut it| async move {
        let next = it.next()?;
        tokio::time::sleep(Duration::from_millis(10)).await;
        Some((Ok::<Bytes, std::io::Error>(next), it))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert("content-length", full.to_string().parse().expect("header"));
    r
}

impl FakeUpstream {
    /// Makes zip answers honour `Range` and `If-Range` (with a strong ETag), or
    /// misbehave in the given way.
    pub fn set_ranges(&self, mode: RangeMode) {
        self.lock().ranges = mode;
    }

    /// Limits each zip response of at least `min_size` bytes to `bytes_per_sec`.
    pub fn throttle(&self, min_size: u64, bytes_per_sec: usize) {
        self.lock().throttle = Some((min_size, bytes_per_sec));
    }

    /// Body bytes sent for `path` so far (what a client could have received).
    pub fn bytes_sent(&self, path: &str) -> u64 {
        self.lock().sent.get(path).copied().unwrap_or(0)
    }

    /// The `Range` header of each request for `path`, in arrival order.
    pub fn ranges_requested(&self, path: &str) -> Vec<Option<String>> {
        self.lock().range_log.get(path).cloned().unwrap_or_default()
    }

    /// The most zip response bodies that were being sent at the same moment.
    pub fn max_zip_streams(&self) -> usize {
        self.lock().max_zip_streams
    }

    /// The most distinct zips that were being sent at the same moment.
    pub fn max_concurrent_zips(&self) -> usize {
        self.lock().max_zips_active
    }

    /// Serves `db` under `/sumdb/<name>/...`, with `supported` answering 200.
    pub fn serve_sumdb(&self, db: &FakeSumDb) -> &Self {
        self.lock().sumdbs.push(db.clone());
        self
    }

    /// Answers 401 to every request without `name: value`.
    pub fn require_header(&self, name: &str, value: &str) -> &Self {
        self.lock().required = Some((name.to_owned(), value.to_owned()));
        self
    }

    /// The value of header `name` in each request so far (None where absent).
    pub fn header_values(&self, name: &str) -> Vec<Option<String>> {
        self.lock()
            .seen
            .iter()
            .map(|(_, h)| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned))
            .collect()
    }

    /// Answers zip requests with a 302 to `base` + the request path.
    pub fn redirect_zips_to(&self, base: &str) -> &Self {
        self.lock().redirect_zips = Some(base.to_owned());
        self
    }

    /// Makes `list` for a module with no tagged versions answer an empty 200.
    pub fn add_empty_list(&self, escaped_module: &str) {
        self.lock().empty_lists.push(escaped_module.to_owned());
    }
}
