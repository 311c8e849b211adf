//! {{project-name}}: a Ferrule app. The same crate is the server (feature `ssr`, the default)
//! and the browser client (feature `hydrate`, built for wasm32 by `ferrule build`).

use ferrule::ui::{self, ConnectionIndicator, Toasts};
use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;
use serde::{Deserialize, Serialize};

pub mod notes;
#[cfg(feature = "ssr")]
mod server;
#[cfg(feature = "ssr")]
pub use server::{Tenant, app, shell};

/// The count this tab sees and changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterState {
    /// The current count.
    pub count: i64,
    /// The tenant the last click came from (put in the request by the `tenant` middleware).
    pub tenant: String,
}

/// `counter_state.increment`: adds one.
#[derive(Serialize, Deserialize)]
pub struct Increment;

ferrule::actions!(CounterState {
    increment: Increment
});

/// The app's root component: the router and the Ferrule runtime.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <Layout/>
        </Router>
    }
}

#[component]
fn Layout() -> impl IntoView {
    ui::provide();
    let auth = ui::use_auth();
    let who = auth.field(|a| {
        if a.is_authenticated {
            a.username.clone()
        } else {
            "anonymous".to_owned()
        }
    });
    view! {
        <header>
            <a href="/">"{{project-name}}"</a>
            <a href="/notes">"Notes"</a>
            <a href="/private">"Private page"</a>
            <a href="/login">"Log in"</a>
            <a href="/register">"Register"</a>
            <span id="user">{move || who.get()}</span>
            <form method="post" action="/_auth/logout">
                <input type="hidden" name="csrf_token" value=ui::csrf_token()/>
                <input type="hidden" name="next" value="/"/>
                <button id="logout" type="submit">"Log out"</button>
            </form>
            <ConnectionIndicator/>
        </header>
        <main>
            <Routes fallback=|| view! { <h1>"Not found"</h1> }>
                <Route path=path!("") view=Home/>
                <Route path=path!("/login") view=Login/>
                <Route path=path!("/register") view=Register/>
                <Route path=path!("/notes") view=Notes/>
                <Route path=path!("/private") view=Private/>
            </Routes>
        </main>
        <Toasts/>
    }
}

/// Plain HTML forms: they work before the client loads, and the CSRF token comes from the
/// request (server render) or the cookie (after client-side navigation).
#[component]
fn Login() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let next = move || query.with(|q| q.get("next").unwrap_or_else(|| "/".to_owned()));
    view! {
        <h1>"Log in"</h1>
        <form method="post" action="/_auth/login">
            <input type="hidden" name="csrf_token" value=ui::csrf_token()/>
            <input type="hidden" name="next" value=next/>
            <label>"Username " <input name="username" autocomplete="username"/></label>
            <label>"Password " <input name="password" type="password" autocomplete="current-password"/></label>
            <button type="submit">"Log in"</button>
        </form>
    }
}

#[component]
fn Register() -> impl IntoView {
    view! {
        <h1>"Register"</h1>
        <form method="post" action="/_auth/register">
            <input type="hidden" name="csrf_token" value=ui::csrf_token()/>
            <input type="hidden" name="next" value="/"/>
            <label>"Username " <input name="username" autocomplete="username"/></label>
            <label>"E-mail " <input name="email" type="email" autocomplete="email"/></label>
            <label>"Password " <input name="password" type="password" autocomplete="new-password"/></label>
            <button type="submit">"Create my account"</button>
        </form>
    }
}

/// The app's own table: the latest notes, and a form to add one (logged-in users; anonymous
/// users are sent to log in).
#[component]
fn Notes() -> impl IntoView {
    let state = ui::use_state::<notes::NotesState>();
    let list = state.field(|s| s.notes.clone());
    let emit = ui::use_emit();
    let draft = RwSignal::new(String::new());
    // Effects run in the browser only, once the page is live.
    Effect::new(move |_| {
        emit.send(notes::LoadNotes);
    });
    view! {
        <h1>"Notes"</h1>
        <form on:submit=move |ev| {
            ev.prevent_default();
            emit.send(notes::AddNote { body: draft.get() });
            draft.set(String::new());
        }>
            <input id="note" maxlength="500" prop:value=move || draft.get()
                on:input=move |ev| draft.set(event_target_value(&ev))/>
            <button id="add-note" type="submit">"Add"</button>
        </form>
        <ul id="notes">
            <For each=move || list.get() key=|n| n.id let:note>
                <li>{note.body} " — " <em>{note.author}</em></li>
            </For>
        </ul>
    }
}

/// Only reachable when logged in: the `private_pages` middleware redirects anonymous requests
/// to the login page before this renders.
#[component]
fn Private() -> impl IntoView {
    view! {
        <h1>"Private"</h1>
        <p>"Only logged-in users see this page."</p>
    }
}

#[component]
fn Home() -> impl IntoView {
    let counter = ui::use_state::<CounterState>();
    let count = counter.field(|s| s.count);
    let tenant = counter.field(|s| s.tenant.clone());
    let emit = ui::use_emit();
    view! {
        <h1>"Welcome to {{project-name}}"</h1>
        <p>"Count: " <output id="count">{move || count.get()}</output></p>
        <p>"Tenant: " <span id="tenant">{move || tenant.get()}</span></p>
        <button id="increment" on:click=move |_| { emit.send(Increment); }>"Increment"</button>
    }
}

/// The browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
