//! Serving: the listener, the lifespan (startup hooks, tasks, graceful shutdown) and the
//! signals that stop it.

use super::assemble::Built;
use super::*;

impl App {
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
