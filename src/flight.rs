//! One in-flight fetch per key. The fetch runs in its own task, owned by this map
//! rather than by the request that started it: a client that hangs up cancels
//! nothing, and every waiter receives the same result or the same error.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

type SharedResult<T, E> = Shared<BoxFuture<'static, Result<T, Arc<E>>>>;

pub struct Flights<K, T, E> {
    inflight: Arc<Mutex<HashMap<K, SharedResult<T, E>>>>,
}

impl<K, T, E> Default for Flights<K, T, E> {
    fn default() -> Self {
        Flights {
            inflight: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// Whether the caller started the fetch or joined one already running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
}

impl<K, T, E> Flights<K, T, E>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// Joins the fetch for `key`, starting it with `start` if none is running.
    /// `on_panic` turns a panicked fetch into an error for every waiter.
    pub async fn run<F>(
        &self,
        key: K,
        start: impl FnOnce() -> F,
        on_panic: fn() -> E,
    ) -> (Result<T, Arc<E>>, Role)
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let (shared, role) = {
            let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(existing) = map.get(&key) {
                (existing.clone(), Role::Follower)
            } else {
                let task = tokio::spawn(start());
                let inflight = Arc::clone(&self.inflight);
                let remove_key = key.clone();
                let fut = async move {
                    let result = match task.await {
                        Ok(r) => r.map_err(Arc::new),
                        Err(_) => Err(Arc::new(on_panic())),
                    };
                    // The result is already stored (or the error final) when the entry
                    // goes, so a request arriving afterwards sees it in the cache.
                    inflight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&remove_key);
                    result
                }
                .boxed()
                .shared();
                map.insert(key, fut.clone());
                // Drive the shared future even if every waiter goes away, so the map
                // entry is always removed.
                tokio::spawn(fut.clone());
                (fut, Role::Leader)
            }
        };
        (shared.await, role)
    }

    /// Number of fetches in flight.
    pub fn len(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flights: Arc<Flights<&'static str, u32, String>> = Arc::new(Flights::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..20 {
            let flights = Arc::clone(&flights);
            let runs = Arc::clone(&runs);
            handles.push(tokio::spawn(async move {
                flights
                    .run(
                        "k",
                        move || async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(7)
                        },
                        || "panic".to_owned(),
                    )
                    .await
            }));
        }
        let mut leaders = 0;
        for h in handles {
            let (result, role) = h.await.unwrap();
            assert_eq!(result.unwrap(), 7);
            if role == Role::Leader {
                leaders += 1;
            }
        }
        assert_eq!(leaders, 1);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(flights.is_empty());
    }

    #[tokio::test]
    async fn leader_cancellation_does_not_cancel_fetch() {
        let flights: Arc<Flights<u8, u32, String>> = Arc::new(Flights::default());
        let f2 = Arc::clone(&flights);
        let leader = tokio::spawn(async move {
            f2.run(
                1,
                || async {
                    tokio::time::sleep(Duration::from_millis(80)).await;
                    Ok(42)
                },
                || "panic".to_owned(),
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        leader.abort();
        let (result, role) = flights
            .run(1, || async { Ok(0) }, || "panic".to_owned())
            .await;
        assert_eq!(role, Role::Follower);
        assert_eq!(result.unwrap(), 42);
    }

    #[tokio::test]
    async fn errors_and_panics_reach_every_waiter() {
        let flights: Flights<u8, u32, String> = Flights::default();
        let (r, _) = flights
            .run(
                1,
                || async { Err("boom".to_owned()) },
                || "panic".to_owned(),
            )
            .await;
        assert_eq!(r.unwrap_err().as_str(), "boom");
        let (r, _) = flights
            .run(
                2,
                || async {
                    if true {
                        panic!("fetch panicked");
                    }
                    Ok(1)
                },
                || "panicked".to_owned(),
            )
            .await;
        assert_eq!(r.unwrap_err().as_str(), "panicked");
        assert!(flights.is_empty());
    }
}
