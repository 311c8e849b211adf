//! What every Redis user of the runtime shares (states, jobs): how it connects, where a
//! deployment's keys live, and what a Redis error means to a user.

use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::Error;

/// What the keys of deployment `prefix` start with.
pub(crate) fn key_prefix(prefix: &str) -> String {
    format!("ferrule:{prefix}:")
}

/// A connection to `url` that reconnects by itself, failing fast at startup when the server is
/// unreachable (later reconnects retry as usual).
pub(crate) async fn connect(url: &str) -> Result<ConnectionManager, Error> {
    let client = redis::Client::open(url).map_err(redis_err)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    client
        .get_connection_manager_with_config(config)
        .await
        .map_err(redis_err)
}

/// Unreachable Redis is an outage (the user is asked to retry); anything else is a bug.
pub(crate) fn redis_err(e: redis::RedisError) -> Error {
    if e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || e.is_unrecoverable_error()
    {
        Error::unavailable(format!("redis: {e}"))
    } else {
        Error::internal(format!("redis: {e}"))
    }
}
