//! Outages are outages, not logouts: with a fault-injecting proxy between the app and the real
//! PostgreSQL or Redis, a cut link gives users a "retry" toast and 503 pages, changes nothing,
//! shows in `/_health`, and heals by itself when the link is back.

mod dbsupport;

use std::time::{Duration, Instant};

use dbsupport::{Backend, TestDb};
use ferrule::auth::NewUser;
use ferrule::db::sea_orm::{ConnectOptions, Database};
use ferrule::protocol::StateUpdate;
use ferrule::redis_state::RedisStateManager;
use ferrule::testing::{ClientOptions, FaultProxy, TestClient, TestServer};
use ferrule::{App, EventContext, Handlers, Settings, State, UNAVAILABLE_MESSAGE};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Default, Serialize, Deserialize)]
struct TallyState {
    count: i64,
}

impl TallyState {
    async fn bump(&mut self, _: EventContext) {
        self.count += 1;
    }
}

impl ferrule::protocol::StateName for TallyState {}

impl State for TallyState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("bump", Self::bump);
    }
}

/// The update tells the user the service is down and changes nothing.
fn assert_unavailable(u: &StateUpdate) {
    assert_eq!(
        toast_message(u).as_deref(),
        Some(UNAVAILABLE_MESSAGE),
        "{u:?}"
    );
    assert!(u.delta.is_empty(), "nothing changes: {u:?}");
}

fn toast_message(u: &StateUpdate) -> Option<String> {
    u.events_named("_toast")
        .next()
        .and_then(|t| t.message().map(str::to_owned))
}

/// Calls `name` until it is answered without a toast (the service is back), up to 20 s.
async fn call_until_healed(c: &mut TestClient, name: &str) -> StateUpdate {
    let started = Instant::now();
    loop {
        let u = c.call(name, json!({})).await.expect("answered");
        if toast_message(&u).is_none() {
            return u;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still failing 20 s after the link came back: {u:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn health(server: &TestServer) -> (u16, serde_json::Value) {
    let r = server.get("/_health").await.unwrap();
    (r.status, r.json().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_a_retry_toast_and_a_503_never_a_logout() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let upstream = "127.0.0.1:5432".parse().unwrap();
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let proxied = db
        .url
        .replacen("127.0.0.1:5432", &proxy.addr().to_string(), 1);
    assert_ne!(
        proxied, db.url,
        "the test database must be on 127.0.0.1:5432"
    );
    let mut opts = ConnectOptions::new(proxied);
    opts.sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2));
    let conn = Database::connect(opts).await.unwrap();
    // Every event reads its session and user.
    let settings = Settings {
        auth_cache_ms: 0,
        ..Settings::default()
    };
    let app = App::new()
        .settings(settings)
        .database(conn)
        .state::<TallyState>();
    let server = TestServer::start(app).await.unwrap();
    ferrule::auth::Auth::new(db.conn.clone())
        .create_user(NewUser {
            username: "olga".into(),
            password: "outage-proof-pw".into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let cookie = server.login("olga", "outage-proof-pw").await.unwrap();
    let mut c = server
        .client_with(ClientOptions::default().header("cookie", cookie.clone()))
        .await
        .unwrap();
    c.set_timeout(Duration::from_secs(30));
    let u = c.call("auth_state.refresh", json!({})).await.unwrap();
    assert_eq!(u.delta["auth_state"]["username"], "olga");
    assert_eq!(health(&server).await.0, 200);

    proxy.cut();
    let u = c.call("tally_state.bump", json!({})).await.unwrap();
    assert_unavailable(&u);
    assert!(
        u.events_named("_redirect").next().is_none(),
        "an outage does not send the user to the login page"
    );
    let page = server
        .http("GET", "/", &[("cookie", cookie.as_str())], b"")
        .await
        .unwrap();
    assert_eq!(page.status, 503, "pages answer 503: {}", page.text());
    let (code, body) = health(&server).await;
    assert_eq!(code, 503);
    assert_eq!(body["database"], "down");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(
        server.get("/ping").await.unwrap().status,
        200,
        "still alive"
    );

    proxy.restore();
    let u = call_until_healed(&mut c, "tally_state.bump").await;
    assert_eq!(
        u.delta["tally_state"]["count"], 1,
        "the refused bump changed nothing"
    );
    let u = c.call("auth_state.refresh", json!({})).await.unwrap();
    assert!(toast_message(&u).is_none(), "{u:?}");
    let full = c.hydrate().await.unwrap();
    assert_eq!(
        full.delta["auth_state"]["username"], "olga",
        "still logged in"
    );
    let (code, body) = health(&server).await;
    assert_eq!((code, &body["database"]), (200, &json!("ok")));
    drop(server);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_a_retry_toast_a_slow_link_is_not_and_both_heal() {
    let Some(url) = dbsupport::redis_url("the Redis outage test") else {
        return;
    };
    let upstream = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .expect("FERRULE_TEST_REDIS is redis://IP:PORT");
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let prefix = format!("test-{}-outage", std::process::id());
    let manager = RedisStateManager::connect(&format!("redis://{}", proxy.addr()), &prefix)
        .await
        .unwrap();
    let app = App::new()
        .settings(Settings::default())
        .state::<TallyState>()
        .state_manager(manager);
    let server = TestServer::start(app).await.unwrap();
    let mut c = server.client().await.unwrap();
    c.set_timeout(Duration::from_secs(30));
    let u = c.call("tally_state.bump", json!({})).await.unwrap();
    assert_eq!(u.delta["tally_state"]["count"], 1);
    assert_eq!(health(&server).await.1["redis"], "ok");

    proxy.slow(Duration::from_millis(200));
    let u = c.call("tally_state.bump", json!({})).await.unwrap();
    assert_eq!(
        u.delta["tally_state"]["count"], 2,
        "slow is not down: {u:?}"
    );

    proxy.cut();
    let u = c.call("tally_state.bump", json!({})).await.unwrap();
    assert_unavailable(&u);
    let (code, body) = health(&server).await;
    assert_eq!((code, &body["redis"]), (503, &json!("down")));

    proxy.restore();
    let u = call_until_healed(&mut c, "tally_state.bump").await;
    assert_eq!(
        u.delta["tally_state"]["count"], 3,
        "nothing lost, nothing doubled"
    );
    assert_eq!(health(&server).await.0, 200);
    ferrule::testing::clear_redis_prefix(&url, &prefix)
        .await
        .unwrap();
}
