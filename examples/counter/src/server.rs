//! The server side: middleware and the page routes (the handlers are in `lib.rs`).

use std::time::Instant;

use ferrule::App;
use ferrule::middleware::{self, Next, Request, Response};

use crate::CounterState;

// ANCHOR: timing
/// Custom middleware: times every request and event; HTTP answers get a `Server-Timing` header.
async fn timing(req: Request, next: Next) -> Result<Response, ferrule::Error> {
    let started = Instant::now();
    let is_event = req
        .extensions()
        .get::<ferrule::context::EventInfo>()
        .is_some();
    let what = req.uri().path().to_owned();
    let mut resp = next.run(req).await?;
    let micros = started.elapsed().as_micros();
    if is_event {
        tracing::debug!(page = %what, micros, "event handled");
    } else if let Ok(v) = format!("app;dur={:.3}", micros as f64 / 1000.0).parse() {
        resp.headers_mut().insert("server-timing", v);
    }
    Ok(resp)
}
// ANCHOR_END: timing

/// The counter app on database `db` (sessions and users live there).
pub fn app(db: ferrule::db::sea_orm::DatabaseConnection) -> App {
    let options = ferrule::ssr::site_options("counter");
    App::new()
        .database(db)
        .state::<CounterState>()
        .middleware(middleware::from_fn("timing", timing))
        // Pages under /private need a logged-in user: the same chain runs for the server
        // render, so the page is protected before it renders, not just its events.
        .middleware(ferrule::auth::guard::login_required_under(
            "private_pages",
            &["/private"],
            "/login",
        ))
        .merge(ferrule::ssr::pages(
            options,
            ferrule::ssr::shell("Ferrule counter", crate::Root),
            crate::Root,
        ))
}
