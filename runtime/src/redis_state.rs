//! States in Redis, for several server processes: each token's states are one JSON value with a
//! TTL, and a lock per token keeps one tab's events in order across processes.
//!
//! ```no_run
//! # async fn demo(app: ferrule::App) -> Result<(), ferrule::Error> {
//! let manager = ferrule::redis_state::RedisStateManager::connect("redis://127.0.0.1:6379", "shop").await?;
//! let app = app.state_manager(manager);
//! # Ok(()) }
//! ```

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use redis::aio::ConnectionManager;
use serde_json::{Map, Value};

use crate::Error;
use crate::state::{StateLock, StateManager, TokenStates};

/// Takes the lock and reads the states in one round trip: nil when the lock is taken, else the
/// stored JSON ("" when there is none).
const LOCK_AND_GET: &str = r#"
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  local v = redis.call("GET", KEYS[2])
  if v then return v else return "" end
end
return false
"#;

/// Stores the states and releases the lock in one round trip, only while we still hold the
/// lock (its value is our random owner id); 0 when it expired and someone else may hold it.
const SET_AND_UNLOCK: &str = r#"
if redis.call("GET", KEYS[2]) == ARGV[3] then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  redis.call("DEL", KEYS[2])
  return 1
end
return 0
"#;

/// Keeps every token's states in Redis under `ferrule:<prefix>:`.
#[derive(Clone)]
pub struct RedisStateManager {
    conn: ConnectionManager,
    prefix: String,
    /// How long a token's states live without events.
    pub state_ttl: Duration,
    /// How long a lock holds if its holder dies mid-event.
    pub lock_ttl: Duration,
    /// How long an event waits for the lock before failing with an error toast.
    pub lock_wait: Duration,
}

use crate::redis_conn::{key_prefix, redis_err};

/// Deletes the lock only while we still hold it, for a lock given up without storing.
const UNLOCK: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
"#;

impl RedisStateManager {
    /// Connects to `url`; keys go under `ferrule:<prefix>:` (use one prefix per app).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, Error> {
        let conn = crate::redis_conn::connect(url).await?;
        Ok(Self {
            conn,
            prefix: key_prefix(prefix),
            state_ttl: Duration::from_secs(24 * 3600),
            lock_ttl: Duration::from_secs(30),
            lock_wait: Duration::from_secs(10),
        })
    }

    fn key(&self, kind: &str, token: &str) -> String {
        format!("{}{kind}:{token}", self.prefix)
    }
}

struct RedisLock {
    manager: RedisStateManager,
    token: String,
    owner: String,
    states: TokenStates,
    /// Set once `release` has run: dropping the lock before that gives it up at once.
    released: bool,
}

impl Drop for RedisLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // The event was dropped half-way (a cancelled future, a shutdown past its grace):
        // nothing is stored, and the next event of the tab must not wait out the lock's TTL.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut conn = self.manager.conn.clone();
        let key = self.manager.key("lock", &self.token);
        let owner = std::mem::take(&mut self.owner);
        runtime.spawn(async move {
            let done: Result<i64, _> = redis::Script::new(UNLOCK)
                .key(key)
                .arg(owner)
                .invoke_async(&mut conn)
                .await;
            if let Err(e) = done {
                tracing::warn!(error = %e, "could not give up a dropped state lock; it expires with its TTL");
            }
        });
    }
}

impl StateLock for RedisLock {
    fn states(&mut self) -> &mut TokenStates {
        &mut self.states
    }

    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        // From here on the store below owns the unlock, even if it fails half-way.
        self.released = true;
        Box::pin(async move {
            let mut conn = self.manager.conn.clone();
            let json = Value::Object(self.states.to_json()).to_string();
            let stored: i64 = redis::Script::new(SET_AND_UNLOCK)
                .key(self.manager.key("state", &self.token))
                .key(self.manager.key("lock", &self.token))
                .arg(json)
                .arg(self.manager.state_ttl.as_millis() as u64)
                .arg(&self.owner)
                .invoke_async(&mut conn)
                .await
                .map_err(redis_err)?;
            if stored == 0 {
                return Err(Error::internal(format!(
                    "the state lock of a tab expired after {:?} before the event finished; its change was discarded",
                    self.manager.lock_ttl
                )));
            }
            Ok(())
        })
    }
}

#[async_trait::async_trait]
impl StateManager for RedisStateManager {
    async fn lock(&self, token: &str) -> Result<Box<dyn StateLock>, Error> {
        use rand::Rng;
        let owner: String = {
            let bytes: [u8; 12] = rand::rng().random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        };
        let mut conn = self.conn.clone();
        let script = redis::Script::new(LOCK_AND_GET);
        let started = Instant::now();
        let mut backoff = Duration::from_millis(2);
        let raw = loop {
            let got: Option<String> = script
                .key(self.key("lock", token))
                .key(self.key("state", token))
                .arg(&owner)
                .arg(self.lock_ttl.as_millis() as u64)
                .invoke_async(&mut conn)
                .await
                .map_err(redis_err)?;
            if let Some(raw) = got {
                break raw;
            }
            if started.elapsed() > self.lock_wait {
                return Err(Error::internal(format!(
                    "timed out after {:?} waiting for the state lock of a tab",
                    self.lock_wait
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(50));
        };
        let stored: Map<String, Value> = if raw.is_empty() {
            Map::new()
        } else {
            match serde_json::from_str(&raw) {
                Ok(Value::Object(map)) => map,
                _ => {
                    tracing::warn!(
                        token,
                        "stored states are not a JSON object; starting afresh"
                    );
                    Map::new()
                }
            }
        };
        Ok(Box::new(RedisLock {
            manager: self.clone(),
            token: token.to_owned(),
            owner,
            states: TokenStates::from_json(stored),
            released: false,
        }))
    }

    async fn ping(&self) -> Option<Result<(), Error>> {
        let mut conn = self.conn.clone();
        let pong: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
        Some(pong.map(|_| ()).map_err(redis_err))
    }
}
