//! One-time codes that hand a login or logout done on a socket to the browser: the server
//! switched the socket's session at once, and the browser trades the code at `/_auth/session`
//! for the matching HttpOnly cookie (only an HTTP response can set one).
//!
//! A code is stored in the database, so any node redeems it (no sticky sessions needed); it is
//! good once, for one minute, and only for the tab that got it, from the browser session that
//! tab had: a code carried to another browser (login CSRF: making a victim use the attacker's
//! account) is refused there. The exchange is a CSRF-checked POST like every other.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::db::expiring::Expiring;

/// How long a code may wait for its exchange.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(60);

/// What a code stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CookieHandover {
    /// The session id to put in the cookie; `None` clears it.
    pub(crate) session: Option<String>,
    /// The session cookies the tab's browser may hold: the one of the socket's handshake and
    /// those of the tab's earlier codes (`None`: no cookie).
    pub(crate) from: Vec<Option<String>>,
    /// The tab token of the socket.
    pub(crate) tab: String,
}

/// Why a code was not exchanged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum Refused {
    #[error("unknown, used or expired code")]
    Unknown,
    #[error("this code belongs to another tab or browser")]
    Elsewhere,
}

/// The codes, in the app's database.
#[derive(Clone)]
pub struct CookieCodes {
    store: Expiring,
}

impl CookieCodes {
    pub(crate) fn new(store: Expiring) -> Self {
        Self { store }
    }

    /// Issues a code for `handover`.
    pub(crate) async fn issue(&self, handover: &CookieHandover) -> Result<String, crate::Error> {
        use rand::Rng;
        let bytes: [u8; 24] = rand::rng().random();
        let code: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let value = serde_json::to_string(handover)?;
        self.store.put(&key(&code), &value, CODE_TTL).await?;
        Ok(code)
    }

    /// Takes the code (once, whoever asks) and returns the session id for the cookie when the
    /// asking browser is the one it was issued to: tab `tab`, with session cookie `from`.
    pub(crate) async fn redeem(
        &self,
        code: &str,
        tab: Option<&str>,
        from: Option<&str>,
    ) -> Result<Result<Option<String>, Refused>, crate::Error> {
        if code.len() > 64 {
            return Ok(Err(Refused::Unknown));
        }
        let Some(value) = self.store.take(&key(code)).await? else {
            return Ok(Err(Refused::Unknown));
        };
        let handover: CookieHandover = serde_json::from_str(&value)?;
        let from = from.map(str::to_owned);
        if tab != Some(handover.tab.as_str()) || !handover.from.contains(&from) {
            tracing::warn!("a session code was presented by another tab or browser; refused");
            return Ok(Err(Refused::Elsewhere));
        }
        Ok(Ok(handover.session))
    }
}

fn key(code: &str) -> String {
    format!("code:{code}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::expiring::Clock;

    async fn codes() -> (CookieCodes, Clock) {
        let (counters, clock) = Expiring::in_memory().await;
        (CookieCodes::new(counters), clock)
    }

    fn handover() -> CookieHandover {
        CookieHandover {
            session: Some("new-session".into()),
            from: vec![Some("old-session".into())],
            tab: "tab-1".into(),
        }
    }

    #[tokio::test]
    async fn a_code_is_good_for_its_minute_and_not_a_second_more() {
        let (codes, clock) = codes().await;
        let early = codes.issue(&handover()).await.unwrap();
        let late = codes.issue(&handover()).await.unwrap();
        // The minute the module promises, written out: a test reading `CODE_TTL` would follow
        // it anywhere (a thousandfold lifetime too).
        clock.advance(60 - 1);
        let redeemed = codes
            .redeem(&early, Some("tab-1"), Some("old-session"))
            .await
            .unwrap();
        assert_eq!(redeemed, Ok(Some("new-session".into())));
        clock.advance(1);
        let expired = codes
            .redeem(&late, Some("tab-1"), Some("old-session"))
            .await
            .unwrap();
        assert_eq!(expired, Err(Refused::Unknown));
    }

    #[tokio::test]
    async fn a_code_needs_both_its_tab_and_its_browser_and_is_used_up_by_any_try() {
        let (codes, _) = codes().await;
        for (tab, from) in [
            (Some("tab-2"), Some("old-session")),
            (Some("tab-1"), Some("someone-else")),
            (Some("tab-1"), None),
            (None, Some("old-session")),
        ] {
            let code = codes.issue(&handover()).await.unwrap();
            assert_eq!(
                codes.redeem(&code, tab, from).await.unwrap(),
                Err(Refused::Elsewhere),
                "{tab:?} {from:?}"
            );
            // Refused and gone: the right browser cannot use it after a wrong try either.
            assert_eq!(
                codes
                    .redeem(&code, Some("tab-1"), Some("old-session"))
                    .await
                    .unwrap(),
                Err(Refused::Unknown)
            );
        }
    }
}
