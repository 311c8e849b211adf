//! States in a real Redis server (127.0.0.1:6379 on our machines): they survive a restart, and
//! one tab's events stay ordered across two server processes.

mod dbsupport;

use ferrule::redis_state::RedisStateManager;
use ferrule::testing::{ClientOptions, TestServer};
use ferrule::{App, EventContext, Handlers, Settings, State};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Default, Serialize, Deserialize)]
struct TallyState {
    count: i64,
    #[serde(skip)]
    scratch: u8,
}

impl TallyState {
    async fn bump(&mut self, _: EventContext) {
        // Yield mid-update so a missing lock would lose updates.
        let before = self.count;
        tokio::task::yield_now().await;
        self.count = before + 1;
        self.scratch = 1;
    }
}

impl TallyState {
    async fn slow_bump(&mut self, _: EventContext) {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        self.count += 100;
    }
}

impl TallyState {
    /// Says it holds the tab's lock, then keeps it until the test opens [`GATE`].
    async fn held(&mut self, _: EventContext) {
        ENTERED.add_permits(1);
        GATE.acquire().await.expect("the gate stays open").forget();
        self.count += 1000;
    }
}

/// A permit per `held` handler that has started.
static ENTERED: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);
/// Opened by the test to let a `held` handler finish.
static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

impl ferrule::protocol::StateName for TallyState {}

impl State for TallyState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("bump", Self::bump);
        h.on("slow_bump", Self::slow_bump);
        h.on("held", Self::held);
    }
}

fn prefix(name: &str) -> String {
    format!("test-{}-{name}", std::process::id())
}

async fn server(url: &str, prefix: &str) -> TestServer {
    let manager = RedisStateManager::connect(url, prefix)
        .await
        .expect("redis");
    let app = App::new()
        .settings(Settings::default())
        .state::<TallyState>()
        .state_manager(manager);
    TestServer::start(app).await.unwrap()
}

async fn cleanup(url: &str, prefix: &str) {
    ferrule::testing::clear_redis_prefix(url, prefix)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_survive_a_server_restart() {
    let Some(url) = dbsupport::redis_url("a Redis state test") else {
        return;
    };
    let p = prefix("restart");
    let a = server(&url, &p).await;
    let mut c = a
        .client_with(ClientOptions::default().token("tab-restart-0000000000"))
        .await
        .unwrap();
    for _ in 0..3 {
        c.call("tally_state.bump", json!({})).await.unwrap();
    }
    drop(c);
    a.stop().await.expect("a graceful stop");

    let b = server(&url, &p).await;
    let mut c = b
        .client_with(ClientOptions::default().token("tab-restart-0000000000"))
        .await
        .unwrap();
    let full = c.hydrate().await.unwrap();
    assert_eq!(full.delta["tally_state"]["count"], 3);
    assert!(
        full.delta["tally_state"].get("scratch").is_none(),
        "transient fields are not stored"
    );
    let u = c.call("tally_state.bump", json!({})).await.unwrap();
    assert_eq!(u.delta["tally_state"]["count"], 4);
    cleanup(&url, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tab_on_two_servers_loses_no_update() {
    let Some(url) = dbsupport::redis_url("a Redis state test") else {
        return;
    };
    let p = prefix("two-nodes");
    let (a, b) = (server(&url, &p).await, server(&url, &p).await);
    let opts = ClientOptions::default().token("tab-shared-00000000000");
    let mut ca = a.client_with(opts.clone()).await.unwrap();
    let mut cb = b.client_with(opts).await.unwrap();
    for _ in 0..15 {
        ca.emit("tally_state.bump", json!({})).await.unwrap();
        cb.emit("tally_state.bump", json!({})).await.unwrap();
    }
    for _ in 0..15 {
        ca.next_update().await.unwrap();
        cb.next_update().await.unwrap();
    }
    let full = ca.hydrate().await.unwrap();
    assert_eq!(full.delta["tally_state"]["count"], 30);
    cleanup(&url, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_separate_and_unknown_servers_fail_clearly() {
    let Some(url) = dbsupport::redis_url("a Redis state test") else {
        return;
    };
    let p = prefix("separate");
    let s = server(&url, &p).await;
    let mut one = s
        .client_with(ClientOptions::default().token("tab-one-00000000000000"))
        .await
        .unwrap();
    let mut two = s
        .client_with(ClientOptions::default().token("tab-two-00000000000000"))
        .await
        .unwrap();
    one.call("tally_state.bump", json!({})).await.unwrap();
    let full = two.hydrate().await.unwrap();
    assert_eq!(full.delta["tally_state"]["count"], 0);
    cleanup(&url, &p).await;

    let err = RedisStateManager::connect("redis://127.0.0.1:1", "x")
        .await
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("redis")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_after_the_lock_expired_is_discarded_not_half_stored() {
    let Some(url) = dbsupport::redis_url("a Redis state test") else {
        return;
    };
    let p = prefix("expired-lock");
    let mut manager = RedisStateManager::connect(&url, &p).await.unwrap();
    manager.lock_ttl = std::time::Duration::from_millis(100);
    let app = App::new()
        .settings(Settings::default())
        .state::<TallyState>()
        .state_manager(manager);
    let s = TestServer::start(app).await.unwrap();
    let mut c = s.client().await.unwrap();
    let u = c.call("tally_state.slow_bump", json!({})).await.unwrap();
    assert!(u.delta.is_empty(), "{u:?}");
    assert!(
        u.events_named("_toast").next().is_some(),
        "the user is told"
    );
    let full = c.hydrate().await.unwrap();
    assert_eq!(full.delta["tally_state"]["count"], 0);
    cleanup(&url, &p).await;
}

/// A manager whose `lock` gives up at once when the lock is taken: a probe of who holds it.
async fn probe(url: &str, prefix: &str) -> RedisStateManager {
    let mut m = RedisStateManager::connect(url, prefix).await.unwrap();
    m.lock_wait = std::time::Duration::ZERO;
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lock_expired_does_not_release_the_next_holders_lock() {
    use ferrule::state::StateManager;
    let Some(url) = dbsupport::redis_url("a Redis state test") else {
        return;
    };
    let p = prefix("expired-release");
    let token = "tab-expired-release-0000";
    // Server A's locks expire after 150 ms; its handler holds the tab well past that.
    let mut short = RedisStateManager::connect(&url, &p).await.unwrap();
    short.lock_ttl = std::time::Duration::from_millis(150);
    let app = App::new()
        .settings(Settings::default())
        .state::<TallyState>()
        .state_manager(short);
    let a = TestServer::start(app).await.unwrap();
    let mut c = a
        .client_with(ClientOptions::default().token(token))
        .await
        .unwrap();
    let id = c.emit("tally_state.held", json!({})).await.unwrap();
    ENTERED.acquire().await.unwrap().forget();
    // Another process takes the lock once A's has expired (its lock waits for that).
    let other = RedisStateManager::connect(&url, &p).await.unwrap();
    let theirs = other.lock(token).await.expect("the expired lock is free");
    // A's handler ends: its store finds the lock someone else's and gives up its change.
    GATE.add_permits(1);
    let u = c.final_for(id).await.unwrap();
    assert!(u.delta.is_empty(), "{u:?}");
    assert!(u.events_named("_toast").next().is_some(), "{u:?}");
    // The other holder still holds its lock: nobody else gets in while it does.
    let probe = probe(&url, &p).await;
    assert!(
        probe.lock(token).await.is_err(),
        "A's late release deleted a lock it no longer held"
    );
    theirs
        .release()
        .await
        .expect("the lock's holder stores and releases it");
    probe
        .lock(token)
        .await
        .expect("free once its holder released it")
        .release()
        .await
        .unwrap();
    cleanup(&url, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_lock_that_expired_does_not_free_the_next_holders_lock() {
    use ferrule::state::StateManager;
    let Some(url) = dbsupport::redis_url("a Redis state test") else {
        return;
    };
    let p = prefix("expired-drop");
    let token = "tab-expired-drop-000000";
    let mut short = RedisStateManager::connect(&url, &p).await.unwrap();
    short.lock_ttl = std::time::Duration::from_millis(150);
    let other = RedisStateManager::connect(&url, &p).await.unwrap();
    let probe = probe(&url, &p).await;
    let mine = short.lock(token).await.unwrap();
    let theirs = other.lock(token).await.expect("the expired lock is free");
    // Given up without storing (a cancelled event): the unlock runs on a task of its own.
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    drop(mine);
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while metrics.num_alive_tasks() > before {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the unlock task ends");
    assert!(
        probe.lock(token).await.is_err(),
        "a dropped lock deleted one it no longer held"
    );
    theirs.release().await.expect("its holder still holds it");
    cleanup(&url, &p).await;
}
