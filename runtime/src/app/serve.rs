//! Serving: the listener, the lifespan (startup hooks, tasks, graceful shutdown) and the
//! signals that stop it.

use super::*;

impl App {
    /// Serves on `listener` until `shutdown` completes, with the whole lifespan: startup hooks,
    /// background tasks, then a graceful stop (in-flight events finish within `drain`, sockets
    /// close cleanly, tasks are cancelled, shutdown hooks run).
    pub async fn serve_with_shutdown(
        mut self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let header_read_timeout = Duration::from_millis(
            self.resolved_settings()
                .map_err(std::io::Error::other)?
                .header_read_timeout_ms,
        );
        let super::Parts { router, lifespan } = self.into_parts().map_err(std::io::Error::other)?;
        let running = lifespan.start().await?;
        let served = serve_connections(
            listener,
            router,
            header_read_timeout,
            running.shutdown_on(shutdown),
        )
        .await;
        let stopped = running.stop().await;
        served?;
        stopped
    }

    /// Serves on the configured address until Ctrl-C or SIGTERM. With a database, refuses to
    /// start while migrations are pending.
    pub async fn serve(mut self) -> std::io::Result<()> {
        let addr = self
            .resolved_settings()
            .map_err(std::io::Error::other)?
            .addr;
        self.refuse_pending_migrations().await?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let signal = shutdown_signal();
        tracing::info!("listening on http://{}", listener.local_addr()?);
        self.serve_with_shutdown(listener, signal).await
    }
}

impl App {
    /// An error when the app has a database with migrations pending (`serve` and `jobs work`
    /// refuse to start on tables that are not there yet).
    pub(super) async fn refuse_pending_migrations(&self) -> std::io::Result<()> {
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
        Ok(())
    }
}

/// Accepts connections on `listener` and serves `router` on each over HTTP/1.1 (with upgrades,
/// for WebSockets) until `shutdown` completes, then waits for the open connections to finish.
///
/// Not `axum::serve`: it offers no header-read timeout, and without one a client that sends
/// its request head a byte at a time, or opens keep-alive connections and never sends another
/// request, holds each connection for ever. hyper's timeout covers both: it runs from when a
/// head is awaited, on a new connection or between requests.
pub(super) async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    // Every connection task holds a clone of `open`; once all are gone, `closed` says so.
    let (open, mut closed) = tokio::sync::mpsc::channel::<()>(1);
    let stop = tokio_util::sync::CancellationToken::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.as_mut() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: pass, rather than spin on it.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Err(e) = tcp.set_nodelay(true) {
            // Small socket writes (one update each) should go out at once, not wait on Nagle.
            tracing::trace!(error = %e, "could not set TCP_NODELAY");
        }
        let service = hyper::service::service_fn({
            let router = router.clone();
            move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let router = router.clone();
                async move {
                    use tower::ServiceExt;
                    router.oneshot(req.map(axum::body::Body::new)).await
                }
            }
        });
        let conn = http
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        let (open, stop) = (open.clone(), stop.clone());
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                () = stop.cancelled() => {
                    // Requests under way finish; idle keep-alive connections close now.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                // Timeouts, resets and malformed requests end here: the client's doing.
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(open);
        });
    }
    drop(listener);
    stop.cancel();
    drop(open);
    // `None` once every connection task has dropped its sender.
    let _all_closed: Option<()> = closed.recv().await;
    Ok(())
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
