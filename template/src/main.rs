//! `{{project-name}} serve | migrate | createsuperuser | changepassword | routes`.
//!
//! The database comes from `DATABASE_URL`; without it, {% if database == "postgres" %}the PostgreSQL database `{{crate_name}}` on 127.0.0.1{% else %}the SQLite file `{{crate_name}}.sqlite3` in the working directory{% endif %}.

use std::process::ExitCode;

use {{crate_name}}::DEFAULT_DATABASE;

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
