//! {{project-name}}: a Ferrule app. The same crate is the server (feature `ssr`, the default)
//! and the browser client (feature `hydrate`, built for wasm32 by `ferrule build`).

use ferrule::ui::{self, ConnectionIndicator, Toasts};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;

{% if auth %}pub mod auth;
{% endif %}pub mod counter;
pub mod notes;
// ferrule:modules (`ferrule generate` adds modules above this line)
#[cfg(feature = "ssr")]
mod server;
#[cfg(feature = "ssr")]
pub use server::{DEFAULT_DATABASE, MAX_TENANT_LEN, Tenant, app};

pub use counter::{CounterState, Increment};

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
            <a href="/">"{{project-name}}"</a>
            <a href="/notes">"Notes"</a>
            // ferrule:nav (`ferrule generate` adds links above this line)
{% if auth %}            <ui::AccountMenu/>
{% endif %}            <ConnectionIndicator/>
        </header>
        <main>
            <Routes fallback=|| view! { <h1>"Not found"</h1> }>
                <Route path=path!("") view=Home/>
                <Route path=path!("/notes") view=Notes/>
{% if auth %}                <Route path=path!("/login") view=auth::Login/>
                <Route path=path!("/register") view=auth::Register/>
                <Route path=path!("/private") view=auth::Private/>
{% endif %}                // ferrule:routes (`ferrule generate` adds routes above this line)
            </Routes>
        </main>
        <Toasts/>
    }
}

/// The app's own table: the latest notes, and a form to add one{% if auth %} (logged-in users; anonymous
/// users are sent to log in){% endif %}.
#[component]
fn Notes() -> impl IntoView {
    let state = ui::use_state::<notes::NotesState>();
    let list = state.field(|s| s.notes.clone());
    let draft = RwSignal::new(String::new());
    let form = ui::use_form();
    // No load here: `NotesState::load` runs before the page renders (`#[on_load]`).
    view! {
        <h1>"Notes"</h1>
        <form on:submit=move |ev| {
            ev.prevent_default();
            let note = notes::NewNote { body: draft.get() };
            if form.check(&note) {
                form.send(notes::AddNote { note });
                draft.set(String::new());
            }
        }>
            <ui::Field label="New note" name="body" id="note" form=form>
                <input name="body" maxlength="500" prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))/>
            </ui::Field>
            <button id="add-note" type="submit">"Add"</button>
        </form>
        <ul id="notes">
            <For each=move || list.get() key=|n| n.id let:note>
                <li>{note.body} " — " <em>{note.author}</em></li>
            </For>
        </ul>
    }
}

/// The home page: what the app is, the counter, and what to try next.
#[component]
fn Home() -> impl IntoView {
    let counter = ui::use_state::<CounterState>();
    let count = counter.field(|s| s.count);
    let tenant = counter.field(|s| s.tenant.clone());
    let emit = ui::use_emit();
    view! {
        <h1>"Welcome to {{project-name}}"</h1>
        <p class="ferrule-lead">
            "A Ferrule app: pages rendered on the server and kept live over a socket, with "
            "sessions{% if auth %}, accounts{% endif %} and a database already wired. Everything here is ordinary code in "
            <code>"src/"</code> " to read and change."
        </p>
        <section class="ferrule-card">
            <h2>"The counter"</h2>
            <div class="ferrule-row">
                <output id="count">{move || count.get()}</output>
                <button id="increment" on:click=move |_| { emit.send(Increment); }>"Increment"</button>
            </div>
            <p class="ferrule-muted">
                "A click sends " <code>"Increment"</code> " over the socket, through the app's "
                "middleware, to " <code>"CounterState::increment"</code> " in " <code>"src/counter.rs"</code>
                "; the new count comes back as a change to the state. The " <code>"tenant"</code>
                " middleware in " <code>"src/server.rs"</code> " tagged the last click: "
                <code id="tenant">{move || tenant.get()}</code>
            </p>
        </section>
        <h2>"What to try next"</h2>
        <ul>
            <li><a href="/notes">"Notes"</a> ": the app's own table (" <code>"src/notes.rs"</code> "), a sea-orm entity with its migration."</li>
{% if auth %}            <li><a href="/register">"Register"</a> ", then open the " <a href="/private">"private page"</a> " (" <code>"src/auth.rs"</code> "): the " <code>"private_pages"</code> " middleware sends anonymous visitors to log in."</li>
{% endif %}            <li>"Run " <code>"ferrule generate scaffold product name:string price:i64"</code> " for a table with a page of its own."</li>
            <li>"Edit " <code>"src/counter.rs"</code> " while " <code>"ferrule dev"</code> " runs: this page reloads itself with the change."</li>
        </ul>
    }
}

/// The browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(Root);
}
