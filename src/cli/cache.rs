//! `goproxy cache stats|gc|verify`: operators' views of the cache directory the
//! settings describe. Safe to run while a server uses the same directory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::cache::evict::{self, Policy};
use crate::cache::scan::{VersionEntry, scan};
use crate::cache::usage::UsageDb;
use crate::config::{self, CliArgs, Settings, human_size};
use crate::gomod::version::unescape_version;
use crate::gomod::{ModulePath, Version, dirhash, path::unescape_path};
use crate::storage::Storage;
use crate::storage::fs::FsStorage;

#[derive(Subcommand, Debug)]
pub enum CacheAction {
    /// Modules, versions, bytes, oldest and newest use, and the largest modules.
    Stats {
        #[command(flatten)]
        args: CliArgs,
    },
    /// Run eviction now with the configured (or given) max_cache_age and max_cache_size.
    Gc {
        /// Only print what would be removed.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        args: CliArgs,
    },
    /// Re-check every cached zip (a valid module zip, and its recorded h1 hash)
    /// and go.mod (its recorded hash); report broken entries.
    Verify {
        /// Delete broken module versions.
        #[arg(long)]
        fix: bool,
        #[command(flatten)]
        args: CliArgs,
    },
}

pub fn run(action: CacheAction, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    let args = match &action {
        CacheAction::Stats { args }
        | CacheAction::Gc { args, .. }
        | CacheAction::Verify { args, .. } => args,
    };
    let settings = config::load(args, env)?.settings;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match action {
            CacheAction::Stats { .. } => stats(&settings).await,
            CacheAction::Gc { dry_run, .. } => gc(&settings, dry_run).await,
            CacheAction::Verify { fix, .. } => verify(&settings, fix).await,
        }
    })
}

fn storage(settings: &Settings) -> anyhow::Result<Arc<dyn Storage>> {
    if !settings.cache_dir.is_dir() {
        bail!(
            "cache directory {} does not exist (set --cache/CACHE_DIR/cache_dir)",
            settings.cache_dir.display()
        );
    }
    Ok(Arc::new(FsStorage::new(settings.cache_dir.clone())))
}

fn usage(settings: &Settings) -> anyhow::Result<UsageDb> {
    let path = settings.cache_dir.join(crate::cache::USAGE_DB_FILE);
    UsageDb::open(&path).map_err(anyhow::Error::from)
}

async fn stats(settings: &Settings) -> anyhow::Result<()> {
    let storage = storage(settings)?;
    let scanned = scan(storage.as_ref()).await?;
    let last_used = match usage(settings) {
        Ok(db) => db.last_used_all().unwrap_or_default(),
        Err(e) => {
            eprintln!("note: {e:#}; using file times instead");
            Default::default()
        }
    };
    let used = |e: &VersionEntry| {
        last_used
            .get(&(e.module.clone(), e.version.clone()))
            .copied()
            .unwrap_or(e.modified)
    };
    let mut per_module: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for entry in scanned.versions.values() {
        let slot = per_module.entry(&entry.module).or_default();
        slot.0 += entry.size;
        slot.1 += 1;
    }
    for (module, (_, size)) in &scanned.module_files {
        per_module.entry(module).or_default().0 += size;
    }
    let oldest = scanned.versions.values().min_by_key(|e| used(e));
    let newest = scanned.versions.values().max_by_key(|e| used(e));
    println!("cache directory  {}", settings.cache_dir.display());
    println!("modules          {}", per_module.len());
    println!("versions         {}", scanned.versions.len());
    println!(
        "size             {} ({} bytes)",
        human_size(scanned.total_size()),
        scanned.total_size()
    );
    if let (Some(o), Some(n)) = (oldest, newest) {
        println!("oldest use       {} ({})", when(used(o)), display(o));
        println!("newest use       {} ({})", when(used(n)), display(n));
    }
    let mut largest: Vec<_> = per_module.into_iter().collect();
    largest.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    if !largest.is_empty() {
        println!("largest modules:");
        for (module, (size, versions)) in largest.into_iter().take(10) {
            println!(
                "  {:>10}  {} ({versions} versions)",
                human_size(size),
                unescaped(module)
            );
        }
    }
    Ok(())
}

async fn gc(settings: &Settings, dry_run: bool) -> anyhow::Result<()> {
    let policy = Policy {
        max_age: settings.max_cache_age,
        max_size: settings.max_cache_size,
    };
    if !policy.is_active() {
        bail!(
            "nothing to do: no limit is set (give --max-cache-age, e.g. 720h, and/or --max-cache-size, e.g. 50GiB)"
        );
    }
    let storage = storage(settings)?;
    let usage = Arc::new(usage(settings)?);
    let report = evict::run(&storage, &usage, policy, unix_now(), dry_run).await?;
    let verb = if dry_run { "would remove" } else { "removed" };
    for (module, version, size, last_used) in &report.removed {
        let version = unescape_version(version).unwrap_or_else(|_| version.clone());
        println!(
            "{verb} {}@{version} ({}, last used {})",
            unescaped(module),
            human_size(*size),
            when(*last_used)
        );
    }
    println!(
        "{verb} {} module versions, {} freed; cache size {} -> {}",
        report.removed.len(),
        human_size(report.freed),
        human_size(report.size_before),
        human_size(report.size_after)
    );
    usage.flush()?;
    Ok(())
}

async fn verify(settings: &Settings, fix: bool) -> anyhow::Result<()> {
    let storage = storage(settings)?;
    let scanned = scan(storage.as_ref()).await?;
    let (mut ok, mut broken) = (0usize, Vec::new());
    for entry in scanned.versions.values() {
        let root = settings.cache_dir.clone();
        let checked = entry.clone();
        let result = tokio::task::spawn_blocking(move || check_version(&root, &checked)).await?;
        match result {
            Ok(()) => ok += 1,
            Err(reason) => {
                println!("broken {}: {reason}", display(entry));
                broken.push(entry.clone());
            }
        }
    }
    if fix && !broken.is_empty() {
        for entry in &broken {
            for key in &entry.keys {
                storage.delete(key).await?;
            }
            println!("deleted {}", display(entry));
        }
        // Their usage rows go too; a database that cannot be opened only loses
        // the bookkeeping, not the fix.
        match usage(settings) {
            Ok(db) => {
                let ids: Vec<_> = broken
                    .iter()
                    .map(|e| (e.module.clone(), e.version.clone()))
                    .collect();
                db.remove(&ids)?;
            }
            Err(e) => eprintln!("note: {e:#}"),
        }
    }
    println!(
        "{ok} module versions ok, {} broken{}",
        broken.len(),
        if fix && !broken.is_empty() {
            " (deleted)"
        } else {
            ""
        }
    );
    if !broken.is_empty() && !fix {
        bail!(
            "{} broken module versions (run with --fix to delete them; they are fetched again on the next request)",
            broken.len()
        );
    }
    Ok(())
}

/// A version's zip must be a valid module zip whose `h1:` matches the recorded
/// `.ziphash`; its go.mod must match the hash recorded in its sidecar.
fn check_version(root: &std::path::Path, entry: &VersionEntry) -> Result<(), String> {
    let module = ModulePath::from_escaped(&entry.module).map_err(|e| e.to_string())?;
    let dir = root.join(&entry.module).join("@v");
    let zip = dir.join(format!("{}.zip", entry.version));
    if zip.is_file() {
        let version_text = unescape_version(&entry.version).map_err(|e| e.to_string())?;
        let version = Version::parse_for(&module, &version_text).map_err(|e| e.to_string())?;
        crate::gomod::zip::check_zip(&module, &version, &zip).map_err(|e| e.to_string())?;
        // A record is written without an fsync of its own: one emptied by a
        // crash is no record.
        if let Ok(recorded) =
            std::fs::read_to_string(dir.join(format!("{}.ziphash", entry.version)))
            && recorded.starts_with("h1:")
        {
            let got = dirhash::hash_zip(&zip).map_err(|e| e.to_string())?;
            if got != recorded.trim() {
                return Err(format!(
                    "zip hash {got} does not match the recorded {}",
                    recorded.trim()
                ));
            }
        }
    }
    let go_mod = dir.join(format!("{}.mod", entry.version));
    if let Ok(bytes) = std::fs::read(&go_mod)
        && let Some(h1) = recorded_h1(&dir.join(format!("{}.mod.meta", entry.version)))
    {
        let got = dirhash::hash_go_mod(&bytes);
        if got != h1 {
            return Err(format!(
                "go.mod hash {got} does not match the recorded {h1}"
            ));
        }
    }
    Ok(())
}

fn recorded_h1(meta: &std::path::Path) -> Option<String> {
    let bytes = std::fs::read(meta).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("h1")?.as_str().map(str::to_owned)
}

fn unescaped(escaped: &str) -> String {
    unescape_path(escaped).unwrap_or_else(|_| escaped.to_owned())
}

fn display(entry: &VersionEntry) -> String {
    let version = unescape_version(&entry.version).unwrap_or_else(|_| entry.version.clone());
    format!("{}@{version}", unescaped(&entry.module))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn when(ts: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(ts.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}
