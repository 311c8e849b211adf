//! Sessions and users end to end, on a real SQLite file and a real PostgreSQL server, through
//! a real Socket.IO client and plain HTTP.

mod dbsupport;

use dbsupport::{Backend, TestDb};
use ferrule::auth::{Auth, NewUser};
use ferrule::testing::{ClientOptions, TestClient, TestResponse, TestServer};
use ferrule::{App, Error, EventContext, Handlers, Settings, State, StateUpdate};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Clone, Default, Serialize, Deserialize)]
struct VaultState {
    who: Option<String>,
    secret: Option<String>,
    refunds: u32,
}

/// Whether `event` ran on `c` (a refusal toast says why not).
async fn runs(c: &mut TestClient, event: &str, state: &str) -> bool {
    let u = c.call(event, json!({})).await.unwrap();
    if u.delta.contains_key(state) {
        return true;
    }
    assert_eq!(
        u.events_named("_toast").next().and_then(|t| t.message()),
        Some("You do not have permission to do this."),
        "{u:?}"
    );
    false
}

/// What an admin page takes back reaches the user's next event, not the next cache expiry.
async fn groups_and_permissions_taken_back_reach_the_next_event(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let cookie = f.server.login("bob", "builder123").await.unwrap();
    let mut bob = client_with_cookie(&f.server, &cookie).await;
    let refund = async |bob: &mut TestClient| runs(bob, "vault_state.refund", "vault_state").await;
    f.auth.grant("bob", "shop.refund").await.unwrap();
    assert!(refund(&mut bob).await);
    f.auth.revoke("bob", "shop.refund").await.unwrap();
    assert!(!refund(&mut bob).await, "a revoked permission");

    f.auth.add_to_group("bob", "support").await.unwrap();
    f.auth.grant_group("support", "shop.refund").await.unwrap();
    assert!(refund(&mut bob).await);
    f.auth.remove_from_group("bob", "support").await.unwrap();
    assert!(!refund(&mut bob).await, "out of the group that granted it");
    let groups = bob.hydrate().await.unwrap().delta["auth_state"]["groups"].clone();
    assert_eq!(groups, json!([]));

    f.auth.add_to_group("bob", "support").await.unwrap();
    assert!(refund(&mut bob).await);
    f.auth.revoke_group("support", "shop.refund").await.unwrap();
    assert!(!refund(&mut bob).await, "the group no longer grants it");
    f.auth.grant_group("support", "shop.refund").await.unwrap();
    f.auth.grant_group("billing", "shop.invoice").await.unwrap();
    assert_eq!(f.auth.group_names().await.unwrap(), ["billing", "support"]);
    assert_eq!(
        f.auth.permission_codes().await.unwrap(),
        ["shop.invoice", "shop.refund"]
    );
    assert!(refund(&mut bob).await);
    f.auth.delete_group("support").await.unwrap();
    assert!(!refund(&mut bob).await, "a deleted group grants nothing");
    assert_eq!(f.auth.group_names().await.unwrap(), ["billing"]);

    // Taking back what was never given changes nothing and is no error.
    f.auth.revoke("bob", "shop.never").await.unwrap();
    f.auth.remove_from_group("bob", "nobody").await.unwrap();
    f.auth.revoke_group("nobody", "shop.refund").await.unwrap();
    assert!(matches!(
        f.auth.revoke("nobody", "shop.refund").await,
        Err(ferrule::auth::AuthError::NoSuchUser(_))
    ));
    f.db.cleanup().await;
}

/// Listing, searching and paging accounts; the staff and superuser flags and deleting an
/// account reach the account's open sockets at their next event.
async fn accounts_are_listed_flagged_and_deleted(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let names = |page: &ferrule::auth::UserPage| -> Vec<String> {
        page.users.iter().map(|u| u.username.clone()).collect()
    };
    let all = f.auth.list_users("", 0, 50).await.unwrap();
    assert_eq!(
        (names(&all), all.total),
        (vec!["alice".into(), "bob".into()], 2)
    );
    let found = f.auth.list_users("ALI", 0, 50).await.unwrap();
    assert_eq!((names(&found), found.total), (vec!["alice".into()], 1));
    let by_mail = f.auth.list_users("bob@example", 0, 50).await.unwrap();
    assert_eq!(names(&by_mail), ["bob"]);
    let second = f.auth.list_users("", 1, 1).await.unwrap();
    assert_eq!((names(&second), second.total), (vec!["bob".into()], 2));
    assert!(!all.users[1].is_staff && all.users[1].is_active);

    let cookie = f.server.login("bob", "builder123").await.unwrap();
    let mut bob = client_with_cookie(&f.server, &cookie).await;
    assert!(!runs(&mut bob, "desk_state.staff_desk", "desk_state").await);
    f.auth.set_staff("bob", true).await.unwrap();
    assert!(runs(&mut bob, "desk_state.staff_desk", "desk_state").await);
    assert!(!runs(&mut bob, "desk_state.root_desk", "desk_state").await);
    f.auth.set_superuser("bob", true).await.unwrap();
    assert!(runs(&mut bob, "desk_state.root_desk", "desk_state").await);
    f.auth.set_staff("bob", false).await.unwrap();
    f.auth.set_superuser("bob", false).await.unwrap();
    assert!(!runs(&mut bob, "desk_state.staff_desk", "desk_state").await);

    f.auth.delete_user("bob").await.unwrap();
    assert_eq!(
        whoami(&mut bob).await,
        None,
        "a deleted account is anonymous at once"
    );
    assert_eq!(f.auth.list_users("", 0, 50).await.unwrap().total, 1);
    assert!(f.auth.find_by_username("bob").await.unwrap().is_none());
    assert!(matches!(
        f.auth.delete_user("bob").await,
        Err(ferrule::auth::AuthError::NoSuchUser(_))
    ));
    f.db.cleanup().await;
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

impl VaultState {
    async fn whoami(&mut self, ctx: EventContext) {
        self.who = ctx.user().username().map(str::to_owned);
    }

    async fn secret(&mut self, _: EventContext) {
        self.secret = Some("42".into());
    }

    async fn refund(&mut self, _: EventContext) {
        self.refunds += 1;
    }

    async fn login(&mut self, ctx: EventContext, c: Credentials) -> Result<(), Error> {
        let user = ctx.login_with_password(&c.username, &c.password).await?;
        self.who = Some(user.username);
        Ok(())
    }

    async fn logout(&mut self, ctx: EventContext) -> Result<(), Error> {
        ctx.logout().await?;
        self.who = None;
        Ok(())
    }
}

impl ferrule::protocol::StateName for VaultState {}

impl State for VaultState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("whoami", Self::whoami);
        h.on("secret", Self::secret).login_required();
        h.on("refund", Self::refund)
            .permission_required("shop.refund");
        h.on("login", Self::login);
        h.on("logout", Self::logout);
    }
}

/// Guarded by the state macro's attributes, not by `Handlers`' methods.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct DeskState {
    staff_visits: u32,
    root_visits: u32,
}

#[ferrule::state]
impl DeskState {
    #[staff_required]
    async fn staff_desk(&mut self, _ctx: EventContext) {
        self.staff_visits += 1;
    }

    #[superuser_required]
    async fn root_desk(&mut self, _ctx: EventContext) {
        self.root_visits += 1;
    }
}

struct Fixture {
    server: TestServer,
    db: TestDb,
    auth: Auth,
}

async fn fixture(backend: Backend, settings: Settings) -> Option<Fixture> {
    let db = TestDb::new(backend).await?;
    let auth = Auth::new(db.conn.clone());
    for (name, pw) in [("alice", "wonderland1"), ("bob", "builder123")] {
        auth.create_user(NewUser {
            username: name.into(),
            email: Some(format!("{name}@example.com")),
            password: pw.into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    }
    let app = App::new()
        .settings(settings)
        .database(db.conn.clone())
        .state::<VaultState>()
        .state::<DeskState>()
        .route(
            "/staff",
            axum::routing::get(|| async { "staff only" }).route_layer(axum::middleware::from_fn(
                ferrule::auth::guard::require(ferrule::auth::guard::Guard::Staff, "/login"),
            )),
        )
        .route(
            "/me",
            axum::routing::get(|req: ferrule::middleware::Request| async move {
                let user = req
                    .extensions()
                    .get::<ferrule::CurrentUser>()
                    .cloned()
                    .unwrap_or_default();
                user.username().unwrap_or("anonymous").to_owned()
            }),
        );
    // Account changes go through the app's own Auth, as an admin page in the app would.
    let auth = app.auth().expect("the app has a database");
    let server = TestServer::start(app).await.unwrap();
    Some(Fixture { server, db, auth })
}

/// The `name=value` of a Set-Cookie header for `name`.
fn set_cookie(resp: &TestResponse, name: &str) -> Option<String> {
    resp.cookie(name)
}

fn set_cookie_attrs(resp: &TestResponse, name: &str) -> Option<String> {
    resp.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.clone())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// A CSRF token from any GET.
async fn csrf(server: &TestServer) -> String {
    server.csrf().await.unwrap().0
}

/// POSTs JSON with a fresh CSRF token, plus `cookie` (`name=value`) when given.
async fn post_json(
    server: &TestServer,
    path: &str,
    cookie: Option<&str>,
    body: Value,
) -> TestResponse {
    let token = csrf(server).await;
    let mut cookies = format!("csrftoken={token}");
    if let Some(c) = cookie {
        cookies.push_str("; ");
        cookies.push_str(c);
    }
    let headers = [
        ("content-type", "application/json"),
        ("x-csrftoken", token.as_str()),
        ("cookie", cookies.as_str()),
    ];
    server
        .http("POST", path, &headers, body.to_string().as_bytes())
        .await
        .unwrap()
}

/// Logs in over HTTP.
async fn http_login(
    server: &TestServer,
    username: &str,
    password: &str,
    cookie: Option<&str>,
) -> TestResponse {
    post_json(
        server,
        "/_auth/login",
        cookie,
        json!({"username": username, "password": password}),
    )
    .await
}

async fn client_with_cookie(server: &TestServer, cookie: &str) -> TestClient {
    server
        .client_with(ClientOptions::default().header("cookie", cookie))
        .await
        .unwrap()
}

fn who(u: &StateUpdate) -> Option<Value> {
    u.delta.get("vault_state")?.get("who").cloned()
}

async fn whoami(c: &mut TestClient) -> Option<String> {
    c.call("vault_state.whoami", json!({})).await.unwrap();
    let full = c.hydrate().await.unwrap();
    full.delta["vault_state"]["who"].as_str().map(str::to_owned)
}

async fn get_me(server: &TestServer, cookie: &str) -> String {
    server
        .http("GET", "/me", &[("cookie", cookie)], b"")
        .await
        .unwrap()
        .text()
}

async fn anonymous_and_logged_in_users(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let mut anon = f.server.client().await.unwrap();
    assert_eq!(whoami(&mut anon).await, None);
    let resp = http_login(&f.server, "alice", "wonderland1", None).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let attrs = set_cookie_attrs(&resp, "ferrule_session").expect("session cookie");
    assert!(
        attrs.contains("HttpOnly") && attrs.contains("SameSite=Lax"),
        "{attrs}"
    );
    let cookie = set_cookie(&resp, "ferrule_session").unwrap();
    let mut alice = client_with_cookie(&f.server, &cookie).await;
    assert_eq!(whoami(&mut alice).await.as_deref(), Some("alice"));
    let full = alice.hydrate().await.unwrap();
    assert_eq!(full.delta["auth_state"]["username"], "alice");
    assert_eq!(full.delta["auth_state"]["is_authenticated"], true);
    assert_eq!(get_me(&f.server, &cookie).await, "alice");
    f.db.cleanup().await;
}

async fn login_inside_a_handler_switches_socket_and_browser(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let mut c = f.server.client().await.unwrap();
    let u = c
        .call(
            "vault_state.login",
            json!({"username": "alice", "password": "wonderland1"}),
        )
        .await
        .unwrap();
    assert_eq!(who(&u), Some(json!("alice")));
    assert_eq!(
        u.delta["auth_state"]["is_authenticated"], true,
        "auth_state ships with the login"
    );
    let login = u.clone();
    // The socket's session switched on the server at once.
    let u = c.call("vault_state.secret", json!({})).await.unwrap();
    assert_eq!(u.delta["vault_state"]["secret"], "42");
    assert!(
        !u.delta.contains_key("auth_state"),
        "unchanged auth_state is not shipped again"
    );
    // The code is the tab's own: another browser (no cookie of this tab, another tab token)
    // presenting it is refused, and that uses it up.
    let mut stranger = f.server.client().await.unwrap();
    let stolen = stranger.follow_session(&login).await.unwrap();
    assert_eq!(stolen.status, 400, "{}", stolen.text());
    assert!(stolen.text().contains("another tab"), "{}", stolen.text());
    assert!(set_cookie(&stolen, "ferrule_session").is_none());
    // So the tab asks for a fresh one by logging in again, and trades it as the browser does;
    // a second try fails.
    let login = c
        .call(
            "vault_state.login",
            json!({"username": "alice", "password": "wonderland1"}),
        )
        .await
        .unwrap();
    let resp = c.follow_session(&login).await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        set_cookie_attrs(&resp, "ferrule_session")
            .unwrap()
            .contains("HttpOnly")
    );
    let cookie = set_cookie(&resp, "ferrule_session").unwrap();
    let again = c.follow_session(&login).await.unwrap();
    assert_eq!(again.status, 400);
    assert_eq!(get_me(&f.server, &cookie).await, "alice");
    let mut tab2 = client_with_cookie(&f.server, &cookie).await;
    assert_eq!(whoami(&mut tab2).await.as_deref(), Some("alice"));
    f.db.cleanup().await;
}

async fn logout_inside_a_handler(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let cookie = f.server.login("bob", "builder123").await.unwrap();
    let mut c = client_with_cookie(&f.server, &cookie).await;
    assert_eq!(whoami(&mut c).await.as_deref(), Some("bob"));
    let u = c.call("vault_state.logout", json!({})).await.unwrap();
    assert_eq!(u.delta["auth_state"]["is_authenticated"], false);
    // The exchange is CSRF-checked like every unsafe request: without the token it is refused
    // (and the code stays good for the browser's real try).
    let code = u.events_named("_session").next().unwrap().payload["code"].clone();
    let forged = f
        .server
        .http(
            "POST",
            "/_auth/session",
            &[
                ("content-type", "application/json"),
                ("cookie", c.cookies().unwrap().as_str()),
                ("ferrule-client-token", c.token()),
            ],
            json!({ "code": code }).to_string().as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(forged.status, 403, "{}", forged.text());
    let resp = c.follow_session(&u).await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        whoami(&mut c).await,
        None,
        "the socket is anonymous at once"
    );
    // The browser moves to the fresh session the logout made (it holds the tab's new binding
    // and nothing of bob's).
    let fresh = set_cookie(&resp, "ferrule_session").expect("a fresh session cookie");
    assert_ne!(fresh, cookie);
    assert_eq!(get_me(&f.server, &fresh).await, "anonymous");
    assert_eq!(
        get_me(&f.server, &cookie).await,
        "anonymous",
        "the old session is gone"
    );
    f.db.cleanup().await;
}

async fn login_changes_the_session_id(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let planted = f.server.login("bob", "builder123").await.unwrap();
    let resp = http_login(&f.server, "alice", "wonderland1", Some(&planted)).await;
    let fresh = set_cookie(&resp, "ferrule_session").unwrap();
    assert_ne!(
        fresh, planted,
        "a login must not keep a session id it was given"
    );
    assert_eq!(
        get_me(&f.server, &planted).await,
        "anonymous",
        "the planted id is void"
    );
    assert_eq!(get_me(&f.server, &fresh).await, "alice");
    f.db.cleanup().await;
}

async fn expired_session_is_anonymous(backend: Backend) {
    use ferrule::db::sea_orm::ConnectionTrait;
    // The expiry is changed behind the app's back (as another node would), so no cache here.
    let no_cache = Settings {
        auth_cache_ms: 0,
        ..Settings::default()
    };
    let Some(f) = fixture(backend, no_cache).await else {
        return;
    };
    let cookie = f.server.login("alice", "wonderland1").await.unwrap();
    f.db.conn
        .execute_unprepared("UPDATE ferrule_sessions SET expiry_date = 1")
        .await
        .unwrap();
    let mut c = client_with_cookie(&f.server, &cookie).await;
    assert_eq!(whoami(&mut c).await, None);
    assert_eq!(get_me(&f.server, &cookie).await, "anonymous");
    let store = ferrule::session::SeaOrmStore::new(f.db.conn.clone());
    // Its row, and the ended row of the id its page load was handed, if any.
    assert!(store.delete_expired().await.unwrap() >= 1);
    let id = cookie
        .split(';')
        .find_map(|c| c.trim().strip_prefix("ferrule_session="))
        .unwrap()
        .to_owned();
    use ferrule::db::sea_orm::EntityTrait;
    let row = ferrule::db::entities::session::Entity::find_by_id(id)
        .one(&f.db.conn)
        .await
        .unwrap();
    assert!(row.is_none(), "the sweeper removes it");
    f.db.cleanup().await;
}

async fn tampered_cookie_is_anonymous(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let cookie = f.server.login("alice", "wonderland1").await.unwrap();
    let mut tampered = cookie.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [
        tampered.as_str(),
        "ferrule_session=garbage!!",
        "ferrule_session=",
    ] {
        let mut c = client_with_cookie(&f.server, bad).await;
        let u = c.call("vault_state.whoami", json!({})).await.unwrap();
        assert!(u.events.is_empty(), "no error shown to the user: {u:?}");
        assert_eq!(whoami(&mut c).await, None, "{bad}");
        assert_eq!(get_me(&f.server, bad).await, "anonymous");
    }
    f.db.cleanup().await;
}

async fn inactive_user_is_anonymous(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let cookie = f.server.login("alice", "wonderland1").await.unwrap();
    let mut c = client_with_cookie(&f.server, &cookie).await;
    assert_eq!(whoami(&mut c).await.as_deref(), Some("alice"));
    f.auth.set_active("alice", false).await.unwrap();
    let u = c.call("vault_state.whoami", json!({})).await.unwrap();
    assert_eq!(u.delta["auth_state"]["is_authenticated"], false);
    assert_eq!(whoami(&mut c).await, None);
    let resp = http_login(&f.server, "alice", "wonderland1", None).await;
    assert_eq!(resp.status, 401, "inactive users cannot log in");
    f.db.cleanup().await;
}

async fn wrong_credentials_look_the_same(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let unknown = http_login(&f.server, "mallory", "whatever123", None).await;
    let wrong = http_login(&f.server, "alice", "not-her-password", None).await;
    assert_eq!((unknown.status, wrong.status), (401, 401));
    assert_eq!(unknown.text(), wrong.text());
    assert_eq!(
        wrong.json().unwrap()["error"],
        "Wrong username or password."
    );
    assert!(
        set_cookie(&wrong, "ferrule_session").is_none(),
        "no session cookie on failure"
    );
    f.db.cleanup().await;
}

async fn repeated_failures_are_rate_limited(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    for _ in 0..5 {
        assert_eq!(
            http_login(&f.server, "alice", "guess-guess", None)
                .await
                .status,
            401
        );
    }
    let locked = http_login(&f.server, "alice", "wonderland1", None).await;
    assert_eq!(locked.status, 429, "{}", locked.text());
    assert_eq!(
        http_login(&f.server, "bob", "builder123", None)
            .await
            .status,
        200,
        "other users unaffected"
    );
    f.db.cleanup().await;
}

/// The texts of the update's toasts.
fn toasts(u: &StateUpdate) -> Vec<String> {
    u.events_named(ferrule::ClientCommand::TOAST)
        .filter_map(|e| e.message().map(str::to_owned))
        .collect()
}

/// A JSON login from client address `ip`, through a trusted proxy (the test server's peer).
async fn login_from(server: &TestServer, ip: &str, username: &str, password: &str) -> u16 {
    let (token, csrf_cookie) = server.csrf().await.unwrap();
    let body = json!({"username": username, "password": password}).to_string();
    server
        .http(
            "POST",
            "/_auth/login",
            &[
                ("content-type", "application/json"),
                ("x-csrftoken", token.as_str()),
                ("cookie", csrf_cookie.as_str()),
                ("x-forwarded-for", ip),
            ],
            body.as_bytes(),
        )
        .await
        .unwrap()
        .status
}

fn behind_a_proxy() -> Settings {
    Settings {
        trusted_proxies: vec!["127.0.0.1/32".into()],
        ..Settings::default()
    }
}

async fn spraying_usernames_from_one_address_is_refused(backend: Backend) {
    let Some(f) = fixture(backend, behind_a_proxy()).await else {
        return;
    };
    let per_address = ferrule::auth::throttle::PER_ADDRESS as usize;
    for i in 0..per_address {
        let status = login_from(&f.server, "10.1.1.1", &format!("user{i}"), "Summer2026!").await;
        assert_eq!(status, 401, "failure {i} is an ordinary one");
    }
    // At the limit: this address is refused for any username, the right password too.
    assert_eq!(
        login_from(&f.server, "10.1.1.1", "alice", "wonderland1").await,
        429
    );
    assert_eq!(
        login_from(&f.server, "10.2.2.2", "alice", "wonderland1").await,
        200,
        "other addresses unaffected"
    );
    f.db.cleanup().await;
}

async fn one_username_from_many_addresses_is_refused(backend: Backend) {
    let Some(f) = fixture(backend, behind_a_proxy()).await else {
        return;
    };
    let per_username = ferrule::auth::throttle::PER_USERNAME as usize;
    for i in 0..per_username {
        let ip = format!("10.3.{}.{}", i / 200, i % 200 + 1);
        assert_eq!(login_from(&f.server, &ip, "alice", "guess").await, 401);
    }
    // The username is under attack: an address that already guessed it is refused, a new one
    // gets a single guess...
    assert_eq!(
        login_from(&f.server, "10.3.0.1", "alice", "guess").await,
        429
    );
    assert_eq!(
        login_from(&f.server, "10.4.0.1", "alice", "guess").await,
        401
    );
    assert_eq!(
        login_from(&f.server, "10.4.0.1", "alice", "guess").await,
        429
    );
    // ...and the owner, from an address with no failures, still gets in: no targeted lockout.
    assert_eq!(
        login_from(&f.server, "10.9.9.9", "alice", "wonderland1").await,
        200
    );
    assert_eq!(
        login_from(&f.server, "10.3.0.1", "bob", "builder123").await,
        200,
        "other users unaffected"
    );
    f.db.cleanup().await;
}

async fn usernames_are_normalised_and_unique_whatever_their_case(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    // Full-width letters are `alice` after NFKC; `ALICE` is her in another case.
    for look_alike in ["\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}", "ALICE", "Alice"] {
        let taken = f
            .auth
            .create_user(NewUser {
                username: look_alike.into(),
                password: "a-fresh-pass-9".into(),
                ..NewUser::default()
            })
            .await;
        assert!(
            taken.is_err_and(|e| e.to_string().contains("taken")),
            "{look_alike} registered beside alice"
        );
    }
    let made = f
        .auth
        .create_user(NewUser {
            username: "\u{ff23}arol".into(),
            password: "a-fresh-pass-9".into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    assert_eq!(made.username, "Carol", "stored NFKC-normalised");
    // She logs in under any case of her name.
    let resp = http_login(&f.server, "carol", "a-fresh-pass-9", None).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    f.db.cleanup().await;
}

async fn password_change_is_throttled_like_a_login(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let cookie = set_cookie(
        &http_login(&f.server, "alice", "wonderland1", None).await,
        "ferrule_session",
    )
    .expect("logged in");
    let change =
        |old: &'static str| json!({"old_password": old, "new_password": "a-brand-new-pass-7"});
    for _ in 0..ferrule::auth::throttle::PER_ADDRESS_AND_USERNAME {
        let resp = post_json(
            &f.server,
            "/_auth/password",
            Some(&cookie),
            change("guess-guess"),
        )
        .await;
        assert_eq!(resp.status, 400, "{}", resp.text());
    }
    let resp = post_json(
        &f.server,
        "/_auth/password",
        Some(&cookie),
        change("wonderland1"),
    )
    .await;
    assert_eq!(
        resp.status,
        429,
        "a stolen session is no unlimited guesser: {}",
        resp.text()
    );
    f.db.cleanup().await;
}

async fn logins_inside_handlers_are_throttled_too(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let mut c = f.server.client().await.unwrap();
    let attempt = |pw: &'static str| json!({"username": "alice", "password": pw});
    for _ in 0..ferrule::auth::throttle::PER_ADDRESS_AND_USERNAME {
        let u = c
            .call("vault_state.login", attempt("guess-guess"))
            .await
            .unwrap();
        assert!(toasts(&u).iter().any(|t| t.contains("Wrong")), "{u:?}");
    }
    let u = c
        .call("vault_state.login", attempt("wonderland1"))
        .await
        .unwrap();
    assert!(
        toasts(&u)
            .iter()
            .any(|t| t == ferrule::auth::throttle::THROTTLED_MESSAGE),
        "{u:?}"
    );
    assert_eq!(who(&u), None, "not logged in");
    // The form over HTTP from the same address is locked as well: one count for both.
    assert_eq!(
        http_login(&f.server, "alice", "wonderland1", None)
            .await
            .status,
        429
    );
    f.db.cleanup().await;
}

async fn csrf_is_required_for_unsafe_http(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let body = json!({"username": "alice", "password": "wonderland1"}).to_string();
    let refused = f
        .server
        .http(
            "POST",
            "/_auth/login",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 403);
    assert_eq!(refused.text(), "CSRF token missing or incorrect.");
    let token = csrf(&f.server).await;
    let wrong = f
        .server
        .http(
            "POST",
            "/_auth/login",
            &[
                ("content-type", "application/json"),
                ("x-csrftoken", "nope"),
                ("cookie", &format!("csrftoken={token}")),
            ],
            body.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(wrong.status, 403);
    // A wrong token of the right length: the comparison is of the bytes, not the lengths.
    let mut near: Vec<u8> = token.clone().into_bytes();
    let last = near.len() - 1;
    near[last] = if near[last] == b'0' { b'1' } else { b'0' };
    let near = String::from_utf8(near).unwrap();
    for (ct, header, body) in [
        ("application/json", Some(near.as_str()), body.clone()),
        (
            "application/x-www-form-urlencoded",
            None,
            format!("username=alice&password=wonderland1&csrf_token={near}"),
        ),
    ] {
        let cookie = format!("csrftoken={token}");
        let mut headers = vec![("content-type", ct), ("cookie", cookie.as_str())];
        headers.extend(header.map(|h| ("x-csrftoken", h)));
        let refused = f
            .server
            .http("POST", "/_auth/login", &headers, body.as_bytes())
            .await
            .unwrap();
        assert_eq!(refused.status, 403, "{ct}: {}", refused.text());
    }
    let form = format!("username=alice&password=wonderland1&csrf_token={token}&next=%2Forders");
    let ok = f
        .server
        .http(
            "POST",
            "/_auth/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", &format!("csrftoken={token}")),
            ],
            form.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(
        ok.status,
        303,
        "a form login redirects to next: {}",
        ok.text()
    );
    assert_eq!(ok.header("location"), Some("/orders"));
    f.db.cleanup().await;
}

async fn foreign_origin_cannot_open_the_socket(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let evil = ClientOptions::default().header("origin", "http://evil.example");
    assert!(matches!(
        f.server.client_with(evil).await,
        Err(ferrule::testing::TestError::Refused(_))
    ));
    let same = ClientOptions::default().header("origin", format!("http://{}", f.server.addr()));
    assert!(f.server.client_with(same).await.is_ok());
    f.db.cleanup().await;
    let settings = Settings {
        allowed_origins: vec!["https://shop.example".into()],
        ..Settings::default()
    };
    let Some(f) = fixture(backend, settings).await else {
        return;
    };
    let listed = ClientOptions::default().header("origin", "https://shop.example");
    assert!(f.server.client_with(listed).await.is_ok());
    // The list adds to the same origin, it does not replace it.
    let same = ClientOptions::default().header("origin", format!("http://{}", f.server.addr()));
    assert!(f.server.client_with(same).await.is_ok());
    // Listed origins match whole, never by prefix.
    for near in [
        "https://shop.example.evil.io",
        "https://shop.examplex",
        "http://shop.example",
    ] {
        let refused = ClientOptions::default().header("origin", near);
        assert!(
            matches!(
                f.server.client_with(refused).await,
                Err(ferrule::testing::TestError::Refused(_))
            ),
            "{near}"
        );
    }
    f.db.cleanup().await;
}

async fn guards_redirect_or_refuse(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let mut anon = f.server.client().await.unwrap();
    let u = anon
        .call_from(
            "vault_state.secret",
            json!({}),
            ferrule::RouterData {
                path: "/vault".into(),
                query: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        u.events_named("_redirect").next().unwrap().path(),
        Some("/login?next=%2Fvault")
    );
    assert!(!u.delta.contains_key("vault_state"));

    let cookie = f.server.login("bob", "builder123").await.unwrap();
    let mut bob = client_with_cookie(&f.server, &cookie).await;
    let u = bob.call("vault_state.refund", json!({})).await.unwrap();
    let toast = u.events_named("_toast").next().expect("a toast");
    assert_eq!(
        toast.message(),
        Some("You do not have permission to do this.")
    );
    f.auth.add_to_group("bob", "support").await.unwrap();
    f.auth.grant_group("support", "shop.refund").await.unwrap();
    let u = bob.call("vault_state.refund", json!({})).await.unwrap();
    assert_eq!(u.delta["vault_state"]["refunds"], 1);
    let full = bob.hydrate().await.unwrap();
    assert_eq!(full.delta["auth_state"]["groups"], json!(["support"]));
    f.db.cleanup().await;
}

/// `#[staff_required]` and `#[superuser_required]` on a handler refuse a logged-in user who is
/// not staff (or not a superuser), not only anonymous ones.
async fn the_macros_staff_and_superuser_guards_refuse_lesser_users(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    for (name, is_staff, is_superuser) in [("sam", true, false), ("root", false, true)] {
        f.auth
            .create_user(NewUser {
                username: name.into(),
                password: "gr4nite-Desk-77".into(),
                is_staff,
                is_superuser,
                ..NewUser::default()
            })
            .await
            .unwrap();
    }
    // Whether `event` ran for the user of `cookie`; a refusal says why.
    let ran = async |cookie: &str, event: &str| -> bool {
        let mut c = client_with_cookie(&f.server, cookie).await;
        let u = c.call(event, json!({})).await.unwrap();
        if u.delta.contains_key("desk_state") {
            return true;
        }
        let toast = u.events_named("_toast").next().expect("a refusal toast");
        assert_eq!(
            toast.message(),
            Some("You do not have permission to do this.")
        );
        false
    };
    let bob = f.server.login("bob", "builder123").await.unwrap();
    let sam = f.server.login("sam", "gr4nite-Desk-77").await.unwrap();
    let root = f.server.login("root", "gr4nite-Desk-77").await.unwrap();
    assert!(
        !ran(&bob, "desk_state.staff_desk").await,
        "a user who is not staff"
    );
    assert!(ran(&sam, "desk_state.staff_desk").await);
    assert!(
        !ran(&bob, "desk_state.root_desk").await,
        "a user who is not staff"
    );
    assert!(
        !ran(&sam, "desk_state.root_desk").await,
        "staff who is no superuser"
    );
    assert!(ran(&root, "desk_state.root_desk").await);
    assert!(
        ran(&root, "desk_state.staff_desk").await,
        "a superuser is staff"
    );
    f.db.cleanup().await;
}

async fn password_change_ends_other_sessions(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let laptop = f.server.login("alice", "wonderland1").await.unwrap();
    let phone = f.server.login("alice", "wonderland1").await.unwrap();
    let resp = post_json(
        &f.server,
        "/_auth/password",
        Some(&laptop),
        json!({"old_password": "wonderland1", "new_password": "looking-glass"}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let laptop = set_cookie(&resp, "ferrule_session").unwrap_or(laptop);
    assert_eq!(get_me(&f.server, &laptop).await, "alice");
    assert_eq!(get_me(&f.server, &phone).await, "anonymous");
    assert_eq!(
        http_login(&f.server, "alice", "looking-glass", None)
            .await
            .status,
        200
    );
    f.db.cleanup().await;
}

async fn registration_creates_and_logs_in_or_is_off(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let register = |body: Value| post_json(&f.server, "/_auth/register", None, body);
    let ok = register(json!({"username": "carol", "password": "carol-pass-1"})).await;
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(
        get_me(&f.server, &set_cookie(&ok, "ferrule_session").unwrap()).await,
        "carol"
    );
    let taken = register(json!({"username": "carol", "password": "carol-pass-1"})).await;
    assert_eq!(taken.status, 400);
    assert!(taken.text().contains("taken"), "{}", taken.text());
    let short = register(json!({"username": "dave", "password": "short"})).await;
    assert!(short.text().contains("at least 8"), "{}", short.text());
    for (password, why) in [
        ("password1", "too easy to guess"),
        ("football1", "too easy to guess"),
        ("1q2w3e4r5t6y", "too easy to guess"),
        ("dave1234", "similar to the username"),
        ("        ", "only spaces"),
        ("20260101", "only digits"),
    ] {
        let weak = register(json!({"username": "dave", "password": password})).await;
        assert_eq!(weak.status, 400, "{password}");
        assert!(weak.text().contains(why), "{password}: {}", weak.text());
    }
    // Alice's e-mail: the answer does not tell that it has an account; the new account is
    // made without it, and alice keeps hers.
    let probe = |email: &'static str, name: &'static str| {
        register(json!({"username": name, "password": "probe-pass-77", "email": email}))
    };
    let taken = probe("alice@example.com", "mallory").await;
    let free = probe("nobody@example.com", "mallet").await;
    assert_eq!((taken.status, free.status), (201, 201), "{}", taken.text());
    let strip = |t: String| t.replace("mallory", "NAME").replace("mallet", "NAME");
    assert_eq!(
        strip(taken.text()),
        strip(free.text()),
        "same answer either way"
    );
    assert_eq!(
        f.auth
            .find_by_username("mallory")
            .await
            .unwrap()
            .unwrap()
            .email,
        None
    );
    assert_eq!(
        f.auth
            .find_by_username("alice")
            .await
            .unwrap()
            .unwrap()
            .email
            .as_deref(),
        Some("alice@example.com")
    );
    let changed = ferrule::auth::Auth::new(f.db.conn.clone())
        .set_password("carol", "carol12345")
        .await;
    assert!(
        changed.is_err_and(|e| e.to_string().contains("similar")),
        "changing a password goes through the same rules"
    );
    f.db.cleanup().await;

    let Some(f) = fixture(
        backend,
        Settings {
            allow_register: false,
            ..Settings::default()
        },
    )
    .await
    else {
        return;
    };
    let off = post_json(
        &f.server,
        "/_auth/register",
        None,
        json!({"username": "erin", "password": "erin-pass-1"}),
    )
    .await;
    assert_eq!(off.status, 404);
    f.db.cleanup().await;

    let Some(f) = fixture(
        backend,
        Settings {
            register_reveals_taken_email: true,
            ..Settings::default()
        },
    )
    .await
    else {
        return;
    };
    let told = post_json(
        &f.server,
        "/_auth/register",
        None,
        json!({"username": "mallory", "password": "probe-pass-77", "email": "alice@example.com"}),
    )
    .await;
    assert_eq!(told.status, 400);
    assert!(told.text().contains("already used"), "{}", told.text());
    f.db.cleanup().await;
}

async fn http_routes_have_guards_too(backend: Backend) {
    let Some(f) = fixture(backend, Settings::default()).await else {
        return;
    };
    let anon = f.server.get("/staff").await.unwrap();
    assert_eq!(anon.status, 303);
    assert_eq!(anon.header("location"), Some("/login?next=%2Fstaff"));
    let cookie = f.server.login("bob", "builder123").await.unwrap();
    let bob = f
        .server
        .http("GET", "/staff", &[("cookie", &cookie)], b"")
        .await
        .unwrap();
    assert_eq!(bob.status, 403);
    assert_eq!(bob.text(), "You do not have permission to do this.");
    f.auth
        .create_user(NewUser {
            username: "sam".into(),
            password: "staff-pass-1".into(),
            is_staff: true,
            ..NewUser::default()
        })
        .await
        .unwrap();
    let cookie = f.server.login("sam", "staff-pass-1").await.unwrap();
    let sam = f
        .server
        .http("GET", "/staff", &[("cookie", &cookie)], b"")
        .await
        .unwrap();
    assert_eq!((sam.status, sam.text().as_str()), (200, "staff only"));
    f.db.cleanup().await;
}

async fn login_required_everywhere_guards_pages_and_events(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = App::new()
        .settings(Settings::default())
        .database(db.conn.clone())
        .state::<VaultState>()
        .middleware(ferrule::auth::guard::login_required_everywhere(
            &["/about", "/docs/"],
            "/login",
        ))
        .route("/about", axum::routing::get(|| async { "about" }))
        .route("/docs/intro", axum::routing::get(|| async { "intro" }))
        .route("/orders", axum::routing::get(|| async { "orders" }));
    let server = TestServer::start(app).await.unwrap();
    assert_eq!(server.get("/about").await.unwrap().status, 200);
    assert_eq!(server.get("/docs/intro").await.unwrap().status, 200);
    let orders = server.get("/orders").await.unwrap();
    assert_eq!(orders.header("location"), Some("/login?next=%2Forders"));
    let mut c = server.client().await.unwrap();
    let u = c
        .call_from(
            "vault_state.whoami",
            json!({}),
            ferrule::RouterData {
                path: "/orders".into(),
                query: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        u.events_named("_redirect").next().unwrap().path(),
        Some("/login?next=%2Forders")
    );
    let u = c
        .call_from(
            "vault_state.whoami",
            json!({}),
            ferrule::RouterData {
                path: "/about".into(),
                query: String::new(),
            },
        )
        .await
        .unwrap();
    assert!(u.events.is_empty(), "public pages' events run: {u:?}");
    db.cleanup().await;
}

async fn changes_by_another_process_show_within_the_cache_ttl(backend: Backend) {
    let settings = Settings {
        auth_cache_ms: 2000,
        ..Settings::default()
    };
    let Some(f) = fixture(backend, settings).await else {
        return;
    };
    let cookie = f.server.login("alice", "wonderland1").await.unwrap();
    let mut c = client_with_cookie(&f.server, &cookie).await;
    assert_eq!(whoami(&mut c).await.as_deref(), Some("alice"));
    // Another process (a second Auth on the same database) deactivates her.
    Auth::new(f.db.conn.clone())
        .set_active("alice", false)
        .await
        .unwrap();
    assert_eq!(
        whoami(&mut c).await.as_deref(),
        Some("alice"),
        "within auth_cache_ms the cached user is reused"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        whoami(&mut c).await,
        None,
        "seen once the cache entry is older than auth_cache_ms"
    );
    f.db.cleanup().await;
}

/// With `secure_cookies`, every cookie the server sets is `Secure` (HTTPS only).
async fn secure_cookies_are_secure(backend: Backend) {
    let settings = Settings {
        secure_cookies: true,
        ..Settings::default()
    };
    let Some(f) = fixture(backend, settings).await else {
        return;
    };
    let page = f.server.get("/").await.unwrap();
    let token = page.cookie("csrftoken").expect("a CSRF cookie");
    let set_cookies = |r: &ferrule::testing::TestResponse| -> Vec<String> {
        r.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.clone())
            .collect()
    };
    let csrf = set_cookies(&page);
    assert!(
        !csrf.is_empty() && csrf.iter().all(|c| c.contains("; Secure")),
        "{csrf:?}"
    );
    let value = token.split_once('=').unwrap().1;
    let form = format!("username=alice&password=wonderland1&csrf_token={value}");
    let login = f
        .server
        .http(
            "POST",
            "/_auth/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", token.as_str()),
            ],
            form.as_bytes(),
        )
        .await
        .unwrap();
    let session: Vec<String> = set_cookies(&login)
        .into_iter()
        .filter(|c| c.starts_with("ferrule_session="))
        .collect();
    assert_eq!(session.len(), 1, "{login:?}");
    assert!(session[0].contains("Secure"), "{session:?}");
    assert!(session[0].contains("HttpOnly"), "{session:?}");
    f.db.cleanup().await;
}

on_both!(
    secure_cookies_are_secure,
    changes_by_another_process_show_within_the_cache_ttl,
    http_routes_have_guards_too,
    login_required_everywhere_guards_pages_and_events,
    anonymous_and_logged_in_users,
    login_inside_a_handler_switches_socket_and_browser,
    logout_inside_a_handler,
    login_changes_the_session_id,
    expired_session_is_anonymous,
    tampered_cookie_is_anonymous,
    inactive_user_is_anonymous,
    wrong_credentials_look_the_same,
    repeated_failures_are_rate_limited,
    spraying_usernames_from_one_address_is_refused,
    one_username_from_many_addresses_is_refused,
    logins_inside_handlers_are_throttled_too,
    usernames_are_normalised_and_unique_whatever_their_case,
    password_change_is_throttled_like_a_login,
    csrf_is_required_for_unsafe_http,
    foreign_origin_cannot_open_the_socket,
    guards_redirect_or_refuse,
    the_macros_staff_and_superuser_guards_refuse_lesser_users,
    password_change_ends_other_sessions,
    registration_creates_and_logs_in_or_is_off,
    groups_and_permissions_taken_back_reach_the_next_event,
    accounts_are_listed_flagged_and_deleted,
);
