//! The counter answers over a real Socket.IO connection exactly as the wire contract says.

use ferrule::testing::TestServer;
use serde_json::json;

async fn server() -> TestServer {
    TestServer::start(counter::app().settings(ferrule::Settings::default()))
        .await
        .expect("counter starts")
}

#[tokio::test]
async fn increment_ships_the_documented_update() {
    let server = server().await;
    let mut client = server.client().await.unwrap();
    let update = client
        .call("counter_state.increment", json!({}))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&update).unwrap(),
        json!({"id": 1, "delta": {"counter_state": {"count": 1}}, "events": [], "final": true})
    );
}

#[tokio::test]
async fn add_takes_a_typed_amount() {
    let server = server().await;
    let mut client = server.client().await.unwrap();
    let update = client
        .call("counter_state.add", json!({"amount": 41}))
        .await
        .unwrap();
    assert_eq!(update.delta["counter_state"]["count"], 41);
    let update = client
        .call("counter_state.increment", json!({}))
        .await
        .unwrap();
    assert_eq!(update.delta["counter_state"]["count"], 42);
}

#[tokio::test]
async fn overflow_is_refused_and_the_count_kept() {
    let server = server().await;
    let mut client = server.client().await.unwrap();
    client
        .call("counter_state.add", json!({"amount": i64::MAX}))
        .await
        .unwrap();
    let update = client
        .call("counter_state.add", json!({"amount": 1}))
        .await
        .unwrap();
    assert!(update.delta.is_empty());
    assert_eq!(
        update.events[0].message(),
        Some("That would overflow the counter.")
    );
    let full = client.hydrate().await.unwrap();
    assert_eq!(full.delta["counter_state"]["count"], i64::MAX);
}

#[tokio::test]
async fn http_pages_go_through_the_timing_middleware() {
    let server = server().await;
    let resp = server.get("/").await.unwrap();
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("server-timing")
            .unwrap()
            .starts_with("app;dur=")
    );
    assert!(resp.text().contains("counter_state.increment"));
}
