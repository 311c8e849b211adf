//! Run with `cargo run -p uploads -- migrate`, then `cargo run -p uploads -- serve` (address from
//! `FERRULE_ADDR`, default 127.0.0.1:3000; database from `DATABASE_URL`, default the SQLite file
//! `ferrule.sqlite3` in the working directory).

use std::process::ExitCode;

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
    uploads::app(db).run_cli().await
}
