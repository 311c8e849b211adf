//! The [`App`] builder: states, middleware, HTTP routes and settings in, a router or a running
//! server out.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::MethodRouter;
use serde_json::json;
use socketioxide::SocketIo;
use socketioxide::handler::ConnectHandler;

use futures_util::future::BoxFuture;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

use crate::auth::http::{AuthRoutes, CookieCodes};
use crate::auth::{Auth, AuthState, auth_middleware};
use crate::bridge::{EventBridge, SessionFollow};
use crate::csrf::csrf_middleware;
use crate::dispatcher::{RESERVED, http_fallback, reserved_routes};
use crate::lifespan::{CancellationToken, Lifespan, OnPanic, Supervisor, TaskSpec, run_hooks};
use crate::middleware::{MiddlewareChain, Named};
use crate::session::{SeaOrmStore, SessionConfig, session_middleware};
use crate::settings::{Settings, SettingsError};
use crate::socket::OriginPolicy;
use crate::socket::{SocketEnv, connect_middleware};
use crate::state::{MemoryStateManager, State, StateEntry, StateManager, StateRegistry};
use crate::tab_binding::HandshakeBinder;

/// Why an app could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Settings did not load or validate.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A state is registered twice or cannot work as a state.
    #[error("{0}")]
    State(String),
    /// A route collides with a path the dispatcher reserves.
    #[error(
        "route `{0}` is reserved by Ferrule (reserved: /_event, /_upload, /_health, /ping, /_all_routes)"
    )]
    ReservedRoute(String),
}

/// A Ferrule application under construction.
pub struct App {
    settings: Option<Settings>,
    states: Vec<StateEntry>,
    chain: MiddlewareChain,
    router: Router,
    routes: Vec<String>,
    manager: Option<Arc<dyn StateManager>>,
    db: Option<DatabaseConnection>,
    auth: Option<Auth>,
    lifespan: Lifespan,
    app_migrations: Option<MigrateFn>,
    rooms: crate::rooms::Rooms,
    #[cfg(feature = "redis")]
    redis_broadcast: Option<crate::rooms::RedisBroadcast>,
}

/// Runs an app's own migrations.
type MigrateFn = fn(&DatabaseConnection) -> BoxFuture<'_, Result<(), DbErr>>;

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// An app with no states, no middleware and no routes; settings load from `Ferrule.toml`
    /// and the environment unless [`App::settings`] gives them.
    pub fn new() -> Self {
        Self {
            settings: None,
            states: Vec::new(),
            chain: MiddlewareChain::new(),
            router: Router::new(),
            routes: Vec::new(),
            manager: None,
            db: None,
            auth: None,
            lifespan: Lifespan::default(),
            app_migrations: None,
            rooms: crate::rooms::Rooms::default(),
            #[cfg(feature = "redis")]
            redis_broadcast: None,
        }
    }

    /// Broadcasts and room membership for code outside handlers (tasks, hooks); usable once the
    /// server runs. Handlers use [`EventContext::join`](crate::EventContext::join) and
    /// [`EventContext::broadcast`](crate::EventContext::broadcast).
    pub fn rooms(&self) -> crate::rooms::Rooms {
        self.rooms.clone()
    }

    /// Carries rooms and broadcasts between server processes through Redis, so a broadcast on
    /// one node reaches the clients of all of them. Use it on every node, with one prefix.
    #[cfg(feature = "redis")]
    pub fn broadcast_over_redis(mut self, redis: crate::rooms::RedisBroadcast) -> Self {
        self.redis_broadcast = Some(redis);
        self
    }

    /// Keeps sessions and users in `db`: adds the session, CSRF and auth middleware at the
    /// front of the chain, the `/_auth/*` endpoints, the built-in `auth_state`, and the
    /// `migrate`, `createsuperuser` and `changepassword` commands.
    pub fn database(mut self, db: DatabaseConnection) -> Self {
        self.auth = Some(Auth::new(db.clone()));
        self.db = Some(db);
        self
    }

    /// The accounts service the app uses (after [`App::database`]). Changes made through it
    /// (deactivation, passwords, groups) apply to the very next event, whatever `auth_cache_ms`.
    pub fn auth(&self) -> Option<Auth> {
        self.auth.clone()
    }

    /// The app's own sea-orm migrator, run by `migrate` after the runtime's.
    pub fn migrations<M: MigratorTrait + 'static>(mut self) -> Self {
        self.app_migrations = Some(|db| Box::pin(M::up(db, None)));
        self
    }

    /// Runs the runtime's migrations, then the app's.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        let db = self
            .db
            .as_ref()
            .ok_or_else(|| DbErr::Custom("no database: call App::database first".into()))?;
        crate::db::migrations::migrate(db).await?;
        if let Some(app) = self.app_migrations {
            app(db).await?;
        }
        Ok(())
    }

    /// Uses `settings` instead of loading them.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Registers state `S` and its handlers.
    pub fn state<S: State>(mut self) -> Self {
        self.states.push(StateEntry::of::<S>());
        self
    }

    /// Appends a middleware to the chain (the first added runs outermost).
    pub fn middleware(mut self, entry: Named) -> Self {
        self.chain.push(entry);
        self
    }

    /// Adds an HTTP route; it runs behind the middleware chain.
    pub fn route(mut self, path: &str, method_router: MethodRouter) -> Self {
        self.routes.push(path.to_owned());
        self.router = self.router.route(path, method_router);
        self
    }

    /// Merges a whole axum router (its routes are not listed by `/_all_routes`).
    pub fn merge(mut self, router: Router) -> Self {
        self.router = self.router.merge(router);
        self
    }

    /// Stores states with `manager` instead of in memory.
    pub fn state_manager(mut self, manager: impl StateManager) -> Self {
        self.manager = Some(Arc::new(manager));
        self
    }

    /// The settings this app will run with (loaded now if none were given).
    pub fn resolved_settings(&mut self) -> Result<&Settings, BuildError> {
        if self.settings.is_none() {
            self.settings = Some(Settings::load()?);
        }
        Ok(self.settings.as_ref().expect("set above"))
    }

    /// The routes document `/_all_routes` serves and `routes` prints.
    fn routes_doc(&self, registry: &StateRegistry) -> serde_json::Value {
        let states: BTreeMap<&str, Vec<&str>> = registry
            .by_name
            .iter()
            .map(|(name, e)| {
                (
                    name.as_str(),
                    e.handlers.keys().map(String::as_str).collect(),
                )
            })
            .collect();
        let http: Vec<&str> = self.routes.iter().map(String::as_str).collect();
        json!({
            "reserved": RESERVED,
            "http": http,
            "states": states,
            "middleware": self.chain.names().collect::<Vec<_>>(),
        })
    }

    fn registry(&self) -> Result<StateRegistry, BuildError> {
        let mut registry = StateRegistry::default();
        for entry in &self.states {
            entry.check().map_err(BuildError::State)?;
            if registry.by_name.contains_key(&entry.name) {
                return Err(BuildError::State(format!(
                    "state `{}` is registered twice (two types with one name? set State::NAME)",
                    entry.name
                )));
            }
            let entry = entry.clone();
            registry.by_name.insert(entry.name.clone(), Arc::new(entry));
        }
        Ok(registry)
    }

    /// Assembles the whole app as one axum router (serve it with connect info for client
    /// addresses: `into_make_service_with_connect_info::<SocketAddr>()`). Startup and shutdown
    /// hooks and background tasks run only with [`App::serve`] and
    /// [`App::serve_with_shutdown`]. With [`App::broadcast_over_redis`], call it inside a tokio
    /// runtime: the Redis subscriptions start in the background.
    pub fn into_router(self) -> Result<Router, BuildError> {
        let built = self.build()?;
        if let Some(init) = built.init {
            // Broadcasts over Redis subscribe in the background here; `serve` waits for it.
            tokio::spawn(async move {
                if let Err(e) = init.await {
                    tracing::error!(error = %e, "broadcasts between nodes will not work");
                }
            });
        }
        Ok(built.router)
    }

    fn build(mut self) -> Result<Built, BuildError> {
        let settings = self.resolved_settings()?.clone();
        for path in &self.routes {
            if RESERVED
                .iter()
                .any(|r| path == r || path.starts_with(&format!("{r}/")))
            {
                return Err(BuildError::ReservedRoute(path.clone()));
            }
        }
        for skipped in &settings.event_middleware_skip {
            if !self.chain.names().any(|n| n == skipped) {
                tracing::debug!(middleware = %skipped, "event_middleware_skip names a middleware the chain does not have");
            }
        }
        let (follow, binder) = self.install_auth(&settings).unzip();
        let registry = self.registry()?;
        let doc = Arc::new((!settings.is_production()).then(|| self.routes_doc(&registry)));
        let trusted = settings.proxies()?;
        let manager: Arc<dyn StateManager> = match self.manager.take() {
            Some(m) => m,
            None => {
                let memory = Arc::new(MemoryStateManager::default());
                let weak = Arc::downgrade(&memory);
                self.lifespan.tasks.push(TaskSpec::new(
                    "state sweeper",
                    OnPanic::Restart,
                    move |cancel| sweep_states(weak.clone(), cancel),
                ));
                memory
            }
        };
        let bridge = EventBridge::new(
            settings.clone(),
            registry,
            manager,
            &self.chain,
            follow,
            self.rooms.clone(),
        );
        let env = Arc::new(SocketEnv {
            bridge: bridge.clone(),
            trusted: trusted.clone(),
            // As long as the heartbeat gives a silent client before closing its socket.
            patience_ms: settings.ping_interval_ms + settings.ping_timeout_ms,
            max_per_client: settings.max_sockets_per_client,
            per_client: Arc::default(),
        });
        let http = self.router.layer(self.chain.clone().into_layer());
        let origins = OriginPolicy {
            allowed: settings.allowed_origins.clone().into(),
        };
        let trusted = Arc::new(trusted);
        let base = reserved_routes(doc, bridge.clone(), trusted.clone(), self.db.clone())
            .merge(http_fallback(http, trusted));
        #[cfg(feature = "redis")]
        let redis = self.redis_broadcast.take();
        #[cfg(not(feature = "redis"))]
        let redis: Option<std::convert::Infallible> = None;
        let (router, io, init) = match redis {
            #[cfg(feature = "redis")]
            Some(redis) => {
                let builder =
                    SocketIo::builder().with_adapter::<crate::rooms::RedisAdapter>(redis.ctr);
                let (layer, io, init) = socket_server(builder, &settings, env);
                let init: InitFuture = Box::pin(async move {
                    init.await
                        .map_err(|e| format!("cannot subscribe to Redis for broadcasts: {e}"))
                });
                (base.layer(layer), crate::rooms::Io::Redis(io), Some(init))
            }
            #[cfg(not(feature = "redis"))]
            Some(never) => match never {},
            None => {
                let (layer, io, ()) = socket_server(SocketIo::builder(), &settings, env);
                (base.layer(layer), crate::rooms::Io::Local(io), None)
            }
        };
        self.rooms.set(io.clone());
        let headers = Arc::new(crate::dispatcher::security_header_list(&settings));
        let session_cookie: Arc<str> = settings.session_cookie.as_str().into();
        let hosts = crate::dispatcher::HostPolicy::new(&settings);
        let router = match binder {
            // Outside the socket layer, so the handshake sees the binding it resolves.
            Some(binder) => router.layer(axum::middleware::from_fn(move |req, next| {
                binder.clone().bind(req, next)
            })),
            None => router,
        };
        let router = router
            .layer(axum::Extension(origins))
            .layer(axum::middleware::from_fn(move |req, next| {
                crate::dispatcher::check_host(hosts.clone(), req, next)
            }))
            .layer(axum::middleware::map_response(move |resp| {
                crate::dispatcher::security_headers(headers.clone(), resp)
            }))
            .layer(axum::middleware::map_response(move |resp| {
                crate::session::settle_session_cookie(session_cookie.clone(), resp)
            }));
        Ok(Built {
            router,
            io,
            init,
            bridge,
            lifespan: self.lifespan,
        })
    }

    /// With a database: the built-in middleware in front of the app's, the auth routes and
    /// `auth_state`. Returns what the bridge needs to follow logins on sockets, and what binds
    /// tabs to sessions at the socket handshake.
    fn install_auth(&mut self, settings: &Settings) -> Option<(SessionFollow, HandshakeBinder)> {
        let db = self.db.clone()?;
        let cache = Duration::from_millis(settings.auth_cache_ms);
        let store = SeaOrmStore::new(db.clone()).with_cache(cache);
        let sweeper = store.clone();
        self.lifespan.tasks.push(TaskSpec::new(
            "session sweeper",
            OnPanic::Restart,
            move |cancel| {
                let store = sweeper.clone();
                async move { store.sweep_until(Duration::from_secs(600), cancel).await }
            },
        ));
        let expiring = crate::db::expiring::Expiring::new(db.clone());
        let sweeper = expiring.clone();
        self.lifespan.tasks.push(TaskSpec::new(
            "expired codes and counters sweeper",
            OnPanic::Restart,
            move |cancel| {
                let expiring = sweeper.clone();
                async move { expiring.sweep_until(Duration::from_secs(600), cancel).await }
            },
        ));
        let auth = self.auth.clone().unwrap_or_else(|| Auth::new(db));
        auth.set_cache_ttl(cache);
        let config = SessionConfig {
            cookie_name: settings.session_cookie.clone().into(),
            secure: settings.secure_cookies,
            ..SessionConfig::default()
        };
        let binder = HandshakeBinder::new(store.clone(), config.clone());
        let mut chain = MiddlewareChain::new()
            .with(session_middleware(store, &config))
            .with(csrf_middleware(settings.secure_cookies))
            .with(auth_middleware(auth.clone()));
        for entry in self.chain.entries() {
            chain.push(entry.clone());
        }
        self.chain = chain;
        let codes = CookieCodes::new(expiring);
        let routes = AuthRoutes::new(auth, codes.clone(), settings);
        self.router = std::mem::take(&mut self.router).merge(routes.router());
        for p in [
            "/_auth/login",
            "/_auth/logout",
            "/_auth/register",
            "/_auth/password",
            "/_auth/session",
        ] {
            self.routes.push(p.to_owned());
        }
        if !self.states.iter().any(|s| s.name == "auth_state") {
            self.states.push(StateEntry::of::<AuthState>());
        }
        Some((
            SessionFollow {
                codes,
                cookie_name: settings.session_cookie.clone(),
            },
            binder,
        ))
    }

    /// Runs `hook` before the server accepts its first connection; an error stops the start.
    pub fn on_startup<F, Fut>(mut self, name: &str, hook: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), crate::Error>> + Send + 'static,
    {
        self.lifespan
            .startup
            .push((name.to_owned(), Box::new(move || Box::pin(hook()))));
        self
    }

    /// Runs `hook` after the server stopped and its tasks ended.
    pub fn on_shutdown<F, Fut>(mut self, name: &str, hook: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), crate::Error>> + Send + 'static,
    {
        self.lifespan
            .shutdown
            .push((name.to_owned(), Box::new(move || Box::pin(hook()))));
        self
    }

    /// Runs a background task for the server's lifetime; it should end soon after its
    /// [`CancellationToken`](crate::lifespan::CancellationToken) is cancelled.
    pub fn task<F, Fut>(mut self, name: &str, on_panic: OnPanic, task: F) -> Self
    where
        F: Fn(crate::lifespan::CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.lifespan
            .tasks
            .push(TaskSpec::new(name, on_panic, task));
        self
    }

    /// Serves on `listener` until `shutdown` completes, with the whole lifespan: startup hooks,
    /// background tasks, then a graceful stop (in-flight events finish within `drain`, sockets
    /// close cleanly, tasks are cancelled, shutdown hooks run).
    pub async fn serve_with_shutdown(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Built {
            router,
            io,
            init,
            bridge,
            lifespan,
        } = self.build().map_err(std::io::Error::other)?;
        let grace = Duration::from_millis(bridge.settings().shutdown_grace_ms);
        if let Some(init) = init {
            init.await.map_err(std::io::Error::other)?;
        }
        run_hooks("startup", lifespan.startup)
            .await
            .map_err(std::io::Error::other)?;
        let supervisor = Supervisor::start(lifespan.tasks);
        let stop_server = supervisor.stop_server.clone();
        let graceful = async move {
            tokio::select! {
                () = shutdown => {}
                () = stop_server.cancelled() => {}
            }
            // New sockets and events are refused from here on; accepted ones get `grace` to
            // finish and be answered. What is left after it is given up (its locks released)
            // and resent by the clients to the server they reconnect to.
            bridge.shutdown_token().cancel();
            if !bridge.drain(grace).await {
                tracing::warn!(
                    ?grace,
                    "events still queued or running when the shutdown grace ended; their clients resend them"
                );
                bridge.abort_token().cancel();
            }
            match io {
                crate::rooms::Io::Local(io) => io.close().await,
                #[cfg(feature = "redis")]
                crate::rooms::Io::Redis(io) => io.close().await,
            }
        };
        let served = axum::serve(
            nodelay(listener),
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(graceful)
        .await;
        let failed = supervisor
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        supervisor.stop(grace).await;
        let hooks = run_hooks("shutdown", lifespan.shutdown).await;
        served?;
        if let Some(task) = failed {
            return Err(std::io::Error::other(format!(
                "background task `{task}` panicked and stopped the server"
            )));
        }
        hooks.map_err(std::io::Error::other)
    }

    /// Serves on the configured address until Ctrl-C or SIGTERM. With a database, refuses to
    /// start while migrations are pending.
    pub async fn serve(mut self) -> std::io::Result<()> {
        let addr = self
            .resolved_settings()
            .map_err(std::io::Error::other)?
            .addr;
        if let Some(db) = &self.db {
            let pending = crate::db::migrations::Migrator::get_pending_migrations(db)
                .await
                .map_err(|e| std::io::Error::other(format!("cannot read the database: {e}")))?;
            if !pending.is_empty() {
                return Err(std::io::Error::other(format!(
                    "{} migration(s) pending: run the `migrate` command first",
                    pending.len()
                )));
            }
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let signal = shutdown_signal();
        tracing::info!("listening on http://{}", listener.local_addr()?);
        self.serve_with_shutdown(listener, signal).await
    }

    /// The app binary's command line: `serve`, `routes`, `migrate`, `createsuperuser`,
    /// `changepassword`.
    pub async fn run_cli(mut self) -> ExitCode {
        use clap::{Parser, Subcommand};
        #[derive(Parser)]
        #[command(about = "A Ferrule app")]
        struct Cli {
            #[command(subcommand)]
            command: Command,
        }
        #[derive(Subcommand)]
        enum Command {
            /// Serve HTTP and events on FERRULE_ADDR (default 127.0.0.1:3000).
            Serve,
            /// Print the HTTP routes, states and handlers as JSON.
            Routes,
            /// Create or update the database tables (the runtime's, then the app's).
            Migrate,
            /// Create a superuser; the password is asked twice without echo at a terminal, or
            /// comes from FERRULE_SUPERUSER_PASSWORD or the first line of a piped stdin.
            Createsuperuser {
                /// Login name.
                #[arg(long)]
                username: String,
                /// E-mail address.
                #[arg(long)]
                email: Option<String>,
            },
            /// Set a user's password; asked for like createsuperuser's.
            Changepassword {
                /// Login name.
                username: String,
            },
        }
        crate::init_tracing();
        let cli = Cli::parse();
        if let Err(e) = self.resolved_settings() {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        match cli.command {
            Command::Serve => match self.serve().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Migrate => match self.migrate().await {
                Ok(()) => {
                    println!("migrations applied");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: migrate failed: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Createsuperuser { username, email } => {
                self.account_command(|auth, password| async move {
                    auth.create_user(crate::auth::NewUser {
                        username: username.clone(),
                        email,
                        password,
                        is_staff: true,
                        is_superuser: true,
                    })
                    .await
                    .map(|u| format!("superuser `{}` created", u.username))
                })
                .await
            }
            Command::Changepassword { username } => {
                self.account_command(|auth, password| async move {
                    auth.set_password(&username, &password)
                        .await
                        .map(|()| format!("password of `{username}` changed"))
                })
                .await
            }
            Command::Routes => match self.registry() {
                Ok(registry) => {
                    let doc = self.routes_doc(&registry);
                    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
        }
    }
}

impl App {
    async fn account_command<F, Fut>(&self, f: F) -> ExitCode
    where
        F: FnOnce(Auth, String) -> Fut,
        Fut: Future<Output = Result<String, crate::auth::AuthError>>,
    {
        let Some(db) = self.db.clone() else {
            eprintln!("error: this app has no database (App::database)");
            return ExitCode::from(2);
        };
        let password = match crate::password_prompt::read_password() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        match f(Auth::new(db), password).await {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Small socket writes (one update each) go out at once instead of waiting on Nagle's algorithm.
pub(crate) fn nodelay(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    fn tap(tcp: &mut tokio::net::TcpStream) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::trace!(error = %e, "could not set TCP_NODELAY");
        }
    }
    listener.tap_io(tap as fn(&mut tokio::net::TcpStream))
}

/// What [`App::build`] makes.
struct Built {
    router: Router,
    io: crate::rooms::Io,
    /// Subscribing to the broadcast channels (Redis only); awaited before serving.
    init: Option<InitFuture>,
    bridge: Arc<EventBridge>,
    lifespan: Lifespan,
}

type InitFuture = BoxFuture<'static, Result<(), String>>;

/// The socket.io server on `/_event/` with the runtime's connect middleware, for adapter `A`.
fn socket_server<A: socketioxide::adapter::Adapter + socketioxide_core::adapter::DefinedAdapter>(
    builder: socketioxide::SocketIoBuilder<A>,
    settings: &Settings,
    env: Arc<SocketEnv>,
) -> (
    socketioxide::layer::SocketIoLayer<A>,
    SocketIo<A>,
    A::InitRes,
) {
    let (layer, io) = builder
        .req_path(crate::protocol::EVENT_PATH)
        .max_payload(settings.max_event_bytes as u64)
        .ws_max_message_size(settings.max_event_bytes)
        .ws_max_frame_size(settings.max_event_bytes)
        .max_buffer_size(crate::socket::SEND_BUFFER)
        .ping_interval(Duration::from_millis(settings.ping_interval_ms))
        .ping_timeout(Duration::from_millis(settings.ping_timeout_ms))
        .build_layer();
    let init = io.ns("/", (async || {}).with(connect_middleware::<A>(env)));
    (layer, io, init)
}

/// Drops idle tokens' states every minute until cancelled.
async fn sweep_states(memory: std::sync::Weak<MemoryStateManager>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = cancel.cancelled() => return,
        }
        let Some(m) = memory.upgrade() else { return };
        let gone = m.sweep();
        if gone > 0 {
            tracing::debug!(gone, "dropped idle client states");
        }
    }
}

/// A future that completes on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives while the server is
/// still starting is not lost (and does not kill the process with the default action).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (int, term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(int) => {},
                () = wait(term) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down");
    }
}
