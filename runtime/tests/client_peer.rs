//! The browser client's protocol core, run natively against a peer nobody here wrote: the
//! official Node `socket.io` server (`e2e/peers/socketio-server.mjs`, packages from npm).
//!
//! Needs node and `e2e/node_modules` (`cargo xtask setup`); without them the tests say so and
//! skip, except under `CI=true`, where that is a failure.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ferrule::client::connection::{Connection, Output};
use ferrule::client::{StateStore, Status};
use ferrule::protocol::{RouterData, StateUpdate};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Peer {
    _child: Child,
    port: u16,
}

async fn peer() -> Option<Peer> {
    let e2e = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../e2e");
    let ready = e2e.join("node_modules/socket.io").is_dir()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok();
    if !ready {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "CI=true but node or e2e/node_modules is missing (cargo xtask setup installs them)"
        );
        eprintln!("!!! SKIP: node or e2e/node_modules missing; run `cargo xtask setup`");
        return None;
    }
    let mut child = Command::new("node")
        .arg("peers/socketio-server.mjs")
        .current_dir(&e2e)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the socket.io server prints its port")
        .unwrap()
        .unwrap();
    let port = line.strip_prefix("PORT ").unwrap().parse().unwrap();
    Some(Peer {
        _child: child,
        port,
    })
}

fn now_ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// Drives a [`Connection`] over a real WebSocket, as the browser runtime does with web_sys.
struct Driver {
    conn: Connection,
    ws: Option<Ws>,
    port: u16,
    start: Instant,
    store: StateStore,
    updates: Vec<StateUpdate>,
    closed: Option<String>,
}

impl Driver {
    fn new(port: u16, token: &str) -> Self {
        Self {
            conn: Connection::new(token),
            ws: None,
            port,
            start: Instant::now(),
            store: StateStore::default(),
            updates: Vec::new(),
            closed: None,
        }
    }

    async fn open(&mut self) {
        let url = format!(
            "ws://127.0.0.1:{}/_event/?EIO=4&transport=websocket",
            self.port
        );
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        self.ws = Some(ws);
        self.conn.transport_opened(now_ms(self.start));
        self.closed = None;
    }

    async fn send(&mut self, frame: String) {
        if let Some(ws) = &mut self.ws {
            ws.send(Message::text(frame)).await.expect("send");
        }
    }

    async fn perform(&mut self, outputs: Vec<Output>) {
        for out in outputs {
            match out {
                Output::Send(f) => self.send(f).await,
                Output::Connected => {}
                Output::Update(u) => {
                    self.store.apply(&u.delta);
                    self.updates.push(u);
                }
                Output::Close(why) => {
                    if let Some(mut ws) = self.ws.take() {
                        let _ = ws.close(None).await;
                    }
                    self.conn.transport_closed(0.5);
                    self.closed = Some(why);
                    return;
                }
            }
        }
    }

    /// Pumps frames for `ms` milliseconds (answering pings on the way).
    async fn pump_for(&mut self, ms: u64) {
        let until = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < until && self.ws.is_some() {
            let ws = self.ws.as_mut().unwrap();
            match tokio::time::timeout_at(until.into(), ws.next()).await {
                Err(_) => break,
                Ok(Some(Ok(Message::Text(t)))) => {
                    let out = self.conn.receive(&t, now_ms(self.start));
                    self.perform(out).await;
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                    self.ws = None;
                    self.conn.transport_closed(0.5);
                    self.closed = Some("transport closed".into());
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Pumps until the final update of `id` arrived.
    async fn until_final(&mut self, id: u64) -> StateUpdate {
        for _ in 0..100 {
            if let Some(u) = self.updates.iter().find(|u| u.id == Some(id) && u.is_final) {
                return u.clone();
            }
            self.pump_for(100).await;
        }
        panic!("no final update for {id}; got {:?}", self.updates);
    }

    async fn emit(&mut self, name: &str) -> u64 {
        let (id, frame) = self.conn.emit(name, json!({"n": 1}), RouterData::default());
        if let Some(f) = frame {
            self.send(f).await;
        }
        id
    }

    fn hits(&self) -> i64 {
        self.store.fields("echo_state").unwrap()["hits"]
            .as_i64()
            .unwrap()
    }
}

#[tokio::test]
async fn connects_resyncs_and_sends_what_was_queued_offline() {
    let Some(peer) = peer().await else { return };
    let mut d = Driver::new(peer.port, "tab-a");
    // Clicked before the socket was up: queued, sent after the resync.
    let queued = d.emit("echo_state.ping").await;
    assert_eq!(d.conn.queued(), 1);
    d.open().await;
    let u = d.until_final(queued).await;
    assert_eq!(d.conn.status(), Status::Connected);
    assert_eq!(u.delta["echo_state"]["last"], "echo_state.ping");
    assert_eq!(u.delta["echo_state"]["payload"], json!({"n": 1}));
    // The resync (id 2 would be the queued one if the resync had not gone first) came first.
    let first = d.updates.first().unwrap();
    assert_eq!(first.delta["echo_state"]["hits"], 0, "{first:?}");
    assert_eq!(d.hits(), 1);
    let id = d.emit("echo_state.toast").await;
    let u = d.until_final(id).await;
    assert_eq!(u.events[0].name, "_toast");
    assert_eq!(d.hits(), 2);
}

#[tokio::test]
async fn answers_the_servers_pings_so_the_connection_stays_up() {
    let Some(peer) = peer().await else { return };
    let mut d = Driver::new(peer.port, "tab-b");
    d.open().await;
    // socket.io pings every 100 ms and drops a client that misses a pong for 300 ms.
    d.pump_for(1500).await;
    assert!(d.closed.is_none(), "closed: {:?}", d.closed);
    let id = d.emit("echo_state.ping").await;
    d.until_final(id).await;
}

#[tokio::test]
async fn after_the_server_drops_it_reconnects_resyncs_and_delivers_the_queue_once() {
    let Some(peer) = peer().await else { return };
    let mut d = Driver::new(peer.port, "tab-c");
    d.open().await;
    let kick = d.emit("echo_state.kick").await;
    d.until_final(kick).await;
    d.pump_for(1000).await;
    assert!(d.closed.is_some(), "the server disconnected us");
    assert!(matches!(
        d.conn.status(),
        Status::Reconnecting { attempt: 1 }
    ));
    let offline = d.emit("echo_state.ping").await;
    d.open().await;
    d.until_final(offline).await;
    d.pump_for(300).await;
    let answers = d.updates.iter().filter(|u| u.id == Some(offline)).count();
    assert_eq!(answers, 1, "sent exactly once");
    assert_eq!(d.hits(), 2, "the server kept counting for this tab token");
}

#[tokio::test]
async fn a_refused_connection_reports_the_servers_reason() {
    let Some(peer) = peer().await else { return };
    let mut d = Driver::new(peer.port, "");
    d.open().await;
    d.pump_for(1000).await;
    assert_eq!(d.closed.as_deref(), Some("token required"));
}
