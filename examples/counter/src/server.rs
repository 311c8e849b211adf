//! The server side: handlers, middleware, and the page routes.

use std::time::Instant;

use ferrule::middleware::{self, Next, Request, Response};
use ferrule::{App, EventContext, Handlers, State};

use crate::{Add, CounterState, Increment, Reset};

// ANCHOR: handlers
impl CounterState {
    async fn increment(&mut self, _ctx: EventContext) {
        self.count += 1;
    }

    /// Only logged-in users may reset the count (anonymous users are sent to log in).
    async fn reset(&mut self, ctx: EventContext) {
        tracing::info!(user = ctx.user().username().unwrap_or(""), "counter reset");
        self.count = 0;
    }

    async fn add(&mut self, _ctx: EventContext, p: Add) -> Result<(), ferrule::Error> {
        self.count = self
            .count
            .checked_add(p.amount)
            .ok_or_else(|| ferrule::Error::bad_request("That would overflow the counter."))?;
        Ok(())
    }
}

impl State for CounterState {
    fn handlers(h: &mut Handlers<Self>) {
        h.action::<Increment, _, _>(Self::increment)
            .action::<Add, _, _>(Self::add)
            .action::<Reset, _, _>(Self::reset)
            .login_required();
    }
}
// ANCHOR_END: handlers

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
