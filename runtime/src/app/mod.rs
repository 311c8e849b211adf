//! The [`App`] builder: states, middleware, HTTP routes and settings in, a router or a running
//! server out.

use std::collections::BTreeMap;
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
use crate::lifespan::{CancellationToken, HooksAndTasks, OnPanic, Supervisor, TaskSpec, run_hooks};
use crate::middleware::{MiddlewareChain, Named};
use crate::session::{SeaOrmStore, SessionConfig, session_middleware};
use crate::settings::{AppSettings, Layers, Settings, SettingsError};
use crate::socket::OriginPolicy;
use crate::socket::{SocketEnv, connect_middleware};
use crate::state::{MemoryStateManager, State, StateEntry, StateManager, StateRegistry};
use crate::tab_binding::HandshakeBinder;

#[cfg(feature = "admin")]
mod admin;
mod assemble;
mod cli;
mod commands;
mod jobs;
mod language;
mod mail;
mod metrics_endpoint;
mod migrate;
mod parts;
mod request_trace;
mod serve;
mod timeouts;

pub use commands::CommandContext;
pub use migrate::MigrationRow;
pub use parts::{Lifespan, Parts, Running};

pub use serve::shutdown_signal;

/// Why an app could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Settings did not load or validate.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A state is registered twice or cannot work as a state.
    #[error("{0}")]
    State(String),
    /// A language of the `languages` setting or a catalogue under `locales/` is not usable.
    #[error("languages: {0}")]
    Locales(String),
    /// A job is registered twice, or without a database.
    #[error("jobs: {0}")]
    Jobs(String),
    /// The mailer of the `mail_url` / `mail_from` settings cannot be made.
    #[error("mail: {0}")]
    Mail(String),
    /// A route collides with a path the dispatcher reserves.
    #[error(
        "route `{0}` is reserved by Ferrule (reserved: /_event, /_upload, /_health, /ping, /_all_routes, /_i18n)"
    )]
    ReservedRoute(String),
}

/// Makes the app's settings of its type from the layers and puts them in the extensions.
type AppSettingsLoader =
    Box<dyn FnOnce(&Layers, &mut http::Extensions) -> Result<(), SettingsError> + Send + Sync>;

/// A Ferrule application under construction.
pub struct App {
    settings: Option<Settings>,
    /// The layers the settings were read from, kept for `app settings` and the app's own.
    layers: Option<Layers>,
    /// Makes the app's own settings from the layers ([`App::app_settings`]).
    app_settings: Option<AppSettingsLoader>,
    states: Vec<StateEntry>,
    chain: MiddlewareChain,
    router: Router,
    routes: Vec<String>,
    manager: Option<Arc<dyn StateManager>>,
    db: Option<DatabaseConnection>,
    auth: Option<Auth>,
    lifespan: HooksAndTasks,
    app_migrations: Option<migrate::AppMigrator>,
    commands: Vec<commands::AppCommand>,
    /// The durable jobs this app runs ([`App::job`]).
    jobs: crate::jobs::Registry,
    /// The first error registering them, reported by the build.
    jobs_error: Option<String>,
    /// Where the jobs are kept when not in the database ([`App::jobs_in`]).
    jobs_queue: Option<crate::jobs::Queue>,
    rooms: crate::rooms::Rooms,
    /// What every request and event carries in its extensions ([`App::extension`]).
    extensions: http::Extensions,
    /// The app's Fluent catalogues ([`App::locales`]).
    locales: &'static [crate::i18n::Source],
    #[cfg(feature = "redis")]
    redis_broadcast: Option<crate::rooms::RedisBroadcast>,
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
            layers: None,
            app_settings: None,
            states: Vec::new(),
            chain: MiddlewareChain::new(),
            router: Router::new(),
            routes: Vec::new(),
            manager: None,
            db: None,
            auth: None,
            lifespan: HooksAndTasks::default(),
            app_migrations: None,
            commands: Vec::new(),
            jobs: crate::jobs::Registry::default(),
            jobs_error: None,
            jobs_queue: None,
            rooms: crate::rooms::Rooms::default(),
            extensions: http::Extensions::new(),
            locales: &[],
            #[cfg(feature = "redis")]
            redis_broadcast: None,
        }
    }

    /// Puts `value` into every request's and event's extensions, before any middleware runs:
    /// what the app shares with its handlers (an HTTP client, a mailer, a price list). Handlers
    /// read it with [`EventContext::extension`](crate::EventContext::extension), HTTP handlers
    /// with axum's `Extension<T>`. One value per type; a later call replaces it.
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// The app's translations, `App::new().locales(ferrule::locales!())`: the Fluent files
    /// under `locales/<language>/`, for the languages of the `languages` setting. Without it,
    /// pages and handlers still get Ferrule's own texts in those languages.
    pub fn locales(mut self, sources: &'static [crate::i18n::Source]) -> Self {
        self.locales = sources;
        self
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

    /// With the `redis_url` setting (`REDIS_URL`) given, keeps tab states in Redis and carries
    /// rooms, broadcasts and live tables through it, so several processes of the app behind one
    /// address serve its tabs as one, and with `jobs_store = "redis"` keeps the durable jobs
    /// there too; without it, the app as it was. `prefix` keeps this app's keys apart from
    /// others on the same Redis (its name, say): every process of one app uses the same.
    #[cfg(feature = "redis")]
    pub async fn with_redis_from_settings(mut self, prefix: &str) -> Result<Self, crate::Error> {
        let settings = self
            .resolved_settings()
            .map_err(|e| crate::Error::internal(e.to_string()))?;
        let (url, jobs_store) = (settings.redis_url.clone(), settings.jobs_store);
        let Some(url) = url else {
            return Ok(self);
        };
        let states = crate::redis_state::RedisStateManager::connect(&url, prefix).await?;
        let broadcast = crate::rooms::RedisBroadcast::connect(&url, prefix).await?;
        if jobs_store == crate::JobsStore::Redis {
            let jobs = crate::jobs::RedisJobs::connect(&url, prefix).await?;
            self = self.jobs_in(crate::jobs::Queue::redis(jobs));
        }
        Ok(self.state_manager(states).broadcast_over_redis(broadcast))
    }

    /// Keeps sessions and users in `db`: adds the session, CSRF and auth middleware at the
    /// front of the chain, the `/_auth/*` endpoints, the built-in `auth_state`, and the
    /// `migrate`, `createsuperuser` and `changepassword` commands; handlers reach `db` as
    /// [`EventContext::db`](crate::EventContext::db).
    pub fn database(mut self, db: DatabaseConnection) -> Self {
        self.auth = Some(Auth::new(db.clone()).telling(self.rooms.clone()));
        // Handlers reach it as `ctx.db()`, HTTP handlers as `Extension<DatabaseConnection>`.
        self.extensions.insert(db.clone());
        self.db = Some(db);
        self
    }

    /// The accounts service the app uses (after [`App::database`]). Changes made through it
    /// (deactivation, passwords, groups) apply to the very next event, whatever `auth_cache_ms`.
    pub fn auth(&self) -> Option<Auth> {
        self.auth.clone()
    }

    /// Uses `settings` instead of loading them.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Reads settings from `layers` instead of loading them ([`Layers::gather`] makes them
    /// from a directory and a list of variables, as tests do).
    pub fn layers(mut self, layers: Layers) -> Self {
        self.layers = Some(layers);
        self
    }

    /// Makes the app's own settings at startup: a `T` from the `[app]` tables of the settings
    /// files and the `APP_*` variables, in the same layers as Ferrule's. A key `T` refuses
    /// (give it `#[serde(deny_unknown_fields)]`) or a value it cannot take stops the start with
    /// the key named. Handlers read them with
    /// [`EventContext::app_settings`](crate::EventContext::app_settings), HTTP handlers take an
    /// [`AppSettings<T>`] argument. Without it, `[app]` and `APP_*` are left alone.
    ///
    /// ```no_run
    /// #[derive(serde::Deserialize)]
    /// #[serde(deny_unknown_fields)]
    /// struct Shop {
    ///     currency: String,
    ///     #[serde(default)]
    ///     free_shipping_over: Option<u32>,
    /// }
    /// let app = ferrule::App::new().app_settings::<Shop>();
    /// ```
    pub fn app_settings<T>(mut self) -> Self
    where
        T: serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        self.app_settings = Some(Box::new(|layers, extensions| {
            extensions.insert(AppSettings::new(layers.app::<T>()?));
            Ok(())
        }));
        self
    }

    /// Uses `value` as the app's own settings instead of reading them ([`App::app_settings`]),
    /// as tests do.
    pub fn with_app_settings<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.app_settings = None;
        self.extensions.insert(AppSettings::new(value));
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

    /// The settings this app will run with (loaded now if none were given), and the app's own
    /// made ([`App::app_settings`]).
    pub fn resolved_settings(&mut self) -> Result<&Settings, BuildError> {
        if self.layers.is_none() && (self.settings.is_none() || self.app_settings.is_some()) {
            self.layers = Some(Layers::load()?);
        }
        if let Some(layers) = &self.layers {
            if self.settings.is_none() {
                self.settings = Some(layers.settings()?);
            }
            if let Some(make) = self.app_settings.take() {
                make(layers, &mut self.extensions)?;
            }
        }
        Ok(self
            .settings
            .as_ref()
            .expect("given, or made from the layers"))
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
}
