//! The real `go` command as the client: `go mod download`, `go list -m -versions`,
//! `go get` and `go build` through an in-process proxy over a fake upstream.
//! `GOPROXY` names only the proxy (no `direct`) and `GOSUMDB=off`, so every byte
//! `go` sees came through the proxy; the hashes `go` records are compared with the
//! ones computed from the fixture modules.
//!
//! `go` runs on a blocking thread (`spawn_blocking`) so the proxy and the fake
//! upstream keep serving on the runtime's workers while it runs.

mod support;

use support::go::{GoEnv, go_ok, go_run};
use support::{FakeUpstream, Module, TestProxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_mod_download_records_the_fixture_hashes_and_stores_the_zip() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/a", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let go = GoEnv::new(&proxy.url);

    let out = go_ok(
        &go,
        &go.work_dir(),
        &["mod", "download", "-json", "example.com/a@v1.0.0"],
    )
    .await;
    let json = parse_json(&out);
    assert!(json.get("Error").is_none(), "unexpected error: {json}");
    assert_eq!(json["Path"], "example.com/a");
    assert_eq!(json["Version"], "v1.0.0");
    assert_eq!(json["Sum"], m.zip_hash().as_str());
    assert_eq!(json["GoModSum"], m.mod_hash().as_str());

    let zip = go
        .modcache()
        .join("cache/download/example.com/a/@v/v1.0.0.zip");
    assert_eq!(json["Zip"], zip.to_str().unwrap());
    assert_eq!(std::fs::read(&zip).expect("zip in the module cache"), m.zip);
    // go also unpacked it.
    let lib = go.modcache().join("example.com/a@v1.0.0/lib.go");
    assert!(lib.is_file(), "{} missing", lib.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_list_versions_shows_the_upstream_releases_without_pseudo_versions() {
    let upstream = FakeUpstream::start().await;
    for v in [
        "v1.0.0",
        "v1.1.0",
        "v1.2.0-rc.1",
        "v0.9.0",
        "v1.1.1-0.20240102030405-abcdefabcdef",
    ] {
        upstream.add(Module::simple("example.com/a", v));
    }
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let go = GoEnv::new(&proxy.url);
    let dir = scratch_module(&go).await;

    let out = go_ok(&go, &dir, &["list", "-m", "-versions", "example.com/a"]).await;
    assert_eq!(out.trim(), "example.com/a v0.9.0 v1.0.0 v1.1.0 v1.2.0-rc.1");
    assert!(upstream.hits("/example.com/a/@v/list") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_get_latest_requires_the_latest_release_with_exact_go_sum_lines() {
    let upstream = FakeUpstream::start().await;
    let latest = Module::simple("example.com/a", "v1.1.0");
    for v in [
        "v1.0.0",
        "v1.2.0-rc.1",
        "v1.1.1-0.20240102030405-abcdefabcdef",
    ] {
        upstream.add(Module::simple("example.com/a", v));
    }
    upstream.add(latest.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let go = GoEnv::new(&proxy.url);
    let dir = scratch_module(&go).await;

    go_ok(&go, &dir, &["get", "example.com/a@latest"]).await;

    let go_mod = std::fs::read_to_string(dir.join("go.mod")).unwrap();
    let required: Vec<&str> = go_mod
        .lines()
        .filter(|l| l.contains("example.com/a "))
        .collect();
    assert_eq!(required.len(), 1, "go.mod:\n{go_mod}");
    assert!(
        required[0]
            .trim_start_matches("require")
            .trim()
            .starts_with("example.com/a v1.1.0"),
        "go.mod:\n{go_mod}"
    );

    let go_sum = std::fs::read_to_string(dir.join("go.sum")).unwrap();
    let mut lines: Vec<&str> = go_sum.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("example.com/a v1.1.0 {}", latest.zip_hash()),
            format!("example.com/a v1.1.0/go.mod {}", latest.mod_hash()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upper_case_module_path_downloads_and_builds() {
    let upstream = FakeUpstream::start().await;
    let lib = "package casepkg\n\n// Greeting is used by the scratch module's main.\nfunc Greeting() string { return \"hello from Upper/Case\" }\n";
    let m = Module::with_files(
        "example.com/Upper/Case",
        "v1.0.0",
        Some("module example.com/Upper/Case\n\ngo 1.21\n"),
        &[("casepkg/casepkg.go", lib.as_bytes())],
    );
    upstream.add(m.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let go = GoEnv::new(&proxy.url);
    let dir = scratch_module(&go).await;
    std::fs::write(
        dir.join("main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\n\tcasepkg \"example.com/Upper/Case/casepkg\"\n)\n\nfunc main() { fmt.Println(casepkg.Greeting()) }\n",
    )
    .unwrap();

    go_ok(&go, &dir, &["get", "example.com/Upper/Case@v1.0.0"]).await;
    go_ok(&go, &dir, &["build", "./..."]).await;

    // The proxy was asked for the !-escaped path, and go.sum has the fixture's hashes.
    assert_eq!(upstream.hits(&m.url_path("zip")), 1);
    let go_sum = std::fs::read_to_string(dir.join("go.sum")).unwrap();
    assert!(
        go_sum.contains(&format!("example.com/Upper/Case v1.0.0 {}\n", m.zip_hash())),
        "{go_sum}"
    );
    assert!(
        go_sum.contains(&format!(
            "example.com/Upper/Case v1.0.0/go.mod {}\n",
            m.mod_hash()
        )),
        "{go_sum}"
    );
    assert!(
        go.modcache()
            .join("cache/download/example.com/!upper/!case/@v/v1.0.0.zip")
            .is_file()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_version_without_go_mod_downloads_with_matching_sums() {
    let upstream = FakeUpstream::start().await;
    let src = b"package incomp\n\nconst Major = 2\n";
    let m = Module::with_files(
        "example.com/incomp",
        "v2.0.0+incompatible",
        None,
        &[("incomp.go", src)],
    );
    upstream.add(m.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let go = GoEnv::new(&proxy.url);

    let out = go_ok(
        &go,
        &go.work_dir(),
        &[
            "mod",
            "download",
            "-json",
            "example.com/incomp@v2.0.0+incompatible",
        ],
    )
    .await;
    let json = parse_json(&out);
    assert!(json.get("Error").is_none(), "unexpected error: {json}");
    assert_eq!(json["Version"], "v2.0.0+incompatible");
    assert_eq!(json["Sum"], m.zip_hash().as_str());
    assert_eq!(json["GoModSum"], m.mod_hash().as_str());

    // What users type: the bare major version, which go resolves through .info.
    let out = go_ok(
        &go,
        &go.work_dir(),
        &["list", "-m", "-json", "example.com/incomp@v2.0.0"],
    )
    .await;
    let json = parse_json(&out);
    assert!(json.get("Error").is_none(), "unexpected error: {json}");
    assert_eq!(json["Version"], "v2.0.0+incompatible");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untagged_module_pseudo_version_downloads_lists_no_versions_and_is_latest() {
    const PSEUDO: &str = "v0.0.0-20240102030405-abcdefabcdef";
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/pseudo", PSEUDO);
    upstream.add(m.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let go = GoEnv::new(&proxy.url);

    let out = go_ok(
        &go,
        &go.work_dir(),
        &[
            "mod",
            "download",
            "-json",
            &format!("example.com/pseudo@{PSEUDO}"),
        ],
    )
    .await;
    let json = parse_json(&out);
    assert!(json.get("Error").is_none(), "unexpected error: {json}");
    assert_eq!(json["Sum"], m.zip_hash().as_str());
    assert_eq!(json["GoModSum"], m.mod_hash().as_str());

    // The list is an empty 200, which go shows as a module with no versions.
    let dir = scratch_module(&go).await;
    let listed = go_ok(
        &go,
        &dir,
        &["list", "-m", "-versions", "example.com/pseudo"],
    )
    .await;
    assert_eq!(listed.trim(), "example.com/pseudo");
    let list = proxy.get("/example.com/pseudo/@v/list").await;
    assert_eq!(list.status(), 200);
    assert_eq!(list.text().await.unwrap(), "");

    // With no tags, `@latest` resolves to the pseudo-version through the proxy's @latest.
    go_ok(&go, &dir, &["get", "example.com/pseudo@latest"]).await;
    let go_mod = std::fs::read_to_string(dir.join("go.mod")).unwrap();
    assert!(
        go_mod.contains(&format!("example.com/pseudo {PSEUDO}")),
        "go.mod:\n{go_mod}"
    );
    assert!(upstream.hits("/example.com/pseudo/@latest") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_module_fails_cleanly_with_not_found() {
    let upstream = FakeUpstream::start().await;
    upstream.add(Module::simple("example.com/a", "v1.0.0"));
    let proxy = TestProxy::start(&[&upstream.url]).await;
    let go = GoEnv::new(&proxy.url);

    let out = go_run(
        &go,
        &go.work_dir(),
        &["mod", "download", "-json", "example.com/nope@v1.0.0"],
    )
    .await;
    assert!(
        !out.status.success(),
        "downloading a missing module succeeded"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = match serde_json::from_str::<serde_json::Value>(&stdout) {
        Ok(json) => json["Error"].as_str().unwrap_or_default().to_owned(),
        Err(_) => String::new(),
    } + &stderr;
    assert!(error.contains("404 Not Found"), "error: {error}");
    assert!(
        error.contains("server response:") && error.contains("not found"),
        "the proxy's reason is shown: {error}"
    );
    for bad in [
        "Internal Server Error",
        "Bad Gateway",
        "Service Unavailable",
        "panic",
    ] {
        assert!(!error.contains(bad), "error mentions {bad:?}: {error}");
    }
    assert!(
        upstream.hits("/example.com/nope/@v/v1.0.0.info") >= 1,
        "the upstream was asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_module_cache_is_served_from_the_proxy_cache() {
    let upstream = FakeUpstream::start().await;
    let m = Module::simple("example.com/a", "v1.0.0");
    upstream.add(m.clone());
    let proxy = TestProxy::start(&[&upstream.url]).await;

    let first = GoEnv::new(&proxy.url);
    go_ok(
        &first,
        &first.work_dir(),
        &["mod", "download", "example.com/a@v1.0.0"],
    )
    .await;
    let zip_hits = upstream.hits(&m.url_path("zip"));
    let mod_hits = upstream.hits(&m.url_path("mod"));
    assert_eq!(zip_hits, 1);

    let second = GoEnv::new(&proxy.url);
    let out = go_ok(
        &second,
        &second.work_dir(),
        &["mod", "download", "-json", "example.com/a@v1.0.0"],
    )
    .await;
    let json = parse_json(&out);
    assert_eq!(json["Sum"], m.zip_hash().as_str());
    assert_eq!(
        std::fs::read(
            second
                .modcache()
                .join("cache/download/example.com/a/@v/v1.0.0.zip")
        )
        .unwrap(),
        m.zip
    );
    assert_eq!(
        upstream.hits(&m.url_path("zip")),
        zip_hits,
        "zip refetched from upstream"
    );
    assert_eq!(
        upstream.hits(&m.url_path("mod")),
        mod_hits,
        "go.mod refetched from upstream"
    );
}

// ---- helpers ----

/// A fresh `example.com/scratch` module inside the go environment.
async fn scratch_module(go: &GoEnv) -> std::path::PathBuf {
    let dir = go.root.path().join("scratch");
    std::fs::create_dir_all(&dir).unwrap();
    go_ok(go, &dir, &["mod", "init", "example.com/scratch"]).await;
    dir
}

fn parse_json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("go printed invalid JSON ({e}):\n{out}"))
}
