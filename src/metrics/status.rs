//! What the status page shows beyond the Prometheus counters: request totals
//! per cache outcome (for the hit ratio), the most requested modules and the
//! latest errors. Everything here is bounded in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::RequestRecord;

/// Distinct modules counted at once. When full, the least requested one makes
/// room for a newcomer, which inherits its count (the "space-saving" scheme):
/// popular modules stay in, and one-off requests cannot grow the map.
pub const TOP_CAPACITY: usize = 1_000;
/// Every request counts its module: the counts are split over this many
/// independently locked shards (by module name), so concurrent cache hits do
/// not all queue on one lock.
const SHARDS: usize = 16;
/// Errors kept for the status page.
pub const RECENT_ERRORS: usize = 20;
/// Longest error reason kept, in bytes.
const MAX_REASON: usize = 300;

pub struct StatusBook {
    requests: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    stale: AtomicU64,
    negative: AtomicU64,
    modules: [Mutex<HashMap<String, u64>>; SHARDS],
    errors: Mutex<VecDeque<RecentError>>,
}

impl Default for StatusBook {
    fn default() -> Self {
        StatusBook {
            requests: AtomicU64::default(),
            hits: AtomicU64::default(),
            misses: AtomicU64::default(),
            stale: AtomicU64::default(),
            negative: AtomicU64::default(),
            modules: std::array::from_fn(|_| Mutex::default()),
            errors: Mutex::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RecentError {
    /// RFC 3339, UTC.
    pub time: String,
    pub path: String,
    pub status: u16,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ModuleCount {
    pub module: String,
    pub requests: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Totals {
    pub requests: u64,
    pub hits: u64,
    pub misses: u64,
    pub stale: u64,
    pub negative: u64,
    /// Hits (stale copies included) over answers that had a cache outcome;
    /// None before the first one.
    pub hit_ratio: Option<f64>,
}

impl StatusBook {
    pub(super) fn record(&self, record: &RequestRecord<'_>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let outcome = match record.cache {
            "hit" => Some(&self.hits),
            "miss" => Some(&self.misses),
            "stale" => Some(&self.stale),
            "negative" => Some(&self.negative),
            _ => None,
        };
        if let Some(counter) = outcome {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(module) = record.module {
            self.count_module(module);
        }
        if record.status >= 400 {
            self.push_error(RecentError {
                time: now_rfc3339(),
                path: record.path.to_owned(),
                status: record.status,
                reason: clip(record.reason.unwrap_or("")),
            });
        }
    }

    fn count_module(&self, module: &str) {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let shard =
            BuildHasherDefault::<DefaultHasher>::default().hash_one(module) as usize % SHARDS;
        let mut modules = self.modules[shard]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = modules.get_mut(module) {
            *count += 1;
            return;
        }
        let mut start = 0;
        if modules.len() >= TOP_CAPACITY / SHARDS
            && let Some((least, count)) = modules
                .iter()
                .min_by_key(|(_, count)| **count)
                .map(|(m, c)| (m.clone(), *c))
        {
            modules.remove(&least);
            start = count;
        }
        modules.insert(module.to_owned(), start + 1);
    }

    fn push_error(&self, error: RecentError) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() == RECENT_ERRORS {
            errors.pop_front();
        }
        errors.push_back(error);
    }

    pub fn totals(&self) -> Totals {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (hits, misses, stale, negative) = (
            get(&self.hits),
            get(&self.misses),
            get(&self.stale),
            get(&self.negative),
        );
        let answered = hits + misses + stale + negative;
        Totals {
            requests: get(&self.requests),
            hits,
            misses,
            stale,
            negative,
            hit_ratio: (answered > 0).then(|| (hits + stale) as f64 / answered as f64),
        }
    }

    /// The `n` most requested modules, most requested first (ties by name).
    pub fn top_modules(&self, n: usize) -> Vec<ModuleCount> {
        let mut all: Vec<ModuleCount> = Vec::new();
        for shard in &self.modules {
            let modules = shard.lock().unwrap_or_else(|e| e.into_inner());
            all.extend(modules.iter().map(|(module, requests)| ModuleCount {
                module: module.clone(),
                requests: *requests,
            }));
        }
        all.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.module.cmp(&b.module)));
        all.truncate(n);
        all
    }

    /// The latest errors, newest first.
    pub fn recent_errors(&self) -> Vec<RecentError> {
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors.iter().rev().cloned().collect()
    }
}

fn clip(reason: &str) -> String {
    let line = reason.lines().next().unwrap_or("").trim();
    if line.len() <= MAX_REASON {
        return line.to_owned();
    }
    let mut end = MAX_REASON;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record<'a>(
        path: &'a str,
        module: Option<&'a str>,
        status: u16,
        cache: &'static str,
    ) -> RequestRecord<'a> {
        RequestRecord {
            kind: super::super::Endpoint::Info,
            status,
            cache,
            duration: Duration::from_millis(1),
            bytes: 0,
            path,
            module,
            reason: Some("first line\nsecond line"),
        }
    }

    #[test]
    fn counts_outcomes_and_ratio() {
        let book = StatusBook::default();
        assert_eq!(book.totals().hit_ratio, None);
        for cache in ["hit", "hit", "hit", "miss", "-"] {
            book.record(&record("/x", None, 200, cache));
        }
        let totals = book.totals();
        assert_eq!((totals.requests, totals.hits, totals.misses), (5, 3, 1));
        assert_eq!(totals.hit_ratio, Some(0.75));
    }

    #[test]
    fn top_modules_stay_bounded_and_keep_the_popular_ones() {
        let book = StatusBook::default();
        for _ in 0..50 {
            book.record(&record("/p", Some("popular.example/m"), 200, "hit"));
        }
        for i in 0..(TOP_CAPACITY * 3) {
            let module = format!("once.example/m{i}");
            book.record(&record("/o", Some(&module), 200, "hit"));
        }
        let counted: usize = book.modules.iter().map(|m| m.lock().unwrap().len()).sum();
        // Every shard is full, and none went past its share of the capacity.
        assert_eq!(counted, TOP_CAPACITY / SHARDS * SHARDS);
        let top = book.top_modules(3);
        assert_eq!(top[0].module, "popular.example/m");
        assert_eq!(top[0].requests, 50);
    }

    #[test]
    fn keeps_the_latest_errors_newest_first() {
        let book = StatusBook::default();
        for i in 0..(RECENT_ERRORS + 5) {
            let path = format!("/e{i}");
            book.record(&record(&path, None, 404, "negative"));
        }
        book.record(&record("/fine", None, 200, "hit"));
        let errors = book.recent_errors();
        assert_eq!(errors.len(), RECENT_ERRORS);
        assert_eq!(errors[0].path, format!("/e{}", RECENT_ERRORS + 4));
        assert_eq!(errors[0].reason, "first line");
        assert_eq!(errors[0].status, 404);
    }
}
