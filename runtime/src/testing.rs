//! Test an app without a browser: a real server on 127.0.0.1 and a native Socket.IO client
//! speaking the same wire protocol as the browser, in the spirit of Phoenix's `LiveViewTest`.
//!
//! ```no_run
//! # async fn demo(app: ferrule::App) -> Result<(), ferrule::testing::TestError> {
//! use ferrule::testing::TestServer;
//! let server = TestServer::start(app).await?;
//! let mut client = server.client().await?;
//! let update = client.call("counter_state.increment", serde_json::json!({})).await?;
//! assert_eq!(update.delta["counter_state"]["count"], 1);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::App;
pub use crate::fault_proxy::FaultProxy;
use crate::protocol::codec::{EnginePacket, SocketPacket};
use crate::protocol::{EVENT, RouterData, StateUpdate};

/// What went wrong talking to a test server.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The app did not build or bind.
    #[error("server: {0}")]
    Server(#[from] std::io::Error),
    /// The WebSocket failed.
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server sent something the protocol does not allow here.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The server refused the connection (`connect_error`).
    #[error("connection refused: {0}")]
    Refused(Value),
    /// Nothing arrived in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server closed the connection.
    #[error("connection closed")]
    Closed,
    /// A test database could not be made.
    #[error("test database: {0}")]
    Database(String),
}

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

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
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

/// A running app on an ephemeral port of 127.0.0.1; stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Builds and starts `app`.
    pub async fn start(app: App) -> Result<Self, TestError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve_with_shutdown(listener, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
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

/// Sends one HTTP/1.1 request to `addr` and reads the whole answer (`Connection: close`).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<TestResponse, TestError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        addr,
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| TestError::Timeout("an HTTP answer"))??;
    TestResponse::parse(&raw)
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An HTTP answer read by [`TestServer::http`].
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl TestResponse {
    fn parse(raw: &[u8]) -> Result<Self, TestError> {
        let bad = |why: &str| TestError::Protocol(format!("bad HTTP answer: {why}"));
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| bad("no end of headers"))?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        if chunked {
            let mut out = Vec::new();
            let mut rest = &body[..];
            while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
                let size_text = String::from_utf8_lossy(&rest[..eol]);
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| bad("chunk size"))?;
                if size == 0 || rest.len() < eol + 2 + size {
                    break;
                }
                out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
                rest = &rest[(eol + 4 + size).min(rest.len())..];
            }
            body = out;
        }
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name=value` of the `Set-Cookie` header for cookie `name`, if the answer sets it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.split(';').next().unwrap_or("").trim().to_owned())
            .find(|kv| kv.split_once('=').is_some_and(|(k, _)| k == name))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, TestError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| TestError::Protocol(format!("body is not JSON: {e}")))
    }
}

/// How a [`TestClient`] connects.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// The tab token; a fresh one when `None`.
    pub token: Option<String>,
    /// Extra handshake headers (`Cookie`, `Origin`, `X-Forwarded-For`, ...).
    pub headers: Vec<(String, String)>,
    /// Auth object to send instead of `{"token": .., "epoch": ..}` (for testing refusals).
    pub raw_auth: Option<Value>,
    /// The page load this client stands for; a fresh one when `None`. Two clients with one
    /// token and one epoch are one page reconnecting: ids they both send are applied once.
    pub epoch: Option<String>,
}

impl ClientOptions {
    /// Connect with this token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Connect as page load `epoch` (to resend, as a reconnecting browser does).
    pub fn epoch(mut self, epoch: impl Into<String>) -> Self {
        self.epoch = Some(epoch.into());
        self
    }

    /// Add a handshake header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Connect as the same browser tab as `client` (a reload or a reconnect): its token and
    /// the cookies it has now, the session cookie its handshake was given included.
    pub fn tab_of(mut self, client: &TestClient) -> Self {
        self.token = Some(client.token.clone());
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("cookie"));
        if let Some(cookies) = client.cookies() {
            self.headers.push(("cookie".into(), cookies));
        }
        self
    }
}

/// A fresh tab token as the browser makes one (128 random bits), marked as a test's.
pub fn fresh_token() -> String {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
    format!(
        "test-{}-{}-{bits:032x}",
        std::process::id(),
        NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
    )
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// The `name=value` pairs of `Cookie` headers.
fn cookie_pairs<'a>(headers: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    headers
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// A native Socket.IO client speaking Ferrule's wire protocol.
pub struct TestClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    addr: SocketAddr,
    token: String,
    /// The `Cookie` header of the handshake, with what its answer set.
    cookies: Vec<(String, String)>,
    epoch: String,
    next_id: u64,
    backlog: VecDeque<StateUpdate>,
    timeout: Duration,
}

impl TestClient {
    /// Opens `ws://addr/_event/?EIO=4&transport=websocket` and joins namespace `/`.
    pub async fn connect(addr: SocketAddr, options: ClientOptions) -> Result<Self, TestError> {
        let token = options.token.clone().unwrap_or_else(fresh_token);
        let epoch = options.epoch.clone().unwrap_or_else(|| {
            format!(
                "epoch-{}-{}",
                std::process::id(),
                NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
            )
        });
        let url = format!("ws://{addr}/_event/?EIO=4&transport=websocket");
        let mut request = url.into_client_request()?;
        for (name, value) in &options.headers {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| TestError::Protocol(e.to_string()))?;
            let value = http::HeaderValue::from_str(value)
                .map_err(|e| TestError::Protocol(e.to_string()))?;
            request.headers_mut().append(name, value);
        }
        let (ws, answer) =
            tokio_tungstenite::connect_async_with_config(request, None, true).await?;
        let mut cookies = cookie_pairs(
            options
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
                .map(|(_, v)| v.as_str()),
        );
        for set in answer.headers().get_all(http::header::SET_COOKIE) {
            let Some((name, value)) = set
                .to_str()
                .ok()
                .and_then(|v| v.split(';').next())
                .and_then(|kv| kv.trim().split_once('='))
            else {
                continue;
            };
            cookies.retain(|(n, _)| n != name);
            cookies.push((name.to_owned(), value.to_owned()));
        }
        let mut client = Self {
            ws,
            addr,
            token: token.clone(),
            cookies,
            epoch: epoch.clone(),
            next_id: 1,
            backlog: VecDeque::new(),
            timeout: Duration::from_secs(10),
        };
        match client.next_engine_packet().await? {
            EnginePacket::Open(_) => {}
            other => return Err(TestError::Protocol(format!("expected open, got {other:?}"))),
        }
        let auth = options
            .raw_auth
            .unwrap_or_else(|| json!({ "token": token, "epoch": epoch }));
        client.send_socket(&SocketPacket::connect(auth)).await?;
        match client.next_socket_packet().await? {
            SocketPacket::Connect { .. } => Ok(client),
            SocketPacket::ConnectError { data, .. } => Err(TestError::Refused(data)),
            other => Err(TestError::Protocol(format!(
                "expected connect, got {other:?}"
            ))),
        }
    }

    /// The tab token this client connected with.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Does what the browser client does with the `_session` event of `update` (a login or
    /// logout in a handler): trades its code at `/_auth/session` with the tab's token, its
    /// cookies and a CSRF token, and keeps the session cookie it gets. Returns the answer.
    pub async fn follow_session(
        &mut self,
        update: &StateUpdate,
    ) -> Result<TestResponse, TestError> {
        self.follow_session_at(self.addr, update).await
    }

    /// [`TestClient::follow_session`] against the server at `addr` (another node).
    pub async fn follow_session_at(
        &mut self,
        addr: SocketAddr,
        update: &StateUpdate,
    ) -> Result<TestResponse, TestError> {
        let code = update
            .events
            .iter()
            .find(|e| e.name == "_session")
            .and_then(|e| e.payload.get("code"))
            .and_then(Value::as_str)
            .ok_or_else(|| TestError::Protocol("the update has no _session code".into()))?
            .to_owned();
        let (csrf, csrf_cookie) = csrf_at(addr).await?;
        let cookies = match self.cookies() {
            Some(c) => format!("{c}; {csrf_cookie}"),
            None => csrf_cookie,
        };
        let body = json!({ "code": code }).to_string();
        let headers = [
            ("content-type", "application/json"),
            ("x-csrftoken", csrf.as_str()),
            ("cookie", cookies.as_str()),
            (crate::protocol::TOKEN_HEADER, self.token.as_str()),
        ];
        let resp = http_request(
            addr,
            "POST",
            crate::protocol::SESSION_EXCHANGE_PATH,
            &headers,
            body.as_bytes(),
        )
        .await?;
        for set in resp.headers.iter().filter(|(k, _)| k == "set-cookie") {
            let first = set.1.split(';').next().unwrap_or("");
            if let Some((name, value)) = first.trim().split_once('=') {
                self.cookies.retain(|(n, _)| n != name);
                if !value.is_empty() {
                    self.cookies.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        Ok(resp)
    }

    /// The `Cookie` header a browser would send now: the handshake's, with what its answer set
    /// (the session a handshake without one was given) and what [`TestClient::follow_session`]
    /// took.
    pub fn cookies(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The page load this client stands for.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Sets how long to wait for each update (default 10 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Emits event `name` with `payload` from page `/`; returns its id.
    pub async fn emit(&mut self, name: &str, payload: Value) -> Result<u64, TestError> {
        self.emit_from(name, payload, RouterData::default()).await
    }

    /// Emits event `name` with `payload` from the page `router_data` describes.
    pub async fn emit_from(
        &mut self,
        name: &str,
        payload: Value,
        router_data: RouterData,
    ) -> Result<u64, TestError> {
        let id = self.next_id;
        self.next_id += 1;
        let event = json!({"id": id, "name": name, "payload": payload, "router_data": router_data});
        self.emit_raw(event).await?;
        Ok(id)
    }

    /// Sends event `name` again under an id it was sent with before, as a browser does after
    /// a reconnect for events that had no answer; later events continue after `id`.
    pub async fn resend(&mut self, id: u64, name: &str, payload: Value) -> Result<(), TestError> {
        self.next_id = self.next_id.max(id + 1);
        let event = json!({"id": id, "name": name, "payload": payload, "router_data": RouterData::default()});
        self.emit_raw(event).await
    }

    /// Emits any JSON as the `event` argument (for malformed-input tests).
    pub async fn emit_raw(&mut self, data: Value) -> Result<(), TestError> {
        self.send_socket(&SocketPacket::event(EVENT, vec![data]))
            .await
    }

    /// Sends a raw Engine.IO text frame.
    pub async fn send_text(&mut self, text: &str) -> Result<(), TestError> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// Emits `name` and returns the final update answering it.
    pub async fn call(&mut self, name: &str, payload: Value) -> Result<StateUpdate, TestError> {
        let id = self.emit(name, payload).await?;
        self.final_for(id).await
    }

    /// Like [`TestClient::call`] from the page `router_data` describes.
    pub async fn call_from(
        &mut self,
        name: &str,
        payload: Value,
        router_data: RouterData,
    ) -> Result<StateUpdate, TestError> {
        let id = self.emit_from(name, payload, router_data).await?;
        self.final_for(id).await
    }

    /// Every state of this token in full.
    pub async fn hydrate(&mut self) -> Result<StateUpdate, TestError> {
        self.call(crate::protocol::HYDRATE, Value::Null).await
    }

    /// Waits for the final update of event `id`; other updates stay queued.
    pub async fn final_for(&mut self, id: u64) -> Result<StateUpdate, TestError> {
        if let Some(pos) = self
            .backlog
            .iter()
            .position(|u| u.id == Some(id) && u.is_final)
        {
            return Ok(self.backlog.remove(pos).expect("position is in range"));
        }
        loop {
            let update = self.receive_update().await?;
            if update.id == Some(id) && update.is_final {
                return Ok(update);
            }
            self.backlog.push_back(update);
        }
    }

    /// The next update, in arrival order.
    pub async fn next_update(&mut self) -> Result<StateUpdate, TestError> {
        if let Some(u) = self.backlog.pop_front() {
            return Ok(u);
        }
        self.receive_update().await
    }

    /// Checks the connection is still up by a round trip through the bridge.
    pub async fn is_alive(&mut self) -> bool {
        self.hydrate().await.is_ok()
    }

    /// Closes the socket politely.
    pub async fn close(mut self) -> Result<(), TestError> {
        let _ = self
            .send_socket(&SocketPacket::Disconnect { nsp: "/".into() })
            .await;
        self.ws.close(None).await?;
        Ok(())
    }

    /// The next update, waiting at most the client's timeout in all (pings do not extend it).
    async fn receive_update(&mut self) -> Result<StateUpdate, TestError> {
        let limit = self.timeout;
        tokio::time::timeout(limit, self.receive_update_untimed())
            .await
            .map_err(|_| TestError::Timeout("an update"))?
    }

    async fn receive_update_untimed(&mut self) -> Result<StateUpdate, TestError> {
        match self.next_socket_packet().await? {
            SocketPacket::Event { name, mut args, .. } if name == EVENT && !args.is_empty() => {
                serde_json::from_value(args.remove(0))
                    .map_err(|e| TestError::Protocol(format!("bad update: {e}")))
            }
            SocketPacket::Disconnect { .. } => Err(TestError::Closed),
            other => Err(TestError::Protocol(format!("unexpected packet {other:?}"))),
        }
    }

    async fn send_socket(&mut self, packet: &SocketPacket) -> Result<(), TestError> {
        let text = EnginePacket::Message(packet.encode()).encode();
        self.send_text(&text).await
    }

    async fn next_socket_packet(&mut self) -> Result<SocketPacket, TestError> {
        loop {
            if let EnginePacket::Message(text) = self.next_engine_packet().await? {
                return SocketPacket::decode(&text).map_err(|e| TestError::Protocol(e.to_string()));
            }
        }
    }

    /// The next Engine.IO packet; pings are answered on the way.
    async fn next_engine_packet(&mut self) -> Result<EnginePacket, TestError> {
        loop {
            let msg = tokio::time::timeout(self.timeout, self.ws.next())
                .await
                .map_err(|_| TestError::Timeout("a packet"))?;
            let msg = match msg {
                Some(m) => m?,
                None => return Err(TestError::Closed),
            };
            match msg {
                Message::Text(text) => {
                    let packet = EnginePacket::decode(text.as_str())
                        .map_err(|e| TestError::Protocol(e.to_string()))?;
                    match packet {
                        EnginePacket::Ping(data) => {
                            self.send_text(&EnginePacket::Pong(data).encode()).await?
                        }
                        EnginePacket::Close => return Err(TestError::Closed),
                        other => return Ok(other),
                    }
                }
                Message::Close(_) => return Err(TestError::Closed),
                Message::Binary(_) => {
                    return Err(TestError::Protocol(
                        "binary frame: attachments are not supported".into(),
                    ));
                }
                _ => {}
            }
        }
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
