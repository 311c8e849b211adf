//! `App::migrate` runs the runtime's migrations, then the app's, each recorded in its own table.

use ferrule::db::sea_orm::{ConnectionTrait, DbBackend, Statement};
use ferrule::db::sea_orm_migration_prelude::*;

struct AppMigrator;

#[async_trait::async_trait]
impl MigratorTrait for AppMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateNotes)]
    }
}

struct CreateNotes;

impl MigrationName for CreateNotes {
    fn name(&self) -> &str {
        "m0001_create_notes"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CreateNotes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("notes")
                .if_not_exists()
                .col(
                    ColumnDef::new("id")
                        .integer()
                        .primary_key()
                        .auto_increment(),
                )
                .col(ColumnDef::new("body").text().not_null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("notes").to_owned()).await
    }
}

/// An app with the notes migration on a fresh SQLite file named after `name`.
async fn app_on_a_fresh_file(
    name: &str,
) -> (
    ferrule::App,
    ferrule::db::sea_orm::DatabaseConnection,
    std::path::PathBuf,
) {
    let path = std::env::temp_dir().join(format!("ferrule-{name}-{}.sqlite3", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let db = ferrule::db::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let app = ferrule::App::new()
        .settings(ferrule::Settings::default())
        .database(db.clone())
        .migrations::<AppMigrator>();
    (app, db, path)
}

#[tokio::test]
async fn app_and_runtime_migrations_run_together_and_only_once() {
    let (app, db, path) = app_on_a_fresh_file("migrate").await;
    app.migrate().await.unwrap();
    app.migrate().await.expect("a second run has nothing to do");
    let tables: Vec<String> = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .collect();
    for t in [
        "ferrule_migrations",
        "ferrule_users",
        "ferrule_sessions",
        "notes",
        "seaql_migrations",
    ] {
        assert!(
            tables.iter().any(|n| n == t),
            "missing table {t}: {tables:?}"
        );
    }
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn migrating_again_keeps_every_row() {
    // A `migrate` that refreshed (down, then up) would pass the test above while wiping data.
    let (app, db, path) = app_on_a_fresh_file("remigrate").await;
    app.migrate().await.unwrap();
    let auth = app.auth().expect("App::database sets up accounts");
    auth.create_user(ferrule::auth::NewUser {
        username: "keeper".into(),
        password: "kept across migrations".into(),
        ..ferrule::auth::NewUser::default()
    })
    .await
    .unwrap();
    db.execute_unprepared(
        "INSERT INTO ferrule_sessions (id, data, expiry_date) VALUES ('s1', '{}', 4102444800); \
         INSERT INTO notes (body) VALUES ('still here');",
    )
    .await
    .unwrap();
    app.migrate().await.unwrap();
    let count = |table: &'static str| {
        let db = db.clone();
        async move {
            db.query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap()
        }
    };
    assert_eq!(count("ferrule_users").await, 1);
    assert_eq!(count("ferrule_sessions").await, 1);
    assert_eq!(count("notes").await, 1);
    let _ = std::fs::remove_file(&path);
}
