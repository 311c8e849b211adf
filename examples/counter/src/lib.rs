//! The smallest Ferrule app: one state, one custom middleware, and a handler only logged-in
//! users may run.
//!
//! Run with `cargo run -p counter -- migrate` once, then `cargo run -p counter -- serve`, and emit `counter_state.increment` over Socket.IO
//! at `ws://127.0.0.1:3000/_event/`.

use std::time::Instant;

use ferrule::middleware::{self, Next, Request, Response};
use ferrule::{App, EventContext, Handlers, State};
use serde::{Deserialize, Serialize};

/// The count every tab sees and changes.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CounterState {
    /// The current count.
    pub count: i64,
}

/// Payload of `counter_state.add`.
#[derive(Deserialize)]
pub struct Add {
    /// How much to add (may be negative).
    pub amount: i64,
}

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
        h.on("increment", Self::increment)
            .on("add", Self::add)
            .on("reset", Self::reset)
            .login_required();
    }
}

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

/// The counter app on database `db` (sessions and users live there).
pub fn app(db: ferrule::db::sea_orm::DatabaseConnection) -> App {
    App::new()
        .database(db)
        .state::<CounterState>()
        .middleware(middleware::from_fn("timing", timing))
        .route(
            "/",
            axum::routing::get(|| async {
                "Ferrule counter example. Emit counter_state.increment or counter_state.add over /_event/."
            }),
        )
}
