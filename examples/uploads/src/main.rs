//! Run with `cargo run -p uploads -- migrate`, then `cargo run -p uploads -- serve` (address from
//! `FERRULE_ADDR`, default 127.0.0.1:3000; database from `DATABASE_URL`, default the SQLite file
//! `ferrule.sqlite3` in the working directory).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    ferrule::App::main_on_database(None, async |db| Ok(uploads::app(db))).await
}
