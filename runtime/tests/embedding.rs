//! Ferrule inside a host axum app (`App::into_parts`): nested under a prefix beside the host's
//! own routes, served by the host's `axum::serve`, with the lifespan the host runs around it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrule::lifespan::OnPanic;
use ferrule::testing::{ClientOptions, TestClient, http_request};
use ferrule::{App, EventContext, Parts, Settings};
use leptos::prelude::*;
use leptos_router::components::{A, Route, Routes};
use leptos_router::path;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A count, and a slow handler to be in flight when the host stops.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct TallyState {
    count: i64,
}

#[ferrule::state]
impl TallyState {
    async fn add(&mut self, _ctx: EventContext) {
        self.count += 1;
    }

    async fn slow(&mut self, _ctx: EventContext) {
        tokio::time::sleep(Duration::from_millis(600)).await;
        self.count += 100;
    }

    /// The page's data, loaded for the app's own path whatever prefix the browser used.
    #[on_load("/tally")]
    async fn load(&mut self, ctx: EventContext) {
        self.count = ctx.path().len() as i64;
    }
}

#[component]
fn Tally() -> impl IntoView {
    let tally = ferrule::ui::use_state::<TallyState>();
    view! {
        <p id="count">{move || tally.get().count}</p>
        // Absolute links name the mount themselves; Leptos resolves only relative ones.
        <A href=ferrule::ui::mounted("/other")>"Other"</A>
        <ferrule::ui::LoginForm/>
    }
}

#[component]
fn Root() -> impl IntoView {
    view! {
        <ferrule::ui::FerruleRouter>
            <Routes fallback=|| "Not found">
                <Route path=path!("/tally") view=Tally/>
            </Routes>
        </ferrule::ui::FerruleRouter>
    }
}

type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, line: &str) {
    log.lock().unwrap().push(line.to_owned());
}

fn lines(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// The app every test mounts: a state, a page, two redirects, a path echo, and a hook, a task
/// and a hook that write to `log`.
fn app(log: &Log) -> App {
    let (started, task, stopped) = (log.clone(), log.clone(), log.clone());
    App::new()
        .settings(Settings::default())
        .state::<TallyState>()
        .route(
            "/where",
            axum::routing::get(
                |req: axum::extract::Request| async move { req.uri().path().to_owned() },
            ),
        )
        .route(
            "/away",
            axum::routing::get(|| async { axum::response::Redirect::to("/login?next=%2Fwhere") }),
        )
        .route(
            "/elsewhere",
            axum::routing::get(|| async { axum::response::Redirect::to("//other.example/x") }),
        )
        .merge(ferrule::ssr::pages(
            ferrule::ssr::site_options("embedding-test"),
            ferrule::ssr::shell("Tally", Root),
            Root,
        ))
        .on_startup("open", move || async move {
            push(&started, "startup hook");
            Ok(())
        })
        .task("ticker", OnPanic::Restart, move |cancel| {
            let log = task.clone();
            async move {
                push(&log, "task started");
                cancel.cancelled().await;
                push(&log, "task cancelled");
            }
        })
        .on_shutdown("close", move || async move {
            push(&stopped, "shutdown hook");
            Ok(())
        })
}

/// A host app serving `app` under `/app` beside routes of its own, as the book shows.
struct Host {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn host(app: App) -> Host {
    let Parts { router, lifespan } = app.into_parts().expect("the app builds");
    let host = axum::Router::new()
        .route("/", axum::routing::get(|| async { "the host's page" }))
        .route(
            "/_health",
            axum::routing::get(|| async { "the host's health" }),
        )
        .nest("/app", router);
    let running = lifespan.start().await.expect("the lifespan starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        axum::serve(
            listener,
            host.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(running.shutdown_on(async {
            let _ = stopped.await;
        }))
        .await?;
        running.stop().await
    });
    Host { addr, stop, served }
}

async fn get(addr: SocketAddr, path: &str) -> ferrule::testing::TestResponse {
    http_request(addr, "GET", path, &[], b"").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_serves_the_app_under_its_prefix_and_runs_its_lifespan() {
    let log: Log = Arc::default();
    let host = host(app(&log)).await;
    let addr = host.addr;

    // The startup hook ran before `start` returned; the task runs beside the server.
    assert_eq!(
        lines(&log).first().map(String::as_str),
        Some("startup hook")
    );
    for _ in 0..100 {
        if lines(&log).len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(lines(&log), ["startup hook", "task started"]);

    // The host keeps its own paths, reserved names included; the app is below `/app`.
    assert_eq!(get(addr, "/").await.text(), "the host's page");
    assert_eq!(get(addr, "/_health").await.text(), "the host's health");
    let health = get(addr, "/app/_health").await;
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(
        health.text().contains("\"status\":\"ok\""),
        "{}",
        health.text()
    );
    assert_eq!(
        get(addr, "/app/where").await.text(),
        "/where",
        "the app's routes see their own paths"
    );

    // A redirect the app wrote as its own path leaves with the prefix; another site's does not.
    let away = get(addr, "/app/away").await;
    assert_eq!(away.status, 303);
    assert_eq!(away.header("location"), Some("/app/login?next=%2Fwhere"));
    let elsewhere = get(addr, "/app/elsewhere").await;
    assert_eq!(elsewhere.header("location"), Some("//other.example/x"));

    // The socket lives below the prefix, and nowhere else.
    let mut tab = TestClient::connect(addr, ClientOptions::default().mounted_at("/app"))
        .await
        .expect("the socket connects under the prefix");
    let update = tab.call("tally_state.add", json!({})).await.unwrap();
    assert_eq!(update.delta["tally_state"]["count"], 1);
    assert!(
        TestClient::connect(addr, ClientOptions::default())
            .await
            .is_err(),
        "the host has no socket at its root"
    );

    // Stopping the host: the event in flight is answered first, then the task and the hooks end.
    let id = tab.emit("tally_state.slow", json!({})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    host.stop.send(()).unwrap();
    let answer = tab
        .final_for(id)
        .await
        .expect("the in-flight event is answered");
    assert_eq!(answer.delta["tally_state"]["count"], 101);
    tokio::time::timeout(Duration::from_secs(10), host.served)
        .await
        .expect("the host stops once the sockets are closed")
        .unwrap()
        .expect("a clean stop");
    assert_eq!(
        lines(&log),
        [
            "startup hook",
            "task started",
            "task cancelled",
            "shutdown hook"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_under_the_prefix_points_the_browser_below_it() {
    let log: Log = Arc::default();
    let host = host(app(&log)).await;
    let page = get(host.addr, "/app/tally?x=1").await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    // The loader ran for the app's own path (`/tally`: 6 characters).
    assert!(html.contains("<p id=\"count\">6</p>"), "{html}");
    assert!(!html.contains("Not found"), "the route matched: {html}");
    for expected in [
        "<meta name=\"ferrule-base\" content=\"/app\">",
        "href=\"/app/pkg/embedding_test.css\"",
        "/app/pkg/embedding_test.js",
        "href=\"/app/other\"",
        "action=\"/app/_auth/login\"",
    ] {
        assert!(html.contains(expected), "missing {expected}: {html}");
    }

    // At the root, nothing moves.
    let root = ferrule::testing::TestServer::start(app(&log))
        .await
        .unwrap();
    let html = get(root.addr(), "/tally").await.text();
    assert!(html.contains("href=\"/pkg/embedding_test.css\""), "{html}");
    assert!(html.contains("href=\"/other\""), "{html}");
    assert!(!html.contains("ferrule-base"), "{html}");
    root.stop().await.unwrap();

    // The tab's `_hydrate` names the app's own path, as the browser client sends it.
    let mut tab = TestClient::connect(host.addr, ClientOptions::default().mounted_at("/app"))
        .await
        .unwrap();
    let hydrated = tab.hydrate_at("/tally").await.unwrap();
    assert_eq!(hydrated.delta["tally_state"]["count"], 6);
    host.stop.send(()).unwrap();
    host.served.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_must_not_fail_stops_the_host_too() {
    let app = App::new().settings(Settings::default()).task(
        "vital",
        OnPanic::StopServer,
        |_cancel| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            panic!("the vital task failed");
        },
    );
    let host = host(app).await;
    // No stop signal: the failed task ends the serving through `shutdown_on`.
    let result = tokio::time::timeout(Duration::from_secs(10), host.served)
        .await
        .expect("the host stops by itself")
        .unwrap();
    let err = result.expect_err("the stop reports the task");
    assert!(err.to_string().contains("`vital`"), "{err}");
    drop(host.stop);
}

/// A host that serves with its own shutdown future listens to `failed` itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_completes_when_a_vital_task_fails_and_not_before() {
    let (fail, failing) = tokio::sync::oneshot::channel::<()>();
    let failing = std::sync::Mutex::new(Some(failing));
    let app = App::new().settings(Settings::default()).task(
        "vital",
        OnPanic::StopServer,
        move |_cancel| {
            let failing = failing.lock().unwrap().take();
            async move {
                if let Some(failing) = failing {
                    let _ = failing.await;
                }
                panic!("the vital task failed");
            }
        },
    );
    let Parts { lifespan, .. } = app.into_parts().expect("the app builds");
    let running = lifespan.start().await.expect("the lifespan starts");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), running.failed())
            .await
            .is_err(),
        "nothing failed yet"
    );
    fail.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running.failed())
        .await
        .expect("`failed` completes once the task failed");
    let err = running.stop().await.expect_err("the stop reports the task");
    assert!(err.to_string().contains("`vital`"), "{err}");
}
