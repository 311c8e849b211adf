//! The account pages: log in, register, a forgotten password, and a private page where the
//! e-mail address changes. The forms are Ferrule's, plain HTML
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
        <p><a id="forgot-password" href="/forgot-password">{t!("ferrule-forgot-password")}</a></p>
    }
}

/// `Forgot your password?`: asks for a link by e-mail. The answer is the same whether or not
/// an account has the address; the mail goes out through a job (`mail_url` in Ferrule.toml
/// says where: in development it is printed in the server's terminal).
#[component]
pub fn ForgotPassword() -> impl IntoView {
    view! {
        <h1>{t!("forgot-title")}</h1>
        <p>{t!("forgot-text")}</p>
        <ui::PasswordResetRequestForm/>
    }
}

/// Where the mailed link leads (`password_reset_url`): the new password, then log in with it.
#[component]
pub fn ResetPassword() -> impl IntoView {
    view! {
        <h1>{t!("reset-title")}</h1>
        <ui::PasswordResetForm/>
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
        <h2>{t!("email-title")}</h2>
        <ui::EmailChangeForm/>
    }
}
