//! Tab tokens bound to sessions, tried as an attacker would: a token is no key to another
//! session's states, pushes or uploads; logout and another user's login start the tab afresh;
//! an anonymous tab's cart carries into its login; public UI state opts out.

mod dbsupport;

use dbsupport::{Backend, TestDb};
use ferrule::auth::NewUser;
use ferrule::testing::{ClientOptions, TestClient, TestServer};
use ferrule::upload::UploadedFile;
use ferrule::{App, Error, EventContext, Handlers, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Clone, Default, Serialize, Deserialize)]
struct CartState {
    items: Vec<String>,
    uploads: u32,
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

impl CartState {
    async fn add(&mut self, _: EventContext, item: String) {
        self.items.push(item);
    }

    async fn attach(&mut self, _: EventContext, files: Vec<UploadedFile>) {
        self.uploads += files.len() as u32;
    }

    async fn login(&mut self, ctx: EventContext, c: Credentials) -> Result<(), Error> {
        ctx.login_with_password(&c.username, &c.password).await?;
        Ok(())
    }

    async fn logout(&mut self, ctx: EventContext) -> Result<(), Error> {
        ctx.logout().await
    }

    async fn join(&mut self, ctx: EventContext, room: String) {
        ctx.join(room);
    }

    async fn shout(&mut self, ctx: EventContext, room: String) {
        ctx.broadcast(
            room,
            ferrule::protocol::ClientCommand::new("shout", json!({})),
        );
    }
}

impl ferrule::protocol::StateName for CartState {}

impl State for CartState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("add", Self::add);
        h.upload("attach", Self::attach);
        h.on("login", Self::login);
        h.on("logout", Self::logout);
        h.on("join", Self::join);
        h.on("shout", Self::shout);
    }
}

/// Public UI state: kept under the token alone.
#[derive(Clone, Default, Serialize, Deserialize)]
struct ThemeState {
    dark: bool,
}

impl ThemeState {
    async fn toggle(&mut self, _: EventContext) {
        self.dark = !self.dark;
    }
}

impl ferrule::protocol::StateName for ThemeState {}

impl State for ThemeState {
    const SESSION_BOUND: bool = false;

    fn handlers(h: &mut Handlers<Self>) {
        h.on("toggle", Self::toggle);
    }
}

/// What every tab of a session shares: a basket.
#[derive(Clone, Default, Serialize, Deserialize)]
struct BasketState {
    note: String,
}

impl BasketState {
    async fn put(&mut self, _: EventContext, note: String) {
        self.note = note;
    }
}

impl ferrule::protocol::StateName for BasketState {}

impl State for BasketState {
    const SESSION_SCOPED: bool = true;

    fn handlers(h: &mut Handlers<Self>) {
        h.on("put", Self::put);
    }
}

async fn basket(c: &mut TestClient) -> Value {
    c.hydrate().await.unwrap().delta["basket_state"]["note"].clone()
}

async fn server(db: &TestDb) -> TestServer {
    let app = App::new()
        .database(db.conn.clone())
        .state::<CartState>()
        .state::<BasketState>()
        .state::<ThemeState>()
        .route(
            "/page",
            axum::routing::get(|| async { axum::response::Html("<p>a page</p>") }),
        );
    let auth = app.auth().unwrap();
    for (name, pw) in [("alice", "wonderland1"), ("bob", "builder123")] {
        auth.create_user(NewUser {
            username: name.into(),
            password: pw.into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    }
    TestServer::start(app).await.unwrap()
}

async fn items(c: &mut TestClient) -> Value {
    c.hydrate().await.unwrap().delta["cart_state"]["items"].clone()
}

async fn add(c: &mut TestClient, item: &str) -> Value {
    let u = c.call("cart_state.add", json!(item)).await.unwrap();
    assert!(u.delta.contains_key("cart_state"), "{u:?}");
    u.delta["cart_state"]["items"].clone()
}

async fn socket_login(c: &mut TestClient, user: &str, pw: &str) -> ferrule::StateUpdate {
    c.call(
        "cart_state.login",
        json!({ "username": user, "password": pw }),
    )
    .await
    .unwrap()
}

async fn each_backend(test: impl AsyncFn(&TestDb)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some(db) = TestDb::new(backend).await {
            test(&db).await;
            db.cleanup().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_token_from_another_session_gets_a_fresh_tab() {
    each_backend(async |db| {
        let server = server(db).await;
        let cookie = server.login("alice", "wonderland1").await.unwrap();
        let mut victim = server
            .client_with(ClientOptions::default().header("cookie", cookie))
            .await
            .unwrap();
        add(&mut victim, "passport").await;

        // The token alone, no cookie: the handshake makes a session of its own.
        let stolen = ClientOptions::default().token(victim.token());
        let mut thief = server.client_with(stolen.clone()).await.unwrap();
        assert!(
            thief
                .cookies()
                .is_some_and(|c| c.contains("ferrule_session=")),
            "a handshake without a session is given one"
        );
        assert_eq!(
            items(&mut thief).await,
            json!([]),
            "never the victim's states"
        );
        assert_eq!(add(&mut thief, "forged").await, json!(["forged"]));
        // Another user's session presenting the token fares no better.
        let bob = server.login("bob", "builder123").await.unwrap();
        let mut other = server
            .client_with(stolen.header("cookie", bob))
            .await
            .unwrap();
        assert_eq!(items(&mut other).await, json!([]));

        // Nor does an upload with the stolen token change the victim's tab or reach it.
        let upload = post_upload(&server, victim.token(), thief.cookies().as_deref()).await;
        assert_eq!(upload.status, 200, "{}", upload.text());
        assert_eq!(upload.json().unwrap()["delta"]["cart_state"]["uploads"], 1);
        let to_thief = thief.next_update().await.unwrap();
        assert_eq!(
            to_thief.delta["cart_state"]["uploads"], 1,
            "the upload went to the thief's own tab"
        );
        assert_eq!(items(&mut victim).await, json!(["passport"]));
        let full = victim.hydrate().await.unwrap();
        assert_eq!(full.delta["cart_state"]["uploads"], 0);
        // The victim's own upload reaches the victim's tab, not the thief's sockets.
        let own = post_upload(&server, victim.token(), victim.cookies().as_deref()).await;
        assert_eq!(own.json().unwrap()["delta"]["cart_state"]["uploads"], 1);
        let pushed = victim.next_update().await.unwrap();
        assert_eq!(pushed.delta["cart_state"]["uploads"], 1);
        thief.set_timeout(std::time::Duration::from_millis(500));
        assert!(
            thief.next_update().await.is_err(),
            "no push of the victim's tab reaches the thief"
        );
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_tab_reconnecting_with_its_cookie_keeps_its_states() {
    each_backend(async |db| {
        let server = server(db).await;
        let mut tab = server.client().await.unwrap();
        add(&mut tab, "tea").await;
        let again = ClientOptions::default().tab_of(&tab);
        tab.close().await.unwrap();
        let mut tab = server.client_with(again).await.unwrap();
        assert_eq!(items(&mut tab).await, json!(["tea"]));
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_cart_carries_into_a_login_over_http() {
    each_backend(async |db| {
        let server = server(db).await;
        let mut tab = server.client().await.unwrap();
        add(&mut tab, "scones").await;
        let session = tab.cookies().unwrap();
        // The login form posts with the tab's session cookie; the session id changes.
        let (csrf, csrf_cookie) = server.csrf().await.unwrap();
        let cookies = format!("{session}; {csrf_cookie}");
        let body = json!({"username": "alice", "password": "wonderland1"}).to_string();
        let resp = server
            .http(
                "POST",
                "/_auth/login",
                &[
                    ("content-type", "application/json"),
                    ("x-csrftoken", csrf.as_str()),
                    ("cookie", cookies.as_str()),
                ],
                body.as_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        let logged_in = resp.cookie("ferrule_session").unwrap();
        assert_ne!(logged_in, session, "a new session id at login");
        let mut reloaded = server
            .client_with(
                ClientOptions::default()
                    .token(tab.token())
                    .header("cookie", logged_in),
            )
            .await
            .unwrap();
        let full = reloaded.hydrate().await.unwrap();
        assert_eq!(full.delta["cart_state"]["items"], json!(["scones"]));
        assert_eq!(full.delta["auth_state"]["username"], "alice");
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_another_users_login_start_the_tab_afresh_but_keep_public_state() {
    each_backend(async |db| {
        let server = server(db).await;
        let mut tab = server.client().await.unwrap();
        add(&mut tab, "cart-of-nobody").await;
        tab.call("theme_state.toggle", json!({})).await.unwrap();
        // Logging in on the socket keeps the anonymous cart (same binding).
        let u = socket_login(&mut tab, "alice", "wonderland1").await;
        assert_eq!(u.delta["auth_state"]["username"], "alice");
        assert_eq!(tab.follow_session(&u).await.unwrap().status, 200);
        assert_eq!(items(&mut tab).await, json!(["cart-of-nobody"]));
        add(&mut tab, "alices-secret").await;

        // Logout: the answer ships the fresh tab in full; nothing of alice's is left.
        let u = tab.call("cart_state.logout", json!({})).await.unwrap();
        assert_eq!(u.delta["cart_state"]["items"], json!([]), "{u:?}");
        assert_eq!(u.delta["auth_state"]["is_authenticated"], false);
        assert_eq!(items(&mut tab).await, json!([]));
        let theme = tab.hydrate().await.unwrap().delta["theme_state"]["dark"].clone();
        assert_eq!(theme, true, "public UI state survives the logout");
        // The browser's cookie follows the logout to a fresh session; a reload keeps the
        // fresh tab, and the old session's states are gone for good.
        let resp = tab.follow_session(&u).await.unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        let mut reloaded = server
            .client_with(ClientOptions::default().tab_of(&tab))
            .await
            .unwrap();
        assert_eq!(items(&mut reloaded).await, json!([]));

        // Bob logs in where alice was: alice's cart does not carry over.
        socket_login(&mut tab, "alice", "wonderland1").await;
        add(&mut tab, "alices-again").await;
        let u = socket_login(&mut tab, "bob", "builder123").await;
        assert_eq!(u.delta["auth_state"]["username"], "bob");
        assert_eq!(u.delta["cart_state"]["items"], json!([]));
        assert_eq!(items(&mut tab).await, json!([]));
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_load_gives_the_browser_its_session_so_its_tabs_share_it() {
    each_backend(async |db| {
        let server = server(db).await;
        let html = [("accept", "text/html")];
        let page = server.http("GET", "/page", &html, b"").await.unwrap();
        let cookie = page
            .cookie("ferrule_session")
            .expect("a page without a session gives one");
        // Not again with it, nor for what is no page.
        let again = server
            .http("GET", "/page", &[html[0], ("cookie", &cookie)], b"")
            .await
            .unwrap();
        assert!(again.cookie("ferrule_session").is_none());
        let missing = server.http("GET", "/nope", &html, b"").await.unwrap();
        assert!(missing.cookie("ferrule_session").is_none());
        // Two tabs opened after it carry the one cookie; a reload of the first finds its
        // states (with a session per handshake, the browser kept only the second tab's).
        let tab = || ClientOptions::default().header("cookie", cookie.clone());
        let mut a = server.client_with(tab()).await.unwrap();
        let mut b = server.client_with(tab()).await.unwrap();
        assert!(
            a.cookies() == b.cookies(),
            "no handshake made its own session"
        );
        add(&mut a, "tea").await;
        add(&mut b, "cake").await;
        let mut reloaded = server
            .client_with(ClientOptions::default().tab_of(&a))
            .await
            .unwrap();
        assert_eq!(items(&mut reloaded).await, json!(["tea"]));
        server.stop().await.unwrap();
    })
    .await;
}

/// The `Set-Cookie` header of the session cookie, attributes and all.
fn session_set_cookie(headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.clone())
        .find(|v| v.starts_with("ferrule_session="))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_secure_cookies_the_sessions_of_page_loads_and_handshakes_are_secure() {
    each_backend(async |db| {
        let start = async |secure_cookies| {
            let settings = ferrule::Settings {
                secure_cookies,
                ..ferrule::Settings::default()
            };
            let app = App::new()
                .settings(settings)
                .database(db.conn.clone())
                .state::<CartState>()
                .route(
                    "/page",
                    axum::routing::get(|| async { axum::response::Html("<p>a page</p>") }),
                );
            TestServer::start(app).await.unwrap()
        };
        let server = start(true).await;
        let page = server
            .http("GET", "/page", &[("accept", "text/html")], b"")
            .await
            .unwrap();
        let cookie = session_set_cookie(&page.headers).expect("a page load gets a session");
        assert!(
            cookie.split(';').any(|a| a.trim() == "Secure"),
            "a page load's session cookie without Secure: {cookie}"
        );
        // A handshake without a cookie makes the session and sets it on the upgrade's answer.
        let url = format!("ws://{}/_event/?EIO=4&transport=websocket", server.addr());
        let (_ws, answer) = tokio_tungstenite::connect_async(url).await.unwrap();
        let headers: Vec<(String, String)> = answer
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let cookie = session_set_cookie(&headers).expect("a handshake gets a session");
        assert!(
            cookie.split(';').any(|a| a.trim() == "Secure"),
            "a handshake's session cookie without Secure: {cookie}"
        );
        server.stop().await.unwrap();
        // Without the setting (plain HTTP in development), no Secure: a browser would drop it.
        let plain = start(false).await;
        let page = plain
            .http("GET", "/page", &[("accept", "text/html")], b"")
            .await
            .unwrap();
        let cookie = session_set_cookie(&page.headers).unwrap();
        assert!(!cookie.contains("Secure"), "{cookie}");
        plain.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_set_out_before_a_login_leaves_the_browser_logged_in() {
    each_backend(async |db| {
        let server = server(db).await;
        let html = [("accept", "text/html")];
        let page = server.http("GET", "/page", &html, b"").await.unwrap();
        let before = page.cookie("ferrule_session").unwrap();
        // The page's socket sets out with the page's session; a login over HTTP replaces that
        // session before the handshake reaches the server.
        let (csrf, csrf_cookie) = server.csrf().await.unwrap();
        let body = json!({ "username": "alice", "password": "wonderland1" }).to_string();
        let both = format!("{before}; {csrf_cookie}");
        let login = server
            .http(
                "POST",
                "/_auth/login",
                &[
                    ("content-type", "application/json"),
                    ("x-csrftoken", &csrf),
                    ("cookie", &both),
                ],
                body.as_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(login.status, 200, "{}", login.text());
        let logged_in = login.cookie("ferrule_session").unwrap();
        assert_ne!(logged_in, before, "a login gives the session a new id");

        // The late handshake must not hand the browser a session of its own: as the last
        // answer to arrive, its cookie would replace the logged-in one. It gets no cookie, its
        // CONNECT is refused, and the client connects again with the cookie the browser holds by
        // then.
        let url = format!("ws://{}/_event/?EIO=4&transport=websocket", server.addr());
        let mut upgrade = url.into_client_request().unwrap();
        upgrade
            .headers_mut()
            .insert("cookie", before.parse().unwrap());
        let (_ws, answer) = tokio_tungstenite::connect_async(upgrade).await.unwrap();
        assert!(
            answer.headers().get("set-cookie").is_none(),
            "a late handshake was given a session: {:?}",
            answer.headers().get("set-cookie")
        );
        let late = server
            .client_with(ClientOptions::default().header("cookie", before.clone()))
            .await;
        match late {
            Err(ferrule::testing::TestError::Refused(why)) => {
                assert!(why.to_string().contains("connect again"), "{why}");
            }
            Err(e) => panic!("refused for another reason: {e}"),
            Ok(c) => panic!("a late handshake was taken, with cookies {:?}", c.cookies()),
        }
        let mut again = server
            .client_with(ClientOptions::default().header("cookie", logged_in.clone()))
            .await
            .unwrap();
        assert_eq!(again.cookies().as_deref(), Some(logged_in.as_str()));
        let auth = again.hydrate().await.unwrap();
        assert_eq!(auth.delta["auth_state"]["username"], "alice");

        // A cookie of a session nobody replaced (long expired, or never known) still gets a
        // fresh session, so a browser holding a dead cookie heals.
        let unknown = "ferrule_session=AAAAAAAAAAAAAAAAAAAAAA";
        let healed = server
            .client_with(ClientOptions::default().header("cookie", unknown))
            .await
            .unwrap();
        let cookies = healed.cookies().unwrap();
        assert!(
            cookies.contains("ferrule_session=") && !cookies.contains(unknown),
            "{cookies}"
        );
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_shorter_than_128_bits_are_refused() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let server = server(&db).await;
    let at_limit = "a".repeat(22);
    assert!(
        server
            .client_with(ClientOptions::default().token(at_limit))
            .await
            .is_ok()
    );
    let short = ClientOptions::default().token("a".repeat(21));
    match server.client_with(short).await {
        Err(ferrule::testing::TestError::Refused(data)) => {
            assert!(data.to_string().contains("128"), "{data}")
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("a 21-character token was accepted"),
    }
    let cookies = server.client().await.unwrap().cookies();
    let upload = post_upload(&server, &"b".repeat(21), cookies.as_deref()).await;
    assert_eq!(upload.status, 400);
    server.stop().await.unwrap();
    db.cleanup().await;
}

const BOUNDARY: &str = "tabbindingboundary";

async fn post_upload(
    server: &TestServer,
    token: &str,
    cookie: Option<&str>,
) -> ferrule::testing::TestResponse {
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{BOUNDARY}--\r\n"
    );
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let mut headers = vec![
        ("content-type", ct.as_str()),
        ("ferrule-client-token", token),
        ("ferrule-event-handler", "cart_state.attach"),
    ];
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    server
        .http("POST", "/_upload", &headers, body.as_bytes())
        .await
        .unwrap()
}

/// An attacker's own session (its socket and cookie) planted in a victim's browser before the
/// victim logs in: the victim's tab, with `item` in its cart and `anonymous` in the basket.
async fn planted_browser(server: &TestServer, item: &str) -> (TestClient, String, TestClient) {
    let attacker = server.client().await.unwrap();
    let planted = attacker.cookies().unwrap();
    let mut victim = server
        .client_with(ClientOptions::default().header("cookie", planted.clone()))
        .await
        .unwrap();
    add(&mut victim, item).await;
    victim
        .call("basket_state.put", json!("anonymous"))
        .await
        .unwrap();
    (attacker, planted, victim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_session_cookie_stops_seeing_the_states_once_its_owner_logs_in() {
    each_backend(async |db| {
        let server = server(db).await;
        let (mut attacker, planted, mut victim) = planted_browser(&server, "before-login").await;
        // Before the login the two share the anonymous session, as Django's sessions do.
        assert_eq!(basket(&mut attacker).await, "anonymous");

        let login = socket_login(&mut victim, "alice", "wonderland1").await;
        assert_eq!(login.delta["auth_state"]["username"], "alice");
        // The victim's tab carries its states into the login...
        assert_eq!(login.delta["cart_state"]["items"], json!(["before-login"]));
        assert_eq!(login.delta["basket_state"]["note"], "anonymous");
        victim
            .call("basket_state.put", json!("alice's address"))
            .await
            .unwrap();
        // ...and the planted cookie's sockets, old and new, see nothing of them from here on.
        attacker.set_timeout(std::time::Duration::from_millis(500));
        while let Ok(pushed) = attacker.next_update().await {
            assert_ne!(
                pushed.delta.get("basket_state").map(|b| &b["note"]),
                Some(&json!("alice's address")),
                "a push of the logged-in session reached the planted cookie"
            );
        }
        attacker.set_timeout(std::time::Duration::from_secs(10));
        assert_eq!(basket(&mut attacker).await, "");
        // A new socket with the planted cookie is told its session changed (the login ended
        // it moments ago) and gets nothing.
        let again = server
            .client_with(ClientOptions::default().header("cookie", planted))
            .await;
        assert!(
            matches!(again, Err(ferrule::testing::TestError::Refused(_))),
            "a socket with the planted cookie was taken"
        );
        // The victim's reload, with the cookie the login handed over, finds both.
        victim.follow_session(&login).await.unwrap();
        let mut reloaded = server
            .client_with(ClientOptions::default().tab_of(&victim))
            .await
            .unwrap();
        assert_eq!(items(&mut reloaded).await, json!(["before-login"]));
        assert_eq!(basket(&mut reloaded).await, "alice's address");
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_over_http_moves_the_browsers_tabs_and_leaves_the_planted_cookie_behind() {
    each_backend(async |db| {
        let server = server(db).await;
        let (mut attacker, planted, victim) = planted_browser(&server, "cart item").await;
        // The login form, posted over HTTP with the browser's (planted) cookie.
        let (csrf, csrf_cookie) = server.csrf().await.unwrap();
        let body = json!({ "username": "alice", "password": "wonderland1" }).to_string();
        let login = server
            .http(
                "POST",
                "/_auth/login",
                &[
                    ("content-type", "application/json"),
                    ("x-csrftoken", &csrf),
                    ("cookie", &format!("{planted}; {csrf_cookie}")),
                ],
                body.as_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(login.status, 200, "{}", login.text());
        let logged_in = login.cookie("ferrule_session").unwrap();
        // The tab reconnects with the new cookie: its states come along.
        let mut reloaded = server
            .client_with(
                ClientOptions::default()
                    .token(victim.token())
                    .header("cookie", logged_in.clone()),
            )
            .await
            .unwrap();
        let full = reloaded.hydrate().await.unwrap();
        assert_eq!(full.delta["auth_state"]["username"], "alice");
        assert_eq!(full.delta["cart_state"]["items"], json!(["cart item"]));
        assert_eq!(full.delta["basket_state"]["note"], "anonymous");
        reloaded
            .call("basket_state.put", json!("alice's address"))
            .await
            .unwrap();
        assert_eq!(basket(&mut attacker).await, "");
        // Whatever the planted cookie writes afterwards stays with it.
        attacker
            .call("basket_state.put", json!("injected"))
            .await
            .unwrap();
        assert_eq!(basket(&mut reloaded).await, "alice's address");
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookieless_page_load_and_a_refused_upload_write_no_session_row() {
    each_backend(async |db| {
        let server = server(db).await;
        let rows = async || {
            use ferrule::db::sea_orm::{EntityTrait, PaginatorTrait};
            ferrule::db::entities::session::Entity::find()
                .count(&db.conn)
                .await
                .unwrap()
        };
        let before = rows().await;
        let html = [("accept", "text/html")];
        let mut handed = Vec::new();
        for _ in 0..20 {
            let page = server.http("GET", "/page", &html, b"").await.unwrap();
            assert_eq!(page.status, 200);
            handed.push(page.cookie("ferrule_session").expect("an id with the page"));
        }
        for cookie in [None, Some("ferrule_session=AAAAAAAAAAAAAAAAAAAAAA")] {
            let upload = post_upload(&server, &"u".repeat(22), cookie).await;
            assert_eq!(upload.status, 409, "{}", upload.text());
            assert!(
                upload.text().contains("reload the page"),
                "{}",
                upload.text()
            );
            assert!(upload.cookie("ferrule_session").is_none());
        }
        assert_eq!(
            rows().await,
            before,
            "page loads and refused uploads wrote rows"
        );
        // The page's socket stores its session under the id the page handed out.
        let tab = server
            .client_with(ClientOptions::default().header("cookie", handed[0].clone()))
            .await
            .unwrap();
        assert_eq!(tab.cookies().as_deref(), Some(handed[0].as_str()));
        assert_eq!(rows().await, before + 1);
        // An id nobody handed out is no session a client can pick: it gets a fresh one.
        let made_up = "ferrule_session=AAAAAAAAAAAAAAAAAAAAAA";
        let fresh = server
            .client_with(ClientOptions::default().header("cookie", made_up))
            .await
            .unwrap();
        assert!(!fresh.cookies().unwrap().contains(made_up));
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_keeps_its_rooms_through_its_login_and_leaves_them_at_logout() {
    each_backend(async |db| {
        let server = server(db).await;
        let mut tab = server.client().await.unwrap();
        tab.call("cart_state.join", json!("lobby")).await.unwrap();
        let mut other = server.client().await.unwrap();
        other.call("cart_state.join", json!("lobby")).await.unwrap();
        let heard = async |tab: &mut TestClient| {
            tab.set_timeout(std::time::Duration::from_millis(700));
            let mut heard = false;
            while let Ok(u) = tab.next_update().await {
                heard |= u.events_named("shout").next().is_some();
            }
            heard
        };
        socket_login(&mut tab, "alice", "wonderland1").await;
        other
            .call("cart_state.shout", json!("lobby"))
            .await
            .unwrap();
        assert!(
            heard(&mut tab).await,
            "the login took the tab out of its room"
        );
        tab.set_timeout(std::time::Duration::from_secs(10));
        tab.call("cart_state.logout", json!(null)).await.unwrap();
        other
            .call("cart_state.shout", json!("lobby"))
            .await
            .unwrap();
        assert!(
            !heard(&mut tab).await,
            "a logged-out tab still hears its rooms"
        );
        server.stop().await.unwrap();
    })
    .await;
}
