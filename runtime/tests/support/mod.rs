//! The app the bridge tests drive: states that record what they saw, and middleware in the
//! roles reflex-django's guides give them (session/auth, CSRF, tenant, login-required, a failing
//! one, and a Django-style audit).

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrule::middleware::{self, Next, ProcessMiddleware, Request, RequestHead, Response};
use ferrule::{App, ClientCommand, CurrentUser, Error, EventContext, Settings, User};
use serde::{Deserialize, Serialize};

/// Names of the middleware that ran, in order, as a request extension.
#[derive(Clone, Default)]
pub struct Trail(pub Vec<&'static str>);

/// What the tenant middleware resolved.
#[derive(Clone)]
pub struct Tenant(pub String);

fn mark(req: &mut Request, name: &'static str) {
    if req.extensions().get::<Trail>().is_none() {
        req.extensions_mut().insert(Trail::default());
    }
    if let Some(t) = req.extensions_mut().get_mut::<Trail>() {
        t.0.push(name);
    }
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    let header = req.headers().get(http::header::COOKIE)?.to_str().ok()?;
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

fn user(name: &str) -> User {
    User {
        id: 1,
        username: name.to_owned(),
        email: None,
        language: None,
        email_verified: true,
        is_active: true,
        is_staff: false,
        is_superuser: false,
        groups: Default::default(),
        permissions: Default::default(),
    }
}

/// Stand-in session/auth middleware: the `user` cookie names the user; `banned` is refused.
async fn session(mut req: Request, next: Next) -> Result<Response, Error> {
    mark(&mut req, "session");
    match cookie(&req, "user").as_deref() {
        Some("banned") => return Err(Error::permission_denied("Account suspended.")),
        Some(name) => {
            req.extensions_mut().insert(CurrentUser::from(user(name)));
        }
        None => {}
    }
    next.run(req).await
}

/// Stand-in CSRF middleware: refuses unsafe HTTP methods without the header.
async fn csrf(mut req: Request, next: Next) -> Result<Response, Error> {
    mark(&mut req, "csrf");
    if req.method() == http::Method::POST && !req.headers().contains_key("x-csrftoken") {
        return Err(Error::permission_denied("CSRF token missing."));
    }
    next.run(req).await
}

async fn tenant(mut req: Request, next: Next) -> Result<Response, Error> {
    mark(&mut req, "tenant");
    let t = req
        .headers()
        .get("x-tenant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("public")
        .to_owned();
    req.extensions_mut().insert(Tenant(t));
    next.run(req).await
}

/// reflex-django's LoginRequiredEverywhere, limited to `/private`.
async fn login_required(mut req: Request, next: Next) -> Result<Response, Error> {
    mark(&mut req, "login_required");
    let anonymous = !req
        .extensions()
        .get::<CurrentUser>()
        .is_some_and(CurrentUser::is_authenticated);
    if anonymous && req.uri().path().starts_with("/private") {
        let to = format!("/login?next={}", req.uri().path());
        return Ok(http::Response::builder()
            .status(302)
            .header(http::header::LOCATION, to)
            .body(axum::body::Body::empty())
            .expect("static response"));
    }
    next.run(req).await
}

async fn boom(mut req: Request, next: Next) -> Result<Response, Error> {
    mark(&mut req, "boom");
    if req.uri().path() == "/boom" {
        return Err(Error::internal("database password is hunter2"));
    }
    if req.uri().path() == "/teapot" {
        return Ok(http::Response::builder()
            .status(418)
            .header(http::header::CONTENT_TYPE, "text/plain")
            .body(axum::body::Body::from("No coffee here."))
            .expect("static response"));
    }
    next.run(req).await
}

/// Django-style middleware recording what it sees on the way in and out.
pub struct Audit(pub Arc<Mutex<Vec<String>>>);

#[ferrule::async_trait]
impl ProcessMiddleware for Audit {
    async fn process_request(&self, req: &mut Request) -> Result<Option<Response>, Error> {
        mark(req, "audit");
        let method = req.method().clone();
        self.0
            .lock()
            .unwrap()
            .push(format!("request {method} {}", req.uri()));
        Ok(None)
    }
    async fn process_response(&self, _: &RequestHead, resp: Response) -> Result<Response, Error> {
        self.0
            .lock()
            .unwrap()
            .push(format!("response {}", resp.status().as_u16()));
        Ok(resp)
    }
    async fn process_exception(&self, _: &RequestHead, err: &Error) -> Option<Response> {
        self.0.lock().unwrap().push(format!("exception {err}"));
        None
    }
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ProbeState {
    pub count: i64,
    pub trail: Vec<String>,
    pub tenant: Option<String>,
    pub user: Option<String>,
    pub path: String,
    pub tags: Vec<String>,
    pub ip: Option<String>,
    pub https: bool,
    pub log: Vec<i64>,
    pub response_status: Option<u16>,
    pub response_location: Option<String>,
    pub method: String,
    pub form_q: Option<String>,
    pub deep: Option<String>,
    pub cookie_seen: bool,
    #[serde(skip)]
    pub transient: u32,
}

/// The helper deeper down that reads the task-local context.
fn who_is_calling() -> String {
    let req = ferrule::current_request();
    let user = ferrule::current_user();
    format!(
        "{} at {}",
        user.username().unwrap_or("anonymous"),
        req.map(|r| r.uri.path().to_owned())
            .unwrap_or_else(|| "nowhere".into())
    )
}

/// A permit for each `hold` handler that has started (it then holds its socket's queue).
pub static HELD: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);
/// A permit lets one `hold` handler finish.
pub static RELEASE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

pub static BARRIER: std::sync::LazyLock<tokio::sync::Barrier> =
    std::sync::LazyLock::new(|| tokio::sync::Barrier::new(2));

#[ferrule::state]
impl ProbeState {
    async fn increment(&mut self, _: EventContext) {
        self.count += 1;
        self.transient += 1;
    }

    async fn record(&mut self, ctx: EventContext) {
        self.trail = ctx
            .extension::<Trail>()
            .map(|t| t.0.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        self.tenant = ctx.extension::<Tenant>().map(|t| t.0.clone());
        self.user = ctx.user().username().map(str::to_owned);
        self.path = ctx.path().to_owned();
        self.tags = ctx.query_all("tag");
        self.ip = ctx.client_addr().map(|a| a.ip.to_string());
        self.https = ctx.client_addr().is_some_and(|a| a.https);
        self.method = ctx.request().method.to_string();
        self.form_q = ctx.form().and_then(|f| f.get("q")).map(str::to_owned);
        self.cookie_seen = ctx.request().headers.contains_key(http::header::COOKIE);
    }

    async fn deep(&mut self, _: EventContext) {
        tokio::task::yield_now().await;
        self.deep = Some(who_is_calling());
    }

    async fn see_response(&mut self, ctx: EventContext) {
        self.response_status = ctx.response().map(|r| r.status.as_u16());
        self.response_location = ctx.response().and_then(|r| r.location()).map(str::to_owned);
    }

    async fn fail(&mut self, _: EventContext) -> Result<(), Error> {
        self.count += 100;
        Err(Error::permission_denied("Not yours."))
    }

    async fn crash(&mut self, _: EventContext) -> Result<(), Error> {
        self.count += 100;
        Err(Error::internal("connection string postgres://secret"))
    }

    async fn explode(&mut self, _: EventContext) {
        self.count += 100;
        panic!("boom in handler");
    }

    async fn append(&mut self, _: EventContext, n: i64) {
        // Later events sleep less, so any reordering would show in the log.
        let wait = 20u64.saturating_sub(n.unsigned_abs());
        tokio::time::sleep(Duration::from_millis(wait)).await;
        self.log.push(n);
    }

    async fn rendezvous(&mut self, _: EventContext) -> Result<(), Error> {
        tokio::time::timeout(Duration::from_secs(5), BARRIER.wait())
            .await
            .map_err(|_| Error::bad_request("nobody came"))?;
        self.count += 1;
        Ok(())
    }

    async fn hold(&mut self, _: EventContext) {
        HELD.add_permits(1);
        RELEASE.acquire().await.expect("never closed").forget();
        self.count += 1;
    }

    async fn go_home(&mut self, _: EventContext) -> Vec<ClientCommand> {
        vec![
            ClientCommand::redirect("/home"),
            ClientCommand::new("confetti", serde_json::json!({"n": 3})),
        ]
    }
}

/// Which middleware ran and who the user is, as a state records them.
fn seen(ctx: &EventContext) -> (Vec<String>, Option<String>) {
    let trail = ctx
        .extension::<Trail>()
        .map(|t| t.0.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    (trail, ctx.user().username().map(str::to_owned))
}

/// A high-frequency state that opts out of the chain.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CursorState {
    pub trail: Vec<String>,
    pub user: Option<String>,
}

#[ferrule::state(tier = "none")]
impl CursorState {
    // The action types of one module share a namespace: ProbeState has a `record` too.
    #[action(RecordCursor)]
    async fn record(&mut self, ctx: EventContext) {
        (self.trail, self.user) = seen(&ctx);
    }
}

/// A state that only needs to know the user.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct BadgeState {
    pub trail: Vec<String>,
    pub user: Option<String>,
}

#[ferrule::state(tier = "auth_only")]
impl BadgeState {
    #[action(RecordBadge)]
    async fn record(&mut self, ctx: EventContext) {
        (self.trail, self.user) = seen(&ctx);
    }
}

/// The app under test, and the audit log its process-style middleware writes.
pub fn app(settings: Settings) -> (App, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let app = App::new()
        .settings(settings)
        .state::<ProbeState>()
        .state::<CursorState>()
        .state::<BadgeState>()
        .middleware(middleware::from_fn("session", session).auth_tier())
        .middleware(middleware::from_fn("csrf", csrf))
        .middleware(middleware::from_fn("tenant", tenant))
        .middleware(middleware::from_fn("login_required", login_required))
        .middleware(middleware::from_fn("boom", boom))
        .middleware(middleware::process("audit", Audit(log.clone())))
        .route(
            "/trail",
            axum::routing::any(|req: Request| async move {
                let trail = req.extensions().get::<Trail>().cloned().unwrap_or_default();
                trail.0.join(",")
            }),
        );
    (app, log)
}

pub async fn server(settings: Settings) -> ferrule::testing::TestServer {
    if std::env::var_os("FERRULE_LOG").is_some() {
        ferrule::init_tracing();
    }
    ferrule::testing::TestServer::start(app(settings).0)
        .await
        .expect("server starts")
}

/// A new client of `server` once one is accepted: the place of a socket that just closed comes
/// back when the server has seen it close. `None` when none is accepted within 5 s.
pub async fn client_once_a_place_is_free(
    server: &ferrule::testing::TestServer,
) -> Option<ferrule::testing::TestClient> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(c) = server.client().await {
            return Some(c);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
