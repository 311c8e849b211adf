//! Flash messages end to end on a real SQLite file: added by a handler or over HTTP, shown once,
//! as a toast in an event's answer or in the page rendered after a redirect.

use ferrule::testing::{ClientOptions, TestDatabase, TestResponse, TestServer};
use ferrule::{App, Error, EventContext, Messages, ToastLevel};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;
use serde::{Deserialize, Serialize};

/// A cart whose handlers say what they did.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CartState {
    items: u32,
}

#[ferrule::state]
impl CartState {
    async fn add_item(&mut self, ctx: EventContext) {
        self.items += 1;
        ctx.messages().success("Added a cup to your cart.");
    }

    async fn look(&mut self, _ctx: EventContext) {}

    async fn overspend(&mut self, ctx: EventContext) -> Result<(), Error> {
        self.items += 100;
        ctx.messages().success("Added a hundred cups.");
        Err(Error::bad_request("That is too many cups."))
    }
}

#[component]
fn Root() -> impl IntoView {
    view! {
        <ferrule::ui::FerruleRouter>
            <Routes fallback=|| "Not found">
                <Route path=path!("/login") view=ferrule::ui::LoginForm/>
                <Route path=path!("") view=|| view! { <h1>"Home"</h1> }/>
            </Routes>
            <ferrule::ui::Toasts/>
        </ferrule::ui::FerruleRouter>
    }
}

async fn server() -> TestServer {
    let db = TestDatabase::create("sqlite://messages.sqlite3")
        .await
        .unwrap();
    TestServer::start_on(db, |db| {
        App::new()
            .database(db)
            .settings(ferrule::Settings::default())
            .state::<CartState>()
            .route(
                "/saved",
                axum::routing::get(|messages: Messages| async move {
                    messages.info("Saved over HTTP.").await?;
                    Ok::<_, Error>(axum::response::Redirect::to("/"))
                }),
            )
            .merge(ferrule::ssr::pages(
                ferrule::ssr::site_options("messages-test"),
                ferrule::ssr::shell("Messages", Root),
                Root,
            ))
    })
    .await
    .unwrap()
}

fn toasts(update: &ferrule::StateUpdate) -> Vec<(ToastLevel, String)> {
    update
        .events_named("_toast")
        .map(|t| (t.level().unwrap(), t.message().unwrap().to_owned()))
        .collect()
}

async fn page(server: &TestServer, path: &str, cookie: &str) -> String {
    let resp = server
        .http("GET", path, &[("cookie", cookie)], b"")
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.text()
}

/// The texts of a rendered page's toasts.
fn toasts_of(html: &str) -> Vec<String> {
    html.split(r#"class="ferrule-toast-message">"#)
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap_or_default().to_owned())
        .collect()
}

/// The `ferrule_session=<id>` the answer set.
fn session_cookie(resp: &TestResponse) -> String {
    resp.cookie("ferrule_session").expect("a session cookie")
}

#[tokio::test]
async fn a_handlers_message_arrives_in_its_answer_once() {
    let server = server().await;
    let mut client = server.client().await.unwrap();
    let added = client.send(AddItem).await.unwrap();
    assert_eq!(
        toasts(&added),
        [(ToastLevel::Success, "Added a cup to your cart.".to_owned())]
    );
    let next = client.send(Look).await.unwrap();
    assert_eq!(toasts(&next), [], "shown once: {next:?}");
}

#[tokio::test]
async fn a_failed_handlers_message_goes_with_its_state() {
    let server = server().await;
    let mut client = server.client().await.unwrap();
    let refused = client.send(Overspend).await.unwrap();
    assert_eq!(
        toasts(&refused),
        [(ToastLevel::Error, "That is too many cups.".to_owned())]
    );
    assert_eq!(toasts(&client.send(Look).await.unwrap()), []);
}

#[tokio::test]
async fn a_message_added_over_http_arrives_with_the_next_event_once() {
    let server = server().await;
    let saved = server.get("/saved").await.unwrap();
    assert_eq!(saved.status, 303, "{}", saved.text());
    let cookie = session_cookie(&saved);
    let mut client = server
        .client_with(ClientOptions::default().header("cookie", cookie))
        .await
        .unwrap();
    let added = client.send(AddItem).await.unwrap();
    assert_eq!(
        toasts(&added),
        [
            (ToastLevel::Info, "Saved over HTTP.".to_owned()),
            (ToastLevel::Success, "Added a cup to your cart.".to_owned())
        ]
    );
    assert_eq!(toasts(&client.send(Look).await.unwrap()), []);
}

#[tokio::test]
async fn a_message_added_over_http_shows_on_the_next_page_only() {
    let server = server().await;
    let cookie = session_cookie(&server.get("/saved").await.unwrap());
    let first = page(&server, "/", &cookie).await;
    assert!(
        first.contains("ferrule-toast ferrule-toast-info"),
        "the page after the redirect shows it: {first}"
    );
    assert_eq!(toasts_of(&first), ["Saved over HTTP."]);
    let reload = page(&server, "/", &cookie).await;
    assert_eq!(toasts_of(&reload), Vec::<String>::new(), "once: {reload}");
}

#[tokio::test]
async fn a_wrong_login_comes_back_with_a_message_not_a_query() {
    let server = server().await;
    let (csrf, csrf_cookie) = server.csrf().await.unwrap();
    let form = format!("username=nobody&password=wrong&next=%2Fprivate&csrf_token={csrf}");
    let referer = server.url("/login?next=%2Fprivate");
    let refused = server
        .http(
            "POST",
            "/_auth/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", csrf_cookie.as_str()),
                ("referer", referer.as_str()),
            ],
            form.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 303, "{}", refused.text());
    let back = refused.header("location").unwrap().to_owned();
    assert_eq!(back, "/login?next=%2Fprivate", "no text rides the URL");
    let cookie = session_cookie(&refused);
    let login = page(&server, &back, &cookie).await;
    assert!(
        login.contains("ferrule-toast ferrule-toast-error"),
        "the login page says why: {login}"
    );
    assert_eq!(toasts_of(&login), ["Wrong username or password."]);
    let again = page(&server, &back, &cookie).await;
    assert_eq!(toasts_of(&again), Vec::<String>::new(), "once: {again}");
}

#[tokio::test]
async fn a_crafted_error_query_shows_nothing() {
    let server = server().await;
    let page = server
        .get("/login?error=%3Cscript%3Ealert(%27pwned%27)%3C%2Fscript%3E")
        .await
        .unwrap()
        .text();
    assert!(page.contains(r#"action="/_auth/login""#), "{page}");
    assert!(
        !page.contains("pwned"),
        "the query's text is not on the page: {page}"
    );
}

#[tokio::test]
async fn login_and_logout_say_so_on_the_next_page() {
    let server = server().await;
    server
        .create_user("ada", "analytical engine")
        .await
        .unwrap();
    let (csrf, csrf_cookie) = server.csrf().await.unwrap();
    let form = format!("username=ada&password=analytical+engine&next=%2F&csrf_token={csrf}");
    let logged_in = server
        .http(
            "POST",
            "/_auth/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", csrf_cookie.as_str()),
            ],
            form.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(logged_in.status, 303, "{}", logged_in.text());
    let session = session_cookie(&logged_in);
    let home = page(&server, "/", &session).await;
    assert_eq!(toasts_of(&home), ["You are logged in as ada."], "{home}");

    let both = format!("{session}; {csrf_cookie}");
    let logged_out = server
        .http(
            "POST",
            "/_auth/logout",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", both.as_str()),
            ],
            format!("next=%2F&csrf_token={csrf}").as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(logged_out.status, 303, "{}", logged_out.text());
    let after = session_cookie(&logged_out);
    let home = page(&server, "/", &after).await;
    assert_eq!(toasts_of(&home), ["You are logged out."], "{home}");
}
