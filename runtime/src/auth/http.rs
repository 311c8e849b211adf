//! Auth over HTTP: `/_auth/login`, `/_auth/logout`, `/_auth/register`, `/_auth/password`, the
//! password reset's two (see [`super::recovery`]), and
//! `/_auth/session`, where the browser trades a one-time code from a socket login or logout for
//! the matching HttpOnly cookie.
//!
//! Wrong credentials get one answer (401, "Wrong username or password.") for unknown users and
//! wrong passwords alike, and no cookie; too many failures are refused with 429 (see
//! [`super::throttle`]), a flood of password checks with 503. Plain HTML forms are answered with
//! redirects instead, and what happened is a flash message ([`crate::messages`]) on the next page.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::post;
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower_sessions::Session;

use super::{Auth, AuthError, CurrentUser, NewUser};
use crate::messages::Messages;
use crate::middleware::{Request, Response};
use crate::net::ClientAddr;
use crate::protocol::ToastLevel;

/// The message for every failed login.
pub const WRONG_CREDENTIALS: &str = "Wrong username or password.";

pub use super::codes::CookieCodes;

/// What the auth endpoints need.
#[derive(Clone)]
pub(crate) struct AuthRoutes {
    pub(crate) auth: Auth,
    pub(crate) codes: CookieCodes,
    pub(crate) cookie_name: String,
    pub(crate) cookie_secure: bool,
    pub(crate) allow_register: bool,
    pub(crate) reveal_taken_email: bool,
    pub(crate) links: super::links::AccountLinks,
}

impl AuthRoutes {
    pub(crate) fn new(
        auth: Auth,
        codes: CookieCodes,
        links: super::links::AccountLinks,
        settings: &crate::Settings,
    ) -> Self {
        Self {
            links,
            auth,
            codes,
            cookie_name: settings.session_cookie.clone(),
            cookie_secure: settings.secure_cookies,
            allow_register: settings.allow_register,
            reveal_taken_email: settings.register_reveals_taken_email,
        }
    }

    /// The `/_auth/*` routes (they run behind the middleware chain).
    pub(crate) fn router(self) -> Router {
        let s = self;
        Router::new()
            .route(
                "/_auth/login",
                post({
                    let s = s.clone();
                    move |req| login(s.clone(), req)
                }),
            )
            .route(
                "/_auth/logout",
                post({
                    let s = s.clone();
                    move |req| logout(s.clone(), req)
                }),
            )
            .route(
                "/_auth/register",
                post({
                    let s = s.clone();
                    move |req| register(s.clone(), req)
                }),
            )
            .route(
                "/_auth/password",
                post({
                    let s = s.clone();
                    move |req| password(s.clone(), req)
                }),
            )
            .route(
                "/_auth/password_reset",
                post({
                    let s = s.clone();
                    move |req| super::recovery::ask(s.clone(), req)
                }),
            )
            .route(
                "/_auth/password_reset/confirm",
                post({
                    let s = s.clone();
                    move |req| super::recovery::confirm(s.clone(), req)
                }),
            )
            .route(
                "/_auth/email",
                post({
                    let s = s.clone();
                    move |req| super::confirmation::change(s.clone(), req)
                }),
            )
            .route(
                super::confirmation::CONFIRM_PATH,
                axum::routing::get({
                    let s = s.clone();
                    move |req| super::confirmation::confirm(s.clone(), req)
                }),
            )
            .route("/_auth/session", post(move |req| exchange(s.clone(), req)))
    }
}

pub(super) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    let mut resp = json_response(status, json!({ "error": message }));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(super::RETRY_AFTER_SECONDS),
        );
    }
    resp
}

/// The client address the request came from (as `trusted_proxies` resolves it).
pub(super) fn client_ip(parts: &http::request::Parts) -> IpAddr {
    parts
        .extensions
        .get::<ClientAddr>()
        .map(|c| c.ip)
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// An account error as the answer to a form or JSON post: the user's mistakes and refusals
/// (400, 401, 429, 503 with `Retry-After`) back to the form, the rest as errors.
pub(super) async fn refusal(parts: &http::request::Parts, e: AuthError) -> Response {
    let e = crate::Error::from(e);
    if e.status().is_client_error() || e.status() == StatusCode::SERVICE_UNAVAILABLE {
        return form_error(parts, e.status(), &e.public_message()).await;
    }
    e.into_response()
}

/// Keeps `text` as a flash message for the page a form post lands on; a session store that
/// fails costs the message, not the answer.
pub(super) async fn say(parts: &http::request::Parts, level: ToastLevel, text: String) {
    let text = crate::i18n::localize(&text);
    if let Err(e) = Messages::of(session_of(parts)).add(level, text).await {
        tracing::warn!(error = %e, "could not keep a flash message");
    }
}

/// Reads a JSON object or a urlencoded form into string fields.
pub(super) async fn fields(
    req: Request,
) -> Result<(http::request::Parts, HashMap<String, String>), Response> {
    let (parts, body) = req.into_parts();
    let bytes = http_body_util::Limited::new(body, 64 * 1024)
        .collect()
        .await
        .map_err(|_| error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"))?
        .to_bytes();
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let map = if bytes.is_empty() {
        HashMap::new()
    } else if is_json {
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                &format!("body is not valid JSON: {e}"),
            )
        })?;
        let Value::Object(obj) = v else {
            return Err(error(StatusCode::BAD_REQUEST, "body must be a JSON object"));
        };
        obj.into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                Value::Null => None,
                other => Some((k, other.to_string())),
            })
            .collect()
    } else {
        form_urlencoded::parse(&bytes).into_owned().collect()
    };
    Ok((parts, map))
}

fn session_of(parts: &http::request::Parts) -> Option<Session> {
    parts.extensions.get::<Session>().cloned()
}

fn no_session() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the session middleware is not installed",
    )
}

/// A path of this site to go to after login; anything else (other hosts, `//x`, control
/// characters a browser would drop) is ignored.
fn safe_next(next: Option<&String>) -> Option<String> {
    crate::protocol::same_site_path(next?).map(str::to_owned)
}

/// Where a form that names a `next` page goes: that page when it is on this site, else `/`.
pub(super) fn next_page(next: Option<&String>) -> Option<String> {
    next.map(|n| safe_next(Some(n)).unwrap_or_else(|| "/".to_owned()))
}

fn wants_redirect(parts: &http::request::Parts) -> bool {
    !parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

async fn login(s: AuthRoutes, req: Request) -> Response {
    let (parts, f) = match fields(req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let (Some(username), Some(pw)) = (f.get("username"), f.get("password")) else {
        return form_error(
            &parts,
            StatusCode::BAD_REQUEST,
            "username and password are required",
        )
        .await;
    };
    let ip = client_ip(&parts);
    let user = match s.auth.authenticate_from(Some(ip), username, pw).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return form_error(&parts, StatusCode::UNAUTHORIZED, WRONG_CREDENTIALS).await;
        }
        Err(e) => return refusal(&parts, e).await,
    };
    if s.auth.confirmation_required() && !user.email_verified {
        return super::confirmation::refuse_unconfirmed(&s, &parts, &user).await;
    }
    let Some(session) = session_of(&parts) else {
        return no_session();
    };
    if let Err(e) = s.auth.login(&session, &user).await {
        return crate::Error::from(e).into_response();
    }
    let next = next_page(f.get("next"));
    if let Some(resp) = form_redirect(&parts, next.as_deref()) {
        let hello = crate::t!("ferrule-logged-in", username = user.username.as_str());
        say(&parts, ToastLevel::Success, hello).await;
        return resp;
    }
    json_response(
        StatusCode::OK,
        json!({"username": user.username, "next": next}),
    )
}

/// A failed plain HTML form post goes back (303) to the page of this site it was posted from,
/// keeping only its `next`, and `message` waits there as an error flash message, so that page
/// says what went wrong instead of the browser showing JSON. Nothing of the message rides the
/// URL, where anyone could write a link with a text of their own. JSON callers, and posts
/// without a same-site `Referer` or a session, get the JSON error with `status`.
pub(super) async fn form_error(
    parts: &http::request::Parts,
    status: StatusCode,
    message: &str,
) -> Response {
    let back = wants_redirect(parts)
        .then(|| referer_path(parts))
        .flatten()
        .map(|page| only_next(&page))
        .and_then(|to| HeaderValue::from_str(&to).ok());
    if let Some(to) = back
        && Messages::of(session_of(parts))
            .error(crate::i18n::localize(message))
            .await
            .is_ok()
    {
        return http::Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, to)
            .body(Body::empty())
            .unwrap_or_default();
    }
    error(status, message)
}

/// The path and query of the `Referer`, when it is a page of this host.
fn referer_path(parts: &http::request::Parts) -> Option<String> {
    let referer = parts.headers.get(header::REFERER)?.to_str().ok()?;
    let host = parts.headers.get(header::HOST)?.to_str().ok()?;
    let rest = referer
        .strip_prefix("http://")
        .or_else(|| referer.strip_prefix("https://"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    // The app's own path: the way out puts the mount prefix back on the redirect.
    let page = crate::protocol::app_path(crate::mount::MountPath::of(parts), &format!("/{path}"));
    (authority.eq_ignore_ascii_case(host) && crate::protocol::same_site_path(&page).is_some())
        .then_some(page)
}

/// `page` with no query parameter but `next` and `token` (a form's page knows where to go on,
/// and a reset page its link's token, nothing else).
fn only_next(page: &str) -> String {
    let page = page.split('#').next().unwrap_or(page);
    let (path, query) = page.split_once('?').unwrap_or((page, ""));
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "next" || k == "token" {
            out.append_pair(&k, &v);
        }
    }
    let query = out.finish();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// A plain HTML form (not JSON) that names a safe `next` page is answered with a 303 there.
pub(super) fn form_redirect(parts: &http::request::Parts, next: Option<&str>) -> Option<Response> {
    let next = next.filter(|_| wants_redirect(parts))?;
    http::Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, next)
        .body(Body::empty())
        .ok()
}

async fn logout(s: AuthRoutes, req: Request) -> Response {
    let (parts, f) = match fields(req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let Some(session) = session_of(&parts) else {
        return no_session();
    };
    if let Err(e) = s.auth.logout(&session).await {
        return crate::Error::from(e).into_response();
    }
    match form_redirect(&parts, next_page(f.get("next")).as_deref()) {
        Some(resp) => {
            say(&parts, ToastLevel::Info, "You are logged out.".to_owned()).await;
            resp
        }
        None => json_response(StatusCode::OK, json!({"ok": true})),
    }
}

async fn register(s: AuthRoutes, req: Request) -> Response {
    if !s.allow_register {
        return error(StatusCode::NOT_FOUND, "registration is switched off");
    }
    let (parts, f) = match fields(req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let new = NewUser {
        username: f.get("username").cloned().unwrap_or_default(),
        email: f.get("email").cloned(),
        password: f.get("password").cloned().unwrap_or_default(),
        ..NewUser::default()
    };
    let verification = s.links.verification;
    let required = verification == crate::EmailVerification::Required;
    if required && new.email.as_deref().is_none_or(|e| e.trim().is_empty()) {
        return form_error(
            &parts,
            StatusCode::BAD_REQUEST,
            "Enter your e-mail address.",
        )
        .await;
    }
    let unconfirmed = verification != crate::EmailVerification::Off;
    // Saying "taken" would tell anyone whose e-mail has an account here: unless the app says
    // otherwise, the account is made without it, with the same answer and the same one hash.
    let user = match s
        .auth
        .create_user_with(new, s.reveal_taken_email, unconfirmed)
        .await
    {
        Ok(u) => u,
        Err(e) => return refusal(&parts, e).await,
    };
    if unconfirmed
        && let Some(email) = &user.email
        && let Err(e) =
            super::confirmation::ask_confirmation(&s.links, &parts, user.id, email).await
    {
        return e.into_response();
    }
    if required {
        if let Some(resp) = form_redirect(&parts, next_page(f.get("next")).as_deref()) {
            let text = super::confirmation::CONFIRM_FIRST.to_owned();
            say(&parts, ToastLevel::Info, text).await;
            return resp;
        }
        return json_response(
            StatusCode::CREATED,
            json!({"username": user.username, "confirm": true}),
        );
    }
    let Some(session) = session_of(&parts) else {
        return no_session();
    };
    if let Err(e) = s.auth.login(&session, &user).await {
        return crate::Error::from(e).into_response();
    }
    if let Some(resp) = form_redirect(&parts, next_page(f.get("next")).as_deref()) {
        let welcome = crate::t!("ferrule-welcome", username = user.username.as_str());
        say(&parts, ToastLevel::Success, welcome).await;
        return resp;
    }
    json_response(StatusCode::CREATED, json!({"username": user.username}))
}

/// The logged-in user of the request, if any.
pub(super) fn logged_in(parts: &http::request::Parts) -> Option<super::User> {
    parts
        .extensions
        .get::<CurrentUser>()
        .and_then(|u| u.user().cloned())
}

/// What a request that needs a logged-in user gets without one.
pub(super) fn log_in_first() -> Response {
    error(StatusCode::UNAUTHORIZED, "Please log in first.")
}

/// Checks the logged-in `user`'s own `password`; `Some(answer)` when it is `wrong` or refused.
/// Throttled like a login, per address and username: a stolen session must not become an
/// unlimited guesser of its user's password.
pub(super) async fn check_own_password(
    s: &AuthRoutes,
    parts: &http::request::Parts,
    user: &super::User,
    password: &str,
    wrong: &str,
) -> Option<Response> {
    match s
        .auth
        .authenticate_from(Some(client_ip(parts)), &user.username, password)
        .await
    {
        Ok(Some(_)) => None,
        Ok(None) => Some(form_error(parts, StatusCode::BAD_REQUEST, wrong).await),
        Err(e) => Some(refusal(parts, e).await),
    }
}

async fn password(s: AuthRoutes, req: Request) -> Response {
    let (parts, f) = match fields(req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let Some(user) = logged_in(&parts) else {
        return log_in_first();
    };
    let (Some(old), Some(new)) = (f.get("old_password"), f.get("new_password")) else {
        return form_error(
            &parts,
            StatusCode::BAD_REQUEST,
            "old_password and new_password are required",
        )
        .await;
    };
    if let Some(refused) =
        check_own_password(&s, &parts, &user, old, "The old password is wrong.").await
    {
        return refused;
    }
    if let Err(e) = s.auth.set_password(&user.username, new).await {
        return refusal(&parts, e).await;
    }
    let Some(session) = session_of(&parts) else {
        return no_session();
    };
    // Stay logged in here; every other session of the user is void with the old fingerprint.
    if let Err(e) = s.auth.login(&session, &user).await {
        return crate::Error::from(e).into_response();
    }
    if let Some(resp) = form_redirect(&parts, next_page(f.get("next")).as_deref()) {
        say(
            &parts,
            ToastLevel::Success,
            "Your password was changed.".to_owned(),
        )
        .await;
        return resp;
    }
    json_response(StatusCode::OK, json!({"ok": true}))
}

async fn exchange(s: AuthRoutes, req: Request) -> Response {
    let (parts, f) = match fields(req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let Some(code) = f.get("code") else {
        return error(StatusCode::BAD_REQUEST, "code is required");
    };
    let tab = parts
        .headers
        .get(crate::protocol::TOKEN_HEADER)
        .and_then(|v| v.to_str().ok());
    // The cookie as sent: the session it names is gone (the login replaced it), so the
    // session middleware no longer reports its id.
    let from = crate::net::cookie_in(&parts.headers, &s.cookie_name);
    let id = match s.codes.redeem(code, tab, from.as_deref()).await {
        Ok(Ok(id)) => id,
        Ok(Err(refused)) => return error(StatusCode::BAD_REQUEST, &refused.to_string()),
        Err(e) => return e.into_response(),
    };
    let cookie = crate::session::set_cookie(&s.cookie_name, id.as_deref(), s.cookie_secure);
    let mut resp = json_response(StatusCode::OK, json!({"ok": true}));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        // The request's cookie names a session the login or logout replaced: the session
        // middleware answers with its removal, which must not undo this one.
        resp.extensions_mut()
            .insert(crate::session::FinalSessionCookie(v));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failed_forms_go_back_to_their_page_with_next_alone() {
        let parts = |referer: &str, ct: &str| {
            http::Request::builder()
                .header(header::HOST, "shop.example:3000")
                .header(header::REFERER, referer)
                .header(header::CONTENT_TYPE, ct)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        let form = "application/x-www-form-urlencoded";
        let back = referer_path(&parts(
            "http://shop.example:3000/login?next=%2Fprivate&error=old&x=1#top",
            form,
        ))
        .map(|page| only_next(&page));
        assert_eq!(back.as_deref(), Some("/login?next=%2Fprivate"));
        assert_eq!(only_next("/register?error=Hi"), "/register");
        for (referer, ct) in [
            ("http://evil.example/login", form),
            ("http://shop.example:3000//evil.example/login", form),
            ("http://shop.example:3000/login", "application/json"),
        ] {
            let kept = form_error(&parts(referer, ct), StatusCode::UNAUTHORIZED, "no").await;
            assert_eq!(kept.status(), StatusCode::UNAUTHORIZED, "{referer} {ct}");
        }
    }

    #[test]
    fn next_must_stay_on_this_site() {
        assert_eq!(
            safe_next(Some(&"/orders".to_owned())),
            Some("/orders".to_owned())
        );
        assert_eq!(safe_next(Some(&"//evil.example".to_owned())), None);
        assert_eq!(safe_next(Some(&"https://evil.example".to_owned())), None);
        assert_eq!(safe_next(Some(&"/\\evil".to_owned())), None);
        assert_eq!(safe_next(Some(&"/\t/evil.example".to_owned())), None);
    }
}
