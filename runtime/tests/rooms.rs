//! Rooms and broadcasts: a handler joins its tab to a room and speaks to everyone in it; only a
//! successful handler's broadcast goes out; membership survives a reconnect; with Redis, a
//! broadcast on node A reaches a tab on node B, and a tab that moves to B stays in its rooms.

mod dbsupport;

use std::time::Duration;

use ferrule::redis_state::RedisStateManager;
use ferrule::rooms::RedisBroadcast;
use ferrule::testing::{ClientOptions, TestClient, TestServer};
use ferrule::{App, ClientCommand, Error, EventContext, Handlers, Settings, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Clone, Default, Serialize, Deserialize)]
struct ChatState {
    room: Option<String>,
    sent: u32,
}

#[derive(Deserialize)]
struct Join {
    room: String,
}

#[derive(Deserialize)]
struct Say {
    text: String,
}

impl ChatState {
    async fn join(&mut self, ctx: EventContext, j: Join) {
        if let Some(old) = self.room.take() {
            ctx.leave(old);
        }
        ctx.join(j.room.clone());
        self.room = Some(j.room);
    }

    async fn say(&mut self, ctx: EventContext, s: Say) -> Result<(), Error> {
        let room = self
            .room
            .clone()
            .ok_or_else(|| Error::bad_request("Join a room first."))?;
        ctx.broadcast(
            room,
            ClientCommand::new("chat.message", json!({ "text": s.text })),
        );
        if s.text == "fail" {
            // The broadcast above must not go out: the handler failed.
            return Err(Error::bad_request("refused"));
        }
        self.sent += 1;
        Ok(())
    }
}

impl ferrule::protocol::StateName for ChatState {}

impl State for ChatState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("join", Self::join);
        h.on("say", Self::say);
    }
}

fn app() -> App {
    App::new()
        .settings(Settings::default())
        .state::<ChatState>()
}

/// Puts `client`'s tab into `room` through the handler.
async fn join(client: &mut TestClient, room: &str) {
    client
        .call("chat_state.join", json!({ "room": room }))
        .await
        .unwrap();
}

/// Says `text` in `client`'s room through the handler.
async fn say(client: &mut TestClient, text: &str) {
    client
        .call("chat_state.say", json!({ "text": text }))
        .await
        .unwrap();
}

/// The next message pushed to `client` (an update with `id: null` carrying `chat.message`),
/// or `None` when nothing arrives within `wait`.
async fn next_message(client: &mut TestClient, wait: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let update = tokio::time::timeout_at(deadline, client.next_update())
            .await
            .ok()?
            .ok()?;
        if let Some(ev) = update.events_named("chat.message").next() {
            assert_eq!(update.id, None, "broadcasts are pushes");
            return ev.payload["text"].as_str().map(str::to_owned);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_the_tabs_in_the_room_and_no_one_else() {
    let server = TestServer::start(app()).await.unwrap();
    let mut ann = server.client().await.unwrap();
    let mut bob = server.client().await.unwrap();
    let mut eve = server.client().await.unwrap();
    join(&mut ann, "lobby").await;
    join(&mut bob, "lobby").await;
    join(&mut eve, "elsewhere").await;
    say(&mut ann, "hello").await;
    let wait = Duration::from_secs(5);
    assert_eq!(next_message(&mut bob, wait).await.as_deref(), Some("hello"));
    assert_eq!(
        next_message(&mut ann, wait).await.as_deref(),
        Some("hello"),
        "the speaker is in the room too"
    );
    assert_eq!(
        next_message(&mut eve, Duration::from_millis(300)).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_handler_broadcasts_nothing_and_leaving_stops_messages() {
    let server = TestServer::start(app()).await.unwrap();
    let mut ann = server.client().await.unwrap();
    let mut bob = server.client().await.unwrap();
    for c in [&mut ann, &mut bob] {
        join(c, "lobby").await;
    }
    let refused = ann
        .call("chat_state.say", json!({"text": "fail"}))
        .await
        .unwrap();
    assert!(refused.delta.is_empty());
    assert_eq!(
        next_message(&mut bob, Duration::from_millis(300)).await,
        None
    );
    // Bob moves to another room: lobby messages no longer reach him.
    join(&mut bob, "kitchen").await;
    say(&mut ann, "anyone?").await;
    assert_eq!(
        next_message(&mut bob, Duration::from_millis(300)).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnected_tab_is_back_in_its_rooms_after_it_resyncs() {
    let server = TestServer::start(app()).await.unwrap();
    let mut ann = server.client().await.unwrap();
    let mut bob = server.client().await.unwrap();
    for c in [&mut ann, &mut bob] {
        join(c, "lobby").await;
    }
    let same_tab = ClientOptions::default().tab_of(&bob);
    bob.close().await.unwrap();
    let mut bob = server.client_with(same_tab).await.unwrap();
    // What the browser client does first on every (re)connect.
    bob.hydrate().await.unwrap();
    say(&mut ann, "welcome back").await;
    assert_eq!(
        next_message(&mut bob, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("welcome back")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_from_outside_a_handler_reach_the_room() {
    let app = app();
    let rooms = app.rooms();
    assert!(
        rooms.broadcast("lobby", vec![]).await.is_err(),
        "before the server is built, a clear error instead of a silent drop"
    );
    let server = TestServer::start(app).await.unwrap();
    let mut bob = server.client().await.unwrap();
    join(&mut bob, "lobby").await;
    rooms
        .broadcast(
            "lobby",
            vec![ClientCommand::new(
                "chat.message",
                json!({"text": "from a task"}),
            )],
        )
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut bob, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("from a task")
    );
}

async fn node(redis: &str, prefix: &str) -> TestServer {
    let states = RedisStateManager::connect(redis, prefix).await.unwrap();
    let broadcast = RedisBroadcast::connect(redis, prefix).await.unwrap();
    TestServer::start(app().state_manager(states).broadcast_over_redis(broadcast))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_a_broadcast_on_node_a_reaches_a_tab_on_node_b() {
    let Some(redis) = dbsupport::redis_url("the cross-node broadcast test") else {
        return;
    };
    let prefix = format!(
        "rooms-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let a = node(&redis, &prefix).await;
    let b = node(&redis, &prefix).await;
    let mut ann = a.client().await.unwrap();
    let mut bob = b.client().await.unwrap();
    for c in [&mut ann, &mut bob] {
        join(c, "lobby").await;
    }
    say(&mut ann, "across nodes").await;
    let wait = Duration::from_secs(5);
    assert_eq!(
        next_message(&mut bob, wait).await.as_deref(),
        Some("across nodes")
    );
    // Bob's tab moves to node A: after its resync it is still in the lobby.
    let same_tab = ClientOptions::default().tab_of(&bob);
    bob.close().await.unwrap();
    let mut bob = a.client_with(same_tab).await.unwrap();
    let full = bob.hydrate().await.unwrap();
    assert_eq!(full.delta["chat_state"]["room"], Value::from("lobby"));
    let mut cy = b.client().await.unwrap();
    join(&mut cy, "lobby").await;
    say(&mut cy, "from b").await;
    assert_eq!(
        next_message(&mut bob, wait).await.as_deref(),
        Some("from b")
    );
    ferrule::testing::clear_redis_prefix(&redis, &prefix)
        .await
        .unwrap();
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// A tab that logs in and out and joins rooms as its user.
#[derive(Clone, Default, Serialize, Deserialize)]
struct MemberState {
    rooms: u32,
}

impl MemberState {
    async fn login(&mut self, ctx: EventContext, c: Credentials) -> Result<(), Error> {
        ctx.login_with_password(&c.username, &c.password).await?;
        Ok(())
    }

    async fn logout(&mut self, ctx: EventContext) -> Result<(), Error> {
        ctx.logout().await
    }

    async fn join(&mut self, ctx: EventContext, j: Join) {
        ctx.join(j.room);
        self.rooms += 1;
    }
}

impl ferrule::protocol::StateName for MemberState {}

impl State for MemberState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("login", Self::login);
        h.on("logout", Self::logout);
        h.on("join", Self::join);
    }
}

/// A broadcast to `room` from outside a handler; pushed into each socket's buffer before it
/// returns, so an answer asked for afterwards arrives after it.
async fn announce(rooms: &ferrule::rooms::Rooms, room: &str, text: &str) {
    rooms
        .broadcast(
            room,
            vec![ClientCommand::new("chat.message", json!({ "text": text }))],
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_logout_a_socket_no_longer_hears_the_rooms_it_joined_logged_in() {
    for backend in [dbsupport::Backend::Sqlite, dbsupport::Backend::Postgres] {
        let Some(db) = dbsupport::TestDb::new(backend).await else {
            continue;
        };
        let app = App::new().database(db.conn.clone()).state::<MemberState>();
        app.auth()
            .unwrap()
            .create_user(ferrule::auth::NewUser {
                username: "alice".into(),
                password: "wonderland1".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let rooms = app.rooms();
        let server = TestServer::start(app).await.unwrap();
        let mut c = server.client().await.unwrap();
        let u = c
            .call(
                "member_state.login",
                json!({ "username": "alice", "password": "wonderland1" }),
            )
            .await
            .unwrap();
        assert_eq!(u.delta["auth_state"]["username"], "alice", "{u:?}");
        c.call("member_state.join", json!({ "room": "staff" }))
            .await
            .unwrap();
        announce(&rooms, "staff", "while logged in").await;
        assert_eq!(
            next_message(&mut c, Duration::from_secs(5))
                .await
                .as_deref(),
            Some("while logged in")
        );
        let u = c.call("member_state.logout", json!({})).await.unwrap();
        assert!(!u.events_named("_toast").any(|_| true), "{u:?}");
        announce(&rooms, "staff", "after the logout").await;
        // Anything pushed before the answer to this is read by the time it arrives.
        c.hydrate().await.unwrap();
        assert_eq!(
            next_message(&mut c, Duration::ZERO).await,
            None,
            "a logged-out socket still hears a room its user joined"
        );
        server.stop().await.unwrap();
        db.cleanup().await;
    }
}
