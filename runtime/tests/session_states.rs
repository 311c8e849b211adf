//! States shared by the tabs of one session (`#[ferrule::state(scope = "session")]`), as two
//! tabs of one browser and a stranger see them: a change in one tab reaches the other, a new
//! tab starts from the session's value, another session never sees it, it carries into a login
//! and starts afresh after a logout.

mod dbsupport;

use dbsupport::{Backend, TestDb};
use ferrule::auth::NewUser;
use ferrule::testing::{ClientOptions, TestClient, TestServer};
use ferrule::{App, Error, EventContext};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One basket for every tab of the browser.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct BasketState {
    items: Vec<String>,
}

#[ferrule::state(scope = "session")]
impl BasketState {
    async fn add(&mut self, _ctx: EventContext, item: String) {
        self.items.push(item);
    }

    async fn login(
        &mut self,
        ctx: EventContext,
        username: String,
        password: String,
    ) -> Result<(), Error> {
        ctx.login_with_password(&username, &password).await?;
        Ok(())
    }

    async fn logout(&mut self, ctx: EventContext) -> Result<(), Error> {
        ctx.logout().await
    }
}

/// What one tab is looking at: its own.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct DraftState {
    text: String,
}

#[ferrule::state]
impl DraftState {
    async fn write(&mut self, _ctx: EventContext, text: String) {
        self.text = text;
    }
}

async fn server(db: &TestDb) -> TestServer {
    let app = App::new()
        .database(db.conn.clone())
        .state::<BasketState>()
        .state::<DraftState>();
    app.auth()
        .unwrap()
        .create_user(NewUser {
            username: "alice".into(),
            password: "wonderland1".into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    TestServer::start(app).await.unwrap()
}

async fn each_backend(test: impl AsyncFn(&TestDb)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some(db) = TestDb::new(backend).await {
            test(&db).await;
            db.cleanup().await;
        }
    }
}

/// A second tab of `first`'s browser: the same session cookie, a token of its own.
async fn second_tab(server: &TestServer, first: &TestClient) -> TestClient {
    let cookie = first.cookies().expect("the handshake gave a session");
    server
        .client_with(ClientOptions::default().header("cookie", cookie))
        .await
        .unwrap()
}

async fn basket(tab: &mut TestClient) -> Value {
    tab.hydrate().await.unwrap().delta["basket_state"]["items"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tabs_of_one_session_share_it_and_see_each_others_changes() {
    each_backend(async |db| {
        let server = server(db).await;
        let mut one = server.client().await.unwrap();
        let mut two = second_tab(&server, &one).await;
        assert_ne!(one.token(), two.token(), "two tabs");

        let answer = one
            .call("basket_state.add", json!({"item": "tea"}))
            .await
            .unwrap();
        assert_eq!(answer.delta["basket_state"]["items"], json!(["tea"]));
        let pushed = two.next_update().await.unwrap();
        assert_eq!(pushed.id, None, "a push, not an answer");
        assert_eq!(pushed.delta["basket_state"]["items"], json!(["tea"]));

        two.call("basket_state.add", json!({"item": "milk"}))
            .await
            .unwrap();
        // The first tab's own answer came before; now the push of the second tab's change.
        let pushed = one.next_update().await.unwrap();
        assert_eq!(
            pushed.delta["basket_state"]["items"],
            json!(["tea", "milk"])
        );

        // A third tab starts from the session's basket; each tab keeps its own draft.
        one.call("draft_state.write", json!({"text": "mine"}))
            .await
            .unwrap();
        let mut three = second_tab(&server, &one).await;
        let full = three.hydrate().await.unwrap();
        assert_eq!(full.delta["basket_state"]["items"], json!(["tea", "milk"]));
        assert_eq!(full.delta["draft_state"]["text"], "", "a tab's own state");

        // Another browser (session) has a basket of its own, and gets no push of this one.
        let mut stranger = server.client().await.unwrap();
        assert_eq!(basket(&mut stranger).await, json!([]));
        one.call("basket_state.add", json!({"item": "jam"}))
            .await
            .unwrap();
        stranger.set_timeout(std::time::Duration::from_millis(500));
        assert!(
            stranger.next_update().await.is_err(),
            "no push crosses sessions"
        );
        // Not even with the first tab's token.
        let mut thief = server
            .client_with(ClientOptions::default().token(one.token()))
            .await
            .unwrap();
        assert_eq!(basket(&mut thief).await, json!([]));
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_carries_into_a_login_and_starts_afresh_after_the_logout() {
    each_backend(async |db| {
        let server = server(db).await;
        let mut tab = server.client().await.unwrap();
        tab.call("basket_state.add", json!({"item": "scones"}))
            .await
            .unwrap();
        let login = json!({"username": "alice", "password": "wonderland1"});
        let u = tab.call("basket_state.login", login).await.unwrap();
        assert_eq!(u.delta["auth_state"]["username"], "alice", "{u:?}");
        assert_eq!(tab.follow_session(&u).await.unwrap().status, 200);
        assert_eq!(basket(&mut tab).await, json!(["scones"]), "kept at login");
        let mut other = second_tab(&server, &tab).await;
        assert_eq!(basket(&mut other).await, json!(["scones"]));

        let u = tab.call("basket_state.logout", json!({})).await.unwrap();
        assert_eq!(
            u.delta["basket_state"]["items"],
            json!([]),
            "the logout's answer ships the fresh basket: {u:?}"
        );
        assert_eq!(basket(&mut tab).await, json!([]));
        // What the logged-in session had is gone, not just hidden from this tab.
        let cookie = tab.follow_session(&u).await.unwrap();
        assert_eq!(cookie.status, 200);
        let mut after = second_tab(&server, &tab).await;
        assert_eq!(basket(&mut after).await, json!([]));
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_nodes_a_change_reaches_the_sessions_tab_on_the_other_node() {
    use ferrule::redis_state::RedisStateManager;
    use ferrule::rooms::RedisBroadcast;
    let Some(redis) = dbsupport::redis_url("the session state across nodes test") else {
        return;
    };
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let prefix = format!("session-states-{}", std::process::id());
    let node = async || {
        let app = App::new()
            .database(db.conn.clone())
            .state::<BasketState>()
            .state::<DraftState>()
            .state_manager(RedisStateManager::connect(&redis, &prefix).await.unwrap())
            .broadcast_over_redis(RedisBroadcast::connect(&redis, &prefix).await.unwrap());
        TestServer::start(app).await.unwrap()
    };
    let (a, b) = (node().await, node().await);
    let mut on_a = a.client().await.unwrap();
    let cookie = on_a.cookies().unwrap();
    let mut on_b = b
        .client_with(ClientOptions::default().header("cookie", cookie))
        .await
        .unwrap();
    on_a.call("basket_state.add", json!({"item": "tea"}))
        .await
        .unwrap();
    let pushed = on_b.next_update().await.unwrap();
    assert_eq!(pushed.delta["basket_state"]["items"], json!(["tea"]));
    assert_eq!(
        basket(&mut on_b).await,
        json!(["tea"]),
        "stored where both nodes read"
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    db.cleanup().await;
    ferrule::testing::clear_redis_prefix(&redis, &prefix)
        .await
        .unwrap();
}
