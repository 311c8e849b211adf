//! Login throttling shared by every node: attempts are counted in the database per address and
//! username, per address across usernames (a spray of common passwords over many accounts) and
//! per username across addresses (many machines guessing one account).
//!
//! **Counted before the check.** An attempt bumps its three counters in one atomic statement
//! each *before* its password is hashed, and is refused when a bumped count is past its limit:
//! thirty concurrent guesses cannot all read "four failures so far" and all reach argon2. A
//! success takes its attempt back (the address-and-username count is cleared, the other two
//! lowered by one), so only failures and refusals stay counted.
//!
//! **No targeted lockout.** The per-username limit does not lock the account: once a username
//! has [`PER_USERNAME`] failures in the window, only addresses that have not tried that
//! username in the window may try it, once each. A distributed guesser is slowed to one guess
//! per address per window; the owner, from an address with no failures, still logs in. The
//! per-address limits stop any one address as before. Addresses are counted as the
//! `trusted_proxies` setting resolves them, IPv6 by network prefix (setting `ipv6_prefix_len`,
//! /64 by default), so an attacker's /64 is one address.
//!
//! Each limit holds for [`WINDOW`] from the first attempt it counts.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crate::db::expiring::Expiring;

/// How long a count of failures lasts.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Failures of one username from one address before that pair is refused.
pub const PER_ADDRESS_AND_USERNAME: i64 = 5;
/// Failures from one address, any usernames, before the address is refused.
pub const PER_ADDRESS: i64 = 20;
/// Failures for one username, from any addresses, after which only addresses that have not
/// tried it in the window may try it (once each).
pub const PER_USERNAME: i64 = 50;

/// What a refused login is told.
pub const THROTTLED_MESSAGE: &str = "Too many failed logins. Try again in a few minutes.";

/// The counters of login attempts.
#[derive(Clone)]
pub(crate) struct Throttle {
    counters: Expiring,
    ipv6_prefix_len: Arc<AtomicU8>,
}

/// The three counters one attempt touches.
pub(crate) struct Attempt {
    pair: Option<String>,
    address: Option<String>,
    username: String,
}

impl Attempt {
    fn of(ip: Option<IpAddr>, ipv6_prefix_len: u8, username: &str) -> Self {
        // Usernames are at most 150 characters; an attacker's longer one must not make long keys.
        let user: String = crate::db::entities::user::key(username)
            .chars()
            .take(150)
            .collect();
        let ip = ip.map(|ip| crate::net::address_key(ip, ipv6_prefix_len));
        Self {
            pair: ip.map(|ip| format!("login:pair:{ip}:{user}")),
            address: ip.map(|ip| format!("login:addr:{ip}")),
            username: format!("login:user:{user}"),
        }
    }
}

impl Throttle {
    pub(crate) fn new(counters: Expiring) -> Self {
        Self {
            counters,
            ipv6_prefix_len: Arc::new(AtomicU8::new(64)),
        }
    }

    /// Counts IPv6 addresses by their first `len` bits (128: each address alone).
    pub(crate) fn set_ipv6_prefix_len(&self, len: u8) {
        self.ipv6_prefix_len.store(len.min(128), Ordering::Relaxed);
    }

    /// Counts an attempt for `username` from `ip` (`None`: not from a request) and says whether
    /// it may go on to the password check (`None`: refused).
    pub(crate) async fn begin(
        &self,
        ip: Option<IpAddr>,
        username: &str,
    ) -> Result<Option<Attempt>, sea_orm::DbErr> {
        let attempt = Attempt::of(ip, self.ipv6_prefix_len.load(Ordering::Relaxed), username);
        let mut names: Vec<&str> = Vec::with_capacity(3);
        names.extend(attempt.pair.as_deref());
        names.extend(attempt.address.as_deref());
        names.push(&attempt.username);
        let counts = self.counters.bump_all(&names, WINDOW).await?;
        let (pair, address) = match (&attempt.pair, &attempt.address) {
            (Some(_), Some(_)) => (Some(counts[0]), Some(counts[1])),
            _ => (None, None),
        };
        let for_username = counts[counts.len() - 1];
        // Counts include this attempt: the limit-th failure is allowed, one more is not.
        let pair_over = pair.is_some_and(|n| n > PER_ADDRESS_AND_USERNAME);
        let address_over = address.is_some_and(|n| n > PER_ADDRESS);
        // A username under attack: only an address trying it for the first time gets through.
        let username_over = for_username > PER_USERNAME && pair.is_none_or(|n| n > 1);
        if pair_over || address_over || username_over {
            return Ok(None);
        }
        Ok(Some(attempt))
    }

    /// The attempt's password was right: it is taken back, and this address's failures for
    /// this username are cleared (a success does not clear a spray's or a guesser's count).
    pub(crate) async fn succeeded(&self, attempt: Attempt) -> Result<(), sea_orm::DbErr> {
        if let Some(pair) = &attempt.pair {
            self.counters.forget(pair).await?;
        }
        let mut names: Vec<&str> = Vec::with_capacity(2);
        names.extend(attempt.address.as_deref());
        names.push(&attempt.username);
        self.counters.lower_all(&names).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::expiring::Clock;

    async fn throttle() -> (Throttle, Clock) {
        let (counters, clock) = Expiring::in_memory().await;
        (Throttle::new(counters), clock)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_attempts_are_counted_before_the_check_and_cannot_race_past_the_limit() {
        let (t, _) = throttle().await;
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let t = t.clone();
            all.spawn(async move { t.begin(ip("10.0.0.1"), "alice").await.unwrap().is_some() });
        }
        let mut through = 0;
        while let Some(done) = all.join_next().await {
            through += usize::from(done.unwrap());
        }
        assert_eq!(through as i64, PER_ADDRESS_AND_USERNAME);
    }

    #[tokio::test]
    async fn the_lockout_lasts_the_window_and_not_a_second_more() {
        let (t, clock) = throttle().await;
        for _ in 0..PER_ADDRESS_AND_USERNAME {
            assert!(t.begin(ip("10.0.0.1"), "alice").await.unwrap().is_some());
        }
        assert!(t.begin(ip("10.0.0.1"), "alice").await.unwrap().is_none());
        // The five minutes the security chapter promises, written out: a test reading `WINDOW`
        // would follow it anywhere (a thousandfold window too).
        clock.advance(5 * 60 - 1);
        assert!(t.begin(ip("10.0.0.1"), "alice").await.unwrap().is_none());
        clock.advance(1);
        assert!(t.begin(ip("10.0.0.1"), "alice").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_success_clears_the_pair_and_not_the_address_count() {
        let (t, _) = throttle().await;
        let from = ip("10.0.0.1");
        for _ in 0..PER_ADDRESS_AND_USERNAME - 1 {
            assert!(t.begin(from, "alice").await.unwrap().is_some());
        }
        let ok = t.begin(from, "alice").await.unwrap().unwrap();
        t.succeeded(ok).await.unwrap();
        for _ in 0..PER_ADDRESS_AND_USERNAME {
            assert!(
                t.begin(from, "alice").await.unwrap().is_some(),
                "her count starts again"
            );
        }
        assert!(t.begin(from, "alice").await.unwrap().is_none());

        // A spray from another address, one short of its limit, then a success there.
        let from = ip("10.0.0.2");
        for i in 0..PER_ADDRESS - 1 {
            assert!(t.begin(from, &format!("u{i}")).await.unwrap().is_some());
        }
        let ok = t.begin(from, "alice").await.unwrap().unwrap();
        t.succeeded(ok).await.unwrap();
        assert!(
            t.begin(from, "bob").await.unwrap().is_some(),
            "the limit-th failure"
        );
        assert!(
            t.begin(from, "carol").await.unwrap().is_none(),
            "the success neither reset the address's count nor counted as a failure"
        );
    }

    #[tokio::test]
    async fn a_username_under_attack_still_lets_its_owner_in_from_a_clean_address() {
        let (t, _) = throttle().await;
        for i in 0..PER_USERNAME {
            let from = format!("10.3.{}.{}", i / 200, i % 200 + 1);
            assert!(t.begin(ip(&from), "alice").await.unwrap().is_some());
        }
        // An address that already tried alice is refused; a clean one gets one try.
        assert!(t.begin(ip("10.3.0.1"), "alice").await.unwrap().is_none());
        assert!(t.begin(ip("10.9.9.9"), "alice").await.unwrap().is_some());
        assert!(t.begin(ip("10.9.9.9"), "alice").await.unwrap().is_none());
        // Attempts from no request (a command) have no address: refused while under attack.
        assert!(t.begin(None, "alice").await.unwrap().is_none());
        assert!(t.begin(ip("10.9.9.8"), "bob").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn an_ipv6_network_is_one_address() {
        let (t, _) = throttle().await;
        for i in 0..PER_ADDRESS_AND_USERNAME {
            let from = format!("2001:db8:1:2::{:x}", i + 1);
            assert!(t.begin(ip(&from), "alice").await.unwrap().is_some());
        }
        assert!(
            t.begin(ip("2001:db8:1:2:ffff::1"), "alice")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            t.begin(ip("2001:db8:1:3::1"), "alice")
                .await
                .unwrap()
                .is_some()
        );
        t.set_ipv6_prefix_len(128);
        assert!(
            t.begin(ip("2001:db8:1:2::99"), "alice")
                .await
                .unwrap()
                .is_some()
        );
    }
}
