//! Connections that never finish, tried with raw TCP and raw WebSockets against a real server:
//! transports that never send CONNECT, request heads and bodies sent a byte at a time, unknown
//! event names of any size.

mod support;

use std::time::{Duration, Instant};

use ferrule::Settings;
use ferrule::testing::{TestClient, TestError};
use support::server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens an Engine.IO WebSocket transport and reads its OPEN packet, sending nothing more.
async fn bare_transport(
    addr: std::net::SocketAddr,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    use futures_util::StreamExt;
    let url = format!("ws://{addr}/_event/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let open = ws.next().await.expect("an OPEN packet")?;
    assert!(open.to_text().unwrap_or("").starts_with('0'), "{open:?}");
    Ok(ws)
}

/// Reads until the peer closes; how long that took, or `None` if it stays open past `limit`.
async fn closed_within<S: futures_util::Stream + Unpin>(
    ws: &mut S,
    limit: Duration,
) -> Option<Duration> {
    use futures_util::StreamExt;
    let started = Instant::now();
    let drained = tokio::time::timeout(limit, async { while ws.next().await.is_some() {} }).await;
    drained.ok().map(|()| started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transports_that_never_connect_count_against_the_cap_and_time_out() {
    let settings = Settings {
        max_sockets_per_client: 3,
        connect_timeout_ms: 1_000,
        ..Settings::default()
    };
    let server = server(settings).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(bare_transport(server.addr()).await.expect("within the cap"));
    }
    // The cap is reached by transports that never said CONNECT: the next is refused at once,
    // a socket.io client as well, with the reason.
    match bare_transport(server.addr()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 429),
        other => panic!("a fourth transport was not refused: {other:?}"),
    }
    match server.client().await {
        Err(TestError::Refused(why)) => {
            assert!(why.to_string().contains("too many connections"), "{why}")
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("a socket past the cap was accepted"),
    }
    // Each is closed by the server after the CONNECT timeout, and the places come back.
    for ws in &mut held {
        let took = closed_within(ws, Duration::from_secs(10)).await;
        assert!(took.is_some(), "a transport without CONNECT stayed open");
    }
    assert!(
        support::client_once_a_place_is_free(&server)
            .await
            .is_some(),
        "the places of closed transports are given back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_sent_slowly_is_cut_off() {
    let settings = Settings {
        header_read_timeout_ms: 500,
        ..Settings::default()
    };
    let server = server(settings).await;
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    for byte in b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
        .iter()
        .cycle()
        .take(200)
    {
        if tcp.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_millis(100), tcp.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a head trickling in for {:?} was still being read",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // An idle kept-alive connection is closed after the same time.
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut seen)).await;
    assert!(ended.is_ok(), "an idle keep-alive connection stayed open");
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_is_given_up() {
    let settings = Settings {
        body_timeout_ms: 500,
        ..Settings::default()
    };
    // A route that reads its whole body, as a form handler does.
    let app = ferrule::App::new().settings(settings).route(
        "/echo",
        axum::routing::post(|body: String| async move { body }),
    );
    let server = ferrule::testing::TestServer::start(app).await.unwrap();
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    let head = "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
                Content-Length: 1000\r\n\r\nthe first bytes, then nothing";
    tcp.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut seen)).await;
    assert!(ended.is_ok(), "a stalled body held its connection");
    let answer = String::from_utf8_lossy(&seen);
    assert!(
        answer.starts_with("HTTP/1.1 4") || answer.is_empty(),
        "{answer}"
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_event_name_is_answered_briefly_in_order() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    let name = "n".repeat(200_000);
    c.send_text(&format!("42[\"{name}\",{{}}]")).await.unwrap();
    let u = c.next_update().await.unwrap();
    let text = serde_json::to_string(&u).unwrap();
    assert!(text.contains("unknown socket event"), "{text}");
    assert!(
        text.len() < 1_000,
        "the refusal echoed {} bytes",
        text.len()
    );
    // The socket goes on working.
    let ok = c
        .call("probe_state.increment", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(ok.delta["probe_state"]["count"], 1);
}

/// Refusals that may wait in one socket's queue (`REFUSALS` in `socket/mod.rs`).
const REFUSALS: usize = 4096;

/// A socket whose worker is held by a handler, then sent `n` events of an unknown name, each
/// refused through its queue without being read.
async fn flood_a_held_socket(server: &ferrule::testing::TestServer, n: usize) -> TestClient {
    let mut c = server.client().await.unwrap();
    c.emit("probe_state.hold", serde_json::json!({}))
        .await
        .unwrap();
    support::HELD.acquire().await.unwrap().forget();
    for _ in 0..n {
        c.send_text("42[\"nope\",{}]").await.unwrap();
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_refused_events_is_answered_up_to_the_cap_and_then_disconnected() {
    let server = server(Settings::default()).await;
    let mut bystander = server.client().await.unwrap();
    // At the cap: every refusal waits for the held handler, then each is answered.
    let mut c = flood_a_held_socket(&server, REFUSALS).await;
    support::RELEASE.add_permits(1);
    let mut refusals = 0;
    let mut held_answered = false;
    while refusals < REFUSALS || !held_answered {
        let u = c.next_update().await.expect("answered, not disconnected");
        if u.id.is_none() {
            assert!(
                serde_json::to_string(&u)
                    .unwrap()
                    .contains("unknown socket event")
            );
            refusals += 1;
        } else {
            held_answered = true;
        }
    }
    assert!(c.is_alive().await, "the socket at the cap stays open");
    // One past it: the client is disconnected while the refusals still wait.
    let mut c = flood_a_held_socket(&server, REFUSALS + 1).await;
    c.set_timeout(Duration::from_secs(30));
    match c.next_update().await {
        Ok(u) => panic!("an answer while the queue is held: {u:?}"),
        Err(TestError::Timeout(_)) => panic!("a socket past the refusal cap stayed open"),
        Err(_closed) => {}
    }
    support::RELEASE.add_permits(1);
    assert!(bystander.is_alive().await, "other sockets are unaffected");
}
