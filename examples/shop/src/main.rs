//! `shop migrate`, `shop demo-data`, then `shop serve` (address from `FERRULE_ADDR`, default
//! 127.0.0.1:3000; database from `DATABASE_URL`, default the SQLite file `ferrule.sqlite3`).
//! `demo-data` creates the shops acme and globex with their users and products; every user's
//! password is `FERRULE_DEMO_PASSWORD` (default `correct horse battery`). `shop ban NAME` and
//! `shop unban NAME` switch a user's ban.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // Its own commands need the database outside the app: `main_on_database` does not fit.
    let db = match ferrule::db::connect_from_env(None).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, name] = args.as_slice()
        && (cmd == "ban" || cmd == "unban")
    {
        return match shop::server::set_banned(&db, name, cmd == "ban").await {
            Ok(()) => {
                println!("{name}: {cmd}ned");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some("demo-data") {
        let password = std::env::var("FERRULE_DEMO_PASSWORD")
            .unwrap_or_else(|_| "correct horse battery".to_owned());
        return match shop::server::demo_data(&db, &password).await {
            Ok(()) => {
                let users: Vec<&str> = shop::server::DEMO_USERS.iter().map(|u| u.0).collect();
                println!("demo data ready: users {}", users.join(", "));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e} (run `shop migrate` first)");
                ExitCode::FAILURE
            }
        };
    }
    shop::app(db).run_cli().await
}
