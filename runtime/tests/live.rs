//! Live tables: a handler says rows of a table changed (`ctx.changed`), every tab whose states
//! show that table hears `_changed`, and its `_live` reloads them through the handlers the
//! states declared (`on_change`), chain and guards; only tabs that show the table hear it, a
//! burst is coalesced, a refused reload shows nothing, a reconnecting tab catches up, and with
//! Redis a change on node A reaches a tab on node B.

mod dbsupport;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrule::protocol::StateUpdate;
use ferrule::redis_state::RedisStateManager;
use ferrule::rooms::RedisBroadcast;
use ferrule::testing::{ClientOptions, TestClient, TestServer};
use ferrule::{App, Error, EventContext, Handlers, Settings, State};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The "table": rows kept in memory, shared by every node of a test, and a switch that makes
/// reloads fail.
#[derive(Clone, Default)]
struct Table {
    rows: Arc<Mutex<Vec<String>>>,
    failing: Arc<Mutex<bool>>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct NotesState {
    notes: Vec<String>,
    loads: u32,
}

#[derive(Deserialize)]
struct Add {
    text: String,
}

fn table(ctx: &EventContext) -> Table {
    ctx.extension::<Table>().cloned().expect("the table")
}

impl NotesState {
    async fn load(&mut self, ctx: EventContext) -> Result<(), Error> {
        let table = table(&ctx);
        if *table.failing.lock().unwrap() {
            return Err(Error::bad_request("not now"));
        }
        self.notes = table.rows.lock().unwrap().clone();
        self.loads += 1;
        Ok(())
    }

    async fn add(&mut self, ctx: EventContext, a: Add) -> Result<(), Error> {
        table(&ctx).rows.lock().unwrap().push(a.text);
        ctx.changed("notes");
        self.load(ctx).await
    }
}

impl NotesState {
    /// Writes `text` after the event was answered, as an import would.
    async fn add_later(
        bg: ferrule::background::Background<Self>,
        text: String,
    ) -> Result<(), Error> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        table(bg.ctx()).rows.lock().unwrap().push(text);
        bg.changed("notes");
        Ok(())
    }
}

impl ferrule::protocol::StateName for NotesState {}

impl State for NotesState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("load", Self::load).on_change("notes");
        h.on("add", Self::add);
        h.background("add_later", Self::add_later);
    }
}

/// A state that loads nothing live: a tab showing only it hears no change.
#[derive(Clone, Default, Serialize, Deserialize)]
struct OtherState {
    n: u32,
}

impl OtherState {
    async fn bump(&mut self, _ctx: EventContext) {
        self.n += 1;
    }
}

impl ferrule::protocol::StateName for OtherState {}

impl State for OtherState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("bump", Self::bump);
    }
}

fn app(table: &Table) -> App {
    App::new()
        .settings(Settings::default())
        .extension(table.clone())
        .state::<NotesState>()
        .state::<OtherState>()
}

/// What the browser client answers a `_changed` with, from the page the tab shows.
async fn reload(client: &mut TestClient, tables: &[&str]) -> StateUpdate {
    client.reload_live(tables).await.unwrap()
}

async fn add(client: &mut TestClient, text: &str) {
    client
        .call("notes_state.add", json!({ "text": text }))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_reaches_the_tabs_showing_the_table_and_their_reload_brings_the_rows() {
    let table = Table::default();
    let server = TestServer::start(app(&table)).await.unwrap();
    let (mut ann, mut bob, mut eve) = (
        server.client().await.unwrap(),
        server.client().await.unwrap(),
        server.client().await.unwrap(),
    );
    bob.call("notes_state.load", json!({})).await.unwrap();
    eve.call("other_state.bump", json!({})).await.unwrap();
    add(&mut ann, "first").await;
    let wait = Duration::from_secs(5);
    assert_eq!(bob.next_change(wait).await, Some(vec!["notes".to_owned()]));
    assert_eq!(
        ann.next_change(wait).await,
        Some(vec!["notes".to_owned()]),
        "the writer's tab shows the table too"
    );
    assert_eq!(
        eve.next_change(Duration::from_millis(400)).await,
        None,
        "a tab that never showed the table hears nothing"
    );
    let fresh = reload(&mut bob, &["notes"]).await;
    assert_eq!(fresh.delta["notes_state"]["notes"], json!(["first"]));
    let unasked = reload(&mut eve, &["notes"]).await;
    assert!(
        unasked.delta.is_empty() && unasked.events.is_empty(),
        "a tab that does not show the table reloads nothing: {unasked:?}"
    );
    let other = reload(&mut bob, &["elsewhere"]).await;
    assert!(
        other.delta.is_empty(),
        "another table's reload runs nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_changes_nothing_and_shows_nothing() {
    let table = Table::default();
    let server = TestServer::start(app(&table)).await.unwrap();
    let mut bob = server.client().await.unwrap();
    bob.call("notes_state.load", json!({})).await.unwrap();
    table.rows.lock().unwrap().push("hidden".into());
    *table.failing.lock().unwrap() = true;
    let refused = reload(&mut bob, &["notes"]).await;
    assert!(
        refused.delta.is_empty() && refused.events.is_empty(),
        "no toast, no redirect for a reload the user did not ask for: {refused:?}"
    );
    *table.failing.lock().unwrap() = false;
    let fresh = reload(&mut bob, &["notes"]).await;
    assert_eq!(fresh.delta["notes_state"]["notes"], json!(["hidden"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_500_writes_is_told_a_bounded_number_of_times() {
    let table = Table::default();
    let server = TestServer::start(app(&table)).await.unwrap();
    let mut ann = server.client().await.unwrap();
    let mut bob = server.client().await.unwrap();
    bob.call("notes_state.load", json!({})).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..500 {
        ids.push(
            ann.emit("notes_state.add", json!({ "text": format!("n{i}") }))
                .await
                .unwrap(),
        );
        if ids.len() == 100 {
            for id in ids.drain(..) {
                ann.final_for(id).await.unwrap();
            }
        }
    }
    for id in ids {
        ann.final_for(id).await.unwrap();
    }
    let took = started.elapsed();
    let mut notices = 0u32;
    while bob.next_change(Duration::from_millis(500)).await.is_some() {
        notices += 1;
    }
    // One at the first write, then at most one per 100 ms window, and one after the last.
    let bound = u32::try_from(took.as_millis() / 100).unwrap() + 2;
    assert!(
        (1..=bound).contains(&notices),
        "{notices} notices for 500 writes in {took:?} (at most {bound})"
    );
    let fresh = reload(&mut bob, &["notes"]).await;
    assert_eq!(
        fresh.delta["notes_state"]["notes"].as_array().map(Vec::len),
        Some(500)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_that_was_away_catches_up_on_reconnect_and_hears_changes_again() {
    let table = Table::default();
    let server = TestServer::start(app(&table)).await.unwrap();
    let mut ann = server.client().await.unwrap();
    let mut bob = server.client().await.unwrap();
    bob.call("notes_state.load", json!({})).await.unwrap();
    let same_tab = ClientOptions::default().tab_of(&bob);
    bob.close().await.unwrap();
    add(&mut ann, "while away").await;
    let mut bob = server.client_with(same_tab).await.unwrap();
    // No page loader at this path: the live handler itself brings what changed.
    let full = bob.hydrate_at("/elsewhere").await.unwrap();
    assert_eq!(full.delta["notes_state"]["notes"], json!(["while away"]));
    add(&mut ann, "after").await;
    assert_eq!(
        bob.next_change(Duration::from_secs(5)).await,
        Some(vec!["notes".to_owned()]),
        "back in the table's room after the resync"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_from_outside_handlers_are_told_too() {
    let table = Table::default();
    let app = app(&table);
    let rooms = app.rooms();
    let server = TestServer::start(app).await.unwrap();
    let mut bob = server.client().await.unwrap();
    bob.call("notes_state.load", json!({})).await.unwrap();
    table.rows.lock().unwrap().push("from a task".into());
    rooms.changed("notes");
    assert_eq!(
        bob.next_change(Duration::from_secs(5)).await,
        Some(vec!["notes".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_handler_tells_its_changes_too() {
    let table = Table::default();
    let server = TestServer::start(app(&table)).await.unwrap();
    let mut ann = server.client().await.unwrap();
    let mut bob = server.client().await.unwrap();
    bob.call("notes_state.load", json!({})).await.unwrap();
    ann.call("notes_state.add_later", json!("imported"))
        .await
        .unwrap();
    assert_eq!(
        bob.next_change(Duration::from_secs(5)).await,
        Some(vec!["notes".to_owned()])
    );
    let fresh = reload(&mut bob, &["notes"]).await;
    assert_eq!(fresh.delta["notes_state"]["notes"], json!(["imported"]));
}

/// A page's list, loaded before the page renders and live while it is on screen.
#[derive(Clone, Default, Serialize, Deserialize)]
struct ShelfState {
    books: Vec<String>,
}

impl ShelfState {
    async fn load(&mut self, ctx: EventContext) {
        self.books = table(&ctx).rows.lock().unwrap().clone();
    }
}

impl ferrule::protocol::StateName for ShelfState {}

impl State for ShelfState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("load", Self::load)
            .on_load("/shelf")
            .on_change("books");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_loader_reloads_live_only_while_its_page_is_on_screen() {
    let table = Table::default();
    let app = App::new()
        .settings(Settings::default())
        .extension(table.clone())
        .state::<ShelfState>();
    let rooms = app.rooms();
    let server = TestServer::start(app).await.unwrap();
    let mut bob = server.client().await.unwrap();
    bob.hydrate_at("/shelf").await.unwrap();
    table.rows.lock().unwrap().push("Dune".into());
    rooms.changed("books");
    assert_eq!(
        bob.next_change(Duration::from_secs(5)).await,
        Some(vec!["books".to_owned()])
    );
    let on_page = reload(&mut bob, &["books"]).await;
    assert_eq!(on_page.delta["shelf_state"]["books"], json!(["Dune"]));
    table.rows.lock().unwrap().push("Emma".into());
    bob.navigate("/about").await.unwrap();
    let elsewhere = reload(&mut bob, &["books"]).await;
    assert!(
        elsewhere.delta.is_empty(),
        "off its page the list is not on screen: {elsewhere:?}"
    );
    let back = bob.navigate("/shelf").await.unwrap();
    assert_eq!(back.delta["shelf_state"]["books"], json!(["Dune", "Emma"]));
}

/// A live handler that takes a payload has nothing to be given: refused when the app starts.
#[derive(Clone, Default, Serialize, Deserialize)]
struct WrongState {}

impl WrongState {
    async fn add(&mut self, _ctx: EventContext, _a: Add) {}
}

impl ferrule::protocol::StateName for WrongState {}

impl State for WrongState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("add", Self::add).on_change("notes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_handler_that_takes_a_payload_is_refused_at_startup() {
    let refused = TestServer::start(App::new().state::<WrongState>()).await;
    let message = match refused {
        Ok(_) => panic!("the app started"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains("`wrong_state.add` reloads on changes of `notes` but takes a payload"),
        "{message}"
    );
}

async fn node(redis: &str, prefix: &str, table: &Table) -> TestServer {
    let states = RedisStateManager::connect(redis, prefix).await.unwrap();
    let broadcast = RedisBroadcast::connect(redis, prefix).await.unwrap();
    TestServer::start(
        app(table)
            .state_manager(states)
            .broadcast_over_redis(broadcast),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_a_change_on_node_a_reaches_a_tab_on_node_b() {
    let Some(redis) = dbsupport::redis_url("the cross-node live test") else {
        return;
    };
    let prefix = format!(
        "live-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let table = Table::default();
    let a = node(&redis, &prefix, &table).await;
    let b = node(&redis, &prefix, &table).await;
    let mut ann = a.client().await.unwrap();
    let mut bob = b.client().await.unwrap();
    bob.call("notes_state.load", json!({})).await.unwrap();
    add(&mut ann, "across nodes").await;
    assert_eq!(
        bob.next_change(Duration::from_secs(5)).await,
        Some(vec!["notes".to_owned()])
    );
    let fresh = reload(&mut bob, &["notes"]).await;
    assert_eq!(fresh.delta["notes_state"]["notes"], json!(["across nodes"]));
    ferrule::testing::clear_redis_prefix(&redis, &prefix)
        .await
        .unwrap();
}

/// A staff page's list of accounts, live on Ferrule's own users table.
#[derive(Clone, Default, Serialize, Deserialize)]
struct PeopleState {
    people: Vec<(String, bool)>,
}

impl PeopleState {
    async fn load(&mut self, ctx: EventContext) -> Result<(), Error> {
        let auth = ctx.auth().expect("accounts on");
        let page = auth.list_users("", 0, 50).await?;
        self.people = page
            .users
            .into_iter()
            .map(|u| (u.username, u.is_active))
            .collect();
        Ok(())
    }
}

impl ferrule::protocol::StateName for PeopleState {}

impl State for PeopleState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("load", Self::load)
            .on_change(ferrule::auth::USERS_TABLE);
    }
}

/// Waits for the users table's notice to `staff`, then reloads: the people it lists when
/// they changed (null when not).
async fn reloaded_people(staff: &mut TestClient) -> serde_json::Value {
    assert_eq!(
        staff.next_change(Duration::from_secs(5)).await,
        Some(vec![ferrule::auth::USERS_TABLE.to_owned()])
    );
    let fresh = reload(staff, &[ferrule::auth::USERS_TABLE]).await;
    fresh
        .delta
        .get("people_state")
        .map(|s| s["people"].clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_changes_made_through_auth_are_told_to_the_tabs_listing_users() {
    let Some(db) = dbsupport::TestDb::new(dbsupport::Backend::Sqlite).await else {
        return;
    };
    let app = App::new().database(db.conn.clone()).state::<PeopleState>();
    let auth = app.auth().unwrap();
    let server = TestServer::start(app).await.unwrap();
    let mut staff = server.client().await.unwrap();
    staff.call("people_state.load", json!({})).await.unwrap();
    auth.create_user(ferrule::auth::NewUser {
        username: "alice".into(),
        password: "wonderland1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let people = reloaded_people(&mut staff).await;
    assert_eq!(people, json!([["alice", true]]));
    // After the window of the first change: a new notice, not one held back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    auth.set_active("alice", false).await.unwrap();
    assert_eq!(reloaded_people(&mut staff).await, json!([["alice", false]]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A membership shows in the users' list too.
    auth.add_to_group("alice", "editors").await.unwrap();
    reloaded_people(&mut staff).await;
    db.cleanup().await;
}
