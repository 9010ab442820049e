//! One in-flight fetch per key. The fetch runs in its own task, owned by this map
//! rather than by the request that started it: a client that hangs up cancels
//! nothing, and every waiter receives the same result or the same error. A
//! fetch may leave a tail (storing what it fetched) that runs after the
//! waiters have their answer.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

type SharedResult<T, E> = Shared<BoxFuture<'static, Result<T, Arc<E>>>>;

pub struct Flights<K, T, E> {
    inflight: Arc<Mutex<HashMap<K, SharedResult<T, E>>>>,
    /// Tails running now, and a wake-up for when none is left.
    tails: Arc<(std::sync::atomic::AtomicUsize, tokio::sync::Notify)>,
    /// Where tails run; the caller's runtime if None.
    tails_on: Option<tokio::runtime::Handle>,
}

impl<K, T, E> Default for Flights<K, T, E> {
    fn default() -> Self {
        Flights {
            inflight: Arc::new(Mutex::new(HashMap::new())),
            tails: Arc::new((
                std::sync::atomic::AtomicUsize::new(0),
                tokio::sync::Notify::new(),
            )),
            tails_on: None,
        }
    }
}

impl<K, T, E> Flights<K, T, E> {
    /// Runs tails on `runtime` (for instance one of lower priority) rather
    /// than where the fetch ran.
    pub fn with_tails_on(runtime: tokio::runtime::Handle) -> Self {
        Flights {
            tails_on: Some(runtime),
            ..Flights::default()
        }
    }
}

/// Whether the caller started the fetch or joined one already running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    /// Joined a fetch that had already answered and is storing its result:
    /// for this caller, as good as a cache hit.
    Finished,
}

/// Work a fetch leaves behind after its result is known (writing it to the
/// cache): waiters are answered at once, and the fetch stays registered until
/// the tail is done, so a request arriving meanwhile joins it instead of
/// fetching again.
pub type Tail = BoxFuture<'static, ()>;

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
        self.run_with_tail(
            key,
            || start().map(|result| result.map(|value| (value, None))),
            on_panic,
        )
        .await
    }

    /// As `run`, but the fetch may hand back a tail to run after its result
    /// has been given to the waiters.
    pub async fn run_with_tail<F>(
        &self,
        key: K,
        start: impl FnOnce() -> F,
        on_panic: fn() -> E,
    ) -> (Result<T, Arc<E>>, Role)
    where
        F: Future<Output = Result<(T, Option<Tail>), E>> + Send + 'static,
    {
        let (shared, role) = {
            let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(existing) = map.get(&key) {
                let role = match existing.peek() {
                    Some(_) => Role::Finished,
                    None => Role::Follower,
                };
                (existing.clone(), role)
            } else {
                let (answer, answered) = tokio::sync::oneshot::channel();
                let task = tokio::spawn(start());
                let inflight = Arc::clone(&self.inflight);
                let tails = Arc::clone(&self.tails);
                let remove_key = key.clone();
                let tails_on = self.tails_on.clone();
                // Owned by the runtime rather than by the request that started
                // it, so the entry is always removed, even if every waiter goes.
                tokio::spawn(async move {
                    let (result, tail) = match task.await {
                        Ok(Ok((value, tail))) => (Ok(value), tail),
                        Ok(Err(e)) => (Err(Arc::new(e)), None),
                        Err(_) => (Err(Arc::new(on_panic())), None),
                    };
                    let tailing = tail.is_some();
                    if tailing {
                        tails.0.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = answer.send(result);
                    if let Some(tail) = tail {
                        // Its own task, so a panic in it cannot skip the removal.
                        let _ = match &tails_on {
                            Some(runtime) => runtime.spawn(tail).await,
                            None => tokio::spawn(tail).await,
                        };
                    }
                    // Removed only once the result is stored (or the error final),
                    // so a request arriving afterwards sees it in the cache.
                    inflight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&remove_key);
                    if tailing && tails.0.fetch_sub(1, Ordering::SeqCst) == 1 {
                        tails.1.notify_waiters();
                    }
                });
                let fut =
                    async move { answered.await.unwrap_or_else(|_| Err(Arc::new(on_panic()))) }
                        .boxed()
                        .shared();
                map.insert(key, fut.clone());
                (fut, Role::Leader)
            }
        };
        (shared.await, role)
    }

    /// Waits until no tail is running: every fetch that has answered has
    /// also finished what it left behind. Fetches still running are not
    /// waited for.
    pub async fn tails_done(&self) {
        loop {
            let notified = self.tails.1.notified();
            if self.tails.0.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
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

    #[tokio::test]
    async fn waiters_are_answered_before_the_tail_and_the_key_stays_taken_until_it_ends() {
        let flights: Arc<Flights<u8, u32, String>> = Arc::new(Flights::default());
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (result, role) = flights
            .run_with_tail(
                1,
                || async move {
                    let tail: Tail = Box::pin(async move {
                        let _ = released.await;
                    });
                    Ok((5, Some(tail)))
                },
                || "panic".to_owned(),
            )
            .await;
        assert_eq!((result.unwrap(), role), (5, Role::Leader));
        // The tail still runs: a new caller joins the finished fetch instead of
        // starting another one.
        let (result, role) = flights
            .run(1, || async { Ok(9) }, || "panic".to_owned())
            .await;
        assert_eq!((result.unwrap(), role), (5, Role::Finished));
        assert_eq!(flights.len(), 1);
        let idle = {
            let flights = Arc::clone(&flights);
            tokio::spawn(async move { flights.tails_done().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!idle.is_finished(), "done while a tail is running");
        release.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), idle)
            .await
            .expect("idle once the tail is done")
            .unwrap();
        assert!(flights.is_empty());
        let (result, role) = flights
            .run(1, || async { Ok(9) }, || "panic".to_owned())
            .await;
        assert_eq!((result.unwrap(), role), (9, Role::Leader));
    }

    #[tokio::test]
    async fn tails_run_on_the_runtime_they_are_given() {
        let tails = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tail-runtime")
            .enable_all()
            .build()
            .unwrap();
        let flights: Flights<u8, u32, String> = Flights::with_tails_on(tails.handle().clone());
        let (seen, ran_on) = tokio::sync::oneshot::channel();
        let (result, role) = flights
            .run_with_tail(
                1,
                || async move {
                    let tail: Tail = Box::pin(async move {
                        let name = std::thread::current().name().map(str::to_owned);
                        let _ = seen.send(name);
                    });
                    Ok((4, Some(tail)))
                },
                || "panic".to_owned(),
            )
            .await;
        assert_eq!((result.unwrap(), role), (4, Role::Leader));
        let name = tokio::time::timeout(Duration::from_secs(5), ran_on)
            .await
            .expect("the tail ran")
            .unwrap();
        assert_eq!(name.as_deref(), Some("tail-runtime"));
        tokio::time::timeout(Duration::from_secs(5), flights.tails_done())
            .await
            .expect("tails done");
        tails.shutdown_background();
    }

    #[tokio::test]
    async fn a_panicking_tail_still_frees_the_key() {
        let flights: Flights<u8, u32, String> = Flights::default();
        let (result, _) = flights
            .run_with_tail(
                1,
                || async {
                    let tail: Tail = Box::pin(async {
                        panic!("tail panicked");
                    });
                    Ok((3, Some(tail)))
                },
                || "panic".to_owned(),
            )
            .await;
        assert_eq!(result.unwrap(), 3);
        tokio::time::timeout(Duration::from_secs(5), flights.tails_done())
            .await
            .expect("the key is freed");
    }
}
