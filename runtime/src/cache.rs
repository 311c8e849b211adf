//! A small time-bounded cache, for the per-event session and user reads.
//!
//! Writes made through this process update or evict entries at once; the TTL only bounds how
//! long a change made by another process (another node, or SQL by hand) can go unseen.
//!
//! A miss loads once however many callers miss at the same time ([`TtlCache::get_or_load`]):
//! when an entry every event reads expires, one query refreshes it and the other events wait
//! for its answer, rather than each queueing for the database's pool. A load that a write of
//! this process overtakes (an eviction while it ran) is answered but not kept.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a load found ([`TtlCache::get_or_load`]).
pub(crate) enum Loaded<V> {
    /// A value to answer with and keep.
    Keep(V),
    /// A value to answer with this once, not kept.
    Pass(V),
    /// Nothing.
    Missing,
}

/// Entries beyond which expired ones are swept on insert.
const SWEEP_AT: usize = 4096;

pub(crate) struct TtlCache<K, V> {
    ttl_ms: AtomicU64,
    map: Mutex<HashMap<K, (V, Instant)>>,
    /// One gate per key being loaded: the first caller that misses loads, the others wait.
    loading: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
    /// Bumped by every eviction: a load that started before one does not keep its value.
    evictions: AtomicU64,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl_ms: AtomicU64::new(ttl.as_millis() as u64),
            map: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
            evictions: AtomicU64::new(0),
        }
    }

    /// The value of `key`, from the cache or else from `load`, which runs once for all the
    /// callers that miss `key` at the same time (the others wait for it and read what it kept).
    pub(crate) async fn get_or_load<E, F>(&self, key: &K, load: F) -> Result<Option<V>, E>
    where
        F: AsyncFnOnce() -> Result<Loaded<V>, E>,
    {
        if let Some(hit) = self.get(key) {
            return Ok(Some(hit));
        }
        if self.ttl().is_none() {
            return Ok(match load().await? {
                Loaded::Keep(v) | Loaded::Pass(v) => Some(v),
                Loaded::Missing => None,
            });
        }
        let gate = self
            .loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let answer = {
            let _turn = gate.lock().await;
            match self.get(key) {
                // Loaded by the caller this one waited for.
                Some(hit) => Ok(Some(hit)),
                None => {
                    let evictions = self.evictions.load(Ordering::SeqCst);
                    match load().await {
                        Ok(Loaded::Keep(v)) => {
                            self.insert_unless_evicted(key.clone(), v.clone(), evictions);
                            Ok(Some(v))
                        }
                        Ok(Loaded::Pass(v)) => Ok(Some(v)),
                        Ok(Loaded::Missing) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            }
        };
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        // Ours and the map's: nobody else waits at this gate.
        if Arc::strong_count(&gate) == 2 {
            loading.remove(key);
        }
        answer
    }

    /// Keeps `value` unless an eviction happened since `evictions` was read.
    fn insert_unless_evicted(&self, key: K, value: V, evictions: u64) {
        let Some(ttl) = self.ttl() else { return };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Read under the map's lock, which evictions take too.
        if self.evictions.load(Ordering::SeqCst) != evictions {
            return;
        }
        if map.len() >= SWEEP_AT {
            map.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        map.insert(key, (value, Instant::now()));
    }

    pub(crate) fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(ttl.as_millis() as u64, Ordering::Relaxed);
        if ttl.is_zero() {
            self.clear();
        }
    }

    fn ttl(&self) -> Option<Duration> {
        let ms = self.ttl_ms.load(Ordering::Relaxed);
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let ttl = self.ttl()?;
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(v, _)| v.clone())
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        let Some(ttl) = self.ttl() else { return };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            map.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        map.insert(key, (value, Instant::now()));
    }

    pub(crate) fn remove(&self, key: &K) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        self.evictions.fetch_add(1, Ordering::SeqCst);
        map.remove(key);
    }

    pub(crate) fn clear(&self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        self.evictions.fetch_add(1, Ordering::SeqCst);
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_zero_ttl_disables() {
        let c = TtlCache::new(Duration::from_millis(30));
        c.insert(1, "a");
        assert_eq!(c.get(&1), Some("a"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get(&1), None);
        c.set_ttl(Duration::ZERO);
        c.insert(2, "b");
        assert_eq!(c.get(&2), None);
    }

    /// Fifty callers miss one key at once: one load runs, and all fifty get its value.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_misses_load_once() {
        let cache = Arc::new(TtlCache::new(Duration::from_secs(60)));
        let loads = Arc::new(AtomicU64::new(0));
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (cache, loads) = (cache.clone(), loads.clone());
            callers.spawn(async move {
                cache
                    .get_or_load(&7, async || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>(Loaded::Keep("fresh"))
                    })
                    .await
            });
        }
        while let Some(got) = callers.join_next().await {
            assert_eq!(got.unwrap(), Ok(Some("fresh")));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert!(
            cache.loading.lock().unwrap().is_empty(),
            "no gate left behind"
        );
        // Passed values are answered, not kept: the next caller loads again.
        let passed = cache
            .get_or_load(&8, async || Ok::<_, ()>(Loaded::Pass("once")))
            .await;
        assert_eq!(passed, Ok(Some("once")));
        assert_eq!(cache.get(&8), None);
    }

    /// A value loaded while this process evicted the key is answered but not kept: it may be
    /// older than the write that evicted it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_overtaken_by_an_eviction_is_not_kept() {
        let cache = Arc::new(TtlCache::new(Duration::from_secs(60)));
        let evicting = cache.clone();
        let got = cache
            .get_or_load(&1, async || {
                evicting.remove(&1);
                Ok::<_, ()>(Loaded::Keep("stale"))
            })
            .await;
        assert_eq!(got, Ok(Some("stale")));
        assert_eq!(cache.get(&1), None, "not kept");
        let got = cache
            .get_or_load(&1, async || Ok::<_, ()>(Loaded::Keep("fresh")))
            .await;
        assert_eq!((got, cache.get(&1)), (Ok(Some("fresh")), Some("fresh")));
    }
}
