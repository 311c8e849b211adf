//! Login throttling shared by every node: failed logins are counted in the database per
//! address and username, per address across usernames (a spray of common passwords over many
//! accounts) and per username across addresses (many machines guessing one account).
//!
//! Each limit holds for [`WINDOW`] from the first failure it counts. The per-username limit is
//! set high, so that someone who only knows a username cannot lock its owner out with a few
//! tries; a success clears the address-and-username count only, so it does not reset a spray.

use std::net::IpAddr;
use std::time::Duration;

use crate::db::expiring::Expiring;

/// How long a count of failures lasts.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Failures of one username from one address before that pair is refused.
pub const PER_ADDRESS_AND_USERNAME: i64 = 5;
/// Failures from one address, any usernames, before the address is refused.
pub const PER_ADDRESS: i64 = 20;
/// Failures for one username, from any addresses, before the username is refused.
pub const PER_USERNAME: i64 = 50;

/// What a refused login is told.
pub const THROTTLED_MESSAGE: &str = "Too many failed logins. Try again in a few minutes.";

/// The counters of failed logins.
#[derive(Clone)]
pub(crate) struct Throttle {
    counters: Expiring,
}

/// The three counters one attempt touches.
struct Keys {
    pair: Option<String>,
    address: Option<String>,
    username: String,
}

impl Keys {
    fn of(ip: Option<IpAddr>, username: &str) -> Self {
        // Usernames are at most 150 characters; an attacker's longer one must not make long keys.
        let user: String = username.to_lowercase().chars().take(150).collect();
        Self {
            pair: ip.map(|ip| format!("login:pair:{ip}:{user}")),
            address: ip.map(|ip| format!("login:addr:{ip}")),
            username: format!("login:user:{user}"),
        }
    }
}

impl Throttle {
    pub(crate) fn new(counters: Expiring) -> Self {
        Self { counters }
    }

    /// Whether an attempt for `username` from `ip` (`None`: not from a request) is refused.
    pub(crate) async fn refused(
        &self,
        ip: Option<IpAddr>,
        username: &str,
    ) -> Result<bool, sea_orm::DbErr> {
        let keys = Keys::of(ip, username);
        let limits = [
            (keys.pair.as_deref(), PER_ADDRESS_AND_USERNAME),
            (keys.address.as_deref(), PER_ADDRESS),
            (Some(keys.username.as_str()), PER_USERNAME),
        ];
        let counted: Vec<(&str, i64)> = limits
            .iter()
            .filter_map(|(key, limit)| key.map(|k| (k, *limit)))
            .collect();
        let names: Vec<&str> = counted.iter().map(|(k, _)| *k).collect();
        let hits = self.counters.hits(&names).await?;
        Ok(hits
            .iter()
            .zip(&counted)
            .any(|(hits, (_, limit))| hits >= limit))
    }

    /// Counts a failed attempt.
    pub(crate) async fn failed(
        &self,
        ip: Option<IpAddr>,
        username: &str,
    ) -> Result<(), sea_orm::DbErr> {
        let keys = Keys::of(ip, username);
        for key in [keys.pair, keys.address, Some(keys.username)]
            .into_iter()
            .flatten()
        {
            self.counters.bump(&key, WINDOW).await?;
        }
        Ok(())
    }

    /// A success clears the count of this address and username.
    pub(crate) async fn succeeded(
        &self,
        ip: Option<IpAddr>,
        username: &str,
    ) -> Result<(), sea_orm::DbErr> {
        if let Some(pair) = Keys::of(ip, username).pair {
            self.counters.forget(&pair).await?;
        }
        Ok(())
    }
}
