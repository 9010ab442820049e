//! The checksum database: what the proxy verifies before it stores a `.mod` or
//! `.zip` (signed tree heads, record proofs from tiles, consistency with the
//! trusted head kept in the cache), what it refuses (checksum mismatches, forked
//! logs, records the tree does not prove, foreign signatures), which modules
//! never reach the database (GONOSUMDB, GOPRIVATE), and the `/sumdb/<name>/`
//! pass-through that go clients use to reach the database through the proxy.
//!
//! The database is a `FakeSumDb` (a real transparency log with a test key),
//! proxied by the fake upstream under `/sumdb/<name>/` or served on its own
//! address. The last tests run the real `go` command with `GOSUMDB` set to the
//! test key, so go verifies through the proxy's `/sumdb/` too.

mod support;

use goproxy::gomod::pattern::PrefixPatterns;
use goproxy::sumdb::config::{GoSumDb, ProxiedSumDb};
use goproxy::sumdb::note::{self, TreeHead, Verifier};
use support::go::{GoEnv, go_ok, go_run};
use support::sumdb::record_text;
use support::{DbFault, FakeSumDb, FakeUpstream, Fault, Module, TestProxy};

// ---- verification on misses ----

#[tokio::test]
async fn zip_and_mod_misses_are_verified_through_the_database_the_upstream_serves() {
    let upstream = FakeUpstream::start().await;
    // The name has a '/' in it, like cmd/go's test database.
    let db = FakeSumDb::localdev();
    upstream.serve_sumdb(&db);
    let other = Module::simple("example.com/other", "v1.0.0");
    let m = Module::simple("example.com/a", "v1.2.3");
    for module in [&other, &m] {
        db.add(module);
        upstream.add(module.clone());
    }
    let proxy = start_verifying(&upstream, &db).await;

    let r = proxy.get(&m.url_path("mod")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), m.go_mod.as_slice());
    let r = proxy.get(&m.url_path("zip")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), m.zip.as_slice());

    // The database was found through the upstream's /sumdb/<name>/supported, once,
    // and one lookup served both artifacts.
    let supported = format!("/sumdb/{}/supported", db.name);
    assert_eq!(upstream.hits(&supported), 1, "log: {:?}", upstream.log());
    assert_eq!(db.hits(&lookup_path(&m)), 1, "db: {:?}", db.requests());
    assert!(db.hits_with_prefix("tile/8/0/") >= 1, "no tile fetched");

    // The verified hashes are kept next to the artifacts.
    let zip_meta = meta(&proxy, &cache_key(&m, "zip"));
    assert_eq!(zip_meta["h1"], m.zip_hash().as_str(), "{zip_meta}");
    let mod_meta = meta(&proxy, &cache_key(&m, "mod"));
    assert_eq!(mod_meta["h1"], m.mod_hash().as_str(), "{mod_meta}");
    let ziphash = proxy
        .cache_file(&format!("{}hash", cache_key(&m, "zip")))
        .expect(".ziphash in the cache");
    assert_eq!(String::from_utf8(ziphash).unwrap().trim_end(), m.zip_hash());

    // The trusted tree head is persisted in the cache: the database's head, signed.
    let trusted = trusted_head(&proxy, &db).expect("trusted head in the cache");
    assert_eq!(trusted, db.signed_head());
    assert_eq!(open_head(&db, &trusted), db.head());

    // The log grows; a later miss advances the trusted head after proving that
    // the new tree extends the old one.
    let later = Module::simple("example.com/later", "v0.1.0");
    db.add(&later);
    upstream.add(later.clone());
    let r = proxy.get(&later.url_path("zip")).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let advanced = trusted_head(&proxy, &db).unwrap();
    assert_eq!(open_head(&db, &advanced).size, 3);
    assert_eq!(advanced, db.signed_head());
    assert_eq!(upstream.hits(&supported), 1, "discovery is remembered");
    proxy.stop().await;
}

#[tokio::test]
async fn info_and_list_are_served_without_consulting_the_database() {
    let (upstream, db) = upstream_with_db().await;
    let m = Module::simple("example.com/a", "v1.0.0");
    db.add(&m);
    upstream.add(m.clone());
    let proxy = start_verifying(&upstream, &db).await;

    assert_eq!(proxy.get(&m.url_path("info")).await.status(), 200);
    assert_eq!(proxy.get("/example.com/a/@v/list").await.status(), 200);
    assert_eq!(
        db.total_hits(),
        0,
        "the database is for .mod and .zip only: {:?}",
        db.requests()
    );
    proxy.stop().await;
}

#[tokio::test]
async fn tampered_upstream_zip_is_refused_with_a_security_error_and_not_cached() {
    let (upstream, db) = upstream_with_db().await;
    let m = Module::simple("example.com/a", "v1.0.0");
    // Same path, version and go.mod; different code.
    let tampered = Module::with_files(
        &m.path,
        &m.version,
        Some(std::str::from_utf8(&m.go_mod).unwrap()),
        &[("lib.go", b"package a\n\nconst Version = \"evil\"\n")],
    );
    assert_ne!(tampered.zip_hash(), m.zip_hash());
    assert_eq!(tampered.mod_hash(), m.mod_hash());
    db.add(&m);
    upstream.add(tampered.clone());
    let proxy = start_verifying(&upstream, &db).await;

    let r = proxy.get(&m.url_path("zip")).await;
    let body = assert_security_error(r).await;
    assert!(
        body.starts_with("SECURITY ERROR: checksum mismatch"),
        "body: {body}"
    );
    assert!(body.contains("example.com/a@v1.0.0"), "body: {body}");
    assert!(
        body.contains(&tampered.zip_hash()),
        "downloaded hash: {body}"
    );
    assert!(body.contains(&m.zip_hash()), "database hash: {body}");
    assert_eq!(
        version_files(&proxy, &m, "zip"),
        Vec::<String>::new(),
        "a refused zip left files behind"
    );

    // Asked again, the proxy still refuses: the tampered zip was not kept.
    let r = proxy.get(&m.url_path("zip")).await;
    assert_security_error(r).await;
    assert_eq!(version_files(&proxy, &m, "zip"), Vec::<String>::new());

    // The go.mod is genuine and is served.
    assert_eq!(proxy.get(&m.url_path("mod")).await.status(), 200);
    proxy.stop().await;
}

#[tokio::test]
async fn tampered_upstream_go_mod_is_refused_with_a_security_error_and_not_cached() {
    let (upstream, db) = upstream_with_db().await;
    let m = Module::simple("example.com/a", "v1.0.0");
    let tampered = Module::with_files(
        &m.path,
        &m.version,
        Some("module example.com/a\n\ngo 1.21\n\nrequire example.com/evil v1.0.0\n"),
        &[("lib.go", b"package a\n")],
    );
    assert_ne!(tampered.mod_hash(), m.mod_hash());
    db.add(&m);
    upstream.add(tampered.clone());
    let proxy = start_verifying(&upstream, &db).await;

    let body = assert_security_error(proxy.get(&m.url_path("mod")).await).await;
    assert!(
        body.starts_with("SECURITY ERROR: checksum mismatch"),
        "body: {body}"
    );
    assert!(body.contains("example.com/a@v1.0.0"), "body: {body}");
    assert!(
        body.contains(&tampered.mod_hash()),
        "downloaded hash: {body}"
    );
    assert!(body.contains(&m.mod_hash()), "database hash: {body}");
    assert_eq!(version_files(&proxy, &m, "mod"), Vec::<String>::new());
    proxy.stop().await;
}

#[tokio::test]
async fn wrong_hash_recorded_in_the_database_refuses_the_genuine_zip() {
    let (upstream, db) = upstream_with_db().await;
    let m = Module::simple("example.com/a", "v1.0.0");
    let wrong = Module::simple("example.com/a", "v9.9.9").zip_hash();
    // The lie is in the signed log itself, so every proof checks out.
    db.add_hashes(&m.path, &m.version, &wrong, &m.mod_hash());
    upstream.add(m.clone());
    let proxy = start_verifying(&upstream, &db).await;

    let body = assert_security_error(proxy.get(&m.url_path("zip")).await).await;
    assert!(
        body.starts_with("SECURITY ERROR: checksum mismatch"),
        "body: {body}"
    );
    assert!(body.contains("example.com/a@v1.0.0"), "body: {body}");
    assert!(body.contains(&m.zip_hash()), "downloaded hash: {body}");
    assert!(body.contains(&wrong), "database hash: {body}");
    assert_eq!(version_files(&proxy, &m, "zip"), Vec::<String>::new());
    // The go.mod hash in the record is right.
    assert_eq!(proxy.get(&m.url_path("mod")).await.status(), 200);
    proxy.stop().await;
}

#[tokio::test]
async fn lookup_whose_record_the_signed_tree_does_not_hold_is_refused() {
    let (upstream, db) = upstream_with_db().await;
    let m = Module::simple("example.com/a", "v1.0.0");
    let evil = Module::with_files(&m.path, &m.version, None, &[("evil.go", b"package a\n")]);
    db.add(&Module::simple("example.com/first", "v1.0.0"));
    db.add(&m);
    // The lookup claims the hashes of the evil module, with a genuine signed
    // head: only the tile proof can tell.
    db.tamper_lookup(
        &m.path,
        &m.version,
        &record_text(&m.path, &m.version, &evil.zip_hash(), &evil.mod_hash()),
    );
    upstream.add(evil.clone());
    let proxy = start_verifying(&upstream, &db).await;

    for ext in ["zip", "mod"] {
        let body = assert_security_error(proxy.get(&m.url_path(ext)).await).await;
        assert!(body.contains("example.com/a@v1.0.0"), "body: {body}");
        assert!(body.contains("SECURITY ERROR"), "body: {body}");
    }
    assert_eq!(upstream.hits(&m.url_path("zip")), 0, "nothing downloaded");
    let files = proxy.cache_files();
    assert!(
        !files.iter().any(|f| f.starts_with("example.com/a/")),
        "cache: {files:?}"
    );
    assert!(
        !files.iter().any(|f| f.contains("/lookup/")),
        "an unproved lookup was cached: {files:?}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn tree_head_signed_by_another_key_is_refused_and_not_trusted() {
    let upstream = FakeUpstream::start().await;
    let genuine = FakeSumDb::new("sum.test.example", 1);
    let impostor = FakeSumDb::impostor_of(&genuine, 2);
    assert_ne!(genuine.vkey, impostor.vkey);
    upstream.serve_sumdb(&impostor);
    let m = Module::simple("example.com/a", "v1.0.0");
    genuine.add(&m);
    impostor.add(&m);
    upstream.add(m.clone());
    let proxy = start_verifying(&upstream, &genuine).await;

    let body = assert_security_error(proxy.get(&m.url_path("zip")).await).await;
    assert!(body.contains("signature"), "body: {body}");
    assert_eq!(trusted_head(&proxy, &genuine), None);
    assert_eq!(version_files(&proxy, &m, "zip"), Vec::<String>::new());
    proxy.stop().await;
}

// ---- forks ----

#[tokio::test]
async fn forked_tree_head_is_refused_and_the_trusted_head_kept_across_restarts() {
    let (upstream, db) = upstream_with_db().await;
    let a = Module::simple("example.com/a", "v1.0.0");
    let c = Module::simple("example.com/c", "v1.0.0");
    for m in [&a, &c] {
        db.add(m);
        upstream.add(m.clone());
    }
    let proxy = start_verifying(&upstream, &db).await;
    assert_eq!(proxy.get(&a.url_path("zip")).await.status(), 200);
    let trusted = trusted_head(&proxy, &db).expect("trusted head");
    assert_eq!(open_head(&db, &trusted).size, 2);

    // Same key, another history: record 1 is no longer c, so the new tree of
    // size 4 does not extend the trusted tree of size 2.
    db.fork(1);
    let b = Module::simple("example.com/b", "v1.0.0");
    db.add(&b);
    upstream.add(b.clone());
    assert_eq!(db.size(), 4);

    let body = assert_security_error(proxy.get(&b.url_path("zip")).await).await;
    assert!(body.contains("SECURITY ERROR"), "body: {body}");
    assert!(body.contains("example.com/b@v1.0.0"), "body: {body}");
    assert!(body.contains("inconsistent"), "body: {body}");
    assert_eq!(trusted_head(&proxy, &db).as_deref(), Some(trusted.as_str()));
    assert_eq!(version_files(&proxy, &b, "zip"), Vec::<String>::new());
    assert_eq!(upstream.hits(&b.url_path("zip")), 0, "nothing downloaded");
    // A module verified before the fork is still served from the cache.
    assert_eq!(proxy.get(&a.url_path("zip")).await.status(), 200);

    // A new proxy on the same cache knows the trusted head and refuses the fork too.
    let cache = proxy.stop_keeping_cache().await;
    let restarted = TestProxy::start_on(cache, &[&upstream.url], |s| {
        s.gosumdb = gosumdb(&db.vkey);
    })
    .await;
    let body = assert_security_error(restarted.get(&b.url_path("mod")).await).await;
    assert!(body.contains("inconsistent"), "body: {body}");
    assert_eq!(
        trusted_head(&restarted, &db).as_deref(),
        Some(trusted.as_str())
    );
    assert_eq!(version_files(&restarted, &b, "mod"), Vec::<String>::new());
    restarted.stop().await;
}

#[tokio::test]
async fn fork_sharing_no_history_is_refused() {
    let (upstream, db) = upstream_with_db().await;
    let a = Module::simple("example.com/a", "v1.0.0");
    db.add(&a);
    upstream.add(a.clone());
    let proxy = start_verifying(&upstream, &db).await;
    assert_eq!(proxy.get(&a.url_path("mod")).await.status(), 200);
    let trusted = trusted_head(&proxy, &db).unwrap();

    db.fork(0);
    let b = Module::simple("example.com/b", "v1.0.0");
    db.add(&b);
    upstream.add(b.clone());
    let body = assert_security_error(proxy.get(&b.url_path("mod")).await).await;
    assert!(body.contains("inconsistent"), "body: {body}");
    assert_eq!(trusted_head(&proxy, &db), Some(trusted));
    proxy.stop().await;
}

// ---- modules that never reach the database ----

#[tokio::test]
async fn gonosumdb_modules_are_fetched_without_asking_the_database() {
    let (upstream, db) = upstream_with_db().await;
    let private = Module::simple("git.corp.example/team/x", "v1.0.0");
    let exact = Module::simple("exact.example/y", "v0.1.0");
    upstream.add(private.clone());
    upstream.add(exact.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.gosumdb = gosumdb(&db.vkey);
        s.gonosumdb = PrefixPatterns::parse("*.corp.example,exact.example").unwrap();
    })
    .await;

    for m in [&private, &exact] {
        for ext in ["mod", "zip"] {
            let r = proxy.get(&m.url_path(ext)).await;
            assert_eq!(r.status(), 200, "{}{}", m.path, r.text().await.unwrap());
        }
        // Not verified, so no h1 is claimed.
        let zip_meta = meta(&proxy, &cache_key(m, "zip"));
        assert!(zip_meta.get("h1").is_none(), "{zip_meta}");
        assert!(
            proxy
                .cache_file(&format!("{}hash", cache_key(m, "zip")))
                .is_none(),
            "a .ziphash for an unverified zip"
        );
    }
    assert_eq!(db.total_hits(), 0, "database asked: {:?}", db.requests());
    assert_eq!(
        upstream.hits(&format!("/sumdb/{}/supported", db.name)),
        0,
        "database looked for"
    );
    assert!(!proxy.cache_files().iter().any(|f| f.starts_with("sumdb/")));

    // Prefix-glob semantics: `*.corp.example` covers hosts below corp.example,
    // not corp.example itself, so that one is looked up (and is not there).
    let apex = Module::simple("corp.example/x", "v1.0.0");
    upstream.add(apex.clone());
    let r = proxy.get(&apex.url_path("mod")).await;
    assert_eq!(r.status(), 404, "{}", r.text().await.unwrap());
    assert_eq!(db.hits(&lookup_path(&apex)), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn goprivate_modules_reach_neither_the_upstream_nor_the_database() {
    let (upstream, db) = upstream_with_db().await;
    let private = Module::simple("git.internal.example/team/x", "v1.0.0");
    upstream.add(private.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.gosumdb = gosumdb(&db.vkey);
        s.goprivate = PrefixPatterns::parse("*.internal.example").unwrap();
    })
    .await;

    for ext in ["info", "mod", "zip"] {
        let r = proxy.get(&private.url_path(ext)).await;
        assert_eq!(r.status(), 404);
        let body = r.text().await.unwrap();
        assert!(body.contains("private module"), "{ext}: {body}");
    }
    assert_eq!(
        proxy
            .get("/git.internal.example/team/x/@v/list")
            .await
            .status(),
        404
    );
    assert_eq!(
        upstream.total_hits(),
        0,
        "upstream asked: {:?}",
        upstream.log()
    );
    assert_eq!(db.total_hits(), 0, "database asked: {:?}", db.requests());
    assert_eq!(proxy.cache_files(), Vec::<String>::new());
    proxy.stop().await;
}

#[tokio::test]
async fn module_missing_from_the_database_is_404_pointing_at_gonosumdb() {
    let (upstream, db) = upstream_with_db().await;
    db.add(&Module::simple("example.com/known", "v1.0.0"));
    let m = Module::simple("example.com/unlisted", "v1.0.0");
    upstream.add(m.clone());
    let proxy = start_verifying(&upstream, &db).await;

    for ext in ["mod", "zip"] {
        let r = proxy.get(&m.url_path(ext)).await;
        assert_eq!(r.status(), 404);
        assert!(content_type(&r).starts_with("text/plain"));
        let body = r.text().await.unwrap();
        assert!(body.contains("example.com/unlisted@v1.0.0"), "{body}");
        assert!(
            body.contains("GONOSUMDB") && body.contains("GOPRIVATE"),
            "{body}"
        );
    }
    assert_eq!(version_files(&proxy, &m, ""), Vec::<String>::new());
    proxy.stop().await;
}

#[tokio::test]
async fn unreachable_database_is_502_explaining_gosumdb_and_caches_nothing() {
    let upstream = FakeUpstream::start().await;
    let db = FakeSumDb::new("sum.test.example", 1);
    let m = Module::simple("example.com/a", "v1.0.0");
    db.add(&m);
    upstream.add(m.clone());
    let closed = closed_port_url();
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.gosumdb = gosumdb(&format!("{} {closed}", db.vkey));
    })
    .await;

    for ext in ["zip", "mod"] {
        let r = proxy.get(&m.url_path(ext)).await;
        assert_eq!(r.status(), 502);
        assert!(content_type(&r).starts_with("text/plain"));
        let body = r.text().await.unwrap();
        assert!(body.contains("example.com/a@v1.0.0"), "{body}");
        assert!(body.contains("unreachable"), "{body}");
        assert!(body.contains("GOSUMDB") && body.contains("off"), "{body}");
        assert!(body.contains("<url>"), "how to point it elsewhere: {body}");
    }
    assert_eq!(proxy.cache_files(), Vec::<String>::new());
    // An explicit URL is used as is: the upstream is not asked for the database.
    assert_eq!(upstream.hits(&format!("/sumdb/{}/supported", db.name)), 0);
    proxy.stop().await;
}

#[tokio::test]
async fn explicit_database_url_is_used_instead_of_the_upstream() {
    let upstream = FakeUpstream::start().await;
    let db = FakeSumDb::new("sum.test.example", 1);
    let url = db.serve("direct/db").await;
    let m = Module::simple("example.com/a", "v1.0.0");
    db.add(&m);
    upstream.add(m.clone());
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.gosumdb = gosumdb(&format!("{} {url}", db.vkey));
    })
    .await;

    assert_eq!(proxy.get(&m.url_path("zip")).await.status(), 200);
    assert_eq!(db.hits(&lookup_path(&m)), 1, "{:?}", db.requests());
    assert!(
        !upstream.log().iter().any(|p| p.starts_with("/sumdb/")),
        "{:?}",
        upstream.log()
    );
    assert_eq!(
        meta(&proxy, &cache_key(&m, "zip"))["h1"],
        m.zip_hash().as_str()
    );
    proxy.stop().await;
}

// ---- /sumdb/<name>/ for clients ----

#[tokio::test]
async fn supported_is_200_only_for_the_databases_this_proxy_serves() {
    let (upstream, db) = upstream_with_db().await;
    db.add(&Module::simple("example.com/a", "v1.0.0"));
    let proxy = start_verifying(&upstream, &db).await;

    let r = proxy.get(&format!("/sumdb/{}/supported", db.name)).await;
    assert_eq!(r.status(), 200);
    for other in [
        "/sumdb/sum.golang.org/supported",
        "/sumdb/sum.test.example.evil/supported",
        "/sumdb/sum.test/supported",
    ] {
        let r = proxy.get(other).await;
        assert_eq!(r.status(), 404, "{other}");
        assert!(content_type(&r).starts_with("text/plain"));
    }
    proxy.stop().await;
}

#[tokio::test]
async fn supported_is_404_not_5xx_when_the_database_is_unreachable() {
    let upstream = FakeUpstream::start().await;
    let db = FakeSumDb::new("sum.test.example", 1);
    let closed = closed_port_url();
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.gosumdb = gosumdb(&format!("{} {closed}", db.vkey));
    })
    .await;
    // 404 lets go clients fall back to the next proxy or to the database itself.
    let r = proxy.get(&format!("/sumdb/{}/supported", db.name)).await;
    assert_eq!(r.status(), 404);
    let r = proxy.get(&format!("/sumdb/{}/latest", db.name)).await;
    assert_eq!(r.status(), 502);
    proxy.stop().await;
}

#[tokio::test]
async fn lookup_latest_and_tiles_pass_through_byte_for_byte_and_verified_ones_are_cached() {
    let (upstream, db) = upstream_with_db().await;
    let a = Module::simple("example.com/a", "v1.0.0");
    let b = Module::simple("example.com/B", "v1.1.0");
    let c = Module::simple("example.com/c", "v2.0.0+incompatible");
    for m in [&a, &b, &c] {
        db.add(m);
    }
    let proxy = start_verifying(&upstream, &db).await;
    let base = format!("/sumdb/{}/", db.name);

    // latest
    let r = proxy.get(&format!("{base}latest")).await;
    assert_eq!(r.status(), 200);
    assert!(content_type(&r).starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), db.signed_head());

    // lookup, with an escaped path (B → !b) and a +incompatible version
    for m in [&a, &b, &c] {
        let sub = lookup_path(m);
        let want = db.answer(&sub).body;
        let r = proxy.get(&format!("{base}{sub}")).await;
        assert_eq!(r.status(), 200, "{sub}");
        assert!(content_type(&r).starts_with("text/plain"));
        assert_eq!(r.bytes().await.unwrap().as_ref(), want.as_slice(), "{sub}");
        assert_eq!(db.hits(&sub), 1, "{sub}");
    }
    assert_eq!(lookup_path(&b), "lookup/example.com/!b@v1.1.0");

    // tiles: a partial hash tile, and the data tile
    let hash_tile = "tile/8/0/000.p/3";
    let data_tile = "tile/8/data/000.p/3";
    let want_hash_tile = db.answer(hash_tile).body;
    let want_data_tile = db.answer(data_tile).body;
    assert_eq!(want_hash_tile.len(), 3 * 32);
    for (tile, want) in [(hash_tile, &want_hash_tile), (data_tile, &want_data_tile)] {
        let r = proxy.get(&format!("{base}{tile}")).await;
        assert_eq!(r.status(), 200, "{tile}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), want.as_slice(), "{tile}");
    }
    assert_eq!(
        content_type(&proxy.get(&format!("{base}{hash_tile}")).await),
        "application/octet-stream"
    );

    // The log grows; everything asked before comes from the cache, unchanged,
    // and the partial tile keeps its width.
    db.add(&Module::simple("example.com/d", "v1.0.0"));
    for m in [&a, &b, &c] {
        let sub = lookup_path(m);
        let r = proxy.get(&format!("{base}{sub}")).await;
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        assert_eq!(db.hits(&sub), 1, "{sub} asked again");
    }
    // The hash tile was authenticated by the proxy's own verification and is
    // served from its cache; the data tile cannot be authenticated by the proxy,
    // so it is relayed again rather than cached unverified.
    for (tile, want, hits) in [
        (hash_tile, &want_hash_tile, 1),
        (data_tile, &want_data_tile, 2),
    ] {
        let r = proxy.get(&format!("{base}{tile}")).await;
        assert_eq!(r.bytes().await.unwrap().as_ref(), want.as_slice(), "{tile}");
        assert_eq!(db.hits(tile), hits, "{tile}");
    }
    // The wider partial tile is another tile, fetched as such.
    let wider = "tile/8/0/000.p/4";
    let r = proxy.get(&format!("{base}{wider}")).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), db.answer(wider).body);
    assert_eq!(db.hits(wider), 1);
    // A tile the tree does not have yet is the database's 404.
    let r = proxy.get(&format!("{base}tile/8/0/000")).await;
    assert_eq!(r.status(), 404);
    proxy.stop().await;
}

#[tokio::test]
async fn partial_tile_is_relayed_exactly_as_the_database_sent_it() {
    let (upstream, db) = upstream_with_db().await;
    for i in 0..5 {
        db.add(&Module::simple(&format!("example.com/m{i}"), "v1.0.0"));
    }
    let proxy = start_verifying(&upstream, &db).await;
    // Whatever the database sends for a `.p/W` tile is relayed unaltered: never
    // padded, cut or replaced by another width (go falls back on its own).
    let odd: Vec<u8> = (0..=200u8).collect();
    let sub = "tile/8/0/000.p/2";
    db.push_faults(sub, &[DbFault::Body(odd.clone())]);
    let r = proxy.get(&format!("/sumdb/{}/{sub}", db.name)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), odd.as_slice());
    // A database error is relayed as an error, not as a substitute tile.
    let sub = "tile/8/0/000.p/3";
    db.push_faults(sub, &[DbFault::Status(404)]);
    let r = proxy.get(&format!("/sumdb/{}/{sub}", db.name)).await;
    assert_eq!(r.status(), 404);
    proxy.stop().await;
}

#[tokio::test]
async fn lookups_of_private_modules_are_403_and_never_reach_the_database() {
    let (upstream, db) = upstream_with_db().await;
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.gosumdb = gosumdb(&db.vkey);
        s.goprivate = PrefixPatterns::parse("private.example").unwrap();
        s.gonosumdb = PrefixPatterns::parse("*.corp.example").unwrap();
    })
    .await;
    for target in [
        "private.example/x@v1.0.0",
        "private.example@v1.0.0",
        "git.corp.example/team/x@v1.2.3",
    ] {
        let r = proxy
            .get(&format!("/sumdb/{}/lookup/{target}", db.name))
            .await;
        assert_eq!(r.status(), 403, "{target}");
        let body = r.text().await.unwrap();
        assert!(body.contains("GOPRIVATE"), "{target}: {body}");
    }
    assert_eq!(db.total_hits(), 0, "database asked: {:?}", db.requests());
    assert!(
        upstream.log().is_empty(),
        "private names left the proxy: {:?}",
        upstream.log()
    );
    proxy.stop().await;
}

#[tokio::test]
async fn invalid_tile_and_lookup_paths_are_400_and_never_reach_the_database() {
    let (upstream, db) = upstream_with_db().await;
    db.add(&Module::simple("example.com/a", "v1.0.0"));
    let proxy = start_verifying(&upstream, &db).await;
    for sub in [
        "tile/8/0/1",
        "tile/8/0/0000",
        "tile/8/0/000.p/0",
        "tile/8/0/000.p/256",
        "tile/8/0/000.p/",
        "tile/8/0/x000/001",
        "tile/8/-1/000",
        "tile/8/64/000",
        "tile/31/0/000",
        "tile/0/0/000",
        "tile/8/0",
        "tile/8/datum/000",
        "lookup/example.com/a",
        "lookup/example.com/a@latest",
        "lookup/example.com/a@v1.0",
        "lookup/Example.com/a@v1.0.0",
    ] {
        let r = support::raw_get(proxy.addr, &format!("/sumdb/{}/{sub}", db.name)).await;
        assert_eq!(r.status, 400, "{sub}: {}", r.body);
    }
    let ok = proxy
        .get(&format!("/sumdb/{}/tile/8/0/000.p/1", db.name))
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(db.requests(), ["supported", "tile/8/0/000.p/1"]);
    proxy.stop().await;
}

#[tokio::test]
async fn proxied_sumdbs_serve_further_databases_by_url_or_through_the_upstream() {
    let (upstream, db) = upstream_with_db().await;
    let by_url = FakeSumDb::new("other.test.example", 3);
    let url = by_url.serve("").await;
    let via_upstream = FakeSumDb::new("third.test.example/db", 4);
    upstream.serve_sumdb(&via_upstream);
    let m = Module::simple("example.com/a", "v1.0.0");
    for d in [&db, &by_url, &via_upstream] {
        d.add(&m);
    }
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.gosumdb = gosumdb(&db.vkey);
        s.proxied_sumdbs = vec![
            ProxiedSumDb::parse(&format!("other.test.example {url}")).unwrap(),
            ProxiedSumDb::parse("third.test.example/db").unwrap(),
        ];
    })
    .await;

    for d in [&db, &by_url, &via_upstream] {
        let r = proxy.get(&format!("/sumdb/{}/supported", d.name)).await;
        assert_eq!(r.status(), 200, "{}", d.name);
        let sub = lookup_path(&m);
        let want = d.answer(&sub).body;
        let r = proxy.get(&format!("/sumdb/{}/{sub}", d.name)).await;
        assert_eq!(r.status(), 200, "{}", d.name);
        assert_eq!(r.bytes().await.unwrap().as_ref(), want.as_slice());
        assert_eq!(d.hits(&sub), 1, "{}", d.name);
    }
    // The proxy's own database stays the only one its downloads are checked
    // against; a name it was not given is still 404.
    let r = proxy.get("/sumdb/fourth.test.example/supported").await;
    assert_eq!(r.status(), 404);
    proxy.stop().await;
}

// ---- product bugs found while writing these tests ----

#[tokio::test]
async fn a_bad_answer_relayed_to_a_client_does_not_poison_verification() {
    let (upstream, db) = upstream_with_db().await;
    let a = Module::simple("example.com/a", "v1.0.0");
    let b = Module::simple("example.com/b", "v1.0.0");
    let proxy = start_verifying(&upstream, &db).await;
    let base = format!("/sumdb/{}/", db.name);

    // One bad answer from the database (or from anything between the proxy
    // and it) to a go client's tile request...
    db.add(&a);
    upstream.add(a.clone());
    let tile = "tile/8/0/000.p/1";
    db.push_faults(tile, &[DbFault::Body(vec![0; 32])]);
    let r = proxy.get(&format!("{base}{tile}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), [0u8; 32]);
    // ...must not make the honest database's genuine module unverifiable.
    let r = proxy.get(&a.url_path("zip")).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "after a bad tile was relayed: {body}");

    // The same for a lookup: one garbled answer relayed to a client...
    db.add(&b);
    upstream.add(b.clone());
    let lookup = lookup_path(&b);
    let mut garbled = db.answer(&lookup).body;
    let at = garbled.len() - 10;
    garbled[at] ^= 1; // a flipped bit in the signature
    db.push_faults(&lookup, &[DbFault::Body(garbled)]);
    assert_eq!(proxy.get(&format!("{base}{lookup}")).await.status(), 200);
    // ...must not refuse the genuine module for good.
    let r = proxy.get(&b.url_path("zip")).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "after a bad lookup was relayed: {body}");
    proxy.stop().await;
}

#[tokio::test]
async fn a_transient_failure_of_the_supported_probe_is_not_remembered() {
    let (upstream, db) = upstream_with_db().await;
    let m = Module::simple("example.com/a", "v1.0.0");
    db.add(&m);
    upstream.add(m.clone());
    let supported = format!("/sumdb/{}/supported", db.name);
    // The upstream is briefly unavailable: every retry of the first probe gets 503.
    upstream.push_faults(
        &supported,
        &[Fault::Status(503), Fault::Status(503), Fault::Status(503)],
    );
    let proxy = start_verifying(&upstream, &db).await;

    let first = proxy.get(&m.url_path("mod")).await;
    assert_eq!(first.status(), 502, "{}", first.text().await.unwrap());
    // The upstream has recovered: the database is reachable through it again.
    let r = proxy.get(&m.url_path("mod")).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(upstream.hits(&supported) > 3);
    proxy.stop().await;
}

// ---- the go command, verifying through the proxy ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_verifies_through_the_proxy_sumdb_and_writes_the_database_sums() {
    let upstream = FakeUpstream::start().await;
    let db = FakeSumDb::localdev();
    upstream.serve_sumdb(&db);
    let filler = Module::simple("example.com/filler", "v1.0.0");
    let m = Module::simple("example.com/a", "v1.0.0");
    let dep = Module::simple("example.com/Dep", "v0.2.0");
    for module in [&filler, &m, &dep] {
        db.add(module);
        upstream.add(module.clone());
    }
    let proxy = start_verifying(&upstream, &db).await;
    // GOSUMDB is the key alone: go must find /sumdb/<name>/supported on the proxy.
    let go = GoEnv::with_gosumdb(&proxy.url, &db.vkey);

    let out = go_ok(
        &go,
        &go.work_dir(),
        &["mod", "download", "-json", "example.com/a@v1.0.0"],
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&out).expect("go json");
    assert!(json.get("Error").is_none(), "{json}");
    assert_eq!(json["Sum"], m.zip_hash().as_str());
    assert_eq!(json["GoModSum"], m.mod_hash().as_str());
    // go looked the module up itself (through the proxy: the name does not resolve).
    let sumdb_cache = go.modcache().join("cache/download/sumdb").join(&db.name);
    assert!(
        sumdb_cache.join("lookup/example.com/a@v1.0.0").is_file(),
        "go made no checksum database lookup"
    );
    let go_latest = std::fs::read_to_string(
        go.root
            .path()
            .join("gopath/pkg/sumdb")
            .join(&db.name)
            .join("latest"),
    )
    .expect("go's trusted tree head");
    assert_eq!(go_latest, db.signed_head());

    // go get writes exactly the database's lines.
    let dir = go.root.path().join("scratch");
    std::fs::create_dir_all(&dir).unwrap();
    go_ok(&go, &dir, &["mod", "init", "example.com/scratch"]).await;
    go_ok(&go, &dir, &["get", "example.com/Dep@v0.2.0"]).await;
    let go_sum = std::fs::read_to_string(dir.join("go.sum")).unwrap();
    let mut got: Vec<&str> = go_sum.lines().collect();
    got.sort();
    let mut want = db.go_sum_lines(&dep.path, &dep.version);
    want.sort();
    assert_eq!(got, want);
    assert!(go_sum.contains(&dep.zip_hash()));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_download_of_a_tampered_zip_fails_and_the_proxy_caches_nothing() {
    let upstream = FakeUpstream::start().await;
    let db = FakeSumDb::localdev();
    upstream.serve_sumdb(&db);
    let m = Module::simple("example.com/a", "v1.0.0");
    let tampered = Module::with_files(
        &m.path,
        &m.version,
        Some(std::str::from_utf8(&m.go_mod).unwrap()),
        &[("lib.go", b"package a\n\nconst Version = \"evil\"\n")],
    );
    db.add(&m);
    upstream.add(tampered.clone());
    let proxy = start_verifying(&upstream, &db).await;
    let go = GoEnv::with_gosumdb(&proxy.url, &db.vkey);

    let out = go_run(
        &go,
        &go.work_dir(),
        &["mod", "download", "-json", "example.com/a@v1.0.0"],
    )
    .await;
    assert!(!out.status.success(), "go accepted a tampered zip");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("SECURITY ERROR") || text.contains("verifying module"),
        "output: {text}"
    );
    assert!(
        !go.modcache()
            .join("cache/download/example.com/a/@v/v1.0.0.zip")
            .exists(),
        "go kept the tampered zip"
    );
    assert_eq!(version_files(&proxy, &m, "zip"), Vec::<String>::new());
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_itself_refuses_a_tampered_zip_checked_through_the_pass_through() {
    let upstream = FakeUpstream::start().await;
    let db = FakeSumDb::localdev();
    upstream.serve_sumdb(&db);
    let m = Module::simple("example.com/a", "v1.0.0");
    let tampered = Module::with_files(
        &m.path,
        &m.version,
        Some(std::str::from_utf8(&m.go_mod).unwrap()),
        &[("lib.go", b"package a\n\nconst Version = \"evil\"\n")],
    );
    db.add(&m);
    upstream.add(tampered.clone());
    // This proxy does not verify, but relays the database to its clients.
    let proxy = TestProxy::start_with(&[&upstream.url], |s| {
        s.proxied_sumdbs = vec![ProxiedSumDb::parse(&db.name).unwrap()];
    })
    .await;
    let go = GoEnv::with_gosumdb(&proxy.url, &db.vkey);

    let out = go_run(
        &go,
        &go.work_dir(),
        &["mod", "download", "-json", "example.com/a@v1.0.0"],
    )
    .await;
    assert!(!out.status.success(), "go accepted a tampered zip");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("checksum mismatch") && text.contains(&m.zip_hash()),
        "go did not check the zip against the database: {text}"
    );
    assert!(db.hits(&lookup_path(&m)) >= 1, "{:?}", db.requests());
    assert!(
        !go.modcache()
            .join("cache/download/example.com/a/@v/v1.0.0.zip")
            .exists(),
        "go kept the tampered zip"
    );
    proxy.stop().await;
}

// ---- helpers ----

/// A verified record of another module is not an answer for this one: refused
/// as a security error, and never cached (by the client or the pass-through).
#[tokio::test]
async fn a_swapped_lookup_answer_is_refused_and_not_cached() {
    let (upstream, db) = upstream_with_db().await;
    let a = Module::simple("example.com/a", "v1.0.0");
    let other = Module::simple("example.com/other", "v1.0.0");
    for m in [&a, &other] {
        upstream.add(m.clone());
        db.add(m);
    }
    let proxy = start_verifying(&upstream, &db).await;
    let swapped = db.answer(&lookup_path(&other)).body;
    db.push_faults(
        &lookup_path(&a),
        &[DbFault::Body(swapped.clone()), DbFault::Body(swapped)],
    );
    let r = proxy.get(&a.url_path("mod")).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("SECURITY ERROR") && body.contains("another record"),
        "{body}"
    );
    let cached = format!("sumdb/{}/{}", db.name, lookup_path(&a));
    assert!(
        !proxy.cache_files().contains(&cached),
        "swapped lookup not cached"
    );
    // Relayed to a client, it is passed on but not cached either.
    let relayed = proxy
        .get(&format!("/sumdb/{}/{}", db.name, lookup_path(&a)))
        .await;
    assert_eq!(relayed.status(), 200);
    relayed.bytes().await.unwrap();
    assert!(!proxy.cache_files().contains(&cached));
    // The genuine answer is then verified and served.
    assert_eq!(proxy.get(&a.url_path("mod")).await.status(), 200);
    assert!(proxy.cache_files().contains(&cached));
    proxy.stop().await;
}

async fn upstream_with_db() -> (FakeUpstream, FakeSumDb) {
    let upstream = FakeUpstream::start().await;
    let db = FakeSumDb::new("sum.test.example", 1);
    upstream.serve_sumdb(&db);
    (upstream, db)
}

/// An in-process proxy over `upstream` verifying against `db`, by key alone
/// (so the database is found through the upstream).
async fn start_verifying(upstream: &FakeUpstream, db: &FakeSumDb) -> TestProxy {
    TestProxy::start_with(&[&upstream.url], |s| s.gosumdb = gosumdb(&db.vkey)).await
}

fn gosumdb(text: &str) -> GoSumDb {
    GoSumDb::parse(text).expect("GOSUMDB for the test database")
}

/// `lookup/<escaped path>@<escaped version>`, below the database's base URL.
fn lookup_path(m: &Module) -> String {
    format!("lookup/{}@{}", m.escaped_path(), m.escaped_version())
}

/// The cache key of an artifact, `<escaped path>/@v/<escaped version>.<ext>`.
fn cache_key(m: &Module, ext: &str) -> String {
    format!("{}/@v/{}.{ext}", m.escaped_path(), m.escaped_version())
}

/// Cache files of this version whose name starts with `<version>.<ext>`
/// (`ext` empty: all of them).
fn version_files(proxy: &TestProxy, m: &Module, ext: &str) -> Vec<String> {
    let prefix = cache_key(m, ext);
    proxy
        .cache_files()
        .into_iter()
        .filter(|f| f.starts_with(&prefix))
        .collect()
}

fn meta(proxy: &TestProxy, key: &str) -> serde_json::Value {
    let bytes = proxy
        .cache_file(&format!("{key}.meta"))
        .unwrap_or_else(|| panic!("{key}.meta missing; cache: {:?}", proxy.cache_files()));
    serde_json::from_slice(&bytes).expect("sidecar JSON")
}

/// The signed tree head the proxy trusts, as persisted in its cache.
fn trusted_head(proxy: &TestProxy, db: &FakeSumDb) -> Option<String> {
    proxy
        .cache_file(&format!("sumdb/{}/trusted-latest", db.name))
        .map(|b| String::from_utf8(b).expect("utf-8 note"))
}

/// Opens a signed tree note with the database's key.
fn open_head(db: &FakeSumDb, signed: &str) -> TreeHead {
    let verifier = Verifier::parse(&db.vkey).unwrap();
    let opened = note::open(signed.as_bytes(), &[verifier]).expect("signed by the database");
    TreeHead::parse_note_text(&opened.text).expect("tree note")
}

fn content_type(r: &reqwest::Response) -> String {
    r.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Asserts a 502 with a text/plain SECURITY ERROR body, and returns the body.
async fn assert_security_error(r: reqwest::Response) -> String {
    let status = r.status();
    let ctype = content_type(&r);
    let body = r.text().await.unwrap();
    assert_eq!(status, 502, "body: {body}");
    assert!(ctype.starts_with("text/plain"), "content-type {ctype}");
    assert!(body.contains("SECURITY ERROR"), "body: {body}");
    body
}

/// A URL on 127.0.0.1 where nothing listens.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
