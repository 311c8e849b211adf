//! Where tabs' states live between events: the manager trait, and the in-memory manager
//! (Redis is in `redis_state`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use crate::Error;

use super::TokenStates;

/// Exclusive access to one token's states, held while one event of that token runs.
pub trait StateLock: Send {
    /// The token's states.
    fn states(&mut self) -> &mut TokenStates;
    /// Stores the states (where the manager stores anything) and lets the next event in.
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>>;
}

/// Where states live between events: in memory (default) or, for several processes, Redis.
///
/// `lock` is how events of one token stay in order: the bridge holds the lock from before the
/// middleware chain until the delta is computed.
#[async_trait::async_trait]
pub trait StateManager: Send + Sync + 'static {
    /// Waits for and takes the lock on `token`'s states.
    async fn lock(&self, token: &str) -> Result<Box<dyn StateLock>, Error>;

    /// Checks that the store outside this process (Redis) answers, for the readiness check;
    /// `None` for a manager that keeps states in memory.
    async fn ping(&self) -> Option<Result<(), Error>> {
        None
    }

    /// How much the store holds, where it keeps count (the in-memory store; Redis reports its
    /// own memory).
    fn size(&self) -> Option<StoreSize> {
        None
    }

    /// Drops `token`'s states now (a tab past its session's or address's cap). A manager whose
    /// states expire on their own may leave them to that.
    async fn forget(&self, _token: &str) -> Result<(), Error> {
        Ok(())
    }
}

/// How much a state store holds: tabs (tokens, bound keys and sessions' shared states) and
/// about how many bytes their states take as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StoreSize {
    /// Keys with states.
    pub tabs: usize,
    /// Their states' JSON, in bytes.
    pub bytes: usize,
}

struct MemoryEntry {
    states: Arc<tokio::sync::Mutex<TokenStates>>,
    last_used: Instant,
}

/// Keeps states in this process's memory; tokens idle for longer than the TTL are dropped.
pub struct MemoryStateManager {
    tokens: StdMutex<HashMap<String, MemoryEntry>>,
    ttl: Duration,
    /// The states' bytes, kept up to date as each lock is let go.
    bytes: Arc<AtomicUsize>,
}

impl Default for MemoryStateManager {
    fn default() -> Self {
        Self::new(Duration::from_secs(24 * 3600))
    }
}

impl MemoryStateManager {
    /// A manager that forgets a token after `ttl` without events.
    pub fn new(ttl: Duration) -> Self {
        Self {
            tokens: StdMutex::new(HashMap::new()),
            ttl,
            bytes: Arc::default(),
        }
    }

    /// Drops tokens idle for longer than the TTL; returns how many went.
    pub fn sweep(&self) -> usize {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let before = tokens.len();
        let ttl = self.ttl;
        tokens.retain(|_, e| {
            let keep = Arc::strong_count(&e.states) > 1 || e.last_used.elapsed() < ttl;
            if !keep {
                self.dropped(e);
            }
            keep
        });
        before - tokens.len()
    }

    /// How many tabs' states are held and about how many bytes they take.
    pub fn size(&self) -> StoreSize {
        StoreSize {
            tabs: self.len(),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Takes an entry nobody holds out of the count.
    fn dropped(&self, entry: &MemoryEntry) {
        if let Ok(states) = entry.states.try_lock() {
            self.bytes.fetch_sub(states.bytes(), Ordering::Relaxed);
        }
    }

    /// Number of tokens held.
    pub fn len(&self) -> usize {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A held entry; letting it go (released or dropped) brings the store's byte count up to date.
struct MemoryLock {
    states: tokio::sync::OwnedMutexGuard<TokenStates>,
    bytes_before: usize,
    total: Arc<AtomicUsize>,
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        let after = self.states.bytes();
        if after >= self.bytes_before {
            self.total
                .fetch_add(after - self.bytes_before, Ordering::Relaxed);
        } else {
            self.total
                .fetch_sub(self.bytes_before - after, Ordering::Relaxed);
        }
    }
}

impl StateLock for MemoryLock {
    fn states(&mut self) -> &mut TokenStates {
        &mut self.states
    }
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        drop(self);
        Box::pin(async { Ok(()) })
    }
}

#[async_trait::async_trait]
impl StateManager for MemoryStateManager {
    async fn lock(&self, token: &str) -> Result<Box<dyn StateLock>, Error> {
        let states = {
            let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            // Looked up by reference first: the key is copied only for a tab's first lock.
            match tokens.get_mut(token) {
                Some(entry) => {
                    entry.last_used = now;
                    entry.states.clone()
                }
                None => {
                    let states = Arc::<tokio::sync::Mutex<TokenStates>>::default();
                    tokens.insert(
                        token.to_owned(),
                        MemoryEntry {
                            states: states.clone(),
                            last_used: now,
                        },
                    );
                    states
                }
            }
        };
        let states = states.lock_owned().await;
        Ok(Box::new(MemoryLock {
            bytes_before: states.bytes(),
            states,
            total: self.bytes.clone(),
        }))
    }

    fn size(&self) -> Option<StoreSize> {
        Some(Self::size(self))
    }

    async fn forget(&self, token: &str) -> Result<(), Error> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        // A token whose event is running right now stays: it is not idle after all.
        if tokens
            .get(token)
            .is_some_and(|e| Arc::strong_count(&e.states) == 1)
            && let Some(gone) = tokens.remove(token)
        {
            self.dropped(&gone);
        }
        Ok(())
    }
}
