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
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde_json::{Map, Value};

use crate::Error;
use crate::state::{StateLock, StateManager, TokenStates};

/// Releases the lock only if we still hold it (its value is our random owner id).
const UNLOCK: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

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

fn redis_err(e: redis::RedisError) -> Error {
    Error::internal(format!("redis: {e}"))
}

impl RedisStateManager {
    /// Connects to `url`; keys go under `ferrule:<prefix>:` (use one prefix per app).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        // Fail fast at startup when the server is unreachable; reconnects later retry as usual.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(redis_err)?;
        Ok(Self {
            conn,
            prefix: format!("ferrule:{prefix}:"),
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
}

impl StateLock for RedisLock {
    fn states(&mut self) -> &mut TokenStates {
        &mut self.states
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        Box::pin(async move {
            let mut conn = self.manager.conn.clone();
            let json = Value::Object(self.states.to_json()).to_string();
            let state_key = self.manager.key("state", &self.token);
            let lock_key = self.manager.key("lock", &self.token);
            let saved: Result<(), _> = conn
                .pset_ex(&state_key, json, self.manager.state_ttl.as_millis() as u64)
                .await;
            // Unlock even when saving failed, so the tab is not stuck until the lock expires.
            let unlocked: Result<i64, _> = redis::Script::new(UNLOCK)
                .key(&lock_key)
                .arg(&self.owner)
                .invoke_async(&mut conn)
                .await;
            saved.map_err(redis_err)?;
            unlocked.map_err(redis_err)?;
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
        let lock_key = self.key("lock", token);
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let mut backoff = Duration::from_millis(2);
        loop {
            let got: Option<String> = redis::cmd("SET")
                .arg(&lock_key)
                .arg(&owner)
                .arg("NX")
                .arg("PX")
                .arg(self.lock_ttl.as_millis() as u64)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            if got.is_some() {
                break;
            }
            if started.elapsed() > self.lock_wait {
                return Err(Error::internal(format!(
                    "timed out after {:?} waiting for the state lock of a tab",
                    self.lock_wait
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(50));
        }
        let raw: Option<String> = conn
            .get(self.key("state", token))
            .await
            .map_err(redis_err)?;
        let stored: Map<String, Value> = match raw {
            Some(text) => match serde_json::from_str(&text) {
                Ok(Value::Object(map)) => map,
                _ => {
                    tracing::warn!(
                        token,
                        "stored states are not a JSON object; starting afresh"
                    );
                    Map::new()
                }
            },
            None => Map::new(),
        };
        Ok(Box::new(RedisLock {
            manager: self.clone(),
            token: token.to_owned(),
            owner,
            states: TokenStates::from_json(stored),
        }))
    }
}
