//! The database: sea-orm over SQLite (the embedded default) or PostgreSQL, the runtime's own
//! entities (sessions, users, groups, permissions) and their migrations.
//!
//! `DATABASE_URL` picks the database; unset, apps use a SQLite file `ferrule.sqlite3` in the
//! working directory, created on first `migrate`.

pub mod entities;
pub(crate) mod expiring;
pub mod migrations;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
    Value,
};

pub use sea_orm;
pub use sea_orm_migration;
/// Everything an app's migrations need, in one import.
pub use sea_orm_migration::prelude as sea_orm_migration_prelude;

/// The SQLite file apps use when `DATABASE_URL` is unset.
pub const DEFAULT_SQLITE_FILE: &str = "ferrule.sqlite3";

/// The database URL: `DATABASE_URL`, or the default SQLite file (created when missing).
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| format!("sqlite://{DEFAULT_SQLITE_FILE}?mode=rwc"))
}

/// `url` with its password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Connects to the app's database: `DATABASE_URL`, else `default_url`, else the SQLite file
/// [`DEFAULT_SQLITE_FILE`]. The error says which database (password hidden) and why.
pub async fn connect_from_env(default_url: Option<&str>) -> Result<DatabaseConnection, String> {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| default_url.map(at_home))
        .unwrap_or_else(database_url);
    connect(&url)
        .await
        .map_err(|e| format!("cannot open the database {}: {e}", redact(&url)))
}

/// Connects to `url`, else the SQLite file [`DEFAULT_SQLITE_FILE`] (created when missing). The
/// error says which database (password hidden) and why.
pub async fn open(url: Option<&str>) -> Result<DatabaseConnection, String> {
    let url = url.filter(|s| !s.trim().is_empty()).map_or_else(
        || at_home(&format!("sqlite://{DEFAULT_SQLITE_FILE}?mode=rwc")),
        str::to_owned,
    );
    connect(&url)
        .await
        .map_err(|e| format!("cannot open the database {}: {e}", redact(&url)))
}

/// A default SQLite URL with a relative file, moved into the [`data_dir`] of a dist directory
/// (created when missing), so `DIR/app serve` finds its data wherever it is started from;
/// elsewhere, and for other URLs, `url` as it is.
///
/// [`data_dir`]: crate::settings::data_dir
pub(crate) fn at_home(url: &str) -> String {
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return url.to_owned();
    };
    let (file, query) = rest.split_once('?').unwrap_or((rest, ""));
    if crate::settings::dist_dir().is_none()
        || file.is_empty()
        || file.starts_with(':')
        || std::path::Path::new(file).is_absolute()
    {
        return url.to_owned();
    }
    let dir = crate::settings::data_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        // Connecting then fails naming the file, which says more than this would.
        tracing::warn!(dir = %dir.display(), "cannot create the data directory: {e}");
    }
    let path = dir.join(file);
    match query {
        "" => format!("sqlite://{}", path.display()),
        q => format!("sqlite://{}?{q}", path.display()),
    }
}

/// Connects to `url` with a pool sized for this machine; the error names the database kind.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .max_connections(if url.starts_with("sqlite") { 8 } else { 16 })
        .acquire_timeout(std::time::Duration::from_secs(10));
    let db = Database::connect(opts).await?;
    if db.get_database_backend() == DbBackend::Sqlite {
        // Concurrent readers with one writer, and wait instead of failing when the file is busy.
        db.execute_unprepared(
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
        )
        .await?;
    }
    Ok(db)
}

/// A statement with `?` placeholders rewritten for the connection's backend (`$1..` on PostgreSQL).
pub(crate) fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
