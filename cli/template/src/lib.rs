//! {{project-name}}: a Ferrule app. The same crate is the server (feature `ssr`, the default)
//! and the browser client (feature `hydrate`, built for wasm32 by `ferrule build`).

use ferrule::t;
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
{% if auth %}    // Staff see the way to the admin.
    let staff = ui::use_auth().field(|a| a.is_staff);
{% endif %}    view! {
        <header>
            <a href="/">"{{project-name}}"</a>
            <a href="/notes">{t!("nav-notes")}</a>
            // ferrule:nav (`ferrule generate` adds links above this line)
{% if auth %}            <Show when=move || staff.get()>
                <a id="admin-link" href="/admin">{t!("nav-admin")}</a>
            </Show>
            <ui::AccountMenu/>
{% endif %}            <ui::LanguageSwitcher/>
            <ConnectionIndicator/>
        </header>
        <main>
            <Routes fallback=|| view! { <h1>{t!("not-found")}</h1> }>
                <Route path=path!("") view=Home/>
                <Route path=path!("/notes") view=Notes/>
{% if auth %}                <Route path=path!("/login") view=auth::Login/>
                <Route path=path!("/register") view=auth::Register/>
                <Route path=path!("/forgot-password") view=auth::ForgotPassword/>
                <Route path=path!("/reset-password") view=auth::ResetPassword/>
                <Route path=path!("/private") view=auth::Private/>
                <Route path=path!("/admin") view=ferrule::admin::AdminPage/>
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
        <h1>{t!("notes-title")}</h1>
        <form on:submit=move |ev| {
            ev.prevent_default();
            let note = notes::NewNote { body: draft.get() };
            if form.check(&note) {
                form.send(notes::AddNote { note });
                draft.set(String::new());
            }
        }>
            <ui::Field label=t!("notes-new") name="body" id="note" form=form>
                <input name="body" maxlength="500" prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))/>
            </ui::Field>
            <button id="add-note" type="submit">{t!("notes-add")}</button>
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
        // Every text comes from locales/<language>/app.ftl, in the page's language.
        <h1>{t!("home-title")}</h1>
        <p class="ferrule-lead">{t!("home-lead")}</p>
        <section class="ferrule-card">
            <h2>{t!("counter-title")}</h2>
            <div class="ferrule-row">
                <output id="count">{move || count.get()}</output>
                <button id="increment" on:click=move |_| { emit.send(Increment); }>{t!("counter-increment")}</button>
            </div>
            <p class="ferrule-muted">
                {t!("counter-help")} " " <code id="tenant">{move || tenant.get()}</code>
            </p>
        </section>
        <h2>{t!("next-title")}</h2>
        <ul>
            <li><a href="/notes">{t!("nav-notes")}</a> ": " {t!("next-notes")}</li>
{% if auth %}            <li><a href="/register">{t!("next-register")}</a> ", " <a href="/private">{t!("next-private")}</a></li>
{% endif %}            <li>{t!("next-scaffold")}</li>
            <li>{t!("next-edit")}</li>
            <li>{t!("next-language")}</li>
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
