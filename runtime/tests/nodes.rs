//! Two server processes' worth of Ferrule (two apps on two ports) sharing one PostgreSQL
//! database and one Redis: a tab that moves from node A to node B keeps its state and its login.

mod dbsupport;

use dbsupport::{Backend, TestDb};
use ferrule::auth::NewUser;
use ferrule::redis_state::RedisStateManager;
use ferrule::testing::{ClientOptions, TestServer};
use ferrule::{App, EventContext, Handlers, Settings, State};
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

impl CartState {
    async fn add(&mut self, ctx: EventContext, a: Add) {
        self.owner = ctx.user().username().map(str::to_owned);
        self.items.push(a.item);
    }
}

impl State for CartState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("add", Self::add).login_required();
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
    let Some(redis) = dbsupport::redis_url("the two-node test") else {
        return;
    };
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let prefix = format!("test-{}-nodes", std::process::id());
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
    dbsupport::redis_cleanup(&redis, &prefix).await;
}
