//! The account pages: log in, register, and who is logged in with a log-out button. Plain HTML
//! forms: they work before the client loads, and the CSRF token comes from the request (server
//! render) or the cookie (after client-side navigation).

use ferrule::ui;
use leptos::prelude::*;

/// `Log in`: posts to `/_auth/login`, which sends the browser on to `?next=` (or `/`).
#[component]
pub fn Login() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let next = move || query.with(|q| q.get("next").unwrap_or_else(|| "/".to_owned()));
    // A failed post comes back here with `?error=` (wrong password, too many tries).
    let error = move || query.with(|q| q.get("error").unwrap_or_default());
    view! {
        <h1>"Log in"</h1>
        <p class="form-error" id="form-error">{error}</p>
        <form method="post" action="/_auth/login">
            <input type="hidden" name="csrf_token" value=ui::csrf_token()/>
            <input type="hidden" name="next" value=next/>
            <label>"Username " <input name="username" autocomplete="username"/></label>
            <label>"Password " <input name="password" type="password" autocomplete="current-password"/></label>
            <button type="submit">"Log in"</button>
        </form>
    }
}

/// `Register`: creates the account and logs it in.
#[component]
pub fn Register() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    // A refused account (name taken, password too short) comes back here with `?error=`.
    let error = move || query.with(|q| q.get("error").unwrap_or_default());
    view! {
        <h1>"Register"</h1>
        <p class="form-error" id="form-error">{error}</p>
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

/// The header's account links: who is logged in, and log in, register and log out.
#[component]
pub fn UserMenu() -> impl IntoView {
    let auth = ui::use_auth();
    let who = auth.field(|a| {
        if a.is_authenticated {
            a.username.clone()
        } else {
            "anonymous".to_owned()
        }
    });
    view! {
        <a href="/private">"Private page"</a>
        <a href="/login">"Log in"</a>
        <a href="/register">"Register"</a>
        <span id="user">{move || who.get()}</span>
        <form method="post" action="/_auth/logout">
            <input type="hidden" name="csrf_token" value=ui::csrf_token()/>
            <input type="hidden" name="next" value="/"/>
            <button id="logout" type="submit">"Log out"</button>
        </form>
    }
}

/// Only reachable when logged in: the `private_pages` middleware (`src/server.rs`) redirects
/// anonymous requests to the login page before this renders.
#[component]
pub fn Private() -> impl IntoView {
    view! {
        <h1>"Private"</h1>
        <p>"Only logged-in users see this page."</p>
    }
}
