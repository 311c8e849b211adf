//! `chat migrate`, then `chat serve` (address from `FERRULE_ADDR`, default 127.0.0.1:3000;
//! database from `DATABASE_URL`, default the SQLite file `ferrule.sqlite3`). With `REDIS_URL`
//! (the `redis_url` setting) set, tab states and room broadcasts go through Redis, so several
//! `chat serve` processes behind one address are one chat (point them at one PostgreSQL
//! database too).

use std::process::ExitCode;

use chat::ChatOptions;
use ferrule::redis_state::RedisStateManager;
use ferrule::rooms::RedisBroadcast;

#[tokio::main]
async fn main() -> ExitCode {
    ferrule::App::main_on_database(None, async |db| {
        // ANCHOR: redis
        let app = chat::app(db, ChatOptions::default());
        // `redis_url`: REDIS_URL, or a line of Ferrule.toml or .env.
        let settings = ferrule::Settings::load().map_err(ferrule::Error::internal)?;
        let Some(redis) = settings.redis_url else {
            return Ok(app);
        };
        let states = RedisStateManager::connect(&redis, "chat").await?;
        let broadcast = RedisBroadcast::connect(&redis, "chat").await?;
        Ok(app.state_manager(states).broadcast_over_redis(broadcast))
        // ANCHOR_END: redis
    })
    .await
}
