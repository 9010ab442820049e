//! A small in-memory set of keys that expire: used for negative answers
//! ("not found upstream") and for refreshes that just failed, so neither is asked
//! of the upstreams again on every request.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many entries are remembered, so a flood of distinct bogus paths
/// cannot grow memory without bound. When full, expired entries are pruned; if
/// none have expired, new keys are simply not remembered (never the reverse:
/// a flood must not flush what is already known).
const MAX_ENTRIES: usize = 50_000;

pub struct ExpiringSet<K> {
    ttl: Duration,
    entries: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> ExpiringSet<K> {
    pub fn new(ttl: Duration) -> Self {
        ExpiringSet {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn insert(&self, key: K) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, until| *until > now);
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.insert(key, now + self.ttl);
    }

    pub fn contains(&self, key: &K) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                entries.remove(key);
                false
            }
            None => false,
        }
    }

    pub fn remove(&self, key: &K) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let set = ExpiringSet::new(Duration::from_millis(30));
        set.insert("a");
        assert!(set.contains(&"a"));
        assert!(!set.contains(&"b"));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!set.contains(&"a"));
    }

    #[test]
    fn zero_ttl_disables() {
        let set = ExpiringSet::new(Duration::ZERO);
        set.insert(1);
        assert!(!set.contains(&1));
    }

    #[test]
    fn remove_forgets() {
        let set = ExpiringSet::new(Duration::from_secs(60));
        set.insert(1);
        set.remove(&1);
        assert!(!set.contains(&1));
    }
}
