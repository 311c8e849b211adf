//! How many tabs one session and one client address may keep states for. Every tab token a
//! client presents gets states of its own, kept for a day after its last event; without a cap
//! one session opening and closing tabs in a loop fills the server's memory. Past a cap, the
//! states of the group's longest-idle tab with no open socket are dropped; if that tab comes
//! back, it connects again, hydrates and starts afresh (its page reloads its states).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One tab the registry knows.
struct Tab {
    session: Option<String>,
    client: IpAddr,
    sockets: usize,
    last_seen: Instant,
}

#[derive(Default)]
struct Tabs {
    tabs: HashMap<String, Tab>,
    by_session: HashMap<String, Vec<String>>,
    by_client: HashMap<IpAddr, Vec<String>>,
}

/// The tabs with states, grouped by session and by client address, with their caps.
pub(crate) struct TabLimits {
    per_session: usize,
    per_client: usize,
    inner: Mutex<Tabs>,
}

impl TabLimits {
    /// Caps of `per_session` tabs per session and `per_client` per address (0: none).
    pub(crate) fn new(per_session: usize, per_client: usize) -> Self {
        Self {
            per_session,
            per_client,
            inner: Mutex::default(),
        }
    }

    /// A socket of tab `key` (of `session`, from `client`) opened. Returns the keys of the
    /// tabs whose states must go to keep both groups within their caps.
    pub(crate) fn opened(&self, key: &str, session: Option<&str>, client: IpAddr) -> Vec<String> {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(tab) = t.tabs.get_mut(key) {
            tab.sockets += 1;
            tab.last_seen = now;
        } else {
            t.tabs.insert(
                key.to_owned(),
                Tab {
                    session: session.map(str::to_owned),
                    client,
                    sockets: 1,
                    last_seen: now,
                },
            );
            if let Some(s) = session {
                t.by_session
                    .entry(s.to_owned())
                    .or_default()
                    .push(key.to_owned());
            }
            t.by_client.entry(client).or_default().push(key.to_owned());
        }
        let mut dropped = Vec::new();
        if let Some(s) = session {
            let members = t.by_session.get(s).cloned().unwrap_or_default();
            dropped.extend(t.trim(members, self.per_session));
        }
        let members = t.by_client.get(&client).cloned().unwrap_or_default();
        dropped.extend(t.trim(members, self.per_client));
        dropped
    }

    /// A socket of tab `key` closed.
    pub(crate) fn closed(&self, key: &str) {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tab) = t.tabs.get_mut(key) {
            tab.sockets = tab.sockets.saturating_sub(1);
            tab.last_seen = Instant::now();
        }
    }

    /// Forgets tabs with no socket idle for longer than `ttl` (their states are gone too).
    pub(crate) fn sweep(&self, ttl: Duration) {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let stale: Vec<String> = t
            .tabs
            .iter()
            .filter(|(_, tab)| tab.sockets == 0 && tab.last_seen.elapsed() > ttl)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            t.remove(&key);
        }
    }

    /// How many tabs are known.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .tabs
            .len()
    }
}

impl Tabs {
    /// Drops the longest-idle tabs without sockets among `members` until at most `cap` remain
    /// (tabs with open sockets are never dropped: the socket cap bounds those).
    fn trim(&mut self, members: Vec<String>, cap: usize) -> Vec<String> {
        let members_len = members.len();
        if cap == 0 || members_len <= cap {
            return Vec::new();
        }
        let mut idle: Vec<(Instant, String)> = members
            .into_iter()
            .filter_map(|k| {
                let tab = self.tabs.get(&k)?;
                (tab.sockets == 0).then_some((tab.last_seen, k))
            })
            .collect();
        idle.sort();
        let excess = members_len - cap;
        let mut dropped = Vec::new();
        for (_, key) in idle.into_iter().take(excess) {
            self.remove(&key);
            dropped.push(key);
        }
        dropped
    }

    fn remove(&mut self, key: &str) {
        let Some(tab) = self.tabs.remove(key) else {
            return;
        };
        if let Some(s) = &tab.session
            && let Some(keys) = self.by_session.get_mut(s)
        {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_session.remove(s);
            }
        }
        if let Some(keys) = self.by_client.get_mut(&tab.client) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_client.remove(&tab.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn a_session_keeps_its_cap_of_tabs_and_drops_the_longest_idle_first() {
        let tabs = TabLimits::new(3, 0);
        for key in ["a", "b", "c"] {
            assert!(tabs.opened(key, Some("s1"), ip(1)).is_empty(), "at the cap");
            tabs.closed(key);
            std::thread::sleep(Duration::from_millis(2));
        }
        // `a` comes back: now `b` is the longest idle.
        assert!(tabs.opened("a", Some("s1"), ip(1)).is_empty());
        assert_eq!(
            tabs.opened("d", Some("s1"), ip(1)),
            ["b"],
            "one past the cap"
        );
        assert_eq!(tabs.len(), 3);
        // Another session is counted apart.
        assert!(tabs.opened("e", Some("s2"), ip(1)).is_empty());
    }

    #[test]
    fn tabs_with_open_sockets_are_never_dropped_and_addresses_have_their_own_cap() {
        let tabs = TabLimits::new(0, 2);
        assert!(tabs.opened("a", None, ip(1)).is_empty());
        assert!(tabs.opened("b", None, ip(1)).is_empty());
        // Both still connected: nothing can go, the socket cap bounds those.
        assert!(tabs.opened("c", None, ip(1)).is_empty());
        tabs.closed("a");
        assert_eq!(tabs.opened("d", None, ip(1)), ["a"]);
        assert!(tabs.opened("x", None, ip(2)).is_empty(), "another address");
    }

    #[test]
    fn idle_tabs_are_forgotten_after_the_ttl() {
        let tabs = TabLimits::new(2, 2);
        tabs.opened("a", Some("s"), ip(1));
        tabs.closed("a");
        tabs.opened("b", Some("s"), ip(1));
        std::thread::sleep(Duration::from_millis(5));
        tabs.sweep(Duration::from_millis(1));
        assert_eq!(tabs.len(), 1, "the connected one stays");
    }
}
