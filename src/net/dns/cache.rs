//! Answers kept for as long as their TTL allows, so a burst of requests to one
//! upstream costs one lookup.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longer TTLs are cut to this: a moved upstream is noticed within a day.
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Bounds memory if a client makes us resolve many distinct names.
const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub(super) struct Cache {
    entries: Mutex<HashMap<String, (Vec<IpAddr>, Instant)>>,
}

impl Cache {
    pub(super) fn get(&self, host: &str, now: Instant) -> Option<Vec<IpAddr>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(host) {
            Some((addrs, expires)) if now < *expires => Some(addrs.clone()),
            _ => None,
        }
    }

    /// A zero TTL means "use once": nothing is stored.
    pub(super) fn put(&self, host: &str, addrs: &[IpAddr], ttl: Duration, now: Instant) {
        if ttl.is_zero() || addrs.is_empty() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, expires)| now < *expires);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(host.to_owned(), (addrs.to_vec(), now + ttl.min(MAX_TTL)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_with_their_ttl() {
        let cache = Cache::default();
        let now = Instant::now();
        let addrs: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        cache.put("a.example", &addrs, Duration::from_secs(2), now);
        cache.put("zero.example", &addrs, Duration::ZERO, now);
        assert_eq!(cache.get("a.example", now), Some(addrs.clone()));
        assert_eq!(
            cache.get("a.example", now + Duration::from_millis(1999)),
            Some(addrs.clone())
        );
        assert_eq!(cache.get("a.example", now + Duration::from_secs(2)), None);
        assert_eq!(cache.get("zero.example", now), None);
        assert_eq!(cache.get("b.example", now), None);

        cache.put(
            "long.example",
            &addrs,
            Duration::from_secs(u32::MAX.into()),
            now,
        );
        assert_eq!(cache.get("long.example", now + MAX_TTL), None);
    }

    #[test]
    fn stays_bounded() {
        let cache = Cache::default();
        let now = Instant::now();
        let addrs: Vec<IpAddr> = vec!["::1".parse().unwrap()];
        for i in 0..MAX_ENTRIES + 10 {
            cache.put(
                &format!("h{i}.example"),
                &addrs,
                Duration::from_secs(60),
                now,
            );
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
        assert!(
            cache
                .get(&format!("h{}.example", MAX_ENTRIES + 9), now)
                .is_some()
        );
    }
}
