//! `shop migrate`, `shop demo-data`, then `shop serve` (address from `FERRULE_ADDR`, default
//! 127.0.0.1:3000; database from `DATABASE_URL`, default the SQLite file `ferrule.sqlite3`).
//! `demo-data` creates the shops acme and globex with their users and products; every user's
//! password is `SHOP_DEMO_PASSWORD` (default `correct horse battery`). `shop ban NAME` and
//! `shop unban NAME` switch a user's ban. `shop --help` lists them with the built-in commands.
//! (`SHOP_`, not `FERRULE_`: every `FERRULE_` variable must be a Ferrule setting.)

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    ferrule::App::main_on_database(None, async |db| Ok(shop::app(db))).await
}
