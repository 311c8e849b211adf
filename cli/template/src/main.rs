//! `{{project-name}} serve | migrate | createsuperuser | changepassword | routes | settings`.
//!
//! With the `redis_url` setting (`REDIS_URL`), tab states, rooms and live lists go through Redis,
//! so several `serve` processes behind one address (on one PostgreSQL database) are one app.
//!
//! The database comes from the `database_url` setting (`DATABASE_URL`); without it, {% if database == "postgres" %}the PostgreSQL database `{{crate_name}}` on 127.0.0.1{% else %}the SQLite file `{{crate_name}}.sqlite3` in the working directory (in `data/` of a
//! `ferrule build --dist` directory){% endif %}.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let default = {{crate_name}}::DEFAULT_DATABASE;
    // With `redis_url` (REDIS_URL) set, several processes behind one address serve as one.
    ferrule::App::main_on_database(Some(default), async |db| {
        {{crate_name}}::app(db)
            .with_redis_from_settings("{{crate_name}}")
            .await
    })
    .await
}
