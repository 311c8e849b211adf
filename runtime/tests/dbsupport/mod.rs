//! Real databases for tests: a fresh SQLite file, or a fresh database on the PostgreSQL server
//! `FERRULE_TEST_POSTGRES` names (the xtask sets it when the server is reachable). Without it the
//! PostgreSQL variants say so loudly and skip, except under `CI=true`, where they fail.

#![allow(dead_code, unreachable_pub)]

use ferrule::db::sea_orm::DatabaseConnection;
use ferrule::testing::TestDatabase;

/// Which server a test runs against.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, migrated database for one test: `ferrule::testing::TestDatabase` (which deletes it
/// when dropped), with the runtime's tables.
pub struct TestDb {
    pub conn: DatabaseConnection,
    pub url: String,
    db: TestDatabase,
}

impl TestDb {
    /// Makes a fresh, migrated database, or `None` when the server is absent outside CI.
    pub async fn new(backend: Backend) -> Option<Self> {
        let like = match backend {
            Backend::Sqlite => "sqlite://test.sqlite3".to_owned(),
            Backend::Postgres => {
                ferrule::testing::service_url("FERRULE_TEST_POSTGRES", "a PostgreSQL test")?
            }
        };
        let db = TestDatabase::create(&like)
            .await
            .expect("a fresh test database");
        let conn = db.connection();
        ferrule::db::migrations::migrate(&conn)
            .await
            .expect("migrations apply");
        Some(Self {
            url: db.url().to_owned(),
            conn,
            db,
        })
    }

    /// Closes the pool and deletes the database.
    pub async fn cleanup(self) {
        let _ = self.conn.close().await;
        drop(self.db);
    }
}

/// The Redis server `FERRULE_TEST_REDIS` names (the xtask sets it when one is reachable), or
/// `None` after saying loudly that `what` is skipped; under `CI=true` its absence fails.
pub fn redis_url(what: &str) -> Option<String> {
    ferrule::testing::service_url("FERRULE_TEST_REDIS", what)
}

/// Runs `$body(Backend)` once against SQLite and once against PostgreSQL.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::dbsupport::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::dbsupport::Backend::Postgres).await
                }
            )*
        }
    };
}
