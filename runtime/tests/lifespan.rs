//! The server's lifespan: hooks, supervised tasks, and a graceful stop that lets events finish.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrule::lifespan::OnPanic;
use ferrule::testing::TestServer;
use ferrule::{App, EventContext, Handlers, Settings, State};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Default, Serialize, Deserialize)]
struct SlowState {
    done: bool,
}

impl SlowState {
    async fn work(&mut self, _: EventContext) {
        tokio::time::sleep(Duration::from_millis(600)).await;
        self.done = true;
    }
}

impl ferrule::protocol::StateName for SlowState {}

impl State for SlowState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("work", Self::work);
    }
}

type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, s: &str) {
    log.lock().unwrap().push(s.to_owned());
}

#[tokio::test]
async fn startup_hooks_run_before_the_first_request() {
    let log: Log = Arc::default();
    let (l1, l2) = (log.clone(), log.clone());
    let app = App::new()
        .settings(Settings::default())
        .on_startup("warm cache", move || async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            push(&l1, "started");
            Ok(())
        })
        .route(
            "/log",
            axum::routing::get(move || {
                let log = l2.clone();
                async move { log.lock().unwrap().join(",") }
            }),
        );
    let server = TestServer::start(app).await.unwrap();
    // Sent at once: the listener holds it until the hooks are done.
    assert_eq!(server.get("/log").await.unwrap().text(), "started");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_failing_startup_hook_stops_the_start_with_its_name() {
    let app = App::new()
        .settings(Settings::default())
        .on_startup("check licence", || async {
            Err(ferrule::Error::bad_request("no licence"))
        });
    // The test server's start says why, rather than a server that resets every connection.
    let Err(err) = TestServer::start(app).await else {
        panic!("a server whose startup hook failed was started")
    };
    assert!(
        err.to_string()
            .contains("startup hook `check licence` failed: no licence"),
        "{err}"
    );
}

#[tokio::test]
async fn shutdown_lets_a_running_event_finish_then_stops_tasks_then_hooks() {
    let log: Log = Arc::default();
    let (lt, lh) = (log.clone(), log.clone());
    let app = App::new()
        .settings(Settings::default())
        .state::<SlowState>()
        .task("ticker", OnPanic::Restart, move |cancel| {
            let log = lt.clone();
            async move {
                cancel.cancelled().await;
                push(&log, "task cancelled");
            }
        })
        .on_shutdown("flush", move || async move {
            push(&lh, "shutdown hook");
            Ok(())
        });
    let server = TestServer::start(app).await.unwrap();
    let mut c = server.client().await.unwrap();
    let id = c.emit("slow_state.work", json!({})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stopping = tokio::spawn(server.stop());
    let update = c.final_for(id).await.expect("the in-flight event finishes");
    assert_eq!(update.delta["slow_state"]["done"], true);
    stopping.await.unwrap().expect("a graceful stop returns Ok");
    assert_eq!(*log.lock().unwrap(), ["task cancelled", "shutdown hook"]);
}

#[tokio::test]
async fn a_panicking_task_is_restarted() {
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    let app =
        App::new()
            .settings(Settings::default())
            .task("flaky", OnPanic::Restart, move |cancel| {
                let r = r.clone();
                async move {
                    if r.fetch_add(1, Ordering::SeqCst) < 2 {
                        panic!("flaky task fails");
                    }
                    cancel.cancelled().await;
                }
            });
    let server = TestServer::start(app).await.unwrap();
    for _ in 0..50 {
        if runs.load(Ordering::SeqCst) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3, "two panics, two restarts");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_task_that_must_not_fail_stops_the_server() {
    let app = App::new().settings(Settings::default()).task(
        "payments feed",
        OnPanic::StopServer,
        |_cancel| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            panic!("feed lost");
        },
    );
    let server = TestServer::start(app).await.unwrap();
    let result = server
        .wait(Duration::from_secs(10))
        .await
        .expect("the server stops by itself");
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains("`payments feed` panicked"),
        "{err}"
    );
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct ImportState {
    done: u32,
    pings: u32,
}

impl ImportState {
    async fn import(
        bg: ferrule::background::Background<Self>,
        rows: u32,
    ) -> Result<(), ferrule::Error> {
        for _ in 0..rows {
            tokio::time::sleep(Duration::from_millis(80)).await;
            bg.update(|s| s.done += 1).await?;
        }
        Ok(())
    }

    async fn wait_for_shutdown(
        bg: ferrule::background::Background<Self>,
        _: serde::de::IgnoredAny,
    ) {
        bg.shutting_down().await;
        bg.update(|s| s.done = 999).await.ok();
    }

    async fn ping(&mut self, _: EventContext) {
        self.pings += 1;
    }
}

impl ferrule::protocol::StateName for ImportState {}

impl State for ImportState {
    fn handlers(h: &mut Handlers<Self>) {
        h.background("import", Self::import);
        h.background("wait_for_shutdown", Self::wait_for_shutdown);
        h.on("ping", Self::ping);
    }
}

#[tokio::test]
async fn background_handlers_push_updates_without_blocking_the_tab() {
    let app = App::new()
        .settings(Settings::default())
        .state::<ImportState>();
    let server = TestServer::start(app).await.unwrap();
    let mut c = server.client().await.unwrap();
    let started = c.call("import_state.import", json!(3)).await.unwrap();
    assert!(
        started.delta.is_empty(),
        "the event is answered at once: {started:?}"
    );
    // The tab's other events are not blocked by the running import.
    let u = c.call("import_state.ping", json!({})).await.unwrap();
    assert_eq!(u.delta["import_state"]["pings"], 1);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let push = c.next_update().await.unwrap();
        assert_eq!(push.id, None, "pushes carry no event id");
        if let Some(done) = push.delta.get("import_state").and_then(|d| d.get("done")) {
            seen.push(done.as_u64().unwrap());
        }
    }
    assert_eq!(seen, [1, 2, 3]);
    assert_eq!(c.hydrate().await.unwrap().delta["import_state"]["done"], 3);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn background_handlers_end_cleanly_at_shutdown() {
    let app = App::new()
        .settings(Settings::default())
        .state::<ImportState>();
    let server = TestServer::start(app).await.unwrap();
    let mut c = server.client().await.unwrap();
    c.call("import_state.wait_for_shutdown", json!(null))
        .await
        .unwrap();
    let stopping = tokio::spawn(server.stop());
    let push = c
        .next_update()
        .await
        .expect("the handler's last update arrives before the socket closes");
    assert_eq!(push.delta["import_state"]["done"], 999);
    stopping.await.unwrap().expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_response_that_watches_stopping_does_not_hold_up_the_shutdown() {
    use axum::response::sse::{Event, Sse};
    use ferrule::lifespan::Stopping;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An event stream that would run forever, but ends when the server begins to stop.
    let app = App::new().settings(Settings::default()).route(
        "/ticks",
        axum::routing::get(
            |axum::Extension(stopping): axum::Extension<Stopping>| async move {
                let ticks = futures_util::stream::unfold(stopping, |stopping| async move {
                    tokio::select! {
                        () = stopping.stopped() => None,
                        () = tokio::time::sleep(Duration::from_millis(100)) => {
                            let tick = Event::default().data("tick");
                            Some((Ok::<_, std::convert::Infallible>(tick), stopping))
                        }
                    }
                });
                Sse::new(ticks)
            },
        ),
    );
    let server = TestServer::start(app).await.unwrap();
    let mut page = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    page.write_all(b"GET /ticks HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("data: tick") {
        let n = tokio::time::timeout(Duration::from_secs(5), page.read(&mut buf))
            .await
            .expect("the stream ticks")
            .unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    // A graceful stop waits for open responses: this one ends itself, so the stop completes.
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("the open stream does not hold up the shutdown")
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), page.read_to_end(&mut seen)).await;
    assert!(ended.is_ok(), "the stream ended with the server");
}
