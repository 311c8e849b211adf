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
