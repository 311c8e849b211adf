//! Page loaders (`#[on_load]`): a page's data is in its first HTML, loaded through the app's
//! middleware chain, and a tab gets it again with its `_hydrate` and when it navigates, without
//! sending a load of its own.

use std::sync::{Arc, Mutex};

use ferrule::middleware::{self, Next, Request};
use ferrule::testing::{ClientOptions, TestServer};
use ferrule::{App, Error, EventContext, StateUpdate};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;
use serde::{Deserialize, Serialize};

/// The books the shelf shows; tests change it between loads.
#[derive(Clone, Default)]
struct Library(Arc<Mutex<Vec<String>>>);

/// Who the app's middleware says is reading (from the `x-reader` header).
#[derive(Clone)]
struct Reader(String);

/// The shelf a page shows.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ShelfState {
    books: Vec<String>,
    /// Who the middleware said was reading when the shelf was loaded.
    reader: String,
    /// How many times a loader ran on this state.
    loads: u32,
}

#[ferrule::state]
impl ShelfState {
    /// Reads the shelf, filtered by the page's `?q=`.
    #[on_load("/shelf", "/genre/{name}")]
    async fn load(&mut self, ctx: EventContext) -> Result<(), Error> {
        let library = ctx
            .extension::<Library>()
            .ok_or_else(|| Error::internal("no library"))?;
        let q = ctx.query("q").unwrap_or_default();
        self.books = library
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b.contains(&q))
            .cloned()
            .collect();
        self.reader = ctx
            .extension::<Reader>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        self.loads += 1;
        Ok(())
    }

    /// What only a logged-in user may load.
    #[on_load("/vault")]
    #[login_required]
    async fn open_vault(&mut self, _ctx: EventContext) {
        self.books = vec!["The secret ledger".to_owned()];
    }
}

/// A second state the shelf page loads: both loaders run, in one answer.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct VisitsState {
    visits: u32,
}

#[ferrule::state]
impl VisitsState {
    #[on_load("/shelf")]
    async fn visit(&mut self, _ctx: EventContext) {
        self.visits += 1;
    }
}

#[component]
fn Shelf() -> impl IntoView {
    let shelf = ferrule::ui::use_state::<ShelfState>();
    view! {
        <ul id="books">
            <For each=move || shelf.get().books key=|b| b.clone() let:book>
                <li class="book">{book}</li>
            </For>
        </ul>
        <p id="reader">{move || shelf.get().reader}</p>
    }
}

#[component]
fn Root() -> impl IntoView {
    view! {
        <ferrule::ui::FerruleRouter>
            <Routes fallback=|| "Not found">
                <Route path=path!("") view=Shelf/>
                <Route path=path!("/shelf") view=Shelf/>
                <Route path=path!("/vault") view=Shelf/>
            </Routes>
        </ferrule::ui::FerruleRouter>
    }
}

async fn reader(mut req: Request, next: Next) -> Result<middleware::Response, Error> {
    let name = req
        .headers()
        .get("x-reader")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    req.extensions_mut().insert(Reader(name));
    next.run(req).await
}

async fn server(library: &Library) -> TestServer {
    let app = App::new()
        .settings(ferrule::Settings::default())
        .extension(library.clone())
        .state::<ShelfState>()
        .state::<VisitsState>()
        .middleware(middleware::from_fn("reader", reader))
        .merge(ferrule::ssr::pages(
            ferrule::ssr::site_options("page-load-test"),
            ferrule::ssr::shell("Shelf", Root),
            Root,
        ));
    TestServer::start(app).await.unwrap()
}

fn library(books: &[&str]) -> Library {
    Library(Arc::new(Mutex::new(
        books.iter().map(|b| (*b).to_owned()).collect(),
    )))
}

fn shelf(update: &StateUpdate) -> ShelfState {
    let fields = update
        .delta
        .get("shelf_state")
        .unwrap_or_else(|| panic!("no shelf_state in {update:?}"));
    serde_json::from_value(serde_json::Value::Object(fields.clone())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_html_of_a_page_lists_what_its_loader_read_through_the_middleware() {
    let books = library(&["Dune", "Emma", "Emmanuelle"]);
    let server = server(&books).await;

    let page = server
        .http("GET", "/shelf", &[("x-reader", "ada")], b"")
        .await
        .unwrap();
    let html = page.text();
    assert!(html.contains(r#"<li class="book">Dune</li>"#), "{html}");
    assert!(html.contains(r#"<li class="book">Emma</li>"#), "{html}");
    assert!(
        html.contains(">ada</p>"),
        "the middleware ran first: {html}"
    );

    // The page's query reaches the loader.
    let html = server
        .http("GET", "/shelf?q=Emm", &[], b"")
        .await
        .unwrap()
        .text();
    assert!(!html.contains(">Dune<"), "{html}");
    assert!(html.contains(">Emmanuelle<"), "{html}");

    // A page without a loader renders the state's default.
    let html = server.http("GET", "/", &[], b"").await.unwrap().text();
    assert!(!html.contains(r#"class="book""#), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_that_connects_on_a_page_gets_its_data_in_the_hydrate() {
    let books = library(&["Dune"]);
    let server = server(&books).await;
    // A page load's epoch: events it resends are answered once, but its loaders always run.
    let options = ClientOptions::default()
        .header("x-reader", "grace")
        .epoch("page-1");
    let mut tab = server.client_with(options).await.unwrap();

    let full = tab.hydrate_at("/shelf").await.unwrap();
    let state = shelf(&full);
    assert_eq!(state.books, ["Dune"]);
    assert_eq!(state.reader, "grace", "through the chain");
    assert_eq!(state.loads, 1);
    assert_eq!(
        full.delta["visits_state"]["visits"], 1,
        "every loader of the page ran: {full:?}"
    );

    // A reconnect on the same page loads it again: what changed meanwhile shows.
    books.0.lock().unwrap().push("Emma".to_owned());
    let again = shelf(&tab.hydrate_at("/shelf").await.unwrap());
    assert_eq!(again.books, ["Dune", "Emma"]);
    assert_eq!(again.loads, 2);

    // On a page without loaders the hydrate runs none.
    let home = shelf(&tab.hydrate_at("/").await.unwrap());
    assert_eq!(home.loads, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_that_navigates_to_a_page_gets_what_its_loader_changed() {
    let books = library(&["Dune", "Emma"]);
    let server = server(&books).await;
    let mut tab = server.client().await.unwrap();
    assert_eq!(shelf(&tab.hydrate_at("/").await.unwrap()).loads, 0);

    let moved = tab.navigate("/genre/classics?q=Em").await.unwrap();
    assert!(moved.is_final, "one final answer: {moved:?}");
    let state = shelf(&moved);
    assert_eq!(state.books, ["Emma"], "a pattern's page, with its query");
    assert_eq!(state.loads, 1);

    // Moving to a page without loaders changes nothing, and is answered.
    let nowhere = tab.navigate("/about").await.unwrap();
    assert!(nowhere.is_final && nowhere.delta.is_empty(), "{nowhere:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarded_loader_does_not_run_for_an_anonymous_visitor() {
    let books = library(&[]);
    let server = server(&books).await;

    let html = server.http("GET", "/vault", &[], b"").await.unwrap().text();
    assert!(!html.contains("secret ledger"), "{html}");

    let mut tab = server.client().await.unwrap();
    let full = tab.hydrate_at("/vault").await.unwrap();
    assert!(shelf(&full).books.is_empty(), "{full:?}");
    let to_login = full
        .events_named("_redirect")
        .next()
        .and_then(|r| r.path().map(str::to_owned));
    assert_eq!(
        to_login.as_deref(),
        Some("/login?next=%2Fvault"),
        "sent to log in, as the event would be: {full:?}"
    );
}

/// A loader on a path that is not a route pattern.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct BadPatternState {}

#[ferrule::state]
impl BadPatternState {
    #[on_load("/a/{unclosed")]
    async fn load_it(&mut self, _ctx: EventContext) {}
}

/// A loader registered by hand on a handler that takes a payload.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct PayloadState {
    n: i64,
}

impl PayloadState {
    async fn set(&mut self, _ctx: EventContext, n: i64) {
        self.n = n;
    }
}

impl ferrule::State for PayloadState {
    fn handlers(h: &mut ferrule::Handlers<Self>) {
        h.on("set", Self::set).on_load("/n");
    }
}

impl ferrule::protocol::StateName for PayloadState {}

#[test]
fn a_loader_the_app_could_not_run_is_refused_at_startup() {
    let err = App::new()
        .settings(ferrule::Settings::default())
        .state::<BadPatternState>()
        .into_parts()
        .expect_err("a bad pattern is refused");
    assert!(
        err.to_string().contains("`/a/{unclosed`"),
        "names the pattern: {err}"
    );

    let err = App::new()
        .settings(ferrule::Settings::default())
        .state::<PayloadState>()
        .into_parts()
        .expect_err("a loader with a payload is refused");
    assert!(err.to_string().contains("takes a payload"), "{err}");
}
