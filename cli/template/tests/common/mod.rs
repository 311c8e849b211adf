//! What every test of {{project-name}} starts from: the app on an empty database of its own.

#![allow(dead_code)]

use ferrule::testing::{TestDatabase, TestServer};

/// The app serving on 127.0.0.1 with its database; both go away when it is dropped.
pub struct TestApp {
    /// The running app (what `Deref` gives).
    pub server: TestServer,
    /// Its database: a fresh SQLite file, or a fresh PostgreSQL database for a PostgreSQL app
    /// (`TEST_DATABASE_URL` points the tests at another server).
    pub db: TestDatabase,
}

impl std::ops::Deref for TestApp {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.server
    }
}

/// The app with the settings of its `Ferrule.toml`, migrated, on an empty database made for
/// this test.
pub async fn start() -> TestApp {
    let db = TestDatabase::create({{crate_name}}::DEFAULT_DATABASE)
        .await
        .expect("a test database");
    // The app's own settings (its languages, say), not the environment's.
    let settings = ferrule::Settings::from_toml(include_str!("../../Ferrule.toml"))
        .expect("Ferrule.toml parses");
    let app = {{crate_name}}::app(db.connection()).settings(settings);
    app.migrate().await.expect("the migrations apply");
    let server = TestServer::start(app).await.expect("the app starts");
    TestApp { server, db }
}
