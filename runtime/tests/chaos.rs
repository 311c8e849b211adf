//! The chaos run: many tabs click through two nodes that share Redis, while middleware fails or
//! panics at random, sockets drop and reconnect, one node restarts half-way, and one tab flushes
//! a thousand clicks at once. The clients run the browser's own connection core
//! ([`Connection`]), so what is proven here is what a browser gets.
//!
//! Passes when, for every tab: the events answered as applied are exactly the events the state
//! applied, in the order they were sent, none twice; every event got exactly one final answer;
//! and most of them were applied (the faults refuse a few per cent), so a run where nothing
//! gets through fails. The restart happens once half of all events have their final answer, and
//! events are still being answered after it. Quick by default (CI); `cargo xtask bench --chaos`
//! runs the long one, sized with `FERRULE_CHAOS_CLIENTS` and `FERRULE_CHAOS_EVENTS`.

mod dbsupport;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrule::client::connection::{Connection, Output};
use ferrule::middleware::{self, Next, Request, Response};
use ferrule::protocol::{RouterData, StateUpdate};
use ferrule::redis_state::RedisStateManager;
use ferrule::testing::{ClientOptions, TestServer};
use ferrule::{App, Error, EventContext, Handlers, Settings, State};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The ids of the increments this tab applied, in the order it applied them.
#[derive(Clone, Default, Serialize, Deserialize)]
struct ChaosState {
    count: i64,
    applied: Vec<u64>,
}

impl ChaosState {
    async fn increment(&mut self, ctx: EventContext) {
        let before = self.count;
        tokio::task::yield_now().await;
        self.count = before + 1;
        self.applied.extend(ctx.event().id);
    }
}

impl ferrule::protocol::StateName for ChaosState {}

impl State for ChaosState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("increment", Self::increment);
    }
}

/// Faults injected, for the report.
#[derive(Default)]
struct Faults {
    errors: AtomicU64,
    panics: AtomicU64,
    drops: AtomicU64,
    restarts: AtomicU64,
}

static FAULTS: Faults = Faults {
    errors: AtomicU64::new(0),
    panics: AtomicU64::new(0),
    drops: AtomicU64::new(0),
    restarts: AtomicU64::new(0),
};

/// A small shared pseudo-random source (xorshift); good enough to pick faults.
fn roll(per_mille: u64) -> bool {
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut x = STATE.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x % 1000 < per_mille
}

/// Fails 3 % of events with an error, panics on 2 % on the way in and 1 % on the way out.
async fn chaos(req: Request, next: Next) -> Result<Response, Error> {
    if roll(30) {
        FAULTS.errors.fetch_add(1, Ordering::Relaxed);
        return Err(Error::bad_request("chaos: refused"));
    }
    if roll(20) {
        FAULTS.panics.fetch_add(1, Ordering::Relaxed);
        panic!("chaos: panic on the way in");
    }
    let resp = next.run(req).await?;
    if roll(10) {
        FAULTS.panics.fetch_add(1, Ordering::Relaxed);
        panic!("chaos: panic on the way out");
    }
    Ok(resp)
}

async fn node(redis: &str, prefix: &str) -> TestServer {
    let states = RedisStateManager::connect(redis, prefix).await.unwrap();
    let settings = Settings {
        shutdown_grace_ms: 300,
        // Every tab comes from 127.0.0.1.
        max_sockets_per_client: 0,
        ..Settings::default()
    };
    let app = App::new()
        .settings(settings)
        .state::<ChaosState>()
        .middleware(middleware::from_fn("chaos", chaos))
        .state_manager(states);
    TestServer::start(app).await.unwrap()
}

/// The live nodes' addresses; a restart swaps one.
type Nodes = Arc<Mutex<Vec<SocketAddr>>>;

/// How many events, over all tabs, have had their final answer so far.
type Answered = tokio::sync::watch::Sender<usize>;

fn pick(nodes: &Nodes, n: u64) -> SocketAddr {
    let nodes = nodes.lock().unwrap();
    nodes[(n as usize) % nodes.len()]
}

/// What one tab saw: each event id's final answer (applied or not).
struct TabReport {
    token: String,
    sent: Vec<u64>,
    answers: BTreeMap<u64, bool>,
}

fn applied(u: &StateUpdate) -> bool {
    !u.events
        .iter()
        .any(|e| e.name == "_error" || (e.name == "_toast" && e.payload["level"] == "error"))
}

/// One browser tab: `events` clicks in bursts of up to `burst`, dropping its socket now and
/// then and reconnecting to whichever node is up.
async fn tab(
    nodes: Nodes,
    answered: Answered,
    index: u64,
    events: usize,
    burst: usize,
    drop_per_mille: u64,
) -> TabReport {
    let token = format!("chaos-tab-{:08}-{index:06}", std::process::id());
    let mut conn = Connection::new(token.clone()).with_epoch(format!("load-{index}"));
    let start = Instant::now();
    let now = || start.elapsed().as_secs_f64() * 1000.0;
    let mut ws: Option<Ws> = None;
    let mut report = TabReport {
        token,
        sent: Vec::new(),
        answers: BTreeMap::new(),
    };
    let mut attempt = index;
    let deadline = Instant::now() + Duration::from_secs(600);
    while report.sent.len() < events || conn.unanswered() > 0 {
        assert!(Instant::now() < deadline, "tab {index} did not finish");
        let Some(socket) = ws.as_mut() else {
            attempt += 1;
            let url = format!(
                "ws://{}/_event/?EIO=4&transport=websocket",
                pick(&nodes, attempt)
            );
            match tokio_tungstenite::connect_async(url).await {
                Ok((s, _)) => {
                    ws = Some(s);
                    conn.transport_opened(now());
                }
                Err(_) => {
                    conn.transport_closed(0.5);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            continue;
        };
        let mut frames = Vec::new();
        if report.sent.len() < events && roll(300) {
            let n = (1 + (attempt as usize * 7 + report.sent.len()) % burst)
                .min(events - report.sent.len());
            for _ in 0..n {
                let (id, frame) =
                    conn.emit("chaos_state.increment", json!({}), RouterData::default());
                report.sent.push(id);
                frames.extend(frame);
            }
        }
        let mut dead = false;
        for f in frames {
            if socket.send(Message::text(f)).await.is_err() {
                dead = true;
                break;
            }
        }
        if !dead && roll(drop_per_mille) {
            FAULTS.drops.fetch_add(1, Ordering::Relaxed);
            dead = true; // the network goes away: no close frame, answers in flight are lost
        }
        if !dead {
            match tokio::time::timeout(Duration::from_millis(20), socket.next()).await {
                Err(_) => {}
                Ok(Some(Ok(Message::Text(text)))) => {
                    for out in conn.receive(&text, now()) {
                        match out {
                            Output::Send(f) => {
                                if socket.send(Message::text(f)).await.is_err() {
                                    dead = true;
                                    break;
                                }
                            }
                            Output::Update(u) => {
                                if let Some(id) = u.id.filter(|_| u.is_final)
                                    && report.sent.contains(&id)
                                {
                                    let first = report.answers.insert(id, applied(&u));
                                    assert!(first.is_none(), "event {id} got two final answers");
                                    answered.send_modify(|n| *n += 1);
                                }
                            }
                            Output::Connected => {}
                            Output::Close(_) => dead = true,
                        }
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_))) | Ok(None) => dead = true,
            }
        }
        if dead {
            ws = None;
            conn.transport_closed(0.5);
        }
    }
    report
}

fn sizes() -> (usize, usize) {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    (
        env("FERRULE_CHAOS_CLIENTS", 50),
        env("FERRULE_CHAOS_EVENTS", 40),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_loses_nothing_and_applies_nothing_twice() {
    let Some(redis) = dbsupport::redis_url("the chaos run") else {
        return;
    };
    // The injected panics are expected; keep the report readable.
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("chaos:") {
            quiet(info);
        }
    }));
    let (clients, events) = sizes();
    let prefix = format!("test-{}-chaos", std::process::id());
    let started = Instant::now();
    let a = node(&redis, &prefix).await;
    let b = node(&redis, &prefix).await;
    let nodes: Nodes = Arc::new(Mutex::new(vec![a.addr(), b.addr()]));
    let (answered, mut progress) = tokio::sync::watch::channel(0usize);

    let mut tabs = tokio::task::JoinSet::new();
    for i in 0..clients as u64 {
        tabs.spawn(tab(nodes.clone(), answered.clone(), i, events, 8, 15));
    }
    // One tab flushes a thousand clicks at once, as after a long time offline.
    tabs.spawn(tab(
        nodes.clone(),
        answered.clone(),
        clients as u64,
        1000,
        1000,
        2,
    ));
    let all = clients * events + 1000;

    // Half-way through (half of all events answered), node A restarts: stopped gracefully, a
    // fresh process in its place.
    tokio::time::timeout(
        Duration::from_secs(600),
        progress.wait_for(|n| *n >= all / 2),
    )
    .await
    .expect("half of the events answered within 600 s")
    .expect("the tabs are running");
    let replacement = node(&redis, &prefix).await;
    nodes.lock().unwrap()[0] = replacement.addr();
    a.stop().await.expect("a graceful stop");
    FAULTS.restarts.fetch_add(1, Ordering::Relaxed);
    let after_restart = *progress.borrow();

    let mut reports = Vec::new();
    while let Some(done) = tabs.join_next().await {
        reports.push(done.expect("a tab finished"));
    }

    // Node A was gone with events still to answer: the run went on across the restart.
    assert!(
        after_restart < all,
        "every event was answered before node A was replaced: the restart tested nothing"
    );

    // Check every tab against what its state says it applied.
    let (mut total, mut lost, mut duplicated, mut unanswered) = (0, 0, 0, 0);
    for report in &reports {
        let mut reader = b
            .client_with(ClientOptions::default().token(report.token.clone()))
            .await
            .unwrap();
        let full = reader.hydrate().await.unwrap();
        let state: ChaosState = serde_json::from_value(json!(full.delta["chaos_state"])).unwrap();
        let answered_applied: Vec<u64> = report
            .answers
            .iter()
            .filter(|(_, ok)| **ok)
            .map(|(id, _)| *id)
            .collect();
        total += report.sent.len();
        unanswered += report
            .sent
            .iter()
            .filter(|id| !report.answers.contains_key(id))
            .count();
        let mut seen = std::collections::BTreeSet::new();
        duplicated += state.applied.iter().filter(|id| !seen.insert(**id)).count();
        lost += answered_applied
            .iter()
            .filter(|id| !seen.contains(id))
            .count();
        assert_eq!(
            state.applied, answered_applied,
            "tab {}: the state applied exactly the events answered as applied, in order",
            report.token
        );
        assert_eq!(state.count as usize, state.applied.len());
        // The faults refuse about one event in sixteen: a tab that got fewer than half of its
        // events applied (or none) is one the run failed, however consistent its answers.
        assert!(
            !state.applied.is_empty() && state.applied.len() * 2 >= report.sent.len(),
            "tab {}: only {} of its {} events applied",
            report.token,
            state.applied.len(),
            report.sent.len()
        );
    }
    let f = &FAULTS;
    println!(
        "chaos: {} tabs, {total} events in {:.1}s; faults: {} middleware errors, {} panics, {} dropped sockets, {} node restart; lost = {lost}, duplicated = {duplicated}, unanswered = {unanswered}",
        reports.len(),
        started.elapsed().as_secs_f64(),
        f.errors.load(Ordering::Relaxed),
        f.panics.load(Ordering::Relaxed),
        f.drops.load(Ordering::Relaxed),
        f.restarts.load(Ordering::Relaxed),
    );
    assert_eq!((lost, duplicated, unanswered), (0, 0, 0));
    assert!(f.drops.load(Ordering::Relaxed) > 0 && f.panics.load(Ordering::Relaxed) > 0);
    drop((b, replacement));
    ferrule::testing::clear_redis_prefix(&redis, &prefix)
        .await
        .unwrap();
}
