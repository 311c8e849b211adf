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
    let (status, headers, _) = http_get(&server, "/").await;
    assert_eq!(status, 200);
    assert!(headers.contains("server-timing: app;dur="), "{headers}");
}

/// A tiny HTTP/1.1 GET over a TcpStream, so the example needs no HTTP client crate.
async fn http_get(server: &TestServer, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}
