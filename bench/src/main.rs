//! Servers and a load generator for `cargo xtask bench`: the bare socketioxide echo server (the
//! ceiling), Ferrule with tier `none`, and Ferrule's full bridge, plus a client that speaks the
//! wire protocol over real WebSockets. Each server prints `READY <addr>` once it listens, and
//! answers `GET /bench/usage` with its CPU time and allocations so far: the load generator reads
//! it at the start and the end of the measured window, so what the server spent connecting,
//! logging in and warming up is not counted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use ferrule::middleware::{self, Next, Request, Response};
use ferrule::testing::{ClientOptions, TestClient, http_request};
use ferrule::{App, EventContext, Handlers, Settings, State, Tier};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

/// Counts every allocation of the process (a server's, in `/bench/usage`).
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// The process's CPU time (all threads, user and system) and allocations so far.
fn usage() -> Value {
    let stats = GLOBAL.stats();
    json!({
        "cpu_ns": cpu_time::ProcessTime::now().as_duration().as_nanos() as u64,
        "allocs": (stats.allocations + stats.reallocations) as u64,
    })
}

/// `GET /bench/usage`: [`usage`].
fn usage_route<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router.route(
        "/bench/usage",
        axum::routing::get(|| async { axum::Json(usage()) }),
    )
}

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// Ferrule with the bench state at tier `none`.
    None,
    /// The full bridge: session, logged-in user, three custom middleware.
    Full,
}

#[derive(Subcommand)]
enum Cmd {
    /// A bare socketioxide server that answers each `event` with an empty final update.
    ServeEcho,
    /// A Ferrule server.
    ServeFerrule {
        #[arg(long, value_enum)]
        mode: Mode,
        /// Database URL for the full mode (a SQLite file or a PostgreSQL database).
        #[arg(long)]
        database: Option<String>,
        /// Keep states in this Redis server instead of memory.
        #[arg(long)]
        redis: Option<String>,
        /// Observed as in production: a JSON log line per event with its span fields (written
        /// to nowhere, so the cost is the runtime's, not the disk's), and `/metrics` served.
        #[arg(long)]
        observe: bool,
        /// Served as by default: a JSON log at Ferrule's default filter (`info`, so each event
        /// makes its span but writes no line), and `/metrics` served.
        #[arg(long, conflicts_with = "observe")]
        default_log: bool,
    },
    /// Drives a server: N connections, each sending events and waiting for the final update.
    Load {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, default_value_t = 1)]
        conns: usize,
        /// Events per connection.
        #[arg(long, default_value_t = 100)]
        events: usize,
        /// Events in flight per connection (1: wait for each answer).
        #[arg(long, default_value_t = 1)]
        pipeline: usize,
        /// Log in over HTTP first (`user:password`) and connect with the session cookie.
        #[arg(long)]
        login: Option<String>,
        #[arg(long, default_value = "bench_state.bump")]
        event: String,
        /// Total events per second across connections, paced (0: as fast as answers come).
        #[arg(long, default_value_t = 0)]
        rate: u64,
    },
    /// Opens N connections, prints `CONNECTED`, and holds them for `hold` seconds.
    Idle {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        conns: usize,
        #[arg(long, default_value_t = 5)]
        hold: u64,
    },
}

/// The state the load drives; one field changes per event.
#[derive(Clone, Default, Serialize, Deserialize)]
struct BenchState {
    n: i64,
}

impl BenchState {
    async fn bump(&mut self, ctx: EventContext) {
        // Read what the middleware added, as a real handler would.
        std::hint::black_box((
            ctx.extension::<Tenant>().map(|t| t.0),
            ctx.extension::<RequestId>().map(|r| r.0),
            ctx.user().is_authenticated(),
        ));
        self.n += 1;
    }
}

impl ferrule::protocol::StateName for BenchState {}

impl State for BenchState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("bump", Self::bump);
    }
}

/// The same state at tier `none`.
#[derive(Clone, Default, Serialize, Deserialize)]
struct FastState {
    n: i64,
}

impl FastState {
    async fn bump(&mut self, _: EventContext) {
        self.n += 1;
    }
}

// Written by hand: `#[ferrule::state]` puts the server side behind an `ssr` feature, which this
// server-only crate does not have.
impl ferrule::protocol::StateName for FastState {
    const NAME: Option<&'static str> = Some("bench_state");
}

impl State for FastState {
    const TIER: Option<Tier> = Some(Tier::NoChain);
    fn handlers(h: &mut Handlers<Self>) {
        h.on("bump", Self::bump);
    }
}

#[derive(Clone)]
struct Tenant(&'static str);
#[derive(Clone)]
struct RequestId(u64);

static SEEN: AtomicU64 = AtomicU64::new(0);

async fn tenant(mut req: Request, next: Next) -> Result<Response, ferrule::Error> {
    req.extensions_mut().insert(Tenant("acme"));
    next.run(req).await
}

async fn request_id(mut req: Request, next: Next) -> Result<Response, ferrule::Error> {
    req.extensions_mut()
        .insert(RequestId(SEEN.fetch_add(1, Ordering::Relaxed)));
    next.run(req).await
}

async fn audit(req: Request, next: Next) -> Result<Response, ferrule::Error> {
    let resp = next.run(req).await?;
    if resp.status().is_server_error() {
        eprintln!("audit: server error");
    }
    Ok(resp)
}

async fn ready(app: App) -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("READY {}", listener.local_addr()?);
    app.serve_with_shutdown(listener, ferrule::shutdown_signal())
        .await?;
    Ok(())
}

fn metrics_routes(app: App) -> App {
    app.route(
        "/bench/usage",
        axum::routing::get(|| async { axum::Json(usage()) }),
    )
    .route(
        "/bench/metrics",
        axum::routing::get(|| async {
            let phases: Vec<Value> = ferrule::metrics::snapshot()
                .into_iter()
                .map(|(name, nanos, count)| json!({"phase": name, "nanos": nanos, "count": count}))
                .collect();
            axum::Json(json!(phases))
        }),
    )
    .route(
        "/bench/reset",
        axum::routing::get(|| async {
            ferrule::metrics::reset();
            "ok"
        }),
    )
}

/// The subscriber of an observed server: JSON lines with span fields at `filter` (one per event
/// with `ferrule::event=debug`), to a sink.
fn observed(filter: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(std::io::sink);
    if tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new(filter))
        .with(json)
        .try_init()
        .is_err()
    {
        eprintln!("bench: a subscriber was already installed");
    }
}

async fn serve_ferrule(
    mode: Mode,
    database: Option<String>,
    redis: Option<String>,
    observe: bool,
) -> Result<()> {
    let settings = Settings {
        max_event_bytes: 1 << 16,
        // Every load-generator connection comes from 127.0.0.1.
        max_sockets_per_client: 0,
        metrics_addr: observe.then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Settings::default()
    };
    let mut made_database = None;
    let app = match mode {
        Mode::None => App::new().settings(settings).state::<FastState>(),
        Mode::Full => {
            let url = database.context("--database is required for the full mode")?;
            if url.starts_with("postgres") {
                fresh_postgres_database(&url).await?;
                made_database = Some(url.clone());
            }
            let db = ferrule::db::connect(&url).await?;
            ferrule::db::migrations::migrate(&db).await?;
            let auth = ferrule::auth::Auth::new(db.clone());
            if auth.find_by_username("bench").await?.is_none() {
                auth.create_user(ferrule::auth::NewUser {
                    username: "bench".into(),
                    password: "bench-password".into(),
                    ..Default::default()
                })
                .await?;
            }
            App::new()
                .settings(settings)
                .database(db)
                .state::<BenchState>()
                .middleware(middleware::from_fn("tenant", tenant))
                .middleware(middleware::from_fn("request_id", request_id))
                .middleware(middleware::from_fn("audit", audit))
        }
    };
    let app = match redis {
        Some(url) => {
            let prefix = format!("bench-{}", std::process::id());
            app.state_manager(
                ferrule::redis_state::RedisStateManager::connect(&url, &prefix).await?,
            )
        }
        None => app,
    };
    let served = ready(metrics_routes(app)).await;
    // The database was made for this run only: it goes with the server.
    if let Some(url) = made_database {
        drop_postgres_database(&url).await?;
    }
    served
}

/// Drops and recreates the database `url` names, through the server's `postgres` database.
async fn fresh_postgres_database(url: &str) -> Result<()> {
    use ferrule::db::sea_orm::ConnectionTrait;
    let (admin, name) = drop_postgres_database(url).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    Ok(())
}

/// Drops the database `url` names (if it exists); returns the connection to the server's
/// `postgres` database it used, and the name.
async fn drop_postgres_database(
    url: &str,
) -> Result<(ferrule::db::sea_orm::DatabaseConnection, String)> {
    use ferrule::db::sea_orm::ConnectionTrait;
    let (base, name) = url
        .rsplit_once('/')
        .context("database URL without a name")?;
    let name = name.split('?').next().unwrap_or(name);
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("bench database name must be [A-Za-z0-9_]: {name}");
    }
    let admin = ferrule::db::connect(&format!("{base}/postgres")).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    Ok((admin, name.to_owned()))
}

async fn serve_echo() -> Result<()> {
    use socketioxide::SocketIo;
    use socketioxide::extract::{Data, SocketRef};
    use socketioxide::handler::ConnectHandler;
    let (layer, io) = SocketIo::builder().req_path("/_event").build_layer();
    // Handlers are registered in connect middleware, which runs before the CONNECT answer:
    // registered in the connect handler, a client's first event could arrive before them.
    let wire = |s: SocketRef| async move {
        s.on("event", async |s: SocketRef, Data(v): Data<Value>| {
            let id = v.get("id").cloned().unwrap_or(Value::Null);
            let _ = s.emit(
                "event",
                &json!({"id": id, "delta": {}, "events": [], "final": true}),
            );
        });
        Ok::<(), std::convert::Infallible>(())
    };
    io.ns("/", (async || {}).with(wire));
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("READY {}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, usage_route(axum::Router::new()).layer(layer))
        .with_graceful_shutdown(ferrule::shutdown_signal())
        .await?;
    Ok(())
}

async fn login(addr: SocketAddr, creds: &str) -> Result<String> {
    let (user, pass) = creds
        .split_once(':')
        .context("--login takes user:password")?;
    Ok(ferrule::testing::login_at(addr, user, pass).await?)
}

async fn connect_many(addr: SocketAddr, n: usize, cookie: Option<&str>) -> Result<Vec<TestClient>> {
    let mut clients = Vec::with_capacity(n);
    let mut pending = futures_util::stream::FuturesUnordered::new();
    let mut started = 0;
    use futures_util::StreamExt;
    while clients.len() < n {
        while started < n && pending.len() < 64 {
            let mut opts = ClientOptions::default();
            if let Some(c) = cookie {
                opts = opts.header("cookie", c);
            }
            pending.push(TestClient::connect(addr, opts));
            started += 1;
        }
        match pending.next().await {
            Some(c) => clients.push(c?),
            None => break,
        }
    }
    Ok(clients)
}

async fn load(
    addr: SocketAddr,
    conns: usize,
    events: usize,
    pipeline: usize,
    login_as: Option<String>,
    event: String,
    rate: u64,
) -> Result<()> {
    let cookie = match login_as {
        Some(creds) => Some(login(addr, &creds).await?),
        None => None,
    };
    let mut clients = connect_many(addr, conns, cookie.as_deref()).await?;
    for c in &mut clients {
        c.set_timeout(Duration::from_secs(60));
        c.call(&event, json!({})).await?; // warm-up
    }
    http_request(addr, "GET", "/bench/reset", &[], b"")
        .await
        .ok();
    let usage_at = async || -> Result<Value> {
        let r = http_request(addr, "GET", "/bench/usage", &[], b"").await?;
        r.json().context("the server's /bench/usage")
    };
    let before = usage_at().await?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    // Paced runs: each connection sends every `conns / rate` seconds, starts staggered.
    let period = (rate > 0).then(|| Duration::from_secs_f64(conns as f64 / rate as f64));
    for (i, mut c) in clients.into_iter().enumerate() {
        let event = event.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(events);
            let mut sent = 0;
            let mut ticks = period.map(|p| {
                let start = tokio::time::Instant::now() + p.mul_f64(i as f64 / conns as f64);
                let mut t = tokio::time::interval_at(start, p);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            while sent < events {
                if let Some(t) = ticks.as_mut() {
                    t.tick().await;
                }
                let batch = pipeline.min(events - sent);
                let t = Instant::now();
                let mut ids = Vec::with_capacity(batch);
                for _ in 0..batch {
                    ids.push(c.emit(&event, json!({})).await?);
                }
                for id in ids {
                    c.final_for(id).await?;
                    lat.push(t.elapsed().as_micros() as u64);
                }
                sent += batch;
            }
            anyhow::Ok((lat, c))
        }));
    }
    let mut all = Vec::with_capacity(conns * events);
    let mut keep = Vec::new();
    for t in tasks {
        let (lat, c) = t.await??;
        all.extend(lat);
        keep.push(c);
    }
    let secs = started.elapsed().as_secs_f64();
    let after = usage_at().await?;
    let spent = |k: &str| after[k].as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
    let (cpu_ns, allocs) = (spent("cpu_ns"), spent("allocs"));
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let phases = http_request(addr, "GET", "/bench/metrics", &[], b"")
        .await
        .ok()
        .and_then(|r| r.json().ok())
        .unwrap_or(Value::Null);
    println!(
        "{}",
        json!({
            "events": all.len(),
            "secs": secs,
            "events_per_sec": all.len() as f64 / secs,
            "p50_us": pct(0.50),
            "p99_us": pct(0.99),
            "server_cpu_us_per_event": cpu_ns as f64 / 1000.0 / all.len().max(1) as f64,
            "allocs_per_event": allocs as f64 / all.len().max(1) as f64,
            "phases": phases,
        })
    );
    drop(keep);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::ServeEcho => serve_echo().await,
        Cmd::ServeFerrule {
            mode,
            database,
            redis,
            observe,
            default_log,
        } => {
            if observe {
                observed("info,ferrule::event=debug");
            } else if default_log {
                observed("info");
            }
            serve_ferrule(mode, database, redis, observe || default_log).await
        }
        Cmd::Load {
            addr,
            conns,
            events,
            pipeline,
            login,
            event,
            rate,
        } => load(addr, conns, events, pipeline.max(1), login, event, rate).await,
        Cmd::Idle { addr, conns, hold } => {
            let clients = connect_many(addr, conns, None).await?;
            println!("CONNECTED {}", clients.len());
            tokio::time::sleep(Duration::from_secs(hold)).await;
            drop(clients);
            Ok(())
        }
    }
}
