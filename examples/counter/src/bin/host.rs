//! The counter inside a host axum app: the host keeps its own page at `/` and mounts the whole
//! Ferrule app (pages, socket, uploads, auth) under `/counter`, serving it with its own
//! `axum::serve` and running Ferrule's lifespan around it. The book's "Adding Ferrule to an
//! existing axum app" walks through it.
//!
//! `cargo run -p counter --bin counter-host` (address from `FERRULE_ADDR`, default
//! 127.0.0.1:3000; database from `DATABASE_URL`, default the SQLite file `ferrule.sqlite3`).

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::response::Html;

// ANCHOR: host
/// The host's own page, beside the mounted app.
async fn home() -> Html<&'static str> {
    Html(
        r#"<!DOCTYPE html><html><head><title>Host</title><link rel="icon" href="data:,"></head>
<body><h1>The host's own page</h1><a id="to-counter" href="/counter">The counter</a></body></html>"#,
    )
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let db = ferrule::db::open(std::env::var("DATABASE_URL").ok().as_deref()).await?;
    let mut app = counter::app(db);
    // The host decides when migrations run; this one applies them at start.
    app.migrate().await?;
    let addr = app.resolved_settings()?.addr;
    let ferrule::Parts { router, lifespan } = app.into_parts()?;
    let host = axum::Router::new()
        .route("/", axum::routing::get(home))
        .nest("/counter", router);
    // Startup hooks, sweepers and tasks run from here on.
    let running = lifespan.start().await?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(
        listener,
        // Ferrule's per-client limits count clients by their addresses.
        host.into_make_service_with_connect_info::<SocketAddr>(),
    )
    // At Ctrl-C or SIGTERM: events in flight are answered and the sockets closed, so the
    // server's connections end and `serve` returns.
    .with_graceful_shutdown(running.shutdown_on(ferrule::shutdown_signal()))
    .await?;
    // Then the tasks stop and the shutdown hooks run.
    running.stop().await?;
    Ok(())
}
// ANCHOR_END: host

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
