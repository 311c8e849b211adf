//! `chat migrate`, then `chat serve` (address from `FERRULE_ADDR`, default 127.0.0.1:3000;
//! database from `DATABASE_URL`, default the SQLite file `ferrule.sqlite3`). With `REDIS_URL`
//! set, tab states and room broadcasts go through Redis, so several `chat serve` processes
//! behind one address are one chat (point them at one PostgreSQL database too).

use std::process::ExitCode;

use chat::ChatOptions;
use ferrule::redis_state::RedisStateManager;
use ferrule::rooms::RedisBroadcast;

#[tokio::main]
async fn main() -> ExitCode {
    let url = ferrule::db::database_url();
    let db = match ferrule::db::connect(&url).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("error: cannot open the database: {e}");
            return ExitCode::FAILURE;
        }
    };
    // ANCHOR: redis
    let mut app = chat::app(db, ChatOptions::default());
    if let Ok(redis) = std::env::var("REDIS_URL") {
        let nodes = async {
            let states = RedisStateManager::connect(&redis, "chat").await?;
            let broadcast = RedisBroadcast::connect(&redis, "chat").await?;
            Ok::<_, ferrule::Error>((states, broadcast))
        };
        match nodes.await {
            Ok((states, broadcast)) => {
                app = app.state_manager(states).broadcast_over_redis(broadcast);
            }
            Err(e) => {
                eprintln!("error: REDIS_URL is set but Redis cannot be used: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    app.run_cli().await
    // ANCHOR_END: redis
}
