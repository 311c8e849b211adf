//! CSRF protection for unsafe HTTP methods: a token in the `csrftoken` cookie (readable by the
//! page's script), checked against the `X-CSRFToken` header or a `csrf_token` form field.
//!
//! It is on the default `event_middleware_skip` list: socket events are protected by the Origin
//! check on the handshake instead (see `socket.rs`), since a cross-site page can open a
//! WebSocket to us but cannot pass that check.

use axum::body::Body;
use http::{HeaderValue, Method, header};
use http_body_util::BodyExt;

use crate::Error;
use crate::middleware::{self, Named, Next, Request, Response};

/// Name of the cookie holding the token.
pub const CSRF_COOKIE: &str = crate::protocol::CSRF_COOKIE;
/// Header a script sends the token in.
pub const CSRF_HEADER: &str = "x-csrftoken";
/// Form field a plain HTML form sends the token in.
pub const CSRF_FIELD: &str = "csrf_token";
/// Name of the CSRF middleware in the chain (what the skip list names).
pub const CSRF_MIDDLEWARE: &str = "csrf";

/// The refusal message.
pub const CSRF_REFUSED: &str = "CSRF token missing or incorrect.";

/// The value of cookie `name` the request carries.
pub(crate) fn cookie_value(req: &Request, name: &str) -> Option<String> {
    crate::net::cookie_in(req.headers(), name)
}

/// The request's CSRF token, in its extensions for pages to put in forms (`csrf_token` field):
/// the cookie's value, or the new token the response's cookie will carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken(pub String);

fn new_token() -> String {
    crate::net::random_hex_128()
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether `resp` says shared caches (a CDN, a proxy) may keep it and give it to anyone: then a
/// visitor's token must not ride on it, where it would be handed to other visitors, or keep the
/// cache from storing the file at all.
fn kept_by_shared_caches(resp: &Response) -> bool {
    resp.headers()
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| {
            let d = d.trim();
            d.eq_ignore_ascii_case("public") || d.eq_ignore_ascii_case("immutable")
        })
}

/// The CSRF middleware; `secure` marks the cookie `Secure`.
pub fn csrf_middleware(secure: bool) -> Named {
    middleware::from_fn(
        CSRF_MIDDLEWARE,
        move |req: Request, next: Next| async move {
            let cookie = cookie_value(&req, CSRF_COOKIE).filter(|c| !c.is_empty());
            let unsafe_method = !matches!(
                *req.method(),
                Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
            );
            let req = if unsafe_method {
                let Some(expected) = cookie.as_deref() else {
                    return Err(Error::permission_denied(CSRF_REFUSED));
                };
                let header_token = req
                    .headers()
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                match header_token {
                    Some(t) if equal(&t, expected) => req,
                    Some(_) => return Err(Error::permission_denied(CSRF_REFUSED)),
                    None => {
                        // Maybe a form field: read the body (bounded) and put it back.
                        let form = "application/x-www-form-urlencoded";
                        if !crate::net::has_content_type(req.headers(), form) {
                            return Err(Error::permission_denied(CSRF_REFUSED));
                        }
                        let (parts, body) = req.into_parts();
                        let bytes = http_body_util::Limited::new(body, 1 << 20)
                            .collect()
                            .await
                            .map_err(|_| Error::bad_request("form too large"))?
                            .to_bytes();
                        let ok = form_urlencoded::parse(&bytes)
                            .any(|(k, v)| k == CSRF_FIELD && equal(&v, expected));
                        if !ok {
                            return Err(Error::permission_denied(CSRF_REFUSED));
                        }
                        Request::from_parts(parts, Body::from(bytes))
                    }
                }
            } else {
                req
            };
            let fresh = cookie.is_none().then(new_token);
            let mut req = req;
            if let Some(token) = cookie.as_ref().or(fresh.as_ref()) {
                req.extensions_mut().insert(CsrfToken(token.clone()));
            }
            let mut resp: Response = next.run(req).await?;
            if let Some(token) = fresh.filter(|_| !kept_by_shared_caches(&resp)) {
                let secure = if secure { "; Secure" } else { "" };
                let c = format!("{CSRF_COOKIE}={token}; SameSite=Lax; Path=/{secure}");
                if let Ok(v) = HeaderValue::from_str(&c) {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            Ok(resp)
        },
    )
}
