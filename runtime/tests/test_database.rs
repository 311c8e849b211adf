//! `ferrule::testing::TestDatabase`: every test gets an empty database of the app's kind, and
//! nothing is left behind once it is dropped.

use ferrule::db::sea_orm::{ConnectionTrait, DbBackend, Statement};
use ferrule::testing::TestDatabase;

async fn count(conn: &ferrule::db::sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

#[tokio::test]
async fn sqlite_databases_are_separate_files_removed_on_drop() {
    let a = TestDatabase::create("sqlite://app.sqlite3?mode=rwc")
        .await
        .unwrap();
    let b = TestDatabase::create("sqlite://app.sqlite3?mode=rwc")
        .await
        .unwrap();
    assert_ne!(a.url(), b.url());
    let conn = a.connection();
    conn.execute_unprepared("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
        .await
        .unwrap();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM t").await, 1);
    let fresh = b.connection();
    assert!(
        fresh
            .execute_unprepared("SELECT COUNT(*) FROM t")
            .await
            .is_err(),
        "the second database is empty"
    );
    let path = a
        .url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .to_owned();
    assert!(std::path::Path::new(&path).exists());
    drop(conn);
    drop(a);
    assert!(!std::path::Path::new(&path).exists(), "{path} removed");
}

#[tokio::test]
async fn a_url_of_another_kind_is_refused_with_its_name() {
    let Err(err) = TestDatabase::create("mysql://root@localhost/shop").await else {
        panic!("mysql is not supported");
    };
    assert!(
        err.to_string()
            .contains("neither a sqlite: nor a postgres:"),
        "{err}"
    );
}

#[tokio::test]
async fn postgres_databases_are_created_on_the_server_and_dropped() {
    let Some(admin_url) =
        ferrule::testing::service_url("FERRULE_TEST_POSTGRES", "a PostgreSQL test")
    else {
        return;
    };
    // The app's own URL names a database that need not exist: only the server is used.
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    let db = TestDatabase::create(&format!("{base}/my_shop"))
        .await
        .unwrap();
    let name = db.url().rsplit('/').next().unwrap().to_owned();
    assert!(name.starts_with("my_shop_test_"), "{name}");
    let conn = db.connection();
    assert_eq!(conn.get_database_backend(), DbBackend::Postgres);
    conn.execute_unprepared("CREATE TABLE t (x INT); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let admin = ferrule::db::connect(&admin_url).await.unwrap();
    let exists = format!("SELECT COUNT(*) FROM pg_database WHERE datname = '{name}'");
    assert_eq!(count(&admin, &exists).await, 1);
    drop(db);
    assert_eq!(count(&admin, &exists).await, 0, "dropped with the value");

    let unreachable = TestDatabase::create("postgres://postgres@127.0.0.1:1/shop").await;
    let err = unreachable
        .err()
        .expect("nothing listens on port 1")
        .to_string();
    assert!(
        err.contains("not reachable") && err.contains("TEST_DATABASE_URL"),
        "{err}"
    );
}
