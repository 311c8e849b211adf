//! The account pages: log in, register, and who is logged in with a log-out button. The forms
//! are plain HTML (they work before the client loads); a failed post comes back with `?error=`,
//! which the forms show.

use ferrule::ui;
use leptos::prelude::*;

/// `Log in`: Ferrule's form, which sends the browser on to `?next=` (or `/`).
#[component]
pub fn Login() -> impl IntoView {
    view! {
        <h1>"Log in"</h1>
        <ui::LoginForm/>
    }
}

/// `Register`: creates the account and logs it in.
#[component]
pub fn Register() -> impl IntoView {
    view! {
        <h1>"Register"</h1>
        <ui::RegisterForm email=true/>
    }
}

/// The header's account links: "Log in · Register" to anonymous visitors, "username · Log out"
/// to a logged-in user. Rendered on the server with the request's user, so a reload shows the
/// right links before any script runs.
#[component]
pub fn UserMenu() -> impl IntoView {
    let auth = ui::use_auth();
    let logged_in = auth.field(|a| a.is_authenticated);
    let who = auth.field(|a| a.username.clone());
    view! {
        <Show
            when=move || logged_in.get()
            fallback=|| view! {
                <a href="/login">"Log in"</a>
                " · "
                <a href="/register">"Register"</a>
            }
        >
            <a href="/private">"Private page"</a>
            <span id="user">{move || who.get()}</span>
            " · "
            <form method="post" action="/_auth/logout">
                <input type="hidden" name="csrf_token" value=ui::csrf_token()/>
                <input type="hidden" name="next" value="/"/>
                <button id="logout" type="submit">"Log out"</button>
            </form>
        </Show>
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
