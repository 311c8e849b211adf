//! # Ferrule
//!
//! The runtime of Ferrule apps: a Leptos frontend talks Socket.IO to an axum backend, and every
//! socket event goes through the same middleware chain as HTTP requests before its handler runs.
//!
//! ```no_run
//! use ferrule::{App, EventContext, middleware};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Default, Serialize, Deserialize)]
//! struct CounterState {
//!     count: i64,
//! }
//!
//! #[ferrule::state]
//! impl CounterState {
//!     async fn increment(&mut self, _ctx: EventContext) {
//!         self.count += 1;
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     App::new()
//!         .state::<CounterState>()
//!         .middleware(middleware::from_fn("log", |req, next: middleware::Next| async move {
//!             tracing::info!(path = req.uri().path(), "request");
//!             next.run(req).await
//!         }))
//!         .run_cli()
//!         .await
//! }
//! ```
//!
//! ## The map
//!
//! Modules in layers; a module uses only its own layer and those below (`cargo xtask test`
//! checks every path into the crate against this table, which `cargo xtask map` writes from
//! `xtask/src/layers.rs`):
//!
//! <!-- layers: written by `cargo xtask map` from xtask/src/layers.rs; change them there -->
//!
//! | layer | modules | what they are |
//! |---|---|---|
//! | 9 | `app`, `testing` | the builder, assembly, serving, the app binary's CLI; the test server and client |
//! | 8 | [`dispatcher`] | the reserved paths in front of the app's routes |
//! | 7 | [`background`], `socket`, [`upload`] | where events come in (a socket, `/_upload`) and detached work |
//! | 6 | `bridge`, `redis_state` | an event through the chain to its handler and back; states in Redis |
//! | 5 | `ssr`, `ui`, `admin` | pages rendered on the server through the HTTP chain; the components that show states; the admin |
//! | 4 | [`state`] | states, handlers, where a tab's states live |
//! | 3 | [`context`] | what a handler sees of its event |
//! | 2 | [`session`], [`csp`], [`csrf`], [`auth`], `tab_binding`, [`messages`] | who is asking, what a page may run, what it was told |
//! | 1 | `net`, [`middleware`], [`rooms`], `client`, `i18n`, [`jobs`], [`mail`] | the client's address and cookies, the chain, rooms; the browser's state mirror; languages; durable jobs and the mail they send |
//! | 0 | [`protocol`], `error`, [`forms`], [`settings`], `cache`, [`metrics`], `otel`, `logging`, `in_flight`, [`mount`], [`db`], [`lifespan`], `password_prompt`, `redis_conn`, `fault_proxy` | wire types, errors, forms, settings, the database, hooks, the prompt and the fault proxy |
//!
//! <!-- end of layers -->
//!
//! The path of one click: the browser's `socket` message reaches the [`dispatcher`]'s socket
//! layer; `socket` queues it for the tab's worker; the `bridge` decodes it, builds an
//! `http::Request` from the handshake, locks the tab's [`state`]s, runs the app's
//! [`middleware`] chain with the handler innermost (bound in the [`context`]), commits the
//! state and answers with the fields that changed. In the repository, `docs/src/architecture.md`
//! draws this map and follows a click through the files, and `docs/src/event-pipeline.md` traces
//! the event step by step.

// `#[ferrule::state]` writes `::ferrule::…` paths; this lets them resolve inside the crate too
// (its doc tests and the book's).
#[allow(unused_extern_crates)]
extern crate self as ferrule;

pub mod protocol;

pub use ferrule_macros::{locales, state};

#[doc(hidden)]
pub mod __private {
    pub use serde;
}

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "ssr")]
pub mod ssr;
#[cfg(feature = "ui")]
pub mod ui;

#[cfg(feature = "admin")]
pub mod admin;
#[cfg(feature = "server")]
mod app;
#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod background;
#[cfg(feature = "server")]
mod bridge;
#[cfg(feature = "server")]
mod cache;
#[cfg(feature = "server")]
pub mod context;
#[cfg(feature = "server")]
pub mod csp;
#[cfg(feature = "server")]
pub mod csrf;
#[cfg(feature = "server")]
pub mod db;
#[cfg(feature = "server")]
pub mod dispatcher;
#[cfg(feature = "server")]
mod error;
#[cfg(feature = "testing")]
mod fault_proxy;
pub mod forms;
#[cfg(any(feature = "server", feature = "ui"))]
pub mod i18n;
#[cfg(feature = "server")]
mod in_flight;
#[cfg(feature = "server")]
pub mod jobs;
#[cfg(feature = "server")]
pub mod lifespan;
#[cfg(feature = "server")]
mod logging;
#[cfg(feature = "server")]
pub mod mail;
#[cfg(feature = "server")]
pub mod messages;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod middleware;
#[cfg(feature = "server")]
pub mod mount;
#[cfg(feature = "server")]
mod net;
#[cfg(feature = "otel")]
mod otel;
#[cfg(feature = "server")]
mod password_prompt;
#[cfg(feature = "redis")]
mod redis_conn;
#[cfg(feature = "redis")]
pub mod redis_state;
#[cfg(feature = "server")]
pub mod rooms;
#[cfg(feature = "server")]
pub mod session;
#[cfg(feature = "server")]
pub mod settings;
#[cfg(feature = "server")]
mod socket;
#[cfg(feature = "server")]
pub mod state;
#[cfg(feature = "server")]
mod tab_binding;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "server")]
pub mod upload;

#[cfg(feature = "server")]
pub use app::{
    App, BuildError, CommandContext, Lifespan, MigrationRow, Parts, Running, shutdown_signal,
};
#[cfg(feature = "server")]
pub use auth::{CurrentUser, User};
#[cfg(feature = "server")]
pub use context::{EventContext, current_context, current_request, current_session, current_user};
#[cfg(feature = "server")]
pub use error::{BoxError, Error, UNAVAILABLE_MESSAGE};
#[cfg(feature = "server")]
pub use messages::{Messages, messages};
#[cfg(feature = "server")]
pub use middleware::MiddlewareChain;
pub use protocol::{ClientCommand, Event, RouterData, StateUpdate, ToastLevel};
#[cfg(feature = "server")]
pub use settings::{AppSettings, EmailVerification, JobsStore, LogFormat, Settings, Tier};
#[cfg(feature = "server")]
pub use state::{Handlers, State};

#[cfg(feature = "server")]
#[doc(hidden)]
pub use async_trait::async_trait;
/// The book's chapters (`docs/src`): their Rust code blocks are doc tests of this crate, so the
/// book cannot drift from the code. They need the server, rendering, testing and Redis features,
/// which `cargo xtask test` turns on.
#[cfg(all(doctest, feature = "ssr", feature = "testing", feature = "redis"))]
mod book {
    #[doc = include_str!("../../docs/src/cli.md")]
    mod cli {}
    #[doc = include_str!("../../docs/src/frontend.md")]
    mod frontend {}
    #[doc = include_str!("../../docs/src/middleware.md")]
    mod middleware {}
    #[doc = include_str!("../../docs/src/sessions-and-auth.md")]
    mod sessions_and_auth {}
    #[doc = include_str!("../../docs/src/testing.md")]
    mod testing {}
    #[doc = include_str!("../../docs/src/handlers.md")]
    mod handlers {}
    #[doc = include_str!("../../docs/src/messages-forms-languages.md")]
    mod messages_forms_languages {}
    #[doc = include_str!("../../docs/src/states-and-handlers.md")]
    mod states_and_handlers {}
    #[doc = include_str!("../../docs/src/deployment.md")]
    mod deployment {}
    #[doc = include_str!("../../docs/src/embedding.md")]
    mod embedding {}
    #[doc = include_str!("../../docs/src/live-updates.md")]
    mod live_updates {}
    #[doc = include_str!("../../docs/src/uploads-and-lifespan.md")]
    mod uploads_and_lifespan {}
    #[doc = include_str!("../../docs/src/settings.md")]
    mod settings {}
    #[doc = include_str!("../../docs/src/mail.md")]
    mod mail {}
    #[doc = include_str!("../../docs/src/jobs.md")]
    mod jobs {}
    #[cfg(feature = "admin")]
    #[doc = include_str!("../../docs/src/admin.md")]
    mod admin {}
}

/// The `http` crate requests and responses are made of, for middleware that reads or sets
/// headers and status codes without depending on it directly.
#[cfg(feature = "server")]
pub use http;

/// Logs to stderr with `tracing`, filtered by `FERRULE_LOG` or `RUST_LOG` (default `info`), as
/// text or, with `FERRULE_LOG_FORMAT=json`, as one JSON object per line with the fields of the
/// spans around each message. `App::run_cli` does this itself, with the `log_format` setting.
#[cfg(feature = "server")]
pub fn init_tracing() {
    logging::init(logging::env_format());
}
