//! The counter answers over a real Socket.IO connection exactly as the wire contract says.

use counter::{Add, CounterState, Increment, Reset};
use ferrule::testing::{TestDatabase, TestServer};
use serde_json::json;

async fn server() -> TestServer {
    let db = TestDatabase::create("sqlite://counter.sqlite3")
        .await
        .unwrap();
    TestServer::start_on(db, |db| {
        counter::app(db).settings(ferrule::Settings::default())
    })
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
async fn only_logged_in_users_may_reset() {
    let server = server().await;
    server
        .create_user("ada", "analytical engine")
        .await
        .unwrap();
    let mut client = server.client().await.unwrap();
    client.send(Add { amount: 5 }).await.unwrap();
    let update = client.send(Reset).await.unwrap();
    assert_eq!(update.events[0].path(), Some("/login?next=%2F"));
    assert!(!update.delta.contains_key("counter_state"));
    assert_eq!(client.state::<CounterState>().unwrap().count, 5);

    let session = server.login("ada", "analytical engine").await.unwrap();
    let mut ada = server
        .client_with(ferrule::testing::ClientOptions::default().header("cookie", session))
        .await
        .unwrap();
    ada.send(Add { amount: 5 }).await.unwrap();
    assert_eq!(ada.state::<CounterState>().unwrap().count, 5);
    let update = ada.send(Reset).await.unwrap();
    assert_eq!(update.delta["counter_state"]["count"], 0);
    assert_eq!(ada.state::<CounterState>().unwrap().count, 0);
}

#[tokio::test]
async fn add_takes_a_typed_amount() {
    let server = server().await;
    let mut client = server.client().await.unwrap();
    client.send(Add { amount: 41 }).await.unwrap();
    assert_eq!(client.state::<CounterState>().unwrap().count, 41);
    client.send(Increment).await.unwrap();
    assert_eq!(client.state::<CounterState>().unwrap().count, 42);
    let refused = client
        .call("counter_state.add", json!({"amount": "ten"}))
        .await
        .unwrap();
    assert!(
        refused.events[0]
            .message()
            .is_some_and(|m| m.contains("field `amount`")),
        "a payload that is not the action's type is refused naming the field: {refused:?}"
    );
    assert_eq!(client.state::<CounterState>().unwrap().count, 42);
}

#[tokio::test]
async fn overflow_is_refused_and_the_count_kept() {
    let server = server().await;
    let mut client = server.client().await.unwrap();
    client.send(Add { amount: i64::MAX }).await.unwrap();
    let update = client.send(Add { amount: 1 }).await.unwrap();
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
    let html = resp.text();
    assert!(html.contains("<h1>Ferrule counter</h1>"), "{html}");
    assert!(
        html.contains(r#"<output id="count">0</output>"#),
        "the state renders with its default value: {html}"
    );
    assert!(
        html.contains("/pkg/counter.js"),
        "the hydration script is linked"
    );
}

#[tokio::test]
async fn every_script_of_a_page_carries_the_nonce_its_policy_names() {
    let server = server().await;
    let resp = server.get("/").await.unwrap();
    let policy = resp.header("content-security-policy").unwrap();
    let start = policy.find("'nonce-").expect("the policy names a nonce") + 7;
    let nonce = &policy[start..start + policy[start..].find('\'').unwrap()];
    let html = resp.text();
    let scripts: Vec<&str> = html
        .split("<script")
        .skip(1)
        .map(|s| &s[..s.find('>').unwrap()])
        // Data blocks (the rendered states) are never run, so no policy applies to them.
        .filter(|tag| !tag.contains("application/json"))
        .collect();
    assert!(
        !scripts.is_empty(),
        "the hydration scripts are there: {html}"
    );
    for tag in scripts {
        assert!(
            tag.contains(&format!("nonce=\"{nonce}\"")),
            "a script without the page's nonce would not run: <script{tag}>"
        );
    }
}

#[tokio::test]
async fn private_pages_redirect_anonymous_visitors_before_rendering() {
    let server = server().await;
    let resp = server.get("/private").await.unwrap();
    assert_eq!(resp.status, 303);
    assert_eq!(
        resp.header("location"),
        Some("/login?next=%2Fprivate"),
        "the HTTP middleware chain protects server-rendered pages"
    );
    assert!(!resp.text().contains("Only logged-in users"));
    let login = server.get("/login?next=%2Fprivate").await.unwrap();
    assert_eq!(login.status, 200);
    let html = login.text();
    assert!(html.contains(r#"name="next" value="/private""#), "{html}");
    assert!(
        html.contains(r#"name="csrf_token" value=""#)
            && !html.contains(r#"name="csrf_token" value="""#),
        "the login form carries the CSRF token of the cookie it sets: {html}"
    );
}
