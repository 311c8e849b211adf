//! A real server on 127.0.0.1, and the HTTP steps of logging in as a browser does.

use super::*;

/// A running app on an ephemeral port of 127.0.0.1; stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The database the server was started on, deleted after the server (declared last).
    database: Option<TestDatabase>,
}

impl TestServer {
    /// Builds and starts `app`, and returns once it answers; an app that does not build (a
    /// state that cannot work, bad settings, a failed startup hook) is an error that says why.
    pub async fn start(app: App) -> Result<Self, TestError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = app.quiet_mail_for_tests();
        let mut task = tokio::spawn(app.serve_with_shutdown(listener, async {
            let _ = stopped.await;
        }));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if task.is_finished() {
                let ended = (&mut task)
                    .await
                    .map_err(|e| std::io::Error::other(format!("the server task failed: {e}")))?;
                ended?;
                return Err(TestError::Server(std::io::Error::other(
                    "the server stopped at once",
                )));
            }
            if http_request(addr, "GET", "/_health", &[], b"")
                .await
                .is_ok()
            {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                task.abort();
                return Err(TestError::Timeout("the test server to answer /_health"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
            database: None,
        })
    }

    /// Builds the app on `database` with `build` (the app's `app(db)` function), applies its
    /// migrations (the runtime's and the app's) and starts it; the server keeps the database,
    /// which is deleted after the server.
    pub async fn start_on(
        database: TestDatabase,
        build: impl FnOnce(sea_orm::DatabaseConnection) -> App,
    ) -> Result<Self, TestError> {
        let app = build(database.connection());
        app.migrate()
            .await
            .map_err(|e| TestError::Database(format!("migrations: {e}")))?;
        let mut server = Self::start(app).await?;
        server.database = Some(database);
        Ok(server)
    }

    /// The database [`TestServer::start_on`] started the server on.
    pub fn database(&self) -> Option<&TestDatabase> {
        self.database.as_ref()
    }

    /// Creates account `username` with `password` in the database [`TestServer::start_on`]
    /// started the server on, ready for [`TestServer::login`].
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
    ) -> Result<crate::User, TestError> {
        let db = self.database.as_ref().ok_or_else(|| {
            TestError::Database("create_user needs a server started with start_on".to_owned())
        })?;
        crate::auth::Auth::new(db.connection())
            .create_user(crate::auth::NewUser {
                username: username.to_owned(),
                password: password.to_owned(),
                ..Default::default()
            })
            .await
            .map_err(|e| TestError::Database(format!("creating user `{username}`: {e}")))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends one HTTP/1.1 request and reads the whole answer (`Connection: close`).
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<TestResponse, TestError> {
        http_request(self.addr, method, path, headers, body).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<TestResponse, TestError> {
        self.http("GET", path, &[], b"").await
    }

    /// A CSRF token from any page: `(token, "csrftoken=<token>")`.
    pub async fn csrf(&self) -> Result<(String, String), TestError> {
        csrf_at(self.addr).await
    }

    /// Logs in over HTTP as a browser would and returns the session cookie
    /// (`ferrule_session=...`), ready for [`ClientOptions::header`]`("cookie", ..)`.
    pub async fn login(&self, username: &str, password: &str) -> Result<String, TestError> {
        login_at(self.addr, username, password).await
    }

    /// Registers a new account over HTTP as a browser would and returns its session cookie
    /// (it is logged in at once), ready for [`ClientOptions::header`]`("cookie", ..)`.
    pub async fn register(&self, username: &str, password: &str) -> Result<String, TestError> {
        auth_post(self.addr, "/_auth/register", 201, username, password).await
    }

    /// A connected client with a fresh token.
    pub async fn client(&self) -> Result<TestClient, TestError> {
        TestClient::connect(self.addr, ClientOptions::default()).await
    }

    /// A connected client with `options`.
    pub async fn client_with(&self, options: ClientOptions) -> Result<TestClient, TestError> {
        TestClient::connect(self.addr, options).await
    }

    /// Stops the server gracefully and returns what serving returned (an error if a startup
    /// hook failed, for example).
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(result)) => result,
                Ok(Err(e)) => Err(std::io::Error::other(e)),
                Err(_) => Err(std::io::Error::other("the server did not stop within 30 s")),
            },
            None => Ok(()),
        }
    }

    /// Waits for the server to end on its own (a task stopped it), up to `limit`.
    pub async fn wait(mut self, limit: Duration) -> Option<std::io::Result<()>> {
        let task = self.task.take()?;
        match tokio::time::timeout(limit, task).await {
            Ok(Ok(result)) => Some(result),
            Ok(Err(e)) => Some(Err(std::io::Error::other(e))),
            Err(_) => None,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A CSRF token from any page of the server at `addr`: `(token, "csrftoken=<token>")`.
pub async fn csrf_at(addr: SocketAddr) -> Result<(String, String), TestError> {
    let page = http_request(addr, "GET", "/", &[], b"").await?;
    let cookie = page
        .cookie("csrftoken")
        .ok_or_else(|| TestError::Protocol("no csrftoken cookie: is App::database set?".into()))?;
    let token = cookie
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    Ok((token, cookie))
}

/// Logs in over HTTP at the server at `addr` and returns the session cookie.
pub async fn login_at(
    addr: SocketAddr,
    username: &str,
    password: &str,
) -> Result<String, TestError> {
    auth_post(addr, "/_auth/login", 200, username, password).await
}

/// Posts credentials to an auth endpoint as JSON; returns the session cookie it sets.
async fn auth_post(
    addr: SocketAddr,
    path: &str,
    expect: u16,
    username: &str,
    password: &str,
) -> Result<String, TestError> {
    let (token, csrf) = csrf_at(addr).await?;
    let body = serde_json::json!({"username": username, "password": password}).to_string();
    let headers = [
        ("content-type", "application/json"),
        ("x-csrftoken", token.as_str()),
        ("cookie", csrf.as_str()),
    ];
    let resp = http_request(addr, "POST", path, &headers, body.as_bytes()).await?;
    if resp.status != expect {
        return Err(TestError::Protocol(format!(
            "{path} failed: {} {}",
            resp.status,
            resp.text()
        )));
    }
    resp.cookie("ferrule_session")
        .ok_or_else(|| TestError::Protocol(format!("{path} set no session cookie")))
}
