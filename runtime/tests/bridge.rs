//! The event bridge end to end: a real server on 127.0.0.1, a real Socket.IO client, one test
//! per behaviour of reflex-django's middleware guides and per policy.

mod dbsupport;
mod support;

use ferrule::testing::{ClientOptions, TestServer};
use ferrule::{RouterData, Settings, StateUpdate, ToastLevel};
use serde_json::{Value, json};
use support::{app, server};

fn from(path: &str, query: &str) -> RouterData {
    RouterData {
        path: path.to_owned(),
        query: query.to_owned(),
    }
}

fn field<'a>(u: &'a StateUpdate, state: &str, name: &str) -> Option<&'a Value> {
    u.delta.get(state)?.get(name)
}

fn toast(u: &StateUpdate) -> (ToastLevel, String) {
    let t = u
        .events_named("_toast")
        .next()
        .unwrap_or_else(|| panic!("no toast in {u:?}"));
    (t.level().unwrap(), t.message().unwrap().to_owned())
}

fn error_message(u: &StateUpdate) -> String {
    let e = u
        .events_named("_error")
        .next()
        .unwrap_or_else(|| panic!("no _error in {u:?}"));
    e.message().unwrap().to_owned()
}

async fn probe(client: &mut ferrule::testing::TestClient) -> Value {
    Value::Object(client.hydrate().await.unwrap().delta["probe_state"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_redirect_skips_handler() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    let u = c
        .call_from("probe_state.record", json!({}), from("/private/orders", ""))
        .await
        .unwrap();
    let redirect = u.events_named("_redirect").next().expect("a redirect");
    assert_eq!(redirect.path(), Some("/login?next=/private/orders"));
    assert!(u.delta.is_empty(), "handler must not run: {u:?}");
    assert_eq!(probe(&mut c).await["path"], "");

    let mut alice = server
        .client_with(ClientOptions::default().header("cookie", "user=alice"))
        .await
        .unwrap();
    let u = alice
        .call_from("probe_state.record", json!({}), from("/private/orders", ""))
        .await
        .unwrap();
    assert_eq!(
        field(&u, "probe_state", "path"),
        Some(&json!("/private/orders"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_reaches_handler_when_auto_redirect_is_off() {
    let settings = Settings {
        auto_redirect_from_middleware: false,
        ..Settings::default()
    };
    let server = server(settings).await;
    let mut c = server.client().await.unwrap();
    let u = c
        .call_from("probe_state.see_response", json!({}), from("/private", ""))
        .await
        .unwrap();
    assert!(u.events_named("_redirect").next().is_none());
    assert_eq!(
        field(&u, "probe_state", "response_status"),
        Some(&json!(302))
    );
    assert_eq!(
        field(&u, "probe_state", "response_location"),
        Some(&json!("/login?next=/private"))
    );
    // Without a short-circuit the handler sees no response.
    let u = c
        .call_from("probe_state.see_response", json!({}), from("/public", ""))
        .await
        .unwrap();
    assert_eq!(
        field(&u, "probe_state", "response_status"),
        Some(&Value::Null)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_error_skips_handler_with_toast() {
    let server = server(Settings::default()).await;
    let mut c = server
        .client_with(ClientOptions::default().header("cookie", "user=banned"))
        .await
        .unwrap();
    let u = c.call("probe_state.increment", json!({})).await.unwrap();
    assert_eq!(
        toast(&u),
        (ToastLevel::Error, "Account suspended.".to_owned())
    );
    assert!(u.delta.is_empty());
    assert_eq!(probe(&mut c).await["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_middleware_error_shows_generic_toast() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    let u = c
        .call_from("probe_state.increment", json!({}), from("/boom", ""))
        .await
        .unwrap();
    let (level, message) = toast(&u);
    assert_eq!(level, ToastLevel::Error);
    assert!(!message.contains("hunter2"), "internals leaked: {message}");
    assert_eq!(message, "Something went wrong. Please try again.");
    assert!(u.delta.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_answering_with_4xx_text_becomes_the_toast() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    let u = c
        .call_from("probe_state.increment", json!({}), from("/teapot", ""))
        .await
        .unwrap();
    assert_eq!(toast(&u).1, "No coffee here.");
    assert!(u.delta.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_list_keeps_csrf_off_events_but_on_http() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    let u = c.call("probe_state.record", json!({})).await.unwrap();
    assert_eq!(
        field(&u, "probe_state", "trail"),
        Some(&json!([
            "session",
            "tenant",
            "login_required",
            "boom",
            "audit"
        ]))
    );
    let http = server.get("/trail").await.unwrap();
    assert_eq!(http.text(), "session,csrf,tenant,login_required,boom,audit");
    let refused = server.http("POST", "/trail", &[], b"").await.unwrap();
    assert_eq!(refused.status, 403);
    assert_eq!(refused.text(), "CSRF token missing.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_list_is_configurable() {
    let settings = Settings {
        event_middleware_skip: vec!["tenant".into(), "audit".into()],
        ..Settings::default()
    };
    let server = server(settings).await;
    let mut c = server.client().await.unwrap();
    let u = c.call("probe_state.record", json!({})).await.unwrap();
    assert_eq!(
        field(&u, "probe_state", "trail"),
        Some(&json!(["session", "csrf", "login_required", "boom"]))
    );
    assert_eq!(field(&u, "probe_state", "tenant"), None, "tenant never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_extension_reaches_handler() {
    let server = server(Settings::default()).await;
    let mut c = server
        .client_with(ClientOptions::default().header("x-tenant", "acme"))
        .await
        .unwrap();
    let u = c.call("probe_state.record", json!({})).await.unwrap();
    assert_eq!(field(&u, "probe_state", "tenant"), Some(&json!("acme")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_from_middleware_reaches_handler_and_deeper_code() {
    let server = server(Settings::default()).await;
    let mut c = server
        .client_with(ClientOptions::default().header("cookie", "user=alice; theme=dark"))
        .await
        .unwrap();
    let u = c.call("probe_state.record", json!({})).await.unwrap();
    assert_eq!(field(&u, "probe_state", "user"), Some(&json!("alice")));
    assert_eq!(field(&u, "probe_state", "cookie_seen"), Some(&json!(true)));
    let u = c
        .call_from("probe_state.deep", json!({}), from("/posts/1", ""))
        .await
        .unwrap();
    assert_eq!(
        field(&u, "probe_state", "deep"),
        Some(&json!("alice at /posts/1"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_outside_events_is_empty() {
    assert!(ferrule::current_request().is_none());
    assert!(ferrule::current_context().is_none());
    assert!(ferrule::current_session().is_none());
    assert!(!ferrule::current_user().is_authenticated());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_off_means_no_middleware_and_anonymous() {
    let settings = Settings {
        run_middleware_chain: false,
        ..Settings::default()
    };
    let server = server(settings).await;
    let mut c = server
        .client_with(ClientOptions::default().header("cookie", "user=alice"))
        .await
        .unwrap();
    let u = c
        .call_from("probe_state.record", json!({}), from("/private", ""))
        .await
        .unwrap();
    assert_eq!(field(&u, "probe_state", "path"), Some(&json!("/private")));
    assert_eq!(field(&u, "probe_state", "trail"), None, "no middleware ran");
    assert_eq!(field(&u, "probe_state", "user"), None, "anonymous");
    // HTTP still runs the chain.
    assert_eq!(
        server.get("/trail").await.unwrap().text(),
        "session,csrf,tenant,login_required,boom,audit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_choose_how_much_of_the_chain_runs() {
    let server = server(Settings::default()).await;
    let mut c = server
        .client_with(ClientOptions::default().header("cookie", "user=alice"))
        .await
        .unwrap();
    let u = c.call("cursor_state.record", json!({})).await.unwrap();
    assert_eq!(
        u.delta.get("cursor_state"),
        None,
        "tier none: nothing ran, nobody logged in"
    );
    let u = c.call("badge_state.record", json!({})).await.unwrap();
    assert_eq!(field(&u, "badge_state", "trail"), Some(&json!(["session"])));
    assert_eq!(field(&u, "badge_state", "user"), Some(&json!("alice")));

    let settings = Settings {
        default_tier: ferrule::Tier::AuthOnly,
        ..Settings::default()
    };
    let server = server_with(settings).await;
    let mut c = server.client().await.unwrap();
    let u = c.call("probe_state.record", json!({})).await.unwrap();
    assert_eq!(
        field(&u, "probe_state", "trail"),
        Some(&json!(["session"])),
        "default tier applies"
    );
}

async fn server_with(settings: Settings) -> TestServer {
    server(settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_token_run_in_order() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    let mut ids = Vec::new();
    for n in 1..=20 {
        ids.push(c.emit("probe_state.append", json!({"n": n})).await.unwrap());
    }
    let mut answered = Vec::new();
    for _ in 0..20 {
        answered.push(c.next_update().await.unwrap().id.unwrap());
    }
    assert_eq!(answered, ids, "answers come in the order events were sent");
    let log = probe(&mut c).await["log"].clone();
    assert_eq!(log, json!((1..=20).collect::<Vec<i64>>()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sockets_of_one_token_share_state_without_lost_updates() {
    let server = server(Settings::default()).await;
    let mut a = server.client().await.unwrap();
    let mut b = server
        .client_with(ClientOptions::default().tab_of(&a))
        .await
        .unwrap();
    for _ in 0..10 {
        a.emit("probe_state.increment", json!({})).await.unwrap();
        b.emit("probe_state.increment", json!({})).await.unwrap();
    }
    for _ in 0..10 {
        a.next_update().await.unwrap();
        b.next_update().await.unwrap();
    }
    assert_eq!(probe(&mut a).await["count"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_tokens_run_concurrently() {
    let server = server(Settings::default()).await;
    let mut a = server.client().await.unwrap();
    let mut b = server.client().await.unwrap();
    // Each handler waits for the other at a barrier: only concurrent runs get past it.
    let ia = a.emit("probe_state.rendezvous", json!({})).await.unwrap();
    let ib = b.emit("probe_state.rendezvous", json!({})).await.unwrap();
    let (ua, ub) = tokio::join!(a.final_for(ia), b.final_for(ib));
    assert_eq!(field(&ua.unwrap(), "probe_state", "count"), Some(&json!(1)));
    assert_eq!(field(&ub.unwrap(), "probe_state", "count"), Some(&json!(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_error_leaves_state_unchanged() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    c.call("probe_state.increment", json!({})).await.unwrap();

    let u = c.call("probe_state.fail", json!({})).await.unwrap();
    assert_eq!(toast(&u), (ToastLevel::Error, "Not yours.".to_owned()));
    assert!(u.delta.is_empty());

    let u = c.call("probe_state.crash", json!({})).await.unwrap();
    assert_eq!(toast(&u).1, "Something went wrong. Please try again.");

    assert_eq!(probe(&mut c).await["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_panic_rolls_back_and_keeps_the_connection() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    c.call("probe_state.increment", json!({})).await.unwrap();
    let u = c.call("probe_state.explode", json!({})).await.unwrap();
    let (_, message) = toast(&u);
    assert!(!message.contains("boom"), "panic text leaked: {message}");
    assert!(u.delta.is_empty());
    let u = c.call("probe_state.increment", json!({})).await.unwrap();
    assert_eq!(
        field(&u, "probe_state", "count"),
        Some(&json!(2)),
        "state from before the panic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_sees_the_handler_outcome_on_the_way_out() {
    let (app, log) = app(Settings::default());
    let server = TestServer::start(app).await.unwrap();
    let mut c = server.client().await.unwrap();
    c.call_from("probe_state.increment", json!({}), from("/shop", "a=1"))
        .await
        .unwrap();
    c.call("probe_state.fail", json!({})).await.unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "request GET /shop?a=1",
            "response 200",
            "request GET /",
            "exception Not yours.",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_event_gets_error_and_connection_stays_up() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();

    c.emit_raw(json!("not an object")).await.unwrap();
    let u = c.next_update().await.unwrap();
    assert!(u.is_final);
    assert!(error_message(&u).starts_with("malformed event"), "{u:?}");

    c.emit_raw(json!({"id": 5})).await.unwrap();
    let u = c.next_update().await.unwrap();
    assert_eq!(u.id, Some(5));
    assert!(error_message(&u).contains("name"), "{u:?}");

    c.emit_raw(
        json!({"id": 6, "name": "probe_state.increment", "router_data": {"path": "no-slash"}}),
    )
    .await
    .unwrap();
    let u = c.next_update().await.unwrap();
    assert!(error_message(&u).contains("router_data.path"), "{u:?}");

    c.emit_raw(json!({"id": 7, "name": "increment"}))
        .await
        .unwrap();
    let u = c.next_update().await.unwrap();
    assert!(error_message(&u).contains("<state>.<handler>"), "{u:?}");

    assert!(c.is_alive().await);
    let u = c.call("probe_state.increment", json!({})).await.unwrap();
    assert_eq!(field(&u, "probe_state", "count"), Some(&json!(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_socket_event_name_gets_error() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    c.send_text(r#"42["click",{"id":1}]"#).await.unwrap();
    let u = c.next_update().await.unwrap();
    assert!(
        error_message(&u).contains("unknown socket event `click`"),
        "{u:?}"
    );
    assert!(c.is_alive().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_state_or_handler_gets_error() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    let u = c.call("nope_state.increment", json!({})).await.unwrap();
    assert_eq!(error_message(&u), "unknown state `nope_state`");
    let u = c.call("probe_state.nope", json!({})).await.unwrap();
    let msg = error_message(&u);
    assert!(
        msg.starts_with("state `probe_state` has no handler `nope`"),
        "{msg}"
    );
    assert!(
        msg.contains("increment"),
        "lists the handlers it has: {msg}"
    );
    assert!(c.is_alive().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_of_wrong_type_names_the_field() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    let u = c
        .call("probe_state.append", json!({"n": "seven"}))
        .await
        .unwrap();
    let msg = error_message(&u);
    assert!(msg.contains("probe_state.append"), "{msg}");
    assert!(msg.contains("field `n`"), "{msg}");
    assert!(msg.contains("expected i64"), "{msg}");
    let u = c.call("probe_state.append", json!({})).await.unwrap();
    assert!(error_message(&u).contains("missing field `n`"));
    assert_eq!(probe(&mut c).await["log"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_data_gives_real_path_and_repeated_query_keys() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    let u = c
        .call_from(
            "probe_state.record",
            json!({}),
            from("/posts/42", "tag=a&tag=b%20c&x=1"),
        )
        .await
        .unwrap();
    assert_eq!(field(&u, "probe_state", "path"), Some(&json!("/posts/42")));
    assert_eq!(field(&u, "probe_state", "tags"), Some(&json!(["a", "b c"])));
    assert_eq!(field(&u, "probe_state", "method"), Some(&json!("GET")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_changed_fields_ship_and_transient_fields_never() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    let full = probe(&mut c).await;
    assert!(full.get("count").is_some());
    assert!(
        full.get("transient").is_none(),
        "transient field hydrated: {full}"
    );
    let u = c.call("probe_state.increment", json!({})).await.unwrap();
    assert_eq!(u.delta["probe_state"].keys().collect::<Vec<_>>(), ["count"]);
    let u = c.call("probe_state.see_response", json!({})).await.unwrap();
    assert!(
        u.delta.is_empty(),
        "nothing changed, nothing shipped: {u:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_return_client_events() {
    let server = server(Settings::default()).await;
    let mut c = server.client().await.unwrap();
    let u = c.call("probe_state.go_home", json!({})).await.unwrap();
    let names: Vec<&str> = u.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["_redirect", "confetti"]);
    assert_eq!(u.events[0].path(), Some("/home"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_from_payload_exposes_the_payload_as_form_data() {
    let settings = Settings {
        event_post_from_payload: true,
        ..Settings::default()
    };
    let (app, log) = app(settings);
    let server = TestServer::start(app).await.unwrap();
    let mut c = server.client().await.unwrap();
    let u = c
        .call("probe_state.record", json!({"q": "rust", "page": 2}))
        .await
        .unwrap();
    assert_eq!(field(&u, "probe_state", "method"), Some(&json!("POST")));
    assert_eq!(field(&u, "probe_state", "form_q"), Some(&json!("rust")));
    assert!(log.lock().unwrap()[0].starts_with("request POST /"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_address_honours_only_trusted_proxies() {
    let server = server(Settings::default()).await;
    let opts = ClientOptions::default()
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https");
    let mut c = server.client_with(opts.clone()).await.unwrap();
    let u = c.call("probe_state.record", json!({})).await.unwrap();
    assert_eq!(
        field(&u, "probe_state", "ip"),
        Some(&json!("127.0.0.1")),
        "untrusted peer"
    );
    assert_eq!(field(&u, "probe_state", "https"), None);

    let trusted = Settings {
        trusted_proxies: vec!["127.0.0.1".into()],
        ..Settings::default()
    };
    let server = server_with(trusted).await;
    let mut c = server.client_with(opts).await.unwrap();
    let u = c.call("probe_state.record", json!({})).await.unwrap();
    assert_eq!(field(&u, "probe_state", "ip"), Some(&json!("203.0.113.7")));
    assert_eq!(field(&u, "probe_state", "https"), Some(&json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_without_a_valid_token_is_refused() {
    let server = server(Settings::default()).await;
    let missing = ClientOptions {
        raw_auth: Some(json!({})),
        ..ClientOptions::default()
    };
    match server.client_with(missing).await {
        Err(ferrule::testing::TestError::Refused(data)) => {
            assert!(
                data["message"].as_str().unwrap().contains("token"),
                "{data}"
            )
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("connected without a token"),
    }
    let bad = ClientOptions::default().token("has spaces and ✓");
    assert!(matches!(
        server.client_with(bad).await,
        Err(ferrule::testing::TestError::Refused(_))
    ));
    assert!(server.client().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_event_right_after_connect_is_never_lost() {
    let server = server(Settings::default()).await;
    for _ in 0..40 {
        let mut c = server.client().await.unwrap();
        c.set_timeout(std::time::Duration::from_secs(5));
        let u = c
            .call("probe_state.increment", json!({}))
            .await
            .expect("answered");
        assert_eq!(field(&u, "probe_state", "count"), Some(&json!(1)));
    }
}

/// A state whose JSON is `{"text":"…"}`: 11 bytes and the text.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct NoteState {
    text: String,
}

impl NoteState {
    async fn write(&mut self, _: ferrule::EventContext, text: String) {
        self.text = text;
    }
}

impl ferrule::protocol::StateName for NoteState {}

impl ferrule::State for NoteState {
    fn handlers(h: &mut ferrule::Handlers<Self>) {
        h.on("write", Self::write);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_is_kept_at_max_state_bytes_and_not_one_byte_past_it() {
    let settings = Settings {
        max_state_bytes: 100,
        ..Settings::default()
    };
    let app = ferrule::App::new().settings(settings).state::<NoteState>();
    let server = TestServer::start(app).await.unwrap();
    let states = async || {
        let health = server.get("/_health").await.unwrap();
        health.json().unwrap()["states"].clone()
    };
    let empty = states().await;
    let mut c = server.client().await.unwrap();
    let at_limit = "x".repeat(100 - 11);
    let u = c.call("note_state.write", json!(at_limit)).await.unwrap();
    assert_eq!(field(&u, "note_state", "text"), Some(&json!(at_limit)));
    let kept = states().await;
    assert!(kept["tabs"].as_u64() > empty["tabs"].as_u64(), "{kept}");
    assert!(
        kept["bytes"].as_u64().unwrap() >= empty["bytes"].as_u64().unwrap() + 100,
        "the store's size counts the state: {empty} then {kept}"
    );

    let past = format!("{at_limit}x");
    let u = c.call("note_state.write", json!(past)).await.unwrap();
    assert!(u.delta.is_empty(), "a state past the limit was kept: {u:?}");
    let (level, message) = toast(&u);
    assert_eq!(level, ToastLevel::Error);
    assert!(message.contains("too large"), "{message}");
    let full = c.hydrate().await.unwrap();
    assert_eq!(full.delta["note_state"]["text"], json!(at_limit));
    assert_eq!(states().await, kept, "nothing more is held");

    // Shrinking it gives the bytes back.
    c.call("note_state.write", json!("")).await.unwrap();
    let shrunk = states().await;
    assert_eq!(
        shrunk["bytes"].as_u64().unwrap() + at_limit.len() as u64,
        kept["bytes"].as_u64().unwrap(),
        "{kept} then {shrunk}"
    );
    server.stop().await.unwrap();
}

/// What a handler rendering a form to post over HTTP reads of its request.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct FormState {
    csrf_token: Option<String>,
}

impl FormState {
    async fn prepare(&mut self, ctx: ferrule::EventContext) {
        self.csrf_token = ctx.csrf_token();
    }
}

impl ferrule::protocol::StateName for FormState {}

impl ferrule::State for FormState {
    fn handlers(h: &mut ferrule::Handlers<Self>) {
        h.on("prepare", Self::prepare);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_reads_the_csrf_token_a_form_posting_over_http_needs() {
    let Some(db) = dbsupport::TestDb::new(dbsupport::Backend::Sqlite).await else {
        return;
    };
    let app = ferrule::App::new()
        .database(db.conn.clone())
        .state::<FormState>()
        .route("/submit", axum::routing::post(|| async { "submitted" }));
    let server = TestServer::start(app).await.unwrap();
    // The browser's token, as its first page gave it.
    let (token, cookie) = server.csrf().await.unwrap();
    let mut tab = server
        .client_with(ClientOptions::default().header("cookie", cookie.clone()))
        .await
        .unwrap();
    let u = tab.call("form_state.prepare", json!(null)).await.unwrap();
    let read = u.delta["form_state"]["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(read, token);
    // A form carrying it posts; one carrying anything else is refused.
    let post = async |field: &str| {
        let body = format!("csrf_token={field}");
        server
            .http(
                "POST",
                "/submit",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("cookie", &cookie),
                ],
                body.as_bytes(),
            )
            .await
            .unwrap()
            .status
    };
    assert_eq!(post(&read).await, 200);
    assert_eq!(post("0123456789abcdef0123456789abcdef").await, 403);
    // A browser without the cookie has no token to give yet.
    let mut bare = server.client().await.unwrap();
    let u = bare.call("form_state.prepare", json!(null)).await.unwrap();
    assert_eq!(u.delta.get("form_state").map(|s| &s["csrf_token"]), None);
    server.stop().await.unwrap();
    db.cleanup().await;
}

/// What an app shares with its handlers through `App::extension`.
#[derive(Clone)]
struct PriceList(u32);

/// A handler that reads the app's database and its shared values.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct LedgerState {
    users: u64,
    price: u32,
}

impl LedgerState {
    async fn count(&mut self, ctx: ferrule::EventContext) -> Result<(), ferrule::Error> {
        use ferrule::db::sea_orm::{EntityTrait, PaginatorTrait};
        self.users = ferrule::db::entities::user::Entity::find()
            .count(ctx.db()?)
            .await
            .map_err(ferrule::Error::internal)?;
        self.price = ctx.extension::<PriceList>().map_or(0, |p| p.0);
        Ok(())
    }
}

impl ferrule::protocol::StateName for LedgerState {}

impl ferrule::State for LedgerState {
    fn handlers(h: &mut ferrule::Handlers<Self>) {
        h.on("count", Self::count);
    }

    // No middleware runs for it: the app's values are there all the same.
    const TIER: Option<ferrule::Tier> = Some(ferrule::Tier::NoChain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_reach_the_apps_database_and_shared_values_without_middleware() {
    let Some(db) = dbsupport::TestDb::new(dbsupport::Backend::Sqlite).await else {
        return;
    };
    let app = ferrule::App::new()
        .database(db.conn.clone())
        .extension(PriceList(1200))
        .state::<LedgerState>()
        .route(
            "/price",
            axum::routing::get(
                |axum::Extension(p): axum::Extension<PriceList>,
                 axum::Extension(_db): axum::Extension<
                    ferrule::db::sea_orm::DatabaseConnection,
                >| async move { p.0.to_string() },
            ),
        );
    let auth = app.auth().unwrap();
    auth.create_user(ferrule::auth::NewUser {
        username: "ada".into(),
        password: "analytical engine".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let server = TestServer::start(app).await.unwrap();
    let mut c = server.client().await.unwrap();
    let u = c.call("ledger_state.count", json!(null)).await.unwrap();
    assert_eq!(u.delta["ledger_state"]["users"], 1, "{u:?}");
    assert_eq!(u.delta["ledger_state"]["price"], 1200);
    let page = server.get("/price").await.unwrap();
    assert_eq!((page.status, page.text()), (200, "1200".to_owned()));
    server.stop().await.unwrap();
    db.cleanup().await;

    // Without a database the handler's error is a toast, and nothing changes.
    let server = TestServer::start(ferrule::App::new().state::<LedgerState>())
        .await
        .unwrap();
    let mut c = server.client().await.unwrap();
    let u = c.call("ledger_state.count", json!(null)).await.unwrap();
    assert!(u.delta.is_empty(), "{u:?}");
    assert_eq!(toast(&u).0, ToastLevel::Error);
    server.stop().await.unwrap();
}
