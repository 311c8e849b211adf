//! The chat through real servers and Socket.IO clients: rooms, presence, history, the sweeper,
//! the bot, and (with Redis) two server processes that are one chat.

use std::time::Duration;

use chat::{ChatOptions, Join, Leave, Say};
use ferrule::StateUpdate;
use ferrule::redis_state::RedisStateManager;
use ferrule::rooms::RedisBroadcast;
use ferrule::testing::{TestClient, TestDatabase, TestServer};
use serde_json::{Value, json};

/// Options with no bot and a sweeper that never drops anyone during a test.
fn quiet() -> ChatOptions {
    ChatOptions {
        presence_ttl: Duration::from_secs(600),
        sweep_every: Duration::from_secs(600),
        bot_every: None,
    }
}

async fn database() -> TestDatabase {
    let db = TestDatabase::create("sqlite://chat.sqlite3").await.unwrap();
    chat::app(db.connection(), quiet())
        .settings(ferrule::Settings::default())
        .migrate()
        .await
        .unwrap();
    db
}

async fn start(db: &TestDatabase, options: ChatOptions) -> TestServer {
    let app = chat::app(db.connection(), options).settings(ferrule::Settings::default());
    TestServer::start(app).await.unwrap()
}

async fn join(client: &mut TestClient, room: &str, name: &str) -> StateUpdate {
    let update = client
        .send(Join {
            room: room.into(),
            name: name.into(),
        })
        .await
        .unwrap();
    assert!(
        update.events.iter().all(|e| e.name != "_toast"),
        "{update:?}"
    );
    update
}

/// The next pushed client event named `name`, skipping others; fails after 5 s.
async fn next_event(client: &mut TestClient, name: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let update = tokio::time::timeout(left, client.next_update())
            .await
            .unwrap_or_else(|_| panic!("no {name} within 5 s"))
            .unwrap();
        if let Some(e) = update.events.iter().find(|e| e.name == name) {
            return e.payload.clone();
        }
    }
}

/// Waits (up to 5 s) until `client` is told its room holds exactly `members` (earlier presence
/// pushes, such as the one of its own arrival, are skipped).
async fn presence_becomes(client: &mut TestClient, members: &[&str]) {
    let want = json!(members);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let update = tokio::time::timeout(left, client.next_update())
            .await
            .unwrap_or_else(|_| panic!("never told the room holds {want}"))
            .unwrap();
        if update
            .events
            .iter()
            .any(|e| e.name == chat::PRESENCE && e.payload["members"] == want)
        {
            return;
        }
    }
}

/// Whether a `name` event arrives within `wait`.
async fn hears(client: &mut TestClient, name: &str, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, client.next_update()).await {
            Err(_) => return false,
            Ok(update) => {
                if update.unwrap().events.iter().any(|e| e.name == name) {
                    return true;
                }
            }
        }
    }
}

#[tokio::test]
async fn a_room_hears_its_messages_and_sees_who_is_there() {
    let db = database().await;
    let server = start(&db, quiet()).await;
    let mut ann = server.client().await.unwrap();
    let mut ben = server.client().await.unwrap();
    let mut cid = server.client().await.unwrap();
    let joined = join(&mut ann, "lobby", "ann").await;
    assert_eq!(joined.delta["chat_state"]["members"], json!(["ann"]));
    join(&mut cid, "elsewhere", "cid").await;
    join(&mut ben, "lobby", "ben").await;
    presence_becomes(&mut ann, &["ann", "ben"]).await;

    ben.send(Say {
        text: "hello".into(),
    })
    .await
    .unwrap();
    let heard = next_event(&mut ann, chat::MESSAGE).await;
    assert_eq!(heard, json!({"author": "ben", "text": "hello"}));
    assert_eq!(next_event(&mut ben, chat::MESSAGE).await["text"], "hello");
    assert!(
        !hears(&mut cid, chat::MESSAGE, Duration::from_millis(300)).await,
        "another room hears nothing"
    );

    ben.send(Leave).await.unwrap();
    presence_becomes(&mut ann, &["ann"]).await;
}

#[tokio::test]
async fn bad_input_is_refused_and_nobody_hears_it() {
    let db = database().await;
    let server = start(&db, quiet()).await;
    let mut ann = server.client().await.unwrap();
    let mut ben = server.client().await.unwrap();
    let early = ann.send(Say { text: "hi".into() }).await.unwrap();
    assert_eq!(early.events[0].message(), Some("Join a room first."));
    for (room, name, why) in [
        ("", "ann", "A room has 1 to 32"),
        ("no spaces", "ann", "A room has 1 to 32"),
        ("lobby", "   ", "A name has 1 to 32"),
    ] {
        let refused = ann
            .send(Join {
                room: room.into(),
                name: name.into(),
            })
            .await
            .unwrap();
        assert!(
            refused.events[0].message().unwrap().starts_with(why),
            "{refused:?}"
        );
        assert!(refused.delta.is_empty());
    }
    join(&mut ann, "lobby", "ann").await;
    join(&mut ben, "lobby", "ben").await;
    let blank = ann.send(Say { text: "  ".into() }).await.unwrap();
    assert!(
        blank.events[0]
            .message()
            .unwrap()
            .starts_with("A message has")
    );
    let long = ann
        .send(Say {
            text: "x".repeat(501),
        })
        .await
        .unwrap();
    assert!(
        long.events[0]
            .message()
            .unwrap()
            .starts_with("A message has")
    );
    assert!(
        !hears(&mut ben, chat::MESSAGE, Duration::from_millis(300)).await,
        "refused messages are never broadcast"
    );
}

#[tokio::test]
async fn a_tab_that_joins_gets_the_rooms_history() {
    let db = database().await;
    let server = start(&db, quiet()).await;
    let mut ann = server.client().await.unwrap();
    join(&mut ann, "lobby", "ann").await;
    for text in ["one", "two", "three"] {
        ann.send(Say { text: text.into() }).await.unwrap();
    }
    let mut late = server.client().await.unwrap();
    let joined = join(&mut late, "lobby", "late").await;
    let history = &joined.delta["chat_state"]["history"];
    let texts: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["one", "two", "three"], "oldest first");
    assert_eq!(history[0]["author"], "ann");
}

#[tokio::test]
async fn the_sweeper_drops_quiet_tabs_and_tells_the_room() {
    let db = database().await;
    let server = start(
        &db,
        ChatOptions {
            presence_ttl: Duration::from_millis(400),
            sweep_every: Duration::from_millis(50),
            bot_every: None,
        },
    )
    .await;
    let mut ann = server.client().await.unwrap();
    let mut ben = server.client().await.unwrap();
    join(&mut ann, "lobby", "ann").await;
    join(&mut ben, "lobby", "ben").await;
    // Both are in the room first. This also reads past ann's own arrival (the room holding
    // "ann" alone), which would otherwise pass for the sweep.
    presence_becomes(&mut ann, &["ann", "ben"]).await;
    // ann keeps saying she is here; ben goes quiet: only the sweeper can drop him.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        ann.emit("chat_state.here", json!({})).await.unwrap();
        let update = tokio::time::timeout(Duration::from_millis(100), ann.next_update()).await;
        if let Ok(Ok(update)) = update
            && let Some(p) = update.events.iter().find(|e| e.name == chat::PRESENCE)
            && p.payload["members"] == json!(["ann"])
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ben was never dropped"
        );
    }
}

#[tokio::test]
async fn the_bot_posts_in_the_lobby_from_its_task() {
    let db = database().await;
    let server = start(
        &db,
        ChatOptions {
            bot_every: Some(Duration::from_millis(100)),
            ..quiet()
        },
    )
    .await;
    let mut ann = server.client().await.unwrap();
    join(&mut ann, "lobby", "ann").await;
    let posted = next_event(&mut ann, chat::MESSAGE).await;
    assert_eq!(posted["author"], "bot");
    assert!(posted["text"].as_str().unwrap().starts_with("Reminder #"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn two_processes_on_one_redis_are_one_chat() {
    let Some(redis) =
        ferrule::testing::service_url("FERRULE_TEST_REDIS", "two chat processes over Redis")
    else {
        return;
    };
    let db = database().await;
    let prefix = format!("chat-test-{}", std::process::id());
    let node = |db: &TestDatabase| {
        let (conn, redis, prefix) = (db.connection(), redis.clone(), prefix.clone());
        async move {
            let states = RedisStateManager::connect(&redis, &prefix).await.unwrap();
            let broadcast = RedisBroadcast::connect(&redis, &prefix).await.unwrap();
            let app = chat::app(conn, quiet())
                .settings(ferrule::Settings::default())
                .state_manager(states)
                .broadcast_over_redis(broadcast);
            TestServer::start(app).await.unwrap()
        }
    };
    let (a, b) = (node(&db).await, node(&db).await);
    let mut ann = a.client().await.unwrap();
    let mut ben = b.client().await.unwrap();
    join(&mut ann, "lobby", "ann").await;
    join(&mut ben, "lobby", "ben").await;
    presence_becomes(&mut ann, &["ann", "ben"]).await;
    ben.send(Say {
        text: "from node b".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        next_event(&mut ann, chat::MESSAGE).await["text"],
        "from node b"
    );

    // What the two nodes kept in Redis goes with the test.
    ferrule::testing::clear_redis_prefix(&redis, &prefix)
        .await
        .unwrap();
}
