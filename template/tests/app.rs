//! {{project-name}}'s state, through a real server and a real Socket.IO client.

use ferrule::testing::{ClientOptions, TestServer};
use serde_json::json;

async fn server() -> TestServer {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = format!("{}-{n}.sqlite3", std::process::id());
    let path = std::env::temp_dir().join(format!("{{crate_name}}-test-{file}"));
    let _ = std::fs::remove_file(&path);
    let db = ferrule::db::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let app = {{crate_name}}::app(db).settings(ferrule::Settings::default());
    app.migrate().await.unwrap();
    TestServer::start(app).await.expect("the app starts")
}

#[tokio::test]
async fn increment_counts_and_records_the_tenant() {
    let server = server().await;
    let mut client = server
        .client_with(ClientOptions::default().header("x-tenant", "acme"))
        .await
        .unwrap();
    let update = client
        .call("counter_state.increment", json!({}))
        .await
        .unwrap();
    assert_eq!(update.delta["counter_state"]["count"], 1);
    assert_eq!(update.delta["counter_state"]["tenant"], "acme");
}

#[tokio::test]
async fn the_home_page_is_rendered_on_the_server() {
    let server = server().await;
    let resp = server.get("/").await.unwrap();
    assert_eq!(resp.status, 200);
    assert!(resp.text().contains(r#"<output id="count">0</output>"#));
}

#[tokio::test]
async fn register_then_the_private_page_renders() {
    let server = server().await;
    let anonymous = server.get("/private").await.unwrap();
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.header("location"), Some("/login?next=%2Fprivate"));

    let (csrf, csrf_cookie) = server.csrf().await.unwrap();
    let form = format!("username=ada&password=correct+horse+battery&next=%2F&csrf_token={csrf}");
    let registered = server
        .http(
            "POST",
            "/_auth/register",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", csrf_cookie.as_str()),
            ],
            form.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(registered.status, 303, "{}", registered.text());
    assert_eq!(registered.header("location"), Some("/"));
    let session = registered.cookie("ferrule_session").expect("logged in");
    let cookies = format!("{csrf_cookie}; {session}");
    let private = server
        .http("GET", "/private", &[("cookie", cookies.as_str())], b"")
        .await
        .unwrap();
    assert_eq!(private.status, 200);
    assert!(private.text().contains("Only logged-in users"));
}

#[tokio::test]
async fn notes_are_stored_listed_and_guarded() {
    let server = server().await;
    let mut anonymous = server.client().await.unwrap();
    let refused = anonymous
        .call("notes_state.add", json!({"body": "hello"}))
        .await
        .unwrap();
    assert!(
        refused.events_named("_redirect").next().is_some(),
        "anonymous users are sent to log in: {refused:?}"
    );

    let (csrf, csrf_cookie) = server.csrf().await.unwrap();
    let form = format!("username=ada&password=correct+horse+battery&csrf_token={csrf}");
    let registered = server
        .http(
            "POST",
            "/_auth/register",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", csrf_cookie.as_str()),
            ],
            form.as_bytes(),
        )
        .await
        .unwrap();
    let session = registered.cookie("ferrule_session").expect("logged in");
    let mut ada = server
        .client_with(ClientOptions::default().header("cookie", session))
        .await
        .unwrap();
    let empty = ada
        .call("notes_state.add", json!({"body": "   "}))
        .await
        .unwrap();
    assert!(!empty.delta.contains_key("notes_state"), "nothing written");
    assert_eq!(empty.events[0].message(), Some("Write something first."));
    for body in ["first", "second"] {
        ada.call("notes_state.add", json!({ "body": body }))
            .await
            .unwrap();
    }
    let listed = anonymous.call("notes_state.load", json!({})).await.unwrap();
    let notes = &listed.delta["notes_state"]["notes"];
    assert_eq!(notes[0]["body"], "second", "newest first: {notes}");
    assert_eq!(notes[1]["body"], "first");
    assert_eq!(notes[0]["author"], "ada");
}
