//! The in-memory outbox of tests: what the app sent, in order, and a wait for the next one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::Email;

/// The messages a `memory` mailer sent ([`super::Mailer::to_outbox`]). Clones share one outbox.
#[derive(Clone, Default)]
pub struct Outbox {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    sent: Mutex<Vec<Email>>,
    arrived: Notify,
}

impl Outbox {
    /// A new, empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn keep(&self, email: Email) {
        self.lock().push(email);
        self.inner.arrived.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Email>> {
        self.inner.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every message sent so far, oldest first.
    pub fn sent(&self) -> Vec<Email> {
        self.lock().clone()
    }

    /// The messages sent to `address` so far, oldest first.
    pub fn sent_to(&self, address: &str) -> Vec<Email> {
        self.lock()
            .iter()
            .filter(|m| m.to == address)
            .cloned()
            .collect()
    }

    /// Waits up to `wait` for the `n`-th message (0 for the first) to `address`; `None` when
    /// it has not come by then.
    pub async fn nth_to(&self, address: &str, n: usize, wait: Duration) -> Option<Email> {
        let found = async {
            loop {
                let arrived = self.inner.arrived.notified();
                if let Some(mail) = self.sent_to(address).into_iter().nth(n) {
                    return mail;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(wait, found).await.ok()
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("sent", &self.lock().len())
            .finish()
    }
}

impl Email {
    /// The links (`http://`, `https://`) in the plain-text part, in order.
    pub fn links(&self) -> Vec<&str> {
        self.text
            .split_whitespace()
            .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
            .map(|w| w.trim_end_matches(['.', ',', ')', '>']))
            .collect()
    }
}
