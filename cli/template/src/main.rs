//! `{{project-name}} serve | migrate | createsuperuser | changepassword | routes | settings`.
//!
//! The database comes from the `database_url` setting (`DATABASE_URL`); without it, {% if database == "postgres" %}the PostgreSQL database `{{crate_name}}` on 127.0.0.1{% else %}the SQLite file `{{crate_name}}.sqlite3` in the working directory (in `data/` of a
//! `ferrule build --dist` directory){% endif %}.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let default = {{crate_name}}::DEFAULT_DATABASE;
    ferrule::App::main_on_database(Some(default), async |db| Ok({{crate_name}}::app(db))).await
}
