//! The outgoing byte budget of a socket, tried as a client that stops reading would: the server
//! holds its answers back past `max_unread_bytes` instead of piling them up in memory, forged
//! acks confirm nothing, other clients carry on, and a client that reads again gets every
//! answer, in order. Pushes, which no socket's worker counts, are capped in size instead.

mod dbsupport;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use dbsupport::{Backend, TestDb};
use ferrule::protocol::ClientCommand;
use ferrule::testing::{ClientOptions, TestClient, TestServer};
use ferrule::{App, EventContext, Handlers, Settings, State};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How many times `grow` ran, per caller: tests of this file run at once.
static RUNS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn runs(who: &str) -> usize {
    RUNS.lock().unwrap().get(who).copied().unwrap_or(0)
}

/// Each answer carries a new 16 KiB blob.
#[derive(Clone, Default, Serialize, Deserialize)]
struct BulkyState {
    last: u64,
    blob: String,
}

impl BulkyState {
    async fn grow(&mut self, ctx: EventContext, who: String) {
        *RUNS.lock().unwrap().entry(who).or_default() += 1;
        let id = ctx.event().id.unwrap_or(0);
        self.last = id;
        self.blob = format!("{id:>8}").repeat(2048);
    }
}

impl ferrule::protocol::StateName for BulkyState {}

impl State for BulkyState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("grow", Self::grow);
    }
}

const BUDGET: u64 = 64 * 1024;
/// Answers that fit the budget: a little over 16 KiB each.
const FIT: usize = 3;

async fn server() -> TestServer {
    let settings = Settings {
        max_unread_bytes: BUDGET,
        // The heartbeat would close a client that does not read; the budget is what is tested.
        ping_interval_ms: 300_000,
        ping_timeout_ms: 300_000,
        ..Settings::default()
    };
    let app = App::new().settings(settings).state::<BulkyState>();
    TestServer::start(app).await.unwrap()
}

async fn burst(c: &mut TestClient, who: &str, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(c.emit("bulky_state.grow", json!(who)).await.unwrap());
    }
    ids
}

/// Waits until `who`'s runs stop changing for a while, and returns them.
async fn settled_runs(who: &str) -> usize {
    let mut last = runs(who);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = runs(who);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Reads the final answers of `ids` and checks they come in order, one each.
async fn read_all(c: &mut TestClient, ids: &[u64]) {
    let mut answered = Vec::new();
    while answered.len() < ids.len() {
        let u = c.next_update().await.expect("every event is answered");
        if let Some(id) = u.id.filter(|_| u.is_final) {
            assert_eq!(u.delta["bulky_state"]["last"], id, "the answer of {id}");
            answered.push(id);
        }
    }
    assert_eq!(answered, ids, "every answer, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_sent_no_more_than_the_budget() {
    let server = server().await;
    let mut stopper = server.client().await.unwrap();
    stopper.set_timeout(Duration::from_secs(30));
    let ids = burst(&mut stopper, "stopper", 100).await;
    // Answers that fit are sent; the next event runs and its answer waits for the client.
    let held = settled_runs("stopper").await;
    assert!(
        (FIT..=FIT + 2).contains(&held),
        "{held} of 100 events ran for a client that read nothing (budget: {FIT} answers)"
    );

    // Another client is served all the while.
    let mut other = server.client().await.unwrap();
    for _ in 0..10 {
        let u = other
            .call("bulky_state.grow", json!("other"))
            .await
            .unwrap();
        assert!(u.delta.contains_key("bulky_state"));
    }

    // Reading again confirms the markers: the rest runs, and nothing was lost or reordered.
    read_all(&mut stopper, &ids).await;
    assert_eq!(runs("stopper"), 100);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_acks_confirm_nothing() {
    let server = server().await;
    let mut forger = server.client().await.unwrap();
    forger.set_timeout(Duration::from_secs(30));
    let ids = burst(&mut forger, "forger", 50).await;
    settled_runs("forger").await;
    // Acks for every ack id the markers can have had, with guessed nonces, without reading.
    for ack in 0..64 {
        for guess in ["", "0", "00000000000000000000000000000000"] {
            forger
                .send_text(&format!("43{ack}[\"{guess}\"]"))
                .await
                .unwrap();
        }
    }
    let held = settled_runs("forger").await;
    assert!(
        held <= FIT + 2,
        "forged acks let {held} of 50 events run (budget: {FIT} answers)"
    );
    read_all(&mut forger, &ids).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_client_gets_a_long_burst_past_the_budget_in_full() {
    let server = server().await;
    let mut reader = server.client().await.unwrap();
    reader.set_timeout(Duration::from_secs(30));
    // Forty times the budget, read as it comes.
    let ids = burst(&mut reader, "reader", 160).await;
    read_all(&mut reader, &ids).await;
    assert_eq!(runs("reader"), 160);
    server.stop().await.unwrap();
}

/// One text every tab of a session shares.
#[derive(Clone, Default, Serialize, Deserialize)]
struct SharedNote {
    text: String,
}

impl SharedNote {
    async fn write(&mut self, _: EventContext, text: String) {
        self.text = text;
    }
}

impl ferrule::protocol::StateName for SharedNote {}

impl State for SharedNote {
    const SESSION_SCOPED: bool = true;

    fn handlers(h: &mut Handlers<Self>) {
        h.on("write", Self::write);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_too_large_to_send_as_it_is_becomes_a_resync() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    // 1 MiB of unread answers; engine.io holds 1,024 packets: pushes up to 1 KiB.
    let settings = Settings {
        max_unread_bytes: 1 << 20,
        ..Settings::default()
    };
    let app = App::new()
        .settings(settings)
        .database(db.conn.clone())
        .state::<SharedNote>();
    let rooms = app.rooms();
    let server = TestServer::start(app).await.unwrap();
    let mut a = server.client().await.unwrap();
    let cookie = a.cookies().unwrap();
    let mut b = server
        .client_with(ClientOptions::default().header("cookie", cookie))
        .await
        .unwrap();
    b.set_timeout(Duration::from_secs(10));

    // A push within the limit arrives as it is.
    a.call("shared_note.write", json!("short")).await.unwrap();
    let pushed = b.next_update().await.unwrap();
    assert_eq!(pushed.delta["shared_note"]["text"], "short");
    // One past it comes as an instruction to fetch the states, which then hold the new text.
    let long = "x".repeat(1024);
    a.call("shared_note.write", json!(long)).await.unwrap();
    let pushed = b.next_update().await.unwrap();
    assert!(pushed.delta.is_empty(), "the large delta is not pushed");
    assert!(
        pushed
            .events
            .iter()
            .any(|e| e.name == ClientCommand::RESYNC),
        "{pushed:?}"
    );
    let full = b.hydrate().await.unwrap();
    assert_eq!(full.delta["shared_note"]["text"], long.as_str());

    // A broadcast of client events alone has nothing to fetch: too large, it is refused, loudly.
    let refused = rooms
        .broadcast("lobby", vec![ClientCommand::new("big", json!(long))])
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("push limit"), "{refused}");
    rooms
        .broadcast("lobby", vec![ClientCommand::new("small", json!("hi"))])
        .await
        .expect("a small broadcast goes");
    server.stop().await.unwrap();
    db.cleanup().await;
}

/// A room to flood.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Lobby {}

impl Lobby {
    async fn enter(&mut self, ctx: EventContext) {
        ctx.join("lobby");
    }
}

impl ferrule::protocol::StateName for Lobby {}

impl State for Lobby {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("enter", Self::enter);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_that_could_not_take_a_push_is_told_to_resync() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let settings = Settings {
        // The heartbeat would close a tab that reads nothing; what it missed is what is tested.
        ping_interval_ms: 300_000,
        ping_timeout_ms: 300_000,
        ..Settings::default()
    };
    let app = App::new()
        .settings(settings)
        .database(db.conn.clone())
        .state::<SharedNote>()
        .state::<Lobby>();
    let rooms = app.rooms();
    let server = TestServer::start(app).await.unwrap();
    let mut writer = server.client().await.unwrap();
    let cookie = writer.cookies().unwrap();
    let mut reader = server
        .client_with(ClientOptions::default().header("cookie", cookie))
        .await
        .unwrap();
    reader.call("lobby.enter", json!({})).await.unwrap();
    // A bystander in the same room reads every push as it comes.
    let mut bystander = server.client().await.unwrap();
    bystander.call("lobby.enter", json!({})).await.unwrap();
    let resync =
        |u: &ferrule::StateUpdate| u.events.iter().any(|e| e.name == ClientCommand::RESYNC);

    // The reader reads nothing while its room is flooded with pushes just under the push limit
    // (8 KiB by default): past the network's buffers and engine.io's 1,024 packets, its socket
    // cannot take more.
    let chunk = "x".repeat(7 * 1024);
    for i in 0..6000 {
        rooms
            .broadcast(
                "lobby",
                vec![ClientCommand::new("chunk", json!([i, chunk]))],
            )
            .await
            .expect("a push some socket could not take is not the sender's failure");
        let got = bystander.next_update().await.unwrap();
        assert!(
            !resync(&got),
            "the bystander, which read everything, was told to resync"
        );
        assert_eq!(
            got.events[0].payload[0], i,
            "the bystander gets every push, in order"
        );
    }
    // Now the writer changes the state the two tabs share: the reader cannot take that push.
    writer
        .call("shared_note.write", json!("the last word"))
        .await
        .unwrap();

    // Reading again, the reader gets what its socket held, then the instruction to fetch its
    // states, which hold the last word.
    reader.set_timeout(Duration::from_secs(5));
    let mut told = false;
    let mut pushed_text = None;
    while let Ok(update) = reader.next_update().await {
        told |= resync(&update);
        if let Some(note) = update.delta.get("shared_note") {
            pushed_text = note.get("text").cloned();
        }
        if told {
            break;
        }
    }
    assert!(
        told,
        "a tab that missed pushes was never told to resync (last text pushed: {pushed_text:?})"
    );
    let full = reader.hydrate().await.unwrap();
    assert_eq!(full.delta["shared_note"]["text"], "the last word");
    // Only the tab that missed a push resyncs: the bystander is told nothing more.
    bystander.set_timeout(Duration::from_millis(500));
    while let Ok(update) = bystander.next_update().await {
        assert!(
            !resync(&update),
            "the bystander was told to resync: {update:?}"
        );
    }
    server.stop().await.unwrap();
    db.cleanup().await;
}
