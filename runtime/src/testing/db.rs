//! A fresh database per test.

use super::*;
use crate::db::redact;

/// A fresh, empty database for one test, of the kind the app uses: a new SQLite file for a
/// `sqlite:` URL, a new database on the same server for a `postgres:` URL. It is deleted when
/// dropped, so tests never see each other's rows and leave nothing behind.
///
/// `TEST_DATABASE_URL`, when set, replaces the URL given (to run an app's tests against
/// another server, or against PostgreSQL although the app defaults to SQLite).
pub struct TestDatabase {
    conn: sea_orm::DatabaseConnection,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// Makes a database like `like` names (see the type's documentation).
    pub async fn create(like: &str) -> Result<Self, TestError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let like = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| like.to_owned());
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tag = format!("test_{}_{n}_{nanos}", std::process::id());
        let (url, cleanup) = if like.starts_with("sqlite:") {
            let path = std::env::temp_dir().join(format!("ferrule_{tag}.sqlite3"));
            let url = format!("sqlite://{}?mode=rwc", path.display());
            (url, Cleanup::File(path))
        } else if like.starts_with("postgres:") || like.starts_with("postgresql:") {
            let (server, db) = split_database(&like);
            let mut name: String = db
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(24)
                .collect::<String>()
                .to_ascii_lowercase();
            if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                name.insert_str(0, "db");
            }
            let name = format!("{name}_{tag}");
            let admin_url = server.replace("{db}", "postgres");
            let admin = crate::db::connect(&admin_url).await.map_err(|e| {
                TestError::Database(format!(
                    "PostgreSQL at {} is not reachable ({e}): start it, or set \
                     TEST_DATABASE_URL to a server tests may create databases on",
                    redact(&admin_url)
                ))
            })?;
            use sea_orm::ConnectionTrait;
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .map_err(|e| TestError::Database(format!("CREATE DATABASE {name}: {e}")))?;
            let _ = admin.close().await;
            let url = server.replace("{db}", &name);
            (url, Cleanup::Postgres { admin_url, name })
        } else {
            return Err(TestError::Database(format!(
                "`{}` is neither a sqlite: nor a postgres: URL",
                redact(&like)
            )));
        };
        let conn = crate::db::connect(&url)
            .await
            .map_err(|e| TestError::Database(format!("{}: {e}", redact(&url))))?;
        Ok(Self { conn, url, cleanup })
    }

    /// A connection pool to the database (cheap to clone).
    pub fn connection(&self) -> sea_orm::DatabaseConnection {
        self.conn.clone()
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                // Drop runs inside or outside a runtime: a thread of its own with its own
                // runtime works in both.
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    rt.block_on(async {
                        use sea_orm::ConnectionTrait;
                        let admin = crate::db::connect(&admin_url).await.ok()?;
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = admin.execute_unprepared(&sql).await;
                        admin.close().await.ok()
                    })
                })
                .join();
            }
        }
    }
}

/// `postgres://u@h:5432/db?x=y` → (`postgres://u@h:5432/{db}?x=y`, `db`).
fn split_database(url: &str) -> (String, String) {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = main.find("://").map(|i| i + 3).unwrap_or(0);
    match main[after_scheme..].rfind('/') {
        Some(i) => {
            let cut = after_scheme + i;
            (
                format!("{}/{{db}}{query}", &main[..cut]),
                main[cut + 1..].to_owned(),
            )
        }
        None => (format!("{main}/{{db}}{query}"), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::{redact, split_database};

    #[test]
    fn database_urls_are_split_and_redacted() {
        assert_eq!(
            split_database("postgres://u:pw@h:5432/shop?sslmode=disable"),
            (
                "postgres://u:pw@h:5432/{db}?sslmode=disable".to_owned(),
                "shop".to_owned()
            )
        );
        assert_eq!(
            split_database("postgres://h:5432"),
            ("postgres://h:5432/{db}".to_owned(), String::new())
        );
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
