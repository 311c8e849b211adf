//! Tab tokens bound to sessions: a tab's states are stored under its token *and* a random value
//! kept in its session's data, so a token is no key to anyone else's states.
//!
//! The binding lives in the session as Django keeps a user's data there, and changes with every
//! login: a session cookie planted in a browser before its owner logs in (fixation) must not
//! keep reading the states that owner's tabs have after. A login that keeps the session's data
//! (nobody was logged in on it, or the same user) [`rotate`]s it and notes the old one for
//! [`MOVE_WINDOW`]: the tab that logged in, and each tab of the browser that connects again in
//! that time, carries its states there (an anonymous tab's cart carries into its login), and
//! the old binding's pushes no longer reach them. A logout, or a different user's login, flushes
//! the session: the tab starts afresh.
//!
//! A socket or upload presenting a token from another session therefore finds a fresh tab:
//! never the other's states, rooms or pushes. The socket handshake creates a session when the
//! request has none, so every tab is bound from its first event; a page load without a cookie
//! is handed a session id (stored only by its socket's handshake), so the tabs of one browser
//! share one session and a page load writes nothing; `/_upload` without a live session is
//! refused (its page's socket always has one).
//!
//! Without sessions (no `App::database`) there is nothing to bind to and the token alone is
//! the key, as before; states may opt out with [`crate::State::SESSION_BOUND`] (public UI
//! state that any session presenting the token may see, kept across logouts).

use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use http::{HeaderValue, header};
use tower_sessions::Session;
use tower_sessions::session::Id;

use crate::Error;
use crate::middleware::{Request, Response};
use crate::session::{SeaOrmStore, SessionConfig};

/// The session key holding the tab binding.
pub(crate) const SESSION_KEY: &str = "_tab_binding";

/// The session key naming the binding a login replaced, and until when tabs may carry their
/// states from it ([`Moved`]).
const MOVED_KEY: &str = "_tab_binding_moved";

/// How long after a login the browser's other tabs may carry their states into the session's
/// new binding when they connect again: long enough for tabs left in the background to
/// reconnect, short enough that states written under the old binding later (by whoever else
/// holds the old cookie) are not carried into the logged-in session.
pub(crate) const MOVE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The binding of the session a request carries, put on the socket handshake and uploads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TabBinding(pub(crate) String);

/// The binding a login replaced, put on a socket handshake next to its [`TabBinding`] while
/// the move window is open: the socket carries its tab's states from there first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MovedFrom(pub(crate) TabBinding);

/// Where a login or logout moved a tab: the session's binding after it, and the one the tab
/// carries its states from (a login that kept the session's data), if any.
#[derive(Clone, Debug)]
pub(crate) struct Rebinding {
    pub(crate) to: TabBinding,
    pub(crate) from: Option<TabBinding>,
}

/// A login's record of the binding it replaced.
#[derive(serde::Serialize, serde::Deserialize)]
struct Moved {
    from: String,
    /// Unix seconds.
    until: i64,
}

/// Gives the session a fresh binding at a login that keeps its data, noting the old one for
/// [`MOVE_WINDOW`]; a session without a binding (no tab yet) is left without one.
pub(crate) async fn rotate(session: &Session) -> Result<(), tower_sessions::session::Error> {
    let Some(from) = session.get::<String>(SESSION_KEY).await? else {
        return Ok(());
    };
    session
        .insert(SESSION_KEY, crate::net::random_hex_128())
        .await?;
    let until = unix_now() + MOVE_WINDOW.as_secs() as i64;
    session.insert(MOVED_KEY, Moved { from, until }).await
}

/// The binding the session's last login replaced, while its move window is open.
pub(crate) async fn moved_from(session: &Session) -> Result<Option<TabBinding>, Error> {
    let moved = session
        .get::<Moved>(MOVED_KEY)
        .await
        .map_err(session_error)?;
    Ok(moved
        .filter(|m| m.until > unix_now())
        .map(|m| TabBinding(m.from)))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Where the states of tab `token` are kept for a session with `binding`: the token and the
/// binding (tokens never contain `~`, so no two pairs meet), or the token alone without one.
pub(crate) fn storage_key(token: &str, binding: Option<&TabBinding>) -> String {
    match binding {
        Some(b) => format!("{token}~{}", b.0),
        None => token.to_owned(),
    }
}

/// Where the states every tab of a session shares are kept ([`crate::State::SESSION_SCOPED`]):
/// the binding after a `~` (a tab's key has its token before it, and tokens are never empty).
pub(crate) fn session_storage_key(binding: &TabBinding) -> String {
    format!("~{}", binding.0)
}

/// The session's binding, made (random, 128 bits) and stored in its data when it has none.
pub(crate) async fn ensure(session: &Session) -> Result<TabBinding, Error> {
    if let Some(b) = session
        .get::<String>(SESSION_KEY)
        .await
        .map_err(session_error)?
    {
        return Ok(TabBinding(b));
    }
    let fresh = crate::net::random_hex_128();
    session
        .insert(SESSION_KEY, &fresh)
        .await
        .map_err(session_error)?;
    Ok(TabBinding(fresh))
}

fn session_error(e: tower_sessions::session::Error) -> Error {
    Error::unavailable(format!("the session store failed: {e}"))
}

/// Put on a socket handshake whose cookie names a session that a login or logout replaced
/// moments ago (the page's socket set out before the login's answer came back). A session made
/// for it would hand the browser a cookie that, arriving after the login's, logs the browser
/// out; so it gets none, and the socket's CONNECT is refused ("connect again"): the client
/// reconnects with the cookie it holds by then. A cookie of a session that ended long ago or
/// never was gets a fresh session instead, so a browser holding a dead cookie heals.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionEnded;

/// Resolves the binding of the socket handshake and `/_upload`, creating a session (and its
/// cookie) for a request that has none.
#[derive(Clone)]
pub(crate) struct HandshakeBinder {
    store: Arc<SeaOrmStore>,
    config: SessionConfig,
    /// Whether page loads learn their session's binding too (the app has states a page is
    /// rendered with, [`crate::State::SESSION_SCOPED`]).
    bind_pages: bool,
}

impl HandshakeBinder {
    pub(crate) fn new(store: SeaOrmStore, config: SessionConfig) -> Self {
        Self {
            store: Arc::new(store),
            config,
            bind_pages: false,
        }
    }

    /// Page loads with a session carry its binding (when it has one) to the render.
    pub(crate) fn binding_pages(mut self, on: bool) -> Self {
        self.bind_pages = on;
        self
    }

    /// Axum middleware: binds socket handshakes (the first request of an Engine.IO session,
    /// without `sid`) and uploads, and hands a page load without a session an id; every other
    /// request passes untouched.
    pub(crate) async fn bind(self, mut req: Request, next: axum::middleware::Next) -> Response {
        if is_page_load(&req) {
            return self.page(req, next).await;
        }
        if !needs_binding(&req) {
            return next.run(req).await;
        }
        let cookie = crate::net::cookie_in(req.headers(), &self.config.cookie_name);
        let id = cookie.as_deref().and_then(|c| c.parse::<Id>().ok());
        let mut session = self.session(id);
        if req.uri().path() == crate::protocol::UPLOAD_PATH
            && let Err(refused) = self.upload_session(&session, id).await
        {
            return refused;
        }
        let binding = match self.binding_of(&mut session).await {
            Ok(b) => b,
            Err(e) => return e.into_response(),
        };
        if let Some(gone) = id.filter(|_| session.id().is_none()) {
            match self.store.ended_lately(&gone).await {
                // Of a session over long ago, or never known: a fresh one.
                Ok(false) => {}
                // Refused, without a session of its own: see `SessionEnded`.
                Ok(true) => {
                    req.extensions_mut().insert(SessionEnded);
                    return next.run(req).await;
                }
                Err(e) => return Error::from(e).into_response(),
            }
        }
        if session.is_modified()
            && let Err(e) = session.save().await
        {
            return session_error(e).into_response();
        }
        let new_id = session.id().filter(|new| Some(*new) != id);
        if let Some(new) = new_id {
            // The socket's events carry the session the handshake made.
            crate::net::set_cookie_in_header(
                req.headers_mut(),
                &self.config.cookie_name,
                Some(&new.to_string()),
            );
        }
        match moved_from(&session).await {
            Ok(Some(from)) => {
                req.extensions_mut().insert(MovedFrom(from));
            }
            Ok(None) => {}
            // The tab starts afresh under the new binding; nothing of the old one is read.
            Err(e) => tracing::warn!(error = %e, "could not read a session's moved binding"),
        }
        req.extensions_mut().insert(binding);
        let mut resp = next.run(req).await;
        if let Some(new) = new_id {
            self.give_cookie(&mut resp, new);
        }
        resp
    }

    /// The session's binding, made when it has none. A session stored nowhere yet under an id
    /// a page load was handed gets its row here, unless another tab of the browser stored it
    /// first: then that tab's binding is the one (both tabs share the session's states).
    async fn binding_of(&self, session: &mut Session) -> Result<TabBinding, Error> {
        let stored = session
            .get::<String>(SESSION_KEY)
            .await
            .map_err(session_error)?;
        if let Some(b) = stored {
            return Ok(TabBinding(b));
        }
        let Some(id) = session.id().filter(|id| self.store.handed_out(id)) else {
            return ensure(session).await;
        };
        let expiry = tower_sessions::cookie::time::OffsetDateTime::now_utc()
            + tower_sessions::cookie::time::Duration::seconds(self.config.idle.as_secs() as i64);
        let record = tower_sessions::session::Record {
            id,
            data: [(SESSION_KEY.to_owned(), crate::net::random_hex_128().into())]
                .into_iter()
                .collect(),
            expiry_date: expiry,
        };
        self.store.adopt(&record).await?;
        *session = self.session(Some(id));
        ensure(session).await
    }

    /// An upload comes from a page whose socket has a session: one without a live session is
    /// refused before anything is written (a session made for it would be a row per request
    /// for anyone posting junk).
    async fn upload_session(&self, session: &Session, id: Option<Id>) -> Result<(), Response> {
        if let Err(e) = session.get::<String>(SESSION_KEY).await {
            return Err(session_error(e).into_response());
        }
        if session.id().is_some() {
            return Ok(());
        }
        let changed = match id {
            Some(gone) => self
                .store
                .ended_lately(&gone)
                .await
                .map_err(|e| Error::from(e).into_response())?,
            None => false,
        };
        let message = if changed {
            "your session changed while uploading; send it again"
        } else {
            "this upload has no session: reload the page and send it again"
        };
        Err((http::StatusCode::CONFLICT, message).into_response())
    }

    /// Sets the browser's session cookie to session `id` on `resp`.
    fn give_cookie(&self, resp: &mut Response, id: Id) {
        let cookie = crate::session::set_cookie(
            &self.config.cookie_name,
            Some(&id.to_string()),
            self.config.secure,
        );
        match HeaderValue::from_str(&cookie) {
            Ok(v) => {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            Err(e) => tracing::error!(error = %e, "a session cookie that is no header value"),
        }
    }

    fn session(&self, id: Option<Id>) -> Session {
        let expiry = Some(tower_sessions::Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::seconds(self.config.idle.as_secs() as i64),
        ));
        Session::new(id, self.store.clone(), expiry)
    }

    /// A page served to a browser without a session cookie gets a session id along with the
    /// page (stored at its socket's handshake). Otherwise two tabs opened one after the other
    /// would each make a session at their handshakes, the browser would keep only the last
    /// cookie, and the other tab would find its states gone at its next reload.
    async fn page(self, mut req: Request, next: axum::middleware::Next) -> Response {
        let cookie = crate::net::cookie_in(req.headers(), &self.config.cookie_name);
        let had_cookie = cookie.is_some();
        if self.bind_pages
            && let Some(id) = cookie.as_deref().and_then(|c| c.parse::<Id>().ok())
        {
            // Read, never made here: a session without a binding has no shared states yet.
            match self.session(Some(id)).get::<String>(SESSION_KEY).await {
                Ok(Some(binding)) => {
                    req.extensions_mut().insert(TabBinding(binding));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not read a page load's session; its shared states render at their defaults");
                }
            }
        }
        let mut resp = next.run(req).await;
        let is_html = crate::net::has_content_type(resp.headers(), "text/html");
        let sets_session = resp.headers().get_all(header::SET_COOKIE).iter().any(|v| {
            v.as_bytes()
                .starts_with(format!("{}=", self.config.cookie_name).as_bytes())
        });
        if had_cookie || !is_html || sets_session || !resp.status().is_success() {
            return resp;
        }
        // Only the id: nothing is stored until the page's socket (or a login) needs it, so a
        // page load costs no row. The handshake stores the session under this id.
        let id = self.store.hand_out();
        self.give_cookie(&mut resp, id);
        resp
    }
}

/// A browser loading a page: a `GET` asking for HTML, outside the reserved paths.
fn is_page_load(req: &Request) -> bool {
    req.method() == http::Method::GET
        && !req.uri().path().starts_with("/_")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// A socket handshake (no Engine.IO `sid` yet) or an upload.
fn needs_binding(req: &Request) -> bool {
    let path = req.uri().path();
    if path == crate::protocol::UPLOAD_PATH {
        return true;
    }
    path.starts_with("/_event")
        && !req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .any(|kv| kv.starts_with("sid="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_keys_differ_by_session_and_never_collide_with_plain_tokens() {
        let a = TabBinding("aa".into());
        let b = TabBinding("bb".into());
        assert_ne!(storage_key("tab", Some(&a)), storage_key("tab", Some(&b)));
        assert_ne!(storage_key("tab", Some(&a)), storage_key("tab", None));
        assert_eq!(storage_key("tab", None), "tab");
    }

    #[test]
    fn only_handshakes_and_uploads_are_bound() {
        let req = |uri: &str| {
            http::Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert!(needs_binding(&req("/_event/?EIO=4&transport=websocket")));
        assert!(needs_binding(&req("/_event/?EIO=4&transport=polling")));
        assert!(!needs_binding(&req(
            "/_event/?EIO=4&transport=polling&sid=abc"
        )));
        assert!(needs_binding(&req("/_upload")));
        assert!(!needs_binding(&req("/login")));
    }
}
