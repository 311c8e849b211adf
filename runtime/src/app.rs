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
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;

use crate::bridge::EventBridge;
use crate::dispatcher::{RESERVED, http_fallback, reserved_routes};
use crate::middleware::{MiddlewareChain, Named};
use crate::settings::{Settings, SettingsError};
use crate::socket::{SocketEnv, check_auth, on_connect};
use crate::state::{MemoryStateManager, State, StateEntry, StateManager, StateRegistry};

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
    routes: Vec<(String, String)>,
    manager: Option<Arc<dyn StateManager>>,
}

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
        }
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
        self.routes.push((path.to_owned(), String::new()));
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
        let http: Vec<&str> = self.routes.iter().map(|(p, _)| p.as_str()).collect();
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
    /// addresses: `into_make_service_with_connect_info::<SocketAddr>()`).
    pub fn into_router(mut self) -> Result<Router, BuildError> {
        let settings = self.resolved_settings()?.clone();
        for (path, _) in &self.routes {
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
        let registry = self.registry()?;
        let doc = Arc::new(self.routes_doc(&registry));
        let trusted = settings.proxies()?;
        let manager: Arc<dyn StateManager> = match self.manager.take() {
            Some(m) => m,
            None => {
                let memory = Arc::new(MemoryStateManager::default());
                spawn_sweeper(Arc::downgrade(&memory));
                memory
            }
        };
        let bridge = Arc::new(EventBridge::new(
            settings.clone(),
            registry,
            manager,
            &self.chain,
        ));
        let env = Arc::new(SocketEnv {
            bridge,
            trusted: trusted.clone(),
        });
        let (layer, io) = SocketIo::builder()
            .req_path(crate::protocol::EVENT_PATH)
            .max_payload(settings.max_event_bytes as u64)
            .build_layer();
        io.ns(
            "/",
            (async move |s: SocketRef, TryData(auth): TryData<serde_json::Value>| {
                on_connect(env.clone(), s, auth.unwrap_or_default());
            })
            .with(check_auth),
        );
        let http = self.router.layer(self.chain.clone().into_layer());
        Ok(reserved_routes(doc)
            .merge(http_fallback(http, Arc::new(trusted)))
            .layer(layer))
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve_with_shutdown(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.into_router().map_err(std::io::Error::other)?;
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }

    /// Serves on the configured address until Ctrl-C or SIGTERM.
    pub async fn serve(mut self) -> std::io::Result<()> {
        let addr = self
            .resolved_settings()
            .map_err(std::io::Error::other)?
            .addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        tracing::info!("listening on http://{}", listener.local_addr()?);
        self.serve_with_shutdown(listener, shutdown_signal()).await
    }

    /// The app binary's command line: `serve`, `routes`.
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

fn spawn_sweeper(memory: std::sync::Weak<MemoryStateManager>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let Some(m) = memory.upgrade() else { break };
            let gone = m.sweep();
            if gone > 0 {
                tracing::debug!(gone, "dropped idle client states");
            }
        }
    });
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
