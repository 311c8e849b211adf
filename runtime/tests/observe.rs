//! What an operator sees of real events: the JSON log with each event's span fields, the
//! request ids of HTTP requests and socket handshakes, and the Prometheus metrics endpoint.
//!
//! A process has one tracing subscriber and one metrics recorder, so these tests have a binary
//! of their own; they share the subscriber and take turns ([`SERIAL`]) so that each one's counts
//! are its own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;

use ferrule::testing::{
    CapturedLogs, ClientOptions, TestDatabase, TestServer, capture_logs, http_request,
};
use ferrule::{App, Error, EventContext, LogFormat, Settings};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Clone, Default, Serialize, Deserialize)]
struct ProbeState {
    count: i64,
}

#[ferrule::state]
impl ProbeState {
    async fn bump(&mut self, _ctx: EventContext) {
        tracing::info!("bumping");
        self.count += 1;
    }

    async fn refuse(&mut self, _ctx: EventContext) -> Result<(), Error> {
        Err(Error::bad_request("not today"))
    }
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The process's log, as JSON lines, with each event's line and the HTTP responses' lines.
fn logs() -> &'static CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| {
        capture_logs(
            LogFormat::Json,
            "info,ferrule::event=debug,tower_http::trace=debug",
        )
        .expect("the first subscriber of this process")
    })
}

/// The lines logged inside `span` whose field `key` is `value`.
fn lines_in(span: &str, key: &str, value: &Value) -> Vec<Value> {
    logs()
        .json_lines()
        .into_iter()
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["name"] == span && s[key] == *value))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_log_names_each_event_its_user_and_its_handshake() {
    let _turn = SERIAL.lock().await;
    let logs = logs();
    let db = TestDatabase::create("sqlite://observe").await.unwrap();
    let server = TestServer::start_on(db, |db| App::new().database(db).state::<ProbeState>())
        .await
        .unwrap();
    let ada = server.create_user("ada", "analytical-1843").await.unwrap();
    let cookie = server.login("ada", "analytical-1843").await.unwrap();
    let mut client = server
        .client_with(
            ClientOptions::default()
                .header("cookie", cookie)
                .header("x-request-id", "made-up-by-the-client"),
        )
        .await
        .unwrap();
    let id = client.emit("probe_state.bump", json!({})).await.unwrap();
    let update = client.final_for(id).await.unwrap();
    assert_eq!(update.delta["probe_state"]["count"], 1);

    // The event's own line: its span says which state, handler, event, tab and user.
    // Written as the answer goes out: under load the client may read the answer first.
    let handled_line = || -> Vec<Value> {
        lines_in("ferrule.event", "event_id", &json!(id))
            .into_iter()
            .filter(|l| l["target"] == "ferrule::event")
            .collect()
    };
    for _ in 0..200 {
        if !handled_line().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let handled = handled_line();
    assert_eq!(handled.len(), 1, "one line per event: {handled:#?}");
    let line = &handled[0];
    assert_eq!(line["fields"]["outcome"], "ok");
    let span = &line["span"];
    assert_eq!(span["name"], "ferrule.event");
    assert_eq!(span["state"], "probe_state");
    assert_eq!(span["handler"], "bump");
    assert_eq!(span["user_id"], ada.id);
    let tab = span["tab"].as_str().unwrap();
    assert!(
        tab.len() == 8 && tab.chars().all(|c| c.is_ascii_hexdigit()),
        "the tab is a short hash: {tab}"
    );
    assert!(
        !logs.text().contains(client.token()),
        "the tab token, which opens its states, is never logged"
    );
    // The handshake's request id, made by the server: a client cannot choose it.
    let handshake = span["handshake_id"].as_str().unwrap();
    assert_eq!(handshake.len(), 36, "a UUID: {handshake}");
    assert_ne!(handshake, "made-up-by-the-client");

    // What the handler logs is inside its phase's span, inside the event's.
    let inside: Vec<Value> = lines_in("ferrule.event", "event_id", &json!(id))
        .into_iter()
        .filter(|l| l["fields"]["message"] == "bumping")
        .collect();
    assert_eq!(inside.len(), 1, "{inside:#?}");
    let names: Vec<&str> = inside[0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    // (The session layer's own span may stand between them.)
    assert_eq!(names.first(), Some(&"ferrule.event"), "{names:?}");
    assert_eq!(names.last(), Some(&"handler"), "{names:?}");

    // An HTTP request's id is answered in its header and names its span in the log.
    let ping = server.get("/ping").await.unwrap();
    let request_id = ping.header("x-request-id").unwrap().to_owned();
    let answered = lines_in("http.request", "request_id", &json!(request_id));
    assert!(
        answered
            .iter()
            .any(|l| l["span"]["path"] == "/ping" && l["span"]["method"] == "GET"),
        "{answered:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_kept_only_from_a_trusted_proxy() {
    let _turn = SERIAL.lock().await;
    logs();
    let proxied = |trusted: Vec<String>| {
        App::new().settings(Settings {
            trusted_proxies: trusted,
            ..Settings::default()
        })
    };
    let direct = TestServer::start(proxied(vec![])).await.unwrap();
    let behind = TestServer::start(proxied(vec!["127.0.0.1".into()]))
        .await
        .unwrap();
    let forged = [("x-request-id", "req-7")];
    let from_client = direct.http("GET", "/ping", &forged, b"").await.unwrap();
    let from_proxy = behind.http("GET", "/ping", &forged, b"").await.unwrap();
    assert_eq!(from_proxy.header("x-request-id"), Some("req-7"));
    let fresh = from_client.header("x-request-id").unwrap();
    assert_ne!(fresh, "req-7");
    assert_eq!(fresh.len(), 36, "a UUID: {fresh}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifespan_the_host_never_started_says_so() {
    let _turn = SERIAL.lock().await;
    logs();
    let warning = "dropped without `start`";
    let started = App::new()
        .settings(Settings::default())
        .into_parts()
        .unwrap();
    let running = started.lifespan.start().await.unwrap();
    running.stop().await.unwrap();
    assert!(!logs().text().contains(warning), "a started one is quiet");
    let forgotten = App::new()
        .settings(Settings::default())
        .into_parts()
        .unwrap();
    drop(forgotten);
    assert!(
        logs().text().contains(warning),
        "the host learns that nothing sweeps: {}",
        logs().text()
    );
}

/// The samples of a Prometheus text page: `name{labels}` to value.
fn samples(page: &str) -> HashMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let page = http_request(addr, "GET", "/metrics", &[], b"")
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    samples(&page.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_counts_real_events() {
    let _turn = SERIAL.lock().await;
    logs();
    let metrics_addr = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap()
    };
    let server = TestServer::start(
        App::new()
            .settings(Settings {
                metrics_addr: Some(metrics_addr),
                ..Settings::default()
            })
            .state::<ProbeState>(),
    )
    .await
    .unwrap();
    let mut client = server.client().await.unwrap();
    client.hydrate().await.unwrap();
    let before = scrape(metrics_addr).await;
    for _ in 0..3 {
        client.call("probe_state.bump", json!({})).await.unwrap();
    }
    client.call("probe_state.refuse", json!({})).await.unwrap();
    client.call("probe_state.vanish", json!({})).await.unwrap();
    let after = scrape(metrics_addr).await;
    let moved = |series: &str| {
        after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
    };

    assert_eq!(moved(r#"ferrule_events_total{outcome="ok"}"#), 3.0);
    assert_eq!(moved(r#"ferrule_events_total{outcome="refused"}"#), 1.0);
    assert_eq!(moved(r#"ferrule_events_total{outcome="invalid"}"#), 1.0);
    assert_eq!(moved(r#"ferrule_events_total{outcome="failed"}"#), 0.0);
    assert_eq!(moved(r#"ferrule_event_errors_total{kind="refused"}"#), 1.0);
    assert_eq!(moved(r#"ferrule_event_errors_total{kind="invalid"}"#), 1.0);
    // Four events reached a handler; the one with no handler stopped at decoding.
    assert_eq!(
        moved(r#"ferrule_event_phase_seconds_count{phase="handler"}"#),
        4.0
    );
    assert_eq!(
        moved(r#"ferrule_event_phase_seconds_count{phase="commit"}"#),
        4.0
    );
    assert!(moved(r#"ferrule_event_phase_seconds_sum{phase="handler"}"#) > 0.0);
    // Every phase under its own name (each has its literal label); `user` runs only with auth.
    for phase in [
        "decode",
        "build_request",
        "lock",
        "chain_in",
        "handler",
        "chain_out",
        "commit",
    ] {
        let series = format!(r#"ferrule_event_phase_seconds_count{{phase="{phase}"}}"#);
        assert!(moved(&series) >= 4.0, "{series}: {after:#?}");
    }
    assert!(after[r#"ferrule_sockets"#] >= 1.0, "{after:#?}");
    assert_eq!(
        after["ferrule_queued_events"], 0.0,
        "every event was answered"
    );
    assert!(after["ferrule_tabs"] >= 1.0);
    assert!(after["ferrule_state_store_bytes"] > 0.0);
    assert_eq!(after["ferrule_password_hashing_queue"], 0.0);

    // Never on the app's own port.
    assert_eq!(server.get("/metrics").await.unwrap().status, 404);
}
