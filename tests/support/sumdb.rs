//! A fake Go checksum database: a real transparency log (RFC 6962 hashes,
//! stored-hash numbering, height-8 tiles) over records made from the test
//! modules, with tree heads signed by a test key, answering `latest`,
//! `lookup/<path>@<version>` and `tile/8/...` like `golang.org/x/mod/sumdb`'s
//! server.
//!
//! It is served by a [`FakeUpstream`](super::FakeUpstream) under
//! `/sumdb/<name>/...` (with `supported` answering 200) or on its own address
//! for an explicit `GOSUMDB="<key> <url>"`. Records are appended as modules
//! are added, so the tree grows during a test. For the failure tests it can
//! record a wrong hash (a consistently lying database), answer a lookup whose
//! record the tree does not hold, inject a status or body for one request, and
//! fork: switch to another history signed with the same key.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use goproxy::sumdb::note::{Signer, TreeHead};
use goproxy::sumdb::tlog::{self, Hash, Tile, TileLevel, TlogError};

use super::module::{Module, escape};

/// The signer key of the checksum database used by cmd/go's own tests
/// (published in `golang/go` `src/cmd/go/proxy_test.go`).
pub const LOCALDEV_SIGNER: &str =
    "PRIVATE+KEY+localhost.localdev/sumdb+00000c67+AXu6+oaVaOYuQOFrf1V59JK1owcFlJcHwwXHDfDGxSPk";
/// Its verifier key, as `GOSUMDB` takes it.
pub const LOCALDEV_VERIFIER: &str =
    "localhost.localdev/sumdb+00000c67+AcTrnkbUA+TU4heY3hkjiSES/DSQniBqIeQ/YppAUtK6";

/// Tile height of every Go checksum database.
pub const TILE_HEIGHT: u8 = 8;

/// What one request to the database can be made to answer instead.
#[derive(Clone, Debug)]
pub enum DbFault {
    /// This status with a short text body.
    Status(u16),
    /// 200 with this body.
    Body(Vec<u8>),
}

/// An answer of the database: status, content type, body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbAnswer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl DbAnswer {
    fn ok(content_type: &'static str, body: Vec<u8>) -> DbAnswer {
        DbAnswer {
            status: 200,
            content_type,
            body,
        }
    }

    fn text(status: u16, msg: String) -> DbAnswer {
        DbAnswer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: msg.into_bytes(),
        }
    }

    pub fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.body));
        *r.status_mut() = StatusCode::from_u16(self.status).expect("status");
        r.headers_mut()
            .insert("content-type", self.content_type.parse().expect("header"));
        r
    }
}

/// One history: record texts and the stored hashes over them.
#[derive(Clone, Default)]
struct Log {
    records: Vec<Vec<u8>>,
    hashes: Vec<Hash>,
}

impl Log {
    fn read(&self, indexes: &[u64]) -> tlog::Result<Vec<Hash>> {
        indexes
            .iter()
            .map(|&i| {
                self.hashes
                    .get(i as usize)
                    .copied()
                    .ok_or(TlogError::HashNotStored(i))
            })
            .collect()
    }

    fn append(&mut self, text: Vec<u8>) -> u64 {
        let n = self.records.len() as u64;
        let new = tlog::stored_hashes(n, &text, |idx| self.read(idx)).expect("stored hashes");
        assert_eq!(
            self.hashes.len() as u64,
            tlog::stored_hash_index(0, n),
            "stored hashes out of step"
        );
        self.hashes.extend(new);
        self.records.push(text);
        n
    }

    fn size(&self) -> u64 {
        self.records.len() as u64
    }

    fn head(&self) -> TreeHead {
        let size = self.size();
        let hash = tlog::tree_hash(size, |idx| self.read(idx)).expect("tree hash");
        TreeHead { size, hash }
    }
}

struct Inner {
    log: Log,
    /// Record id of each module version in the current log.
    ids: HashMap<(String, String), u64>,
    /// Lookups answered with this record text instead of the logged one.
    lookup_overrides: HashMap<(String, String), Vec<u8>>,
    hits: HashMap<String, usize>,
    requests: Vec<String>,
    faults: HashMap<String, VecDeque<DbFault>>,
    forks: usize,
}

/// A checksum database in memory. Cloning shares it.
#[derive(Clone)]
pub struct FakeSumDb {
    /// The database name: its signer name and its `/sumdb/<name>/` path.
    pub name: String,
    /// The verifier key for `GOSUMDB`.
    pub vkey: String,
    signer: Arc<Signer>,
    inner: Arc<Mutex<Inner>>,
}

impl FakeSumDb {
    /// A database called `name` with a key derived from `seed`.
    pub fn new(name: &str, seed: u8) -> FakeSumDb {
        let (signer, vkey) = Signer::generate(name, [seed; 32]).expect("test signer");
        Self::with_signer(signer, vkey)
    }

    /// The database of cmd/go's tests, `localhost.localdev/sumdb`, with its
    /// published key (a name with a `/` in it).
    pub fn localdev() -> FakeSumDb {
        let signer = Signer::parse(LOCALDEV_SIGNER).expect("published signer key");
        Self::with_signer(signer, LOCALDEV_VERIFIER.to_owned())
    }

    /// Another database under the same name, with its own key: whatever it
    /// signs fails verification with this database's verifier key.
    pub fn impostor_of(other: &FakeSumDb, seed: u8) -> FakeSumDb {
        Self::new(&other.name, seed)
    }

    fn with_signer(signer: Signer, vkey: String) -> FakeSumDb {
        FakeSumDb {
            name: signer.name().to_owned(),
            vkey,
            signer: Arc::new(signer),
            inner: Arc::new(Mutex::new(Inner {
                log: Log::default(),
                ids: HashMap::new(),
                lookup_overrides: HashMap::new(),
                hits: HashMap::new(),
                requests: Vec::new(),
                faults: HashMap::new(),
                forks: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends the record of `module`: its two go.sum lines.
    pub fn add(&self, module: &Module) -> u64 {
        self.add_hashes(
            &module.path,
            &module.version,
            &module.zip_hash(),
            &module.mod_hash(),
        )
    }

    /// Appends a record with the given hashes (a wrong one makes the database
    /// lie consistently: the record is in the signed tree).
    pub fn add_hashes(&self, path: &str, version: &str, zip_h1: &str, mod_h1: &str) -> u64 {
        let text = record_text(path, version, zip_h1, mod_h1);
        let mut st = self.lock();
        let id = st.log.append(text.into_bytes());
        st.ids.insert((path.to_owned(), version.to_owned()), id);
        id
    }

    /// From now on, lookups of `path@version` carry this record text instead of
    /// the one in the log, with the genuine id and tree head: the tree does not
    /// prove it.
    pub fn tamper_lookup(&self, path: &str, version: &str, record_text: &str) {
        self.lock().lookup_overrides.insert(
            (path.to_owned(), version.to_owned()),
            record_text.as_bytes().to_vec(),
        );
    }

    /// Switches to another history signed with the same key: the first
    /// `shared` records are kept, one record the old history does not have
    /// comes next, and the remaining records are replayed after it. The new
    /// tree is larger than the old one but does not extend it.
    pub fn fork(&self, shared: usize) {
        let mut st = self.lock();
        st.forks += 1;
        let old = std::mem::take(&mut st.log);
        assert!(
            shared <= old.records.len(),
            "cannot share more than the log"
        );
        let mut log = Log::default();
        for text in &old.records[..shared] {
            log.append(text.clone());
        }
        let filler = format!("fork{}.example/filler", st.forks);
        let filler_hash = format!("h1:{}", "A".repeat(43) + "=");
        log.append(record_text(&filler, "v1.0.0", &filler_hash, &filler_hash).into_bytes());
        let mut moved = HashMap::new();
        for (key, &id) in &st.ids {
            if id >= shared as u64 {
                moved.insert(key.clone(), id);
            }
        }
        let mut replay: Vec<((String, String), u64)> = moved.into_iter().collect();
        replay.sort_by_key(|(_, id)| *id);
        for (key, id) in replay {
            let new_id = log.append(old.records[id as usize].clone());
            st.ids.insert(key, new_id);
        }
        st.log = log;
    }

    /// Number of records in the log.
    pub fn size(&self) -> u64 {
        self.lock().log.size()
    }

    /// The current tree head, unsigned.
    pub fn head(&self) -> TreeHead {
        self.lock().log.head()
    }

    /// The current signed tree note, as `latest` serves it.
    pub fn signed_head(&self) -> String {
        let head = self.head();
        self.signer.sign(&head.format()).expect("sign tree head")
    }

    /// The record id of `path@version`, if it is in the log.
    pub fn id_of(&self, path: &str, version: &str) -> Option<u64> {
        self.lock()
            .ids
            .get(&(path.to_owned(), version.to_owned()))
            .copied()
    }

    /// The go.sum lines the database holds for `module`, as go writes them.
    pub fn go_sum_lines(&self, path: &str, version: &str) -> Vec<String> {
        let st = self.lock();
        let id = st.ids[&(path.to_owned(), version.to_owned())];
        String::from_utf8(st.log.records[id as usize].clone())
            .expect("utf-8 record")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Requests seen for exactly this path below the database's base URL
    /// (e.g. `lookup/example.com/a@v1.0.0`, `tile/8/0/000.p/2`, `supported`).
    pub fn hits(&self, sub: &str) -> usize {
        self.lock().hits.get(sub).copied().unwrap_or(0)
    }

    /// Every request that reached the database, `supported` included.
    pub fn total_hits(&self) -> usize {
        self.lock().requests.len()
    }

    /// Every request path below the base URL, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Requests whose path starts with `prefix` (e.g. `lookup/`, `tile/`).
    pub fn hits_with_prefix(&self, prefix: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|p| p.starts_with(prefix))
            .count()
    }

    /// Faults applied to the next requests for `sub`, one per request.
    pub fn push_faults(&self, sub: &str, faults: &[DbFault]) {
        self.lock()
            .faults
            .entry(sub.to_owned())
            .or_default()
            .extend(faults.iter().cloned());
    }

    /// What the database answers for `sub` right now, without counting it.
    pub fn answer(&self, sub: &str) -> DbAnswer {
        let st = self.lock();
        self.answer_locked(&st, sub)
    }

    /// Answers a request for `sub`, the path below the base URL; counted.
    pub fn handle(&self, sub: &str) -> DbAnswer {
        let mut st = self.lock();
        *st.hits.entry(sub.to_owned()).or_default() += 1;
        st.requests.push(sub.to_owned());
        if let Some(fault) = st.faults.get_mut(sub).and_then(VecDeque::pop_front) {
            return match fault {
                DbFault::Status(code) => DbAnswer::text(code, format!("injected status {code}\n")),
                DbFault::Body(body) => DbAnswer::ok("application/octet-stream", body),
            };
        }
        self.answer_locked(&st, sub)
    }

    fn answer_locked(&self, st: &Inner, sub: &str) -> DbAnswer {
        if sub == "supported" {
            return DbAnswer::ok("text/plain; charset=utf-8", Vec::new());
        }
        if sub == "latest" {
            let head = st.log.head();
            let signed = self.signer.sign(&head.format()).expect("sign");
            return DbAnswer::ok("text/plain; charset=utf-8", signed.into_bytes());
        }
        if let Some(target) = sub.strip_prefix("lookup/") {
            return self.lookup(st, target);
        }
        if sub.starts_with("tile/") {
            return tile(&st.log, sub);
        }
        DbAnswer::text(404, format!("not found: {sub}\n"))
    }

    fn lookup(&self, st: &Inner, target: &str) -> DbAnswer {
        let found = st
            .ids
            .iter()
            .find(|((path, version), _)| format!("{}@{}", escape(path), escape(version)) == target);
        let Some((key, &id)) = found else {
            return DbAnswer::text(404, format!("not found: {target}\n"));
        };
        let record = match st.lookup_overrides.get(key) {
            Some(text) => text.clone(),
            None => st.log.records[id as usize].clone(),
        };
        let head = st.log.head();
        let signed = self.signer.sign(&head.format()).expect("sign");
        let mut body = format!("{id}\n").into_bytes();
        body.extend_from_slice(&record);
        body.push(b'\n');
        body.extend_from_slice(signed.as_bytes());
        DbAnswer::ok("text/plain; charset=utf-8", body)
    }

    /// Serves the database on its own address, at `http://<addr>/<prefix>`
    /// (for an explicit `GOSUMDB="<key> <url>"` or a `proxied_sumdbs` URL).
    /// Returns that URL.
    pub async fn serve(&self, prefix: &str) -> String {
        let db = self.clone();
        let prefix_path = format!("/{}", prefix.trim_matches('/'));
        let base = prefix_path.clone();
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let db = db.clone();
            let base = base.clone();
            async move {
                let path = uri.path();
                match path
                    .strip_prefix(base.trim_end_matches('/'))
                    .and_then(|p| p.strip_prefix('/'))
                {
                    Some(sub) => db.handle(sub).into_response(),
                    None => DbAnswer::text(404, "not found\n".to_owned()).into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake sumdb");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}{}", prefix_path.trim_end_matches('/'))
    }
}

/// The record text of a module version: its two go.sum lines.
pub fn record_text(path: &str, version: &str, zip_h1: &str, mod_h1: &str) -> String {
    format!("{path} {version} {zip_h1}\n{path} {version}/go.mod {mod_h1}\n")
}

/// A hash or data tile of the log, if the tree has it.
fn tile(log: &Log, sub: &str) -> DbAnswer {
    let Ok(tile) = Tile::parse_path(sub) else {
        return DbAnswer::text(400, format!("malformed tile path {sub}\n"));
    };
    if tile.h != TILE_HEIGHT {
        return DbAnswer::text(404, format!("no tiles of height {}\n", tile.h));
    }
    let h = u32::from(tile.h);
    let start = tile.n << h;
    let end = start + u64::from(tile.w);
    match tile.l {
        TileLevel::Data => {
            if end > log.size() {
                return DbAnswer::text(404, format!("tile {sub} is beyond the tree\n"));
            }
            // Each record's text followed by a blank line, without the id line.
            let mut data = Vec::new();
            for text in &log.records[start as usize..end as usize] {
                data.extend_from_slice(text);
                data.push(b'\n');
            }
            DbAnswer::ok("text/plain; charset=utf-8", data)
        }
        TileLevel::Hash(l) => {
            let shift = u32::from(l) * h;
            let at_level = log.size().checked_shr(shift).unwrap_or(0);
            if end > at_level {
                return DbAnswer::text(404, format!("tile {sub} is beyond the tree\n"));
            }
            let data = tlog::read_tile_data(&tile, |idx| log.read(idx)).expect("tile data");
            DbAnswer::ok("application/octet-stream", data)
        }
    }
}
