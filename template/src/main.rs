//! `{{project-name}} serve | migrate | createsuperuser | changepassword | routes`.
//!
//! The database comes from `DATABASE_URL`; without it, {% if database == "postgres" %}the PostgreSQL database `{{crate_name}}` on 127.0.0.1{% else %}the SQLite file `{{crate_name}}.sqlite3` in the working directory{% endif %}.

use std::process::ExitCode;

/// Where the data lives when `DATABASE_URL` is not set.
const DEFAULT_DATABASE: &str = {% if database == "postgres" %}"postgres://postgres@127.0.0.1:5432/{{crate_name}}"{% else %}"sqlite://{{crate_name}}.sqlite3?mode=rwc"{% endif %};

#[tokio::main]
async fn main() -> ExitCode {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE.to_owned());
    let db = match ferrule::db::connect(&url).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("error: cannot open the database {url}: {e}");
            return ExitCode::FAILURE;
        }
    };
    {{crate_name}}::app(db).run_cli().await
}
