//! A small time-bounded cache, for the per-event session and user reads.
//!
//! Writes made through this process update or evict entries at once; the TTL only bounds how
//! long a change made by another process (another node, or SQL by hand) can go unseen.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Entries beyond which expired ones are swept on insert.
const SWEEP_AT: usize = 4096;

pub(crate) struct TtlCache<K, V> {
    ttl_ms: AtomicU64,
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl_ms: AtomicU64::new(ttl.as_millis() as u64),
            map: Mutex::new(HashMap::new()),
        }
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
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    pub(crate) fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
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
}
