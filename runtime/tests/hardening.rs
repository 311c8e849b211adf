//! Limits and headers, tried as an attacker would: oversized WebSocket messages, many sockets
//! from one address, framing and sniffing, and what production mode keeps to itself.

mod support;

use std::time::Duration;

use ferrule::Settings;
use ferrule::testing::{ClientOptions, TestError};
use serde_json::json;
use support::server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_message_over_max_event_bytes_is_not_run() {
    let settings = Settings {
        max_event_bytes: 64 * 1024,
        ..Settings::default()
    };
    let server = server(settings).await;
    let opts = ClientOptions::default().token("tab-big-message-000000");
    let mut c = server.client_with(opts.clone()).await.unwrap();
    // At the limit's edge: a payload that fits is run.
    let fits = "x".repeat(60 * 1024);
    let u = c
        .call("probe_state.increment", json!({ "pad": fits }))
        .await
        .unwrap();
    assert_eq!(u.delta["probe_state"]["count"], 1);
    // Past it: the message is refused by the transport and never reaches a handler.
    let past = "x".repeat(70 * 1024);
    c.set_timeout(Duration::from_secs(5));
    let refused = match c
        .emit("probe_state.increment", json!({ "pad": past }))
        .await
    {
        Err(_) => true,
        Ok(_) => c.next_update().await.is_err(),
    };
    assert!(refused, "an oversized message got an answer");
    let mut again = server.client_with(opts).await.unwrap();
    let full = again.hydrate().await.unwrap();
    assert_eq!(
        full.delta["probe_state"]["count"], 1,
        "the big event never ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_may_open_as_many_sockets_as_the_setting_and_not_one_more() {
    let settings = Settings {
        max_sockets_per_client: 3,
        ..Settings::default()
    };
    let server = server(settings).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(server.client().await.expect("within the limit"));
    }
    match server.client().await {
        Err(TestError::Refused(why)) => {
            assert!(why.to_string().contains("too many connections"), "{why}")
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("a fourth socket from one address was accepted"),
    }
    // The others are unaffected, and a closed socket frees its place.
    assert!(open[0].is_alive().await);
    open.pop().unwrap().close().await.unwrap();
    assert!(
        support::client_once_a_place_is_free(&server)
            .await
            .is_some(),
        "the place of a closed socket is given back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_the_security_headers_and_hsts_only_over_https() {
    let plain = server(Settings::default()).await;
    let page = plain.get("/nope").await.unwrap();
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        page.header("content-security-policy"),
        Some("frame-ancestors 'none'")
    );
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
    assert_eq!(page.header("strict-transport-security"), None);
    let health = plain.get("/_health").await.unwrap();
    assert_eq!(health.header("x-frame-options"), Some("DENY"));

    let secure = server(Settings {
        secure_cookies: true,
        header_frame_deny: false,
        ..Settings::default()
    })
    .await;
    let page = secure.get("/nope").await.unwrap();
    assert_eq!(
        page.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    assert_eq!(
        page.header("x-frame-options"),
        None,
        "each header is a setting"
    );
}

async fn html_server(settings: Settings) -> ferrule::testing::TestServer {
    use axum::response::{Html, IntoResponse};
    let app = support::app(settings)
        .0
        .route(
            "/page",
            axum::routing::get(|| async { Html("<p>a page</p>") }),
        )
        .route(
            "/own-policy",
            axum::routing::get(|| async {
                (
                    [("content-security-policy", "default-src 'none'")],
                    Html("<p>strict</p>"),
                )
                    .into_response()
            }),
        );
    ferrule::testing::TestServer::start(app).await.unwrap()
}

fn nonce_in(policy: &str) -> &str {
    let start = policy.find("'nonce-").expect("a nonce in the policy") + 7;
    let len = policy[start..].find('\'').unwrap();
    &policy[start..start + len]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_get_a_content_security_policy_with_a_fresh_nonce() {
    let server = html_server(Settings::default()).await;
    let first = server.get("/page").await.unwrap();
    let policy = first.header("content-security-policy").unwrap().to_owned();
    assert!(
        policy.contains("script-src 'nonce-") && policy.contains("'strict-dynamic'"),
        "{policy}"
    );
    assert!(policy.contains("object-src 'none'") && policy.contains("base-uri 'none'"));
    assert!(policy.ends_with("frame-ancestors 'none'"), "{policy}");
    let nonce = nonce_in(&policy);
    assert!(nonce.len() >= 22, "at least 128 bits: {nonce}");
    let second = server.get("/page").await.unwrap();
    let again = second.header("content-security-policy").unwrap();
    assert_ne!(nonce_in(again), nonce, "a nonce is never used twice");
    // What is no page keeps the framing rule only; a route's own policy is left alone.
    let health = server.get("/_health").await.unwrap();
    assert_eq!(
        health.header("content-security-policy"),
        Some("frame-ancestors 'none'")
    );
    let own = server.get("/own-policy").await.unwrap();
    assert_eq!(
        own.header("content-security-policy"),
        Some("default-src 'none'")
    );

    let off = html_server(Settings {
        content_security_policy: String::new(),
        header_frame_deny: false,
        ..Settings::default()
    })
    .await;
    let page = off.get("/page").await.unwrap();
    assert_eq!(
        page.header("content-security-policy"),
        None,
        "the setting turns it off"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_mode_keeps_the_handler_map_to_itself() {
    let dev = server(Settings {
        production: Some(false),
        ..Settings::default()
    })
    .await;
    assert_eq!(dev.get("/_all_routes").await.unwrap().status, 200);
    let mut c = dev.client().await.unwrap();
    let u = c.call("probe_state.nope", json!({})).await.unwrap();
    assert!(u.events[0].message().unwrap().contains("it has:"), "{u:?}");

    let prod = server(Settings {
        production: Some(true),
        ..Settings::default()
    })
    .await;
    assert_eq!(prod.get("/_all_routes").await.unwrap().status, 404);
    let mut c = prod.client().await.unwrap();
    let u = c.call("probe_state.nope", json!({})).await.unwrap();
    let message = u.events[0].message().unwrap();
    assert!(message.contains("no handler `nope`"), "{message}");
    assert!(!message.contains("increment"), "handlers listed: {message}");
}

/// Every run of the guarded handler, wherever it came from: a side effect outside the state,
/// like a row written to a database.
static VAULT_WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct VaultState {
    writes: u64,
}

impl VaultState {
    async fn write(&mut self, _: ferrule::EventContext) {
        VAULT_WRITES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.writes += 1;
    }
}

impl ferrule::protocol::StateName for VaultState {}

impl ferrule::State for VaultState {
    fn handlers(h: &mut ferrule::Handlers<Self>) {
        h.on("write", Self::write).login_required();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_stops_an_anonymous_write_before_the_handler_runs() {
    let app = ferrule::App::new()
        .settings(Settings::default())
        .state::<VaultState>();
    let server = ferrule::testing::TestServer::start(app).await.unwrap();
    let mut c = server.client().await.unwrap();
    for _ in 0..3 {
        let u = c.call("vault_state.write", json!({})).await.unwrap();
        assert!(u.events_named("_redirect").next().is_some(), "{u:?}");
        assert!(u.delta.is_empty());
    }
    assert_eq!(
        VAULT_WRITES.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the handler never ran"
    );
}

/// The status line's code of a GET sent with `host` as its `Host` header.
async fn status_with_host(addr: std::net::SocketAddr, path: &str, host: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_hosts_are_answered_pages_and_sockets_alike() {
    let server = server(Settings {
        allowed_hosts: vec!["shop.example".into()],
        ..Settings::default()
    })
    .await;
    let addr = server.addr();
    let socket = "/_event/?EIO=4&transport=polling";
    for host in [
        addr.to_string(),
        format!("localhost:{}", addr.port()),
        "shop.example".into(),
    ] {
        assert_eq!(
            status_with_host(addr, "/_health", &host).await,
            200,
            "{host}"
        );
        assert_eq!(status_with_host(addr, socket, &host).await, 200, "{host}");
    }
    // A DNS-rebinding page reaches us under its own name.
    for host in ["rebind.evil.example", "shop.example.evil.io"] {
        assert_eq!(
            status_with_host(addr, "/_health", host).await,
            400,
            "{host}"
        );
        assert_eq!(status_with_host(addr, socket, host).await, 400, "{host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_on_another_port_of_the_same_host_is_another_site() {
    let server = server(Settings::default()).await;
    let port = server.addr().port();
    let other = if port == 1 { 2 } else { port - 1 };
    let refused = server
        .client_with(ClientOptions::default().header("origin", format!("http://127.0.0.1:{other}")))
        .await;
    assert!(
        matches!(refused, Err(TestError::Refused(_))),
        "a page on port {other} opened the socket of port {port}"
    );
    let same = server
        .client_with(ClientOptions::default().header("origin", format!("http://127.0.0.1:{port}")))
        .await;
    assert!(same.is_ok(), "the page's own origin is refused");
}

/// Tab `token` at `server`: increments its counter when `bump`, and says what the count is.
async fn tab_count(server: &ferrule::testing::TestServer, token: &str, bump: bool) -> i64 {
    let mut c = server
        .client_with(ClientOptions::default().token(token))
        .await
        .unwrap();
    let u = if bump {
        c.call("probe_state.increment", json!({})).await.unwrap()
    } else {
        c.hydrate().await.unwrap()
    };
    let count = u.delta["probe_state"]["count"].as_i64().unwrap_or(0);
    c.close().await.unwrap();
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_keeps_states_for_its_cap_of_tabs_and_drops_the_longest_idle() {
    for (cap, kept) in [(4, true), (3, false)] {
        let settings = Settings {
            max_tabs_per_client: cap,
            ..Settings::default()
        };
        let server = server(settings).await;
        let first = format!("tab-cap-{cap}-first-0000000000");
        assert_eq!(tab_count(&server, &first, true).await, 1);
        for n in 0..3 {
            // Later tabs, each closed after use; the first stays the longest idle.
            tab_count(&server, &format!("tab-cap-{cap}-later-{n}-00000000"), true).await;
        }
        // Give the server the moment it takes to see the sockets closed.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let back = tab_count(&server, &first, false).await;
        if kept {
            assert_eq!(
                back, 1,
                "at the cap ({cap} tabs) the first tab keeps its states"
            );
        } else {
            assert_eq!(
                back, 0,
                "one past the cap ({cap}) the longest-idle tab starts afresh"
            );
        }
    }
}

type RawWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text frame, answering the server's pings; `None` once the socket is closed.
async fn next_text(ws: &mut RawWs) -> Option<String> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) if t.as_str() == "2" => {
                // A pong that cannot go means the socket closed: the next read says so.
                let _ = ws.send(Message::text("3")).await;
            }
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// A raw Socket.IO client joined to namespace `/` with a fresh tab token.
async fn raw_socket(addr: std::net::SocketAddr) -> RawWs {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("ws://{addr}/_event/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let open = next_text(&mut ws).await.expect("an OPEN packet");
    assert!(open.starts_with('0'), "{open}");
    let auth = json!({ "token": ferrule::testing::fresh_token(), "epoch": "raw-binary" });
    ws.send(Message::text(format!("40{auth}"))).await.unwrap();
    let connected = next_text(&mut ws).await.expect("a CONNECT answer");
    assert!(connected.starts_with("40"), "{connected}");
    ws
}

/// Sends event 1, `probe_state.increment`, as a binary event whose payload carries one
/// attachment of each size in `sizes`. Sends may fail once the server has closed the socket.
async fn send_with_attachments(ws: &mut RawWs, sizes: &[usize]) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let placeholders: Vec<_> = (0..sizes.len())
        .map(|num| json!({ "_placeholder": true, "num": num }))
        .collect();
    let event = json!(["event", {
        "id": 1,
        "name": "probe_state.increment",
        "payload": { "pad": placeholders },
        "router_data": { "path": "/", "query": "" },
    }]);
    // Sends may fail once the server closes the socket over the limit; what the test asserts
    // is what the reader sees next.
    let _ = ws
        .send(Message::text(format!("45{}-{event}", sizes.len())))
        .await;
    for &n in sizes {
        let _ = ws.send(Message::binary(vec![7u8; n])).await;
    }
}

/// Whether the server answered what was sent (else it closed the socket), within 10 s. Ferrule's
/// events carry no binary data: a binary event the transport accepts is refused as malformed.
async fn answered_or_closed(ws: &mut RawWs) -> bool {
    let read = async {
        while let Some(text) = next_text(ws).await {
            if text.starts_with("42[\"event\"") {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("neither answered nor closed")
}

/// Sends event 2, `probe_state.increment`, as plain JSON, and says whether it was run.
async fn increments(ws: &mut RawWs) -> bool {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let event = json!(["event", {
        "id": 2,
        "name": "probe_state.increment",
        "payload": {},
        "router_data": { "path": "/", "query": "" },
    }]);
    ws.send(Message::text(format!("42{event}"))).await.unwrap();
    while let Some(text) = next_text(ws).await {
        if text.contains("\"id\":2") {
            return text.contains("\"count\":1");
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_attachments_past_the_count_or_max_event_bytes_close_the_socket() {
    let max = 64 * 1024;
    let settings = Settings {
        max_event_bytes: max,
        ..Settings::default()
    };
    let server = server(settings).await;
    let mut bystander = server.client().await.unwrap();
    let half = max / 2;
    let cases: [(&str, Vec<usize>, bool); 4] = [
        ("16 attachments", vec![1; 16], true),
        ("17 attachments", vec![1; 17], false),
        (
            "attachments of max_event_bytes",
            vec![half, max - half],
            true,
        ),
        (
            "attachments one byte past it",
            vec![half, max - half + 1],
            false,
        ),
    ];
    for (what, sizes, accepted) in cases {
        let mut ws = raw_socket(server.addr()).await;
        send_with_attachments(&mut ws, &sizes).await;
        assert_eq!(
            answered_or_closed(&mut ws).await,
            accepted,
            "{what}: {}",
            if accepted { "closed" } else { "answered" }
        );
        if accepted {
            assert!(increments(&mut ws).await, "{what}: the socket goes on");
        }
        assert!(bystander.is_alive().await, "{what}: the others go on");
    }
}
