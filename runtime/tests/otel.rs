//! With the `otel` feature and `OTEL_EXPORTER_OTLP_ENDPOINT` set, an event's spans reach an
//! OTLP/HTTP collector: here a small one on 127.0.0.1 that keeps what is posted to it.
//!
//! The exporter reads the variable when logging is set up, once per process, so the server runs
//! in a child process (this binary again, running [`child_serves_one_event`]) with the variable
//! set, and the parent holds the collector.

use std::sync::{Arc, Mutex};

use ferrule::testing::{TestServer, capture_logs};
use ferrule::{App, EventContext, LogFormat};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Default, Serialize, Deserialize)]
struct TracedState {
    count: i64,
}

#[ferrule::state]
impl TracedState {
    async fn bump(&mut self, _ctx: EventContext) {
        self.count += 1;
    }
}

// Not `FERRULE_…`: settings refuse variables of that prefix they do not know.
const CHILD_ENV: &str = "OTEL_TEST_CHILD";

/// What the collector was sent: each POST's content type and body.
type Posted = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_spans_reach_the_collector() {
    let posted: Posted = Arc::default();
    let collector = {
        let posted = posted.clone();
        axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: http::HeaderMap, body: bytes::Bytes| {
                let posted = posted.clone();
                async move {
                    let kind = headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    posted.lock().unwrap().push((kind, body.to_vec()));
                    http::StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = tokio::spawn(async move { axum::serve(listener, collector).await });

    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_serves_one_event",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"))
        .env("OTEL_SERVICE_NAME", "ferrule-otel-test")
        .output()
        .await
        .unwrap();
    served.abort();
    assert!(
        child.status.success(),
        "the child failed:\n{}\n{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    let posted = posted.lock().unwrap();
    assert!(!posted.is_empty(), "nothing was exported");
    assert!(
        posted
            .iter()
            .all(|(kind, _)| kind == "application/x-protobuf")
    );
    // Protobuf keeps strings as they are: the span names and fields are in the bodies.
    let all: Vec<u8> = posted.iter().flat_map(|(_, b)| b.clone()).collect();
    let has = |needle: &str| all.windows(needle.len()).any(|w| w == needle.as_bytes());
    for needle in [
        "ferrule.event",
        "traced_state",
        "bump",
        "handler",
        "commit",
        "send",
        "http.request",
        "ferrule-otel-test",
    ] {
        assert!(has(needle), "`{needle}` was not exported");
    }
}

/// The child's side: one server, one event, a clean stop (which exports the last spans).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by an_events_spans_reach_the_collector in a process of its own"]
async fn child_serves_one_event() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let _logs = capture_logs(LogFormat::Text, "info,ferrule::event=debug").unwrap();
    let server = TestServer::start(App::new().state::<TracedState>())
        .await
        .unwrap();
    let mut client = server.client().await.unwrap();
    let update = client.call("traced_state.bump", json!({})).await.unwrap();
    assert_eq!(update.delta["traced_state"]["count"], 1);
    assert_eq!(server.get("/ping").await.unwrap().status, 200);
    client.close().await.unwrap();
    server.stop().await.unwrap();
}
