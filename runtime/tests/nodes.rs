//! Two server processes' worth of Ferrule (two apps on two ports) sharing one PostgreSQL
//! database and one Redis: a tab that moves from node A to node B keeps its state and its login.

mod dbsupport;

use dbsupport::{Backend, TestDb};
use ferrule::auth::NewUser;
use ferrule::redis_state::RedisStateManager;
use ferrule::testing::{ClientOptions, TestServer};
use ferrule::{App, Error, EventContext, Handlers, Settings, State};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Default, Serialize, Deserialize)]
struct CartState {
    items: Vec<String>,
    owner: Option<String>,
}

#[derive(Deserialize)]
struct Add {
    item: String,
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

impl CartState {
    async fn add(&mut self, ctx: EventContext, a: Add) {
        self.owner = ctx.user().username().map(str::to_owned);
        self.items.push(a.item);
    }

    async fn login(&mut self, ctx: EventContext, c: Credentials) -> Result<(), Error> {
        ctx.login_with_password(&c.username, &c.password).await?;
        Ok(())
    }
}

impl ferrule::protocol::StateName for CartState {}

impl State for CartState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("add", Self::add).login_required();
        h.on("login", Self::login);
    }
}

async fn node(db: &TestDb, redis: &str, prefix: &str) -> TestServer {
    let states = RedisStateManager::connect(redis, prefix).await.unwrap();
    let app = App::new()
        .settings(Settings::default())
        .database(db.conn.clone())
        .state::<CartState>()
        .state_manager(states);
    TestServer::start(app).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_moved_to_another_node_keeps_state_and_login() {
    let Some((a, b, db, redis, prefix)) = two_nodes("nodes").await else {
        return;
    };

    // Log in on node A over HTTP.
    let session = a.login("nina", "two-nodes-pw").await.unwrap();

    let tab = ClientOptions::default()
        .token(ferrule::testing::fresh_token())
        .header("cookie", session);
    let mut on_a = a.client_with(tab.clone()).await.unwrap();
    on_a.call("cart_state.add", json!({"item": "tea"}))
        .await
        .unwrap();
    drop(on_a);
    a.stop().await.unwrap();

    // The tab reconnects to node B.
    let mut on_b = b.client_with(tab).await.unwrap();
    let full = on_b.hydrate().await.unwrap();
    assert_eq!(
        full.delta["cart_state"]["items"],
        json!(["tea"]),
        "state came along"
    );
    assert_eq!(
        full.delta["auth_state"]["username"], "nina",
        "login came along"
    );
    let u = on_b
        .call("cart_state.add", json!({"item": "scones"}))
        .await
        .unwrap();
    assert_eq!(u.delta["cart_state"]["items"], json!(["tea", "scones"]));
    assert_eq!(full.delta["cart_state"]["owner"], "nina");
    b.stop().await.unwrap();
    db.cleanup().await;
    ferrule::testing::clear_redis_prefix(&redis, &prefix)
        .await
        .unwrap();
}

/// Two nodes on one PostgreSQL database and one Redis, with user `nina`; `None` when either
/// server is absent outside CI.
async fn two_nodes(name: &str) -> Option<(TestServer, TestServer, TestDb, String, String)> {
    let redis = dbsupport::redis_url(name)?;
    let db = TestDb::new(Backend::Postgres).await?;
    let prefix = format!("test-{}-{name}", std::process::id());
    let a = node(&db, &redis, &prefix).await;
    let b = node(&db, &redis, &prefix).await;
    ferrule::auth::Auth::new(db.conn.clone())
        .create_user(NewUser {
            username: "nina".into(),
            password: "two-nodes-pw".into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    Some((a, b, db, redis, prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_login_on_one_node_is_redeemed_on_another() {
    let Some((a, b, db, redis, prefix)) = two_nodes("code-exchange").await else {
        return;
    };
    let mut tab = a.client().await.unwrap();
    let u = tab
        .call(
            "cart_state.login",
            json!({"username": "nina", "password": "two-nodes-pw"}),
        )
        .await
        .unwrap();
    assert_eq!(u.delta["auth_state"]["username"], "nina", "{u:?}");
    // The browser's exchange reaches node B (no sticky sessions): the code is found there, once.
    let resp = tab.follow_session_at(b.addr(), &u).await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let again = tab.follow_session_at(a.addr(), &u).await.unwrap();
    assert_eq!(again.status, 400, "a code is good once, on any node");
    // The cookie it gave is nina's, on either node.
    let mut on_b = b
        .client_with(ClientOptions::default().tab_of(&tab))
        .await
        .unwrap();
    assert_eq!(
        on_b.hydrate().await.unwrap().delta["auth_state"]["username"],
        "nina"
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    db.cleanup().await;
    ferrule::testing::clear_redis_prefix(&redis, &prefix)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_count_across_nodes() {
    let Some((a, b, db, redis, prefix)) = two_nodes("throttle").await else {
        return;
    };
    let failed = |server: &TestServer| {
        let addr = server.addr();
        async move {
            match ferrule::testing::login_at(addr, "nina", "not-her-password").await {
                Err(ferrule::testing::TestError::Protocol(why)) => why,
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    };
    for node in [&a, &b, &a, &b, &a] {
        assert!(failed(node).await.contains("401"));
    }
    // Five failures from this address, spread over two nodes: both refuse now, even the
    // right password.
    for node in [&a, &b] {
        let refused = ferrule::testing::login_at(node.addr(), "nina", "two-nodes-pw").await;
        assert!(
            matches!(&refused, Err(ferrule::testing::TestError::Protocol(why)) if why.contains("429")),
            "{refused:?}"
        );
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    db.cleanup().await;
    ferrule::testing::clear_redis_prefix(&redis, &prefix)
        .await
        .unwrap();
}
