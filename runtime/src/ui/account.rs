//! The account components: the log-in and registration forms (plain HTML forms that work before
//! the client loads) and the header's account menu, with the CSRF token they post.

use leptos::prelude::*;

/// The CSRF token for the `csrf_token` field of a plain HTML form: from the request on the server,
/// from the `csrftoken` cookie in the browser (pages reached by client-side navigation render
/// there). Empty when there is none yet.
pub fn csrf_token() -> String {
    #[cfg(feature = "ssr")]
    if let Some(token) = crate::ssr::rendered_csrf_token() {
        return token;
    }
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    if let Some(token) = crate::client::browser::cookie(crate::protocol::CSRF_COOKIE) {
        return token;
    }
    String::new()
}

/// The query parameter `key` of the current page, reactive.
fn query_param(key: &'static str) -> impl Fn() -> Option<String> + Copy + Send + Sync + 'static {
    let query = leptos_router::hooks::use_query_map();
    move || query.with(|q| q.get(key))
}

/// The log-in form: a plain HTML form (it works before the client loads) posting to
/// `/_auth/login` with the CSRF token, which sends the browser on to the page's `?next=` (or `/`)
/// or, on failure, back here, where a flash message says why (`<Toasts/>` shows it).
#[component]
pub fn LoginForm() -> impl IntoView {
    let next = query_param("next");
    view! {
        <form method="post" action=super::mounted("/_auth/login")>
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            <input type="hidden" name="next" value=move || next().unwrap_or_else(|| "/".to_owned())/>
            <label>{crate::t!("ferrule-username")} " " <input name="username" autocomplete="username"/></label>
            <label>{crate::t!("ferrule-password")} " " <input name="password" type="password" autocomplete="current-password"/></label>
            <button type="submit">{crate::t!("ferrule-log-in")}</button>
        </form>
    }
}

/// Asks for a password-reset link: posts the e-mail address to `/_auth/password_reset`, which
/// answers the same whether or not an account has it, and sends the browser on to `then`
/// (default `/login`), where a flash message says a link is on its way.
#[component]
pub fn PasswordResetRequestForm(
    /// Where the browser goes once the link is asked for.
    #[prop(optional, into)]
    then: Option<String>,
) -> impl IntoView {
    let then = then.unwrap_or_else(|| "/login".to_owned());
    view! {
        <form method="post" action=super::mounted("/_auth/password_reset")>
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            <input type="hidden" name="next" value=then/>
            <label>{crate::t!("ferrule-email")} " " <input id="reset-email" name="email" type="email" autocomplete="email" required=true/></label>
            <button type="submit">{crate::t!("ferrule-send-reset-link")}</button>
        </form>
    }
}

/// Sets a new password with the link from a reset mail: the page's `?token=` and the new
/// password, posted to `/_auth/password_reset/confirm`; then the browser goes to `then`
/// (default `/login`). A dead link or a refused password comes back here as a flash message.
#[component]
pub fn PasswordResetForm(
    /// Where the browser goes once the password is set.
    #[prop(optional, into)]
    then: Option<String>,
) -> impl IntoView {
    let token = query_param("token");
    let then = then.unwrap_or_else(|| "/login".to_owned());
    view! {
        <form method="post" action=super::mounted("/_auth/password_reset/confirm")>
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            <input type="hidden" name="next" value=then/>
            <input type="hidden" name="token" value=move || token().unwrap_or_default()/>
            <label>{crate::t!("ferrule-new-password")} " " <input id="new-password" name="password" type="password" autocomplete="new-password" required=true/></label>
            <button type="submit">{crate::t!("ferrule-set-password")}</button>
        </form>
    }
}

/// The registration form, like [`LoginForm`]: posts to `/_auth/register`, which creates the
/// account and logs it in; a refusal (name taken, password too short) comes back here as a
/// flash message.
#[component]
pub fn RegisterForm(
    /// Adds an (optional) e-mail field.
    #[prop(optional)]
    email: bool,
) -> impl IntoView {
    let next = query_param("next");
    view! {
        <form method="post" action=super::mounted("/_auth/register")>
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            <input type="hidden" name="next" value=move || next().unwrap_or_else(|| "/".to_owned())/>
            <label>{crate::t!("ferrule-username")} " " <input name="username" autocomplete="username"/></label>
            {email.then(|| view! {
                <label>{crate::t!("ferrule-email")} " " <input name="email" type="email" autocomplete="email"/></label>
            })}
            <label>{crate::t!("ferrule-password")} " " <input name="password" type="password" autocomplete="new-password"/></label>
            <button type="submit">{crate::t!("ferrule-create-account")}</button>
        </form>
    }
}

/// Changes the logged-in user's e-mail address: the new address and the current password,
/// posted to `/_auth/email`, which mails a link to the new address; the address changes when
/// it is followed. The browser stays on this page, where a flash message says what happened.
#[component]
pub fn EmailChangeForm() -> impl IntoView {
    let here = leptos_router::hooks::use_location();
    view! {
        <form method="post" action=super::mounted("/_auth/email")>
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            <input type="hidden" name="next" value=move || here.pathname.get()/>
            <label>{crate::t!("ferrule-new-email")} " " <input id="new-email" name="email" type="email" autocomplete="email" required=true/></label>
            <label>{crate::t!("ferrule-current-password")} " " <input id="email-password" name="password" type="password" autocomplete="current-password" required=true/></label>
            <button type="submit">{crate::t!("ferrule-change-email")}</button>
        </form>
    }
}

/// The header's account menu: "Log in · Register" to anonymous visitors, "username · Log out" to
/// a logged-in user (`#user`, `#logout`). It reads `auth_state`, which the server renders from the
/// session cookie, so a reload shows the right links before any script runs.
#[component]
pub fn AccountMenu(
    /// Where the browser goes after logging out (default `/`).
    #[prop(optional, into)]
    after_logout: Option<String>,
    /// Leaves out the "Register" link (apps where accounts are made by an administrator).
    #[prop(optional)]
    no_register: bool,
) -> impl IntoView {
    let auth = super::use_auth();
    let logged_in = auth.field(|a| a.is_authenticated);
    let who = auth.field(|a| a.username.clone());
    let after_logout = after_logout.unwrap_or_else(|| "/".to_owned());
    view! {
        <span class="ferrule-account">
            <Show
                when=move || logged_in.get()
                fallback=move || view! {
                    <a href=super::mounted("/login")>{crate::t!("ferrule-log-in")}</a>
                    {(!no_register).then(|| view! { " · " <a href=super::mounted("/register")>{crate::t!("ferrule-register")}</a> })}
                }
            >
                <span id="user">{move || who.get()}</span>
                " · "
                <form method="post" action=super::mounted("/_auth/logout")>
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <input type="hidden" name="next" value=after_logout.clone()/>
                    <button id="logout" type="submit">{crate::t!("ferrule-log-out")}</button>
                </form>
            </Show>
        </span>
    }
}
