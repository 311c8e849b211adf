//! The app as parts for a host that serves it itself ([`App::into_parts`]): the router, and the
//! lifespan that must run around it. [`App::serve`] is built from the same parts, so a host runs
//! exactly what `serve` runs: the Redis subscriptions, the metrics endpoint, the startup hooks,
//! the sweepers and the app's tasks, and at the end the drain, the sockets' close, the tasks'
//! stop and the shutdown hooks.

use std::future::Future;
use std::time::Duration;

use tokio::sync::OnceCell;

use super::assemble::{Built, InitFuture};
use super::*;
use crate::lifespan::Hook;

/// What [`App::into_parts`] gives a host app.
#[derive(Debug)]
pub struct Parts {
    /// Every route, layer and the socket endpoint. Serve it whole, or nest it under a prefix
    /// (`Router::nest("/app", parts.router)`): pages, the client and redirects follow the
    /// prefix. Serve it with the clients' addresses
    /// (`into_make_service_with_connect_info::<SocketAddr>()`): the per-client limits count
    /// by them.
    pub router: Router,
    /// What must run around serving [`Parts::router`]: [`Lifespan::start`] before it,
    /// [`Running::shutdown_on`] and [`Running::stop`] after.
    pub lifespan: Lifespan,
}

/// The app's lifespan, not started yet. Without [`Lifespan::start`] nothing sweeps idle tabs'
/// states, expired sessions or codes, and no task or hook runs; dropping it unstarted says so
/// in the log.
#[must_use = "without `start`, idle states and expired sessions are never swept"]
pub struct Lifespan {
    init: Option<InitFuture>,
    bridge: Arc<EventBridge>,
    io: crate::rooms::Io,
    hooks: HooksAndTasks,
    started: bool,
}

impl Lifespan {
    /// Subscribes to the broadcast channels (with Redis), opens the metrics endpoint (with
    /// `metrics_addr`), runs the startup hooks in order and starts the background tasks and
    /// Ferrule's sweepers. Fails, having started nothing that outlives it, when one of them
    /// cannot start.
    pub async fn start(mut self) -> std::io::Result<Running> {
        self.started = true;
        let bridge = self.bridge.clone();
        let settings = bridge.settings().clone();
        if let Some(init) = self.init.take() {
            init.await.map_err(std::io::Error::other)?;
        }
        let metrics_stop = CancellationToken::new();
        let metrics = match settings.metrics_addr {
            Some(addr) => Some(
                super::metrics_endpoint::start(
                    addr,
                    Some(bridge.clone()),
                    Duration::from_millis(settings.header_read_timeout_ms),
                    metrics_stop.clone(),
                )
                .await?,
            ),
            None => None,
        };
        let hooks = std::mem::take(&mut self.hooks);
        if let Err(e) = run_hooks("startup", hooks.startup).await {
            metrics_stop.cancel();
            return Err(std::io::Error::other(e));
        }
        Ok(Running {
            closing: Arc::new(Closing {
                bridge: bridge.clone(),
                io: self.io.clone(),
                grace: Duration::from_millis(settings.shutdown_grace_ms),
                done: OnceCell::new(),
            }),
            supervisor: Supervisor::start(hooks.tasks),
            metrics,
            metrics_stop,
            shutdown_hooks: hooks.shutdown,
        })
    }
}

impl std::fmt::Debug for Lifespan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifespan")
            .field("startup_hooks", &self.hooks.startup.len())
            .field("tasks", &self.hooks.tasks.len())
            .field("shutdown_hooks", &self.hooks.shutdown.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Lifespan {
    fn drop(&mut self) {
        if !self.started {
            tracing::warn!(
                "the app's lifespan was dropped without `start`: idle states, expired sessions \
                 and codes are not swept, and no background task or hook runs"
            );
        }
    }
}

/// A started [`Lifespan`]. Stop it with [`Running::stop`] once the server has stopped serving;
/// [`Running::shutdown_on`] lets the server stop cleanly first.
pub struct Running {
    closing: Arc<Closing>,
    supervisor: Supervisor,
    metrics: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    metrics_stop: CancellationToken,
    shutdown_hooks: Vec<(String, Hook)>,
}

impl Running {
    /// A future for the host's graceful shutdown (`axum::serve(..).with_graceful_shutdown(..)`):
    /// it waits for `signal` (or for a background task with [`OnPanic::StopServer`] to fail),
    /// then refuses new sockets and events, gives the accepted ones `shutdown_grace_ms` to be
    /// answered, and closes the sockets, so the server's connections can end. It completes
    /// then, and the server stops.
    pub fn shutdown_on(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let closing = self.closing.clone();
        let failed = self.supervisor.stop_server.clone();
        async move {
            tokio::select! {
                () = signal => {}
                () = failed.cancelled() => {}
            }
            closing.close().await;
        }
    }

    /// Completes when a background task with [`OnPanic::StopServer`] failed: the host should
    /// stop serving ([`Running::shutdown_on`] already listens for it).
    pub async fn failed(&self) {
        self.supervisor.stop_server.cancelled().await;
    }

    /// After the server stopped serving: closes the sockets if [`Running::shutdown_on`] did not,
    /// cancels the background tasks and waits for them (`shutdown_grace_ms` at most), closes the
    /// metrics endpoint and runs the shutdown hooks. Errs when a task stopped the server or a
    /// shutdown hook failed.
    pub async fn stop(self) -> std::io::Result<()> {
        self.closing.close().await;
        let failed = self
            .supervisor
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.supervisor.stop(self.closing.grace).await;
        // Scraped until the end, so the last numbers of a stopping server are seen.
        self.metrics_stop.cancel();
        if let Some(metrics) = self.metrics {
            match metrics.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the metrics endpoint failed"),
                Err(e) => tracing::warn!(error = %e, "the metrics endpoint panicked"),
            }
        }
        let hooks = run_hooks("shutdown", self.shutdown_hooks).await;
        crate::logging::flush();
        if let Some(task) = failed {
            return Err(std::io::Error::other(format!(
                "background task `{task}` panicked and stopped the server"
            )));
        }
        hooks.map_err(std::io::Error::other)
    }
}

/// The end of the sockets, done once whoever asks first.
struct Closing {
    bridge: Arc<EventBridge>,
    io: crate::rooms::Io,
    grace: Duration,
    done: OnceCell<()>,
}

impl Closing {
    async fn close(&self) {
        self.done
            .get_or_init(|| async {
                // New sockets and events are refused from here on; accepted ones get `grace`
                // to finish and be answered. What is left after it is given up (its locks
                // released) and resent by the clients to the server they reconnect to.
                self.bridge.shutdown_token().cancel();
                if !self.bridge.drain(self.grace).await {
                    tracing::warn!(
                        grace = ?self.grace,
                        "events still queued or running when the shutdown grace ended; their clients resend them"
                    );
                    self.bridge.abort_token().cancel();
                }
                match &self.io {
                    crate::rooms::Io::Local(io) => io.close().await,
                    #[cfg(feature = "redis")]
                    crate::rooms::Io::Redis(io) => io.close().await,
                }
            })
            .await;
    }
}

impl App {
    /// The app as parts for a host axum app that serves it itself (with its own TLS, say, or
    /// beside its own routes): the router, and the lifespan to run around it.
    ///
    /// ```no_run
    /// # async fn host(app: ferrule::App) -> std::io::Result<()> {
    /// let ferrule::Parts { router, lifespan } = app.into_parts().map_err(std::io::Error::other)?;
    /// let host = axum::Router::new()
    ///     .route("/", axum::routing::get(|| async { "the host's own page" }))
    ///     .nest("/app", router);
    /// let running = lifespan.start().await?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// axum::serve(
    ///     listener,
    ///     host.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    /// )
    /// .with_graceful_shutdown(running.shutdown_on(ferrule::shutdown_signal()))
    /// .await?;
    /// running.stop().await
    /// # }
    /// ```
    pub fn into_parts(self) -> Result<Parts, BuildError> {
        let Built {
            router,
            io,
            init,
            bridge,
            lifespan,
        } = self.build()?;
        Ok(Parts {
            router,
            lifespan: Lifespan {
                init,
                bridge,
                io,
                hooks: lifespan,
                started: false,
            },
        })
    }
}
