//! `POST /_language`, the language switcher's target (Django's `set_language`): sets the
//! `language` cookie, saves the choice as the logged-in user's preference, and sends the browser
//! back to `next`. It runs behind the app's middleware chain, so the CSRF check covers it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;

use crate::auth::{Auth, CurrentUser};
use crate::i18n::{
    Catalogues, LANGUAGE_COOKIE, LANGUAGE_COOKIE_MAX_AGE_SECONDS, SET_LANGUAGE_PATH,
};
use crate::middleware::Request;

/// The route, with cookies marked `Secure` when `secure` says so.
pub(super) fn route(secure: bool) -> Router {
    Router::new().route(
        SET_LANGUAGE_PATH,
        post(move |req: Request| set_language(req, secure)),
    )
}

async fn set_language(req: Request, secure: bool) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = http_body_util::Limited::new(body, 4 * 1024).collect().await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(&body.to_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    let Some(catalogues) = parts.extensions.get::<Arc<Catalogues>>() else {
        return (StatusCode::NOT_FOUND, "this app has no languages").into_response();
    };
    let language = field("language").unwrap_or_default();
    if !catalogues.supports(&language) {
        let text =
            crate::i18n::translate_in(&parts, "ferrule-unknown-language", &[]).unwrap_or_default();
        return (StatusCode::BAD_REQUEST, text).into_response();
    }
    if let (Some(auth), Some(user)) = (
        parts.extensions.get::<Auth>(),
        parts
            .extensions
            .get::<CurrentUser>()
            .and_then(CurrentUser::user),
    ) && let Err(e) = auth.set_language(user.id, Some(&language)).await
    {
        // The cookie below still holds the choice for this browser.
        tracing::warn!(user = user.id, error = %e, "could not save a user's language");
    }
    let next = field("next")
        .as_deref()
        .and_then(crate::protocol::same_site_path)
        .unwrap_or("/")
        .to_owned();
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{LANGUAGE_COOKIE}={language}; Path=/; Max-Age={LANGUAGE_COOKIE_MAX_AGE_SECONDS}; SameSite=Lax{secure}"
    );
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    // Both are ASCII: a configured language tag and a checked same-site path.
    if let (Ok(location), Ok(cookie)) =
        (HeaderValue::from_str(&next), HeaderValue::from_str(&cookie))
    {
        resp.headers_mut().insert(header::LOCATION, location);
        resp.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    resp
}
