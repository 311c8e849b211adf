//! The account pages: log in, register, and a private page. The forms are Ferrule's, plain HTML
//! (they work before the client loads); a failed post comes back to its page, where a flash
//! message says why (the layout's `<Toasts/>` shows it).
//! The header's "Log in · Register" / "username · Log out" is `ferrule::ui::AccountMenu`.

use ferrule::{t, ui};
use leptos::prelude::*;

/// `Log in`: Ferrule's form, which sends the browser on to `?next=` (or `/`).
#[component]
pub fn Login() -> impl IntoView {
    view! {
        <h1>{t!("log-in-title")}</h1>
        <ui::LoginForm/>
    }
}

/// `Register`: creates the account and logs it in.
#[component]
pub fn Register() -> impl IntoView {
    view! {
        <h1>{t!("register-title")}</h1>
        <ui::RegisterForm email=true/>
    }
}

/// Only reachable when logged in: the `private_pages` middleware (`src/server.rs`) redirects
/// anonymous requests to the login page before this renders.
#[component]
pub fn Private() -> impl IntoView {
    view! {
        <h1>{t!("private-title")}</h1>
        <p>{t!("private-text")}</p>
    }
}
