//! The smallest Ferrule app: one state, one page, one custom middleware, and a handler only
//! logged-in users may run.
//!
//! The same crate is the server (feature `ssr`, the default) and the browser client (feature
//! `hydrate`, built for wasm32 by `cargo xtask site`). The state and its actions are shared, so
//! the button and the handler name `Increment` once, in Rust.

// Server-only names are imported for the server build only: the handlers that use them exist
// only there.
#[cfg(feature = "ssr")]
use ferrule::EventContext;
use ferrule::ui::{self, ConnectionIndicator, Toasts};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
mod server;
#[cfg(feature = "ssr")]
pub use server::app;

// ANCHOR: state
/// The count every tab sees and changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterState {
    /// The current count.
    pub count: i64,
}

/// One method per handler. The attribute writes, for the page and the server alike, an action
/// type per handler (`Increment`, `Add { amount }`, `Reset`); the methods themselves and their
/// registration exist only in the server build.
#[ferrule::state]
impl CounterState {
    /// Adds one.
    pub async fn increment(&mut self, _ctx: EventContext) {
        self.count += 1;
    }

    /// Adds `amount` (may be negative).
    pub async fn add(&mut self, _ctx: EventContext, amount: i64) -> Result<(), ferrule::Error> {
        self.count = self
            .count
            .checked_add(amount)
            .ok_or_else(|| ferrule::Error::bad_request("That would overflow the counter."))?;
        Ok(())
    }

    /// Back to zero; logged-in users only (anonymous users are sent to log in).
    #[login_required]
    pub async fn reset(&mut self, ctx: EventContext) {
        tracing::info!(user = ctx.user().username().unwrap_or(""), "counter reset");
        self.count = 0;
    }
}
// ANCHOR_END: state

/// The app's root component: the router and the Ferrule runtime.
#[component]
pub fn Root() -> impl IntoView {
    view! {
        <ui::FerruleRouter>
            <Layout/>
        </ui::FerruleRouter>
    }
}

#[component]
fn Layout() -> impl IntoView {
    view! {
        <header>
            // `mounted` puts the prefix a host app may mount the counter under in front
            // (`counter-host` serves it under `/counter`); at the root it changes nothing.
            <a href=ui::mounted("/")>"Counter"</a>
            " "
            <a id="private" href=ui::mounted("/private")>"Private page"</a>
            " "
            <ConnectionIndicator/>
        </header>
        <main>
            <Routes fallback=|| view! { <h1>"Not found"</h1> }>
                <Route path=path!("") view=Home/>
                <Route path=path!("/login") view=Login/>
                <Route path=path!("/private") view=Private/>
            </Routes>
        </main>
        <Toasts/>
    }
}

// ANCHOR: home
#[component]
fn Home() -> impl IntoView {
    let counter = ui::use_state::<CounterState>();
    let count = counter.field(|s| s.count);
    let emit = ui::use_emit();
    view! {
        <h1>"Ferrule counter"</h1>
        <p>"Count: " <output id="count">{move || count.get()}</output></p>
        <button id="increment" on:click=move |_| { emit.send(Increment); }>"Increment"</button>
        " "
        <button id="add-ten" on:click=move |_| { emit.send(Add { amount: 10 }); }>"Add 10"</button>
        " "
        <button id="overflow" on:click=move |_| { emit.send(Add { amount: i64::MAX }); }>
            "Add too much"
        </button>
        " "
        <button id="reset" on:click=move |_| { emit.send(Reset); }>"Reset (logged-in users)"</button>
    }
}
// ANCHOR_END: home

/// Ferrule's log-in form: a plain HTML form that works before the client loads.
#[component]
fn Login() -> impl IntoView {
    view! {
        <h1>"Log in"</h1>
        <ui::LoginForm/>
    }
}

/// Only reachable when logged in: the app's `private_pages` middleware redirects anonymous
/// requests to the login page before this renders.
#[component]
fn Private() -> impl IntoView {
    view! {
        <h1>"Private"</h1>
        <p>"Only logged-in users see this page."</p>
    }
}

/// The browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(Root);
}
