//! `chat migrate`, then `chat serve` (address from `FERRULE_ADDR`, default 127.0.0.1:3000;
//! database from `DATABASE_URL`, default the SQLite file `ferrule.sqlite3`). With `REDIS_URL`
//! (the `redis_url` setting) set, tab states and room broadcasts go through Redis, so several
//! `chat serve` processes behind one address are one chat (point them at one PostgreSQL
//! database too).

use std::process::ExitCode;

use chat::ChatOptions;

#[tokio::main]
async fn main() -> ExitCode {
    ferrule::App::main_on_database(None, async |db| {
        // ANCHOR: redis
        // `redis_url`: REDIS_URL, or a line of Ferrule.toml or .env.
        chat::app(db, ChatOptions::default())
            .with_redis_from_settings("chat")
            .await
        // ANCHOR_END: redis
    })
    .await
}
