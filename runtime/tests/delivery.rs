//! Delivery guarantees, tried as a client off the happy path would: bursts past the queue,
//! resends after a reconnect, panics anywhere in the chain, a shutdown with events still queued.
//! Every test runs on tokio's multi-thread runtime, as production does.

mod dbsupport;

use std::collections::BTreeSet;
use std::time::Duration;

use ferrule::background::Background;
use ferrule::middleware::{self, Next, Request};
use ferrule::protocol::StateUpdate;
use ferrule::redis_state::RedisStateManager;
use ferrule::testing::{ClientOptions, TestClient, TestServer};
use ferrule::{App, Error, EventContext, Handlers, Settings, State};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Counts increments and remembers which event ids it applied, in order.
#[derive(Clone, Default, Serialize, Deserialize)]
struct LedgerState {
    count: i64,
    applied: Vec<u64>,
    /// Large, so that answers fill the socket's buffers when the client does not read them.
    blob: String,
}

impl LedgerState {
    async fn increment(&mut self, ctx: EventContext) {
        // Yield mid-update, so two runs of one tab at once would lose an update.
        let before = self.count;
        tokio::task::yield_now().await;
        self.count = before + 1;
        self.applied.extend(ctx.event().id);
    }

    async fn slow_increment(&mut self, ctx: EventContext) {
        tokio::time::sleep(Duration::from_millis(40)).await;
        self.count += 1;
        self.applied.extend(ctx.event().id);
    }

    async fn fill(&mut self, ctx: EventContext) {
        let id = ctx.event().id.unwrap_or(0);
        self.blob = format!("{id:>8}").repeat(128 * 1024);
    }

    async fn explode(_: Background<Self>, _: serde_json::Value) {
        panic!("background handler exploded");
    }

    async fn refuse(&mut self, _: EventContext) -> Result<(), Error> {
        self.count += 1000;
        Err(Error::bad_request("refused on purpose"))
    }
}

impl ferrule::protocol::StateName for LedgerState {}

impl State for LedgerState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("increment", Self::increment);
        h.on("slow_increment", Self::slow_increment);
        h.on("fill", Self::fill);
        h.on("refuse", Self::refuse);
        h.background("explode", Self::explode);
    }
}

/// Panics on the way in for `?panic=in`, on the way out (after the handler) for `?panic=out`.
async fn panicky(req: Request, next: Next) -> Result<ferrule::middleware::Response, Error> {
    let query = req.uri().query().unwrap_or("").to_owned();
    if query == "panic=in" {
        panic!("middleware exploded on the way in");
    }
    let resp = next.run(req).await?;
    if query == "panic=out" {
        panic!("middleware exploded on the way out");
    }
    Ok(resp)
}

fn app(settings: Settings) -> App {
    App::new()
        .settings(settings)
        .state::<LedgerState>()
        .middleware(middleware::from_fn("panicky", panicky))
}

async fn server() -> TestServer {
    TestServer::start(app(Settings::default())).await.unwrap()
}

fn count(u: &StateUpdate) -> Option<i64> {
    u.delta.get("ledger_state")?.get("count")?.as_i64()
}

fn is_error(u: &StateUpdate) -> bool {
    u.events
        .iter()
        .any(|e| e.name == "_error" || (e.name == "_toast" && e.payload["level"] == "error"))
}

async fn state_of(c: &mut TestClient) -> LedgerState {
    let full = c.hydrate().await.unwrap();
    serde_json::from_value(json!(full.delta["ledger_state"])).unwrap()
}

/// Reads until every id in `ids` has its final answer; fails on a second final for one id.
async fn finals(c: &mut TestClient, ids: &[u64]) -> Vec<StateUpdate> {
    let wanted: BTreeSet<u64> = ids.iter().copied().collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    while seen.len() < wanted.len() {
        let u = c
            .next_update()
            .await
            .expect("every event gets a final answer");
        let Some(id) = u.id.filter(|_| u.is_final) else {
            continue;
        };
        assert!(wanted.contains(&id), "an answer for an id never sent: {id}");
        assert!(seen.insert(id), "event {id} got two final answers");
        out.push(u);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_burst_past_the_queue_gets_one_final_answer_per_event_and_loses_nothing() {
    let server = server().await;
    let mut c = server.client().await.unwrap();
    c.set_timeout(Duration::from_secs(30));
    let mut ids = Vec::new();
    for _ in 0..1500 {
        ids.push(c.emit("ledger_state.increment", json!({})).await.unwrap());
    }
    let answers = finals(&mut c, &ids).await;
    let answered: Vec<u64> = answers.iter().filter_map(|u| u.id).collect();
    let applied: Vec<u64> = answers
        .iter()
        .filter(|u| !is_error(u))
        .filter_map(|u| u.id)
        .collect();
    let refused: Vec<&StateUpdate> = answers.iter().filter(|u| is_error(u)).collect();
    assert!(
        refused.iter().all(|u| u.events[0].payload["message"]
            .as_str()
            .is_some_and(|m| m.contains("too many events"))),
        "a refusal says why"
    );
    assert!(
        applied.windows(2).all(|w| w[0] < w[1]),
        "answers of applied events come in order"
    );
    let state = state_of(&mut c).await;
    assert_eq!(
        state.applied, applied,
        "exactly the events answered as applied were applied"
    );
    assert_eq!(state.count as usize, applied.len());
    assert_eq!(answered.len(), 1500);
    assert!(
        applied.len() >= 256,
        "at least a queue's worth ran: {}",
        applied.len()
    );
    // The socket still works after the burst.
    let u = c.call("ledger_state.increment", json!({})).await.unwrap();
    assert_eq!(count(&u), Some(state.count + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_late_still_gets_every_answer() {
    // 1 MiB answers fill the kernel's socket buffers, refusals then fill the server's send
    // buffer: answers must wait for room, never be dropped. The heartbeat is long here: on a
    // loaded machine this client may not read for a while, and that is not what is tested.
    // A state of a 1 MiB blob is over the default `max_state_bytes` (1 MiB), which would refuse
    // every `fill` and leave the answers small.
    let settings = Settings {
        ping_interval_ms: 300_000,
        ping_timeout_ms: 300_000,
        max_state_bytes: 4 << 20,
        ..Settings::default()
    };
    let server = TestServer::start(app(settings)).await.unwrap();
    let mut c = server.client().await.unwrap();
    c.set_timeout(Duration::from_secs(120));
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(c.emit("ledger_state.fill", json!({})).await.unwrap());
    }
    for _ in 0..3000 {
        ids.push(c.emit("ledger_state.increment", json!({})).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answers = finals(&mut c, &ids).await;
    assert_eq!(answers.len(), ids.len());
    let applied = answers.iter().filter(|u| !is_error(u)).count();
    let state = state_of(&mut c).await;
    assert_eq!(state.applied.len() + 100, applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_a_thousand_within_the_window_is_all_applied() {
    // What our client's flush does after a long time offline: a window at a time.
    let server = server().await;
    let mut c = server.client().await.unwrap();
    let window = ferrule::protocol::EVENT_WINDOW;
    let mut sent = Vec::new();
    while sent.len() < 1000 {
        let batch: Vec<u64> = {
            let mut b = Vec::new();
            for _ in 0..window.min(1000 - sent.len()) {
                b.push(c.emit("ledger_state.increment", json!({})).await.unwrap());
            }
            b
        };
        let answers = finals(&mut c, &batch).await;
        assert!(answers.iter().all(|u| !is_error(u)), "nothing refused");
        sent.extend(batch);
    }
    let state = state_of(&mut c).await;
    assert_eq!(state.count, 1000);
    assert_eq!(state.applied, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_resent_after_a_reconnect_are_applied_once() {
    let server = server().await;
    let first = ClientOptions::default()
        .token("tab-resend-00000000000")
        .epoch("load-1");
    let mut a = server.client_with(first.clone()).await.unwrap();
    for _ in 0..3 {
        a.call("ledger_state.increment", json!({})).await.unwrap();
    }
    let refused = a.call("ledger_state.refuse", json!({})).await.unwrap();
    assert!(is_error(&refused));
    drop(a); // the socket dies; the client does not know which answers it missed

    let mut b = server.client_with(first).await.unwrap();
    for id in 1..=4 {
        let name = if id == 4 { "refuse" } else { "increment" };
        b.resend(id, &format!("ledger_state.{name}"), json!({}))
            .await
            .unwrap();
    }
    let fresh = b.emit("ledger_state.increment", json!({})).await.unwrap();
    assert_eq!(fresh, 5);
    let answers = finals(&mut b, &[1, 2, 3, 4, 5]).await;
    assert_eq!(
        count(&answers[0]),
        Some(3),
        "a resend is answered with the state as it is"
    );
    let again = &answers[3];
    assert!(
        again
            .events
            .iter()
            .any(|e| e.payload["message"] == "refused on purpose"),
        "a refused event is answered with its refusal again: {again:?}"
    );
    let state = state_of(&mut b).await;
    assert_eq!(
        state.count, 4,
        "three resends changed nothing, the new event ran"
    );
    assert_eq!(state.applied, vec![1, 2, 3, 5]);

    // Another page load of the same tab numbers its events anew: they are not resends.
    let mut other = server
        .client_with(
            ClientOptions::default()
                .token("tab-resend-00000000000")
                .epoch("load-2"),
        )
        .await
        .unwrap();
    let u = other
        .call("ledger_state.increment", json!({}))
        .await
        .unwrap();
    assert_eq!(count(&u), Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_anywhere_in_the_chain_is_a_toast_and_the_socket_keeps_working() {
    let server = server().await;
    let mut c = server.client().await.unwrap();
    c.call("ledger_state.increment", json!({})).await.unwrap();
    for query in ["panic=in", "panic=out"] {
        let router = ferrule::RouterData {
            path: "/".into(),
            query: query.into(),
        };
        let u = c
            .call_from("ledger_state.increment", json!({}), router)
            .await
            .expect("a panicking middleware still answers");
        let toast = u.events_named("_toast").next().expect("a toast");
        assert_eq!(toast.payload["level"], "error");
        assert_eq!(
            toast.payload["message"],
            "Something went wrong. Please try again."
        );
        assert!(
            !toast.payload.to_string().contains("exploded"),
            "the panic stays in the log"
        );
        assert!(u.delta.is_empty(), "nothing committed: {u:?}");
    }
    let u = c.call("ledger_state.increment", json!({})).await.unwrap();
    assert_eq!(count(&u), Some(2), "the socket and its state are fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_background_handler_is_a_toast_and_the_socket_keeps_working() {
    let server = server().await;
    let mut c = server.client().await.unwrap();
    // socketioxide marks a socket connected only after it has queued the CONNECT answer, so the
    // client can hear that answer and send its first event before the server may push to it;
    // a push in that window is turned into a `_resync` (see `rooms::push::CONNECTED_WAIT`),
    // which carries no toast. One answered round trip first proves the socket is marked
    // connected: an answer is only sent to a socket that is.
    c.hydrate().await.unwrap();
    let started = c.call("ledger_state.explode", json!({})).await.unwrap();
    assert!(
        started.events.is_empty(),
        "the event itself is answered at once"
    );
    let push = c
        .next_update()
        .await
        .expect("the failure is pushed to the tab");
    assert_eq!(push.id, None);
    let toast = push.events_named("_toast").next().expect("a toast");
    assert_eq!(toast.payload["level"], "error");
    assert_eq!(
        toast.payload["message"],
        "Something went wrong. Please try again."
    );
    let u = c.call("ledger_state.increment", json!({})).await.unwrap();
    assert_eq!(count(&u), Some(1), "the socket and its state are fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_the_moment_a_socket_connects_gets_its_background_pushes() {
    let server = server().await;
    // The race the test above steps around, met head on: each round sends its first event as
    // soon as the CONNECT answer arrives. When events could run before socketioxide marked the
    // socket connected, one round in a few hundred to a few thousand (more under load) lost the
    // background task's toast to a resync.
    for round in 0..1500 {
        let mut c = server.client().await.unwrap();
        c.call("ledger_state.explode", json!({})).await.unwrap();
        let push = c.next_update().await.unwrap();
        assert!(
            push.events_named("_toast").next().is_some(),
            "round {round}: the toast was lost: {push:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_finishes_and_answers_every_queued_event() {
    let server = server().await;
    let mut c = server.client().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(
            c.emit("ledger_state.slow_increment", json!({}))
                .await
                .unwrap(),
        );
    }
    // Stop once the first is answered (so all were read), while most of them still wait in
    // the socket's queue (each takes 40 ms).
    let first = c.final_for(ids[0]).await.unwrap();
    let stopping = tokio::spawn(server.stop());
    let mut answers = vec![first];
    answers.extend(finals(&mut c, &ids[1..]).await);
    assert!(answers.iter().all(|u| !is_error(u)), "{answers:?}");
    assert_eq!(count(answers.last().unwrap()), Some(20));
    stopping.await.unwrap().expect("a clean stop");
    assert!(c.next_update().await.is_err(), "then the socket closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_refuses_new_sockets() {
    let settings = Settings {
        shutdown_grace_ms: 5000,
        ..Settings::default()
    };
    let server = TestServer::start(app(settings)).await.unwrap();
    let addr = server.addr();
    let mut busy = server.client().await.unwrap();
    // Two seconds of queued work keep the server draining while the new socket knocks.
    let mut first = None;
    for _ in 0..50 {
        let id = busy
            .emit("ledger_state.slow_increment", json!({}))
            .await
            .unwrap();
        first.get_or_insert(id);
    }
    busy.final_for(first.unwrap()).await.unwrap();
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    match TestClient::connect(addr, ClientOptions::default()).await {
        Err(ferrule::testing::TestError::Refused(why)) => {
            assert!(why.to_string().contains("shutting down"), "{why}")
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("a stopping server took a new socket"),
    }
    stopping.await.unwrap().unwrap();
}

async fn node(url: &str, prefix: &str, grace_ms: u64) -> TestServer {
    let manager = RedisStateManager::connect(url, prefix).await.unwrap();
    let settings = Settings {
        shutdown_grace_ms: grace_ms,
        ..Settings::default()
    };
    TestServer::start(app(settings).state_manager(manager))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cut_off_by_a_shutdown_are_resent_to_the_next_node_and_applied_once() {
    let Some(url) = dbsupport::redis_url("a Redis delivery test") else {
        return;
    };
    let prefix = format!("test-{}-handover", std::process::id());
    let a = node(&url, &prefix, 150).await;
    let b = node(&url, &prefix, 10_000).await;
    let tab = ClientOptions::default()
        .token("tab-handover-000000000")
        .epoch("load-1");
    let mut on_a = a.client_with(tab.clone()).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(
            on_a.emit("ledger_state.slow_increment", json!({}))
                .await
                .unwrap(),
        );
    }
    // Node A stops with far more queued than its 150 ms grace lets it finish.
    let mut answered = BTreeSet::from([ids[0]]);
    on_a.final_for(ids[0]).await.unwrap();
    let stopping = tokio::spawn(a.stop());
    while let Ok(u) = on_a.next_update().await {
        if let Some(id) = u.id.filter(|_| u.is_final) {
            assert!(!is_error(&u), "cut-off events are not answered with errors");
            answered.insert(id);
        }
    }
    stopping.await.unwrap().unwrap();
    assert!(answered.len() < 30, "the test must cut events off");

    // The browser resends what had no answer, to the node it reconnects to.
    let mut on_b = b.client_with(tab).await.unwrap();
    let missing: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|i| !answered.contains(i))
        .collect();
    for id in &missing {
        on_b.resend(*id, "ledger_state.slow_increment", json!({}))
            .await
            .unwrap();
    }
    let answers = finals(&mut on_b, &missing).await;
    assert!(answers.iter().all(|u| !is_error(u)));
    let state = state_of(&mut on_b).await;
    assert_eq!(state.count, 30, "every event applied exactly once");
    assert_eq!(state.applied, ids, "in the order they were sent");
    ferrule::testing::clear_redis_prefix(&url, &prefix)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_lock_is_given_up_at_once() {
    let Some(url) = dbsupport::redis_url("a Redis delivery test") else {
        return;
    };
    let prefix = format!("test-{}-dropped-lock", std::process::id());
    let mut manager = RedisStateManager::connect(&url, &prefix).await.unwrap();
    manager.lock_wait = Duration::from_secs(2);
    use ferrule::state::StateManager;
    let held = manager.lock("tab").await.unwrap();
    // An event future dropped half-way drops its lock without storing anything.
    drop(held);
    let again = tokio::time::timeout(Duration::from_secs(5), manager.lock("tab"))
        .await
        .expect("answered")
        .expect("the lock was given up, not left to its 30 s TTL");
    again.release().await.unwrap();
    ferrule::testing::clear_redis_prefix(&url, &prefix)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_never_deletes_another_holders_lock() {
    let Some(url) = dbsupport::redis_url("a Redis delivery test") else {
        return;
    };
    let prefix = format!("test-{}-two-holders", std::process::id());
    use ferrule::state::StateManager;
    let mut first = RedisStateManager::connect(&url, &prefix).await.unwrap();
    first.lock_ttl = Duration::from_millis(150);
    let mut second = first.clone();
    second.lock_ttl = Duration::from_secs(30);
    second.lock_wait = Duration::from_millis(400);
    let a = first.lock("tab").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // a's lock expires
    let b = second.lock("tab").await.expect("b takes the expired lock");
    let late = a.release().await;
    assert!(late.is_err(), "a's late release is refused, not stored");
    assert!(
        second.lock("tab").await.is_err(),
        "b still holds its lock after a's release"
    );
    b.release().await.unwrap();
    second.lock("tab").await.unwrap().release().await.unwrap();
    ferrule::testing::clear_redis_prefix(&url, &prefix)
        .await
        .unwrap();
}
