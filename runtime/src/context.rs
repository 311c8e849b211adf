//! What a handler knows about the event it runs for: the request as middleware left it, the
//! user, the session, and the response when middleware short-circuited.
//!
//! The bridge binds the [`EventContext`] in a tokio task-local for the handler's run, so code
//! deeper down reaches it with [`current_request`], [`current_user`] and [`current_session`]
//! without threading it through every call. Outside an event they return `None` / anonymous.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, StatusCode};

use crate::auth::CurrentUser;
pub use crate::net::ClientAddr;
use crate::protocol::ClientCommand;
use crate::rooms::RoomOp;

tokio::task_local! {
    static CURRENT: EventContext;
}

/// Which event a request was built for; in the request's extensions on every bridged event,
/// so middleware can tell events from HTTP requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInfo {
    /// The event's id (`None` for pushes and uploads without one).
    pub id: Option<u64>,
    /// `"<state>.<handler>"`.
    pub name: String,
    /// The client token (one per browser tab).
    pub token: String,
}

/// The event payload as form fields, present when `event_post_from_payload` is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Status and headers of a response middleware gave instead of running the handler.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// The status (a 3xx when a redirect reached the handler).
    pub status: StatusCode,
    /// The headers, `Location` among them for a redirect.
    pub headers: HeaderMap,
}

impl ResponseHead {
    /// The `Location` header, if any and valid UTF-8.
    pub fn location(&self) -> Option<&str> {
        self.headers.get(http::header::LOCATION)?.to_str().ok()
    }
}

struct Inner {
    request: Arc<Parts>,
    body: Bytes,
    event: EventInfo,
    user: Mutex<CurrentUser>,
    response: Option<ResponseHead>,
    session_change: Mutex<Option<SessionChange>>,
    /// The session's tab binding after a login or logout.
    binding: Mutex<Option<crate::tab_binding::Rebinding>>,
    rooms: Mutex<Vec<RoomOp>>,
    /// The tables whose rows the handler changed, told to the tabs showing them once the event
    /// is answered.
    changed: Mutex<Vec<String>>,
    messages: crate::messages::EventMessages,
    /// The language a handler switched the tab to, applied once it succeeds.
    language_choice: Mutex<Option<String>>,
}

/// A login or logout a handler did: the socket's session must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionChange {
    LoggedIn,
    LoggedOut,
}

/// Everything a handler may read about its event. Cheap to clone.
#[derive(Clone)]
pub struct EventContext {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventContext")
            .field("event", &self.inner.event)
            .field("uri", &self.inner.request.uri)
            .field("user", &self.user())
            .finish()
    }
}

impl EventContext {
    /// Builds the context from the request as the innermost middleware passed it on.
    pub(crate) fn new(
        request: Parts,
        body: Bytes,
        event: EventInfo,
        response: Option<ResponseHead>,
    ) -> Self {
        let user = request
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                request: Arc::new(request),
                body,
                event,
                user: Mutex::new(user),
                response,
                session_change: Mutex::new(None),
                binding: Mutex::new(None),
                rooms: Mutex::new(Vec::new()),
                changed: Mutex::new(Vec::new()),
                messages: crate::messages::EventMessages::default(),
                language_choice: Mutex::new(None),
            }),
        }
    }

    /// The synthetic request, with everything middleware added (headers, extensions).
    pub fn request(&self) -> &Parts {
        &self.inner.request
    }

    /// The request body: empty, or the payload as a form when `event_post_from_payload` is on.
    pub fn body(&self) -> &Bytes {
        &self.inner.body
    }

    /// The user, resolved before the handler ran (anonymous when no middleware set one), or
    /// the one [`EventContext::login`] logged in.
    pub fn user(&self) -> CurrentUser {
        self.inner
            .user
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Logs `user` in for this tab: a new session id at once on the server (the next event on
    /// this socket is authenticated), and the browser gets the HttpOnly cookie over HTTP through
    /// a `_session` client event the client runtime follows.
    pub async fn login(&self, user: &crate::User) -> Result<(), crate::Error> {
        let (auth, session) = self.auth_parts()?;
        auth.login(&session, user).await?;
        self.rebind(&session).await?;
        *self.inner.user.lock().unwrap_or_else(|p| p.into_inner()) =
            CurrentUser::from(user.clone());
        *self
            .inner
            .session_change
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(SessionChange::LoggedIn);
        Ok(())
    }

    /// Checks `username` and `password` (counted by the login throttle like the login form)
    /// and logs the tab in: the user, or [`crate::Error::Unauthenticated`] with the one message
    /// every wrong pair gets, so a handler does not tell which usernames exist.
    pub async fn login_with_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<crate::User, crate::Error> {
        let (auth, _) = self.auth_parts()?;
        let user = auth
            .authenticate(username, password)
            .await?
            .ok_or_else(|| {
                crate::Error::Unauthenticated(crate::auth::http::WRONG_CREDENTIALS.into())
            })?;
        self.login(&user).await?;
        Ok(user)
    }

    /// Logs the tab out: the session is deleted and the browser's cookie cleared the same way.
    pub async fn logout(&self) -> Result<(), crate::Error> {
        let (auth, session) = self.auth_parts()?;
        auth.logout(&session).await?;
        // A fresh session with a fresh binding: the tab's states start afresh, as Django
        // flushes the session's data.
        self.rebind(&session).await?;
        *self.inner.user.lock().unwrap_or_else(|p| p.into_inner()) = CurrentUser::Anonymous;
        *self
            .inner
            .session_change
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(SessionChange::LoggedOut);
        Ok(())
    }

    /// The language of this event's page: the `language` cookie, the user's saved preference,
    /// `Accept-Language`, or the default, among the `languages` setting ([`crate::i18n`]).
    pub fn language(&self) -> String {
        crate::i18n::language_of(self.request())
    }

    /// Switches the tab to `language` (the socket's `set_language`, as `POST /_language` is the
    /// form's): saved as the logged-in user's preference now, and once the handler succeeds, used
    /// by this socket's next events and sent to the browser, which keeps it in its `language`
    /// cookie and reloads the page in it. A bad-request error when `language` is not one of the
    /// app's `languages`.
    pub async fn set_language(&self, language: &str) -> Result<(), crate::Error> {
        let supported = self
            .extension::<Arc<crate::i18n::Catalogues>>()
            .is_some_and(|c| c.supports(language));
        if !supported {
            let text = crate::i18n::translate_in(self.request(), "ferrule-unknown-language", &[])
                .unwrap_or_else(|| "This site is not available in that language.".to_owned());
            return Err(crate::Error::bad_request(text));
        }
        if let (Some(auth), Some(user)) = (self.auth(), self.user().user()) {
            auth.set_language(user.id, Some(language)).await?;
        }
        *self
            .inner
            .language_choice
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(language.to_owned());
        Ok(())
    }

    /// The language [`EventContext::set_language`] chose, when a handler did.
    pub(crate) fn language_choice(&self) -> Option<String> {
        self.inner
            .language_choice
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Accounts, for handlers that authenticate or create users (`None` without a database).
    pub fn auth(&self) -> Option<&crate::auth::Auth> {
        self.extension::<crate::auth::Auth>()
    }

    fn auth_parts(&self) -> Result<(crate::auth::Auth, tower_sessions::Session), crate::Error> {
        let auth = self.auth().cloned().ok_or_else(|| {
            crate::Error::internal("login/logout need App::database (sessions and users), and a state tier that runs them")
        })?;
        let session = self.session().cloned().ok_or_else(|| {
            crate::Error::internal("no session on this event: is the session middleware skipped?")
        })?;
        Ok((auth, session))
    }

    /// Puts this tab into `room` once the handler succeeds; it stays there across reconnects
    /// (see [`crate::rooms`]).
    pub fn join(&self, room: impl Into<String>) {
        self.room_op(RoomOp::Join(room.into()));
    }

    /// Takes this tab out of `room` once the handler succeeds.
    pub fn leave(&self, room: impl Into<String>) {
        self.room_op(RoomOp::Leave(room.into()));
    }

    /// Sends `event` to every tab in `room` (this one too, when it is in) once the handler
    /// succeeded and its state is stored; on every node when broadcasts go over Redis.
    pub fn broadcast(&self, room: impl Into<String>, event: ClientCommand) {
        self.room_op(RoomOp::Broadcast(room.into(), vec![event]));
    }

    fn room_op(&self, op: RoomOp) {
        self.inner
            .rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(op);
    }

    /// Tells every tab whose states show `table` ([`crate::Registered::on_change`]), on every
    /// node, that its rows changed, once this event is answered (whether the handler then
    /// succeeded or not: what it wrote is written). Call it after each write; a table named
    /// twice is told once, and a burst from many events is coalesced
    /// ([`Rooms::changed`](crate::rooms::Rooms::changed)). A background handler calls
    /// [`Background::changed`](crate::background::Background::changed) instead, and a page's
    /// render tells nothing (it writes nothing).
    pub fn changed(&self, table: impl Into<String>) {
        let table = table.into();
        let mut changed = self.inner.changed.lock().unwrap_or_else(|p| p.into_inner());
        if !changed.contains(&table) {
            changed.push(table);
        }
    }

    /// The tables the handler said it changed.
    pub(crate) fn take_changes(&self) -> Vec<String> {
        std::mem::take(&mut *self.inner.changed.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The room changes the handler asked for, in order.
    pub(crate) fn take_room_ops(&self) -> Vec<RoomOp> {
        std::mem::take(&mut *self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Records the session's tab binding after a login or logout (every login and logout gives
    /// a new one), and the one a login replaced, for the bridge to move the tab.
    async fn rebind(&self, session: &tower_sessions::Session) -> Result<(), crate::Error> {
        let to = crate::tab_binding::ensure(session).await?;
        let from = crate::tab_binding::moved_from(session).await?;
        *self.inner.binding.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(crate::tab_binding::Rebinding { to, from });
        Ok(())
    }

    /// Where a login or logout moved the tab, when one did.
    pub(crate) fn tab_binding(&self) -> Option<crate::tab_binding::Rebinding> {
        self.inner
            .binding
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn session_change(&self) -> Option<SessionChange> {
        *self
            .inner
            .session_change
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The flash messages of this event: what the handler adds shows as toasts in its answer
    /// once it succeeds (see [`crate::messages`]).
    pub fn messages(&self) -> &crate::messages::EventMessages {
        &self.inner.messages
    }

    /// The session, when a session middleware ran for this event.
    pub fn session(&self) -> Option<&tower_sessions::Session> {
        self.extension::<tower_sessions::Session>()
    }

    /// The response middleware returned instead of running the chain to the end; set only when
    /// `auto_redirect_from_middleware` is off and a middleware redirected.
    pub fn response(&self) -> Option<&ResponseHead> {
        self.inner.response.as_ref()
    }

    /// Which event this is.
    pub fn event(&self) -> &EventInfo {
        &self.inner.event
    }

    /// The client token of the tab that sent the event.
    pub fn token(&self) -> &str {
        &self.inner.event.token
    }

    /// The page path the event came from.
    pub fn path(&self) -> &str {
        self.inner.request.uri.path()
    }

    /// Every query pair of the page, decoded, repeated keys kept in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let q = self.inner.request.uri.query().unwrap_or("");
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    /// The first value of query key `key`.
    pub fn query(&self, key: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Every value of query key `key`.
    pub fn query_all(&self, key: &str) -> Vec<String> {
        self.query_pairs()
            .into_iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect()
    }

    /// A value middleware put into the request's extensions (a tenant, feature flags, ...).
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.inner.request.extensions.get::<T>()
    }

    /// The app's own settings ([`crate::App::app_settings`]); an error the user sees as a
    /// generic failure when the app made none of type `T`.
    pub fn app_settings<T: Send + Sync + 'static>(&self) -> Result<&T, crate::Error> {
        self.extension::<crate::settings::AppSettings<T>>()
            .map(|s| &**s)
            .ok_or_else(|| {
                crate::Error::internal(format!(
                    "no app settings of type {}: register them with App::app_settings",
                    std::any::type_name::<T>()
                ))
            })
    }

    /// The client's address after trusted-proxy headers.
    pub fn client_addr(&self) -> Option<ClientAddr> {
        self.extension::<ClientAddr>().copied()
    }

    /// The app's database ([`crate::App::database`]), for handlers that read or write their
    /// own tables; an error the user sees as a generic failure when the app has none.
    pub fn db(&self) -> Result<&sea_orm::DatabaseConnection, crate::Error> {
        self.extension::<sea_orm::DatabaseConnection>()
            .ok_or_else(|| {
                crate::Error::internal("this app has no database: give it one with App::database")
            })
    }

    /// The CSRF token of the tab's browser (its `csrftoken` cookie, as the page was rendered
    /// with), for a handler that renders a form posting to an HTTP endpoint: the form carries
    /// it in its `csrf_token` field. `None` when the browser has none yet (its first page load
    /// gives it one).
    pub fn csrf_token(&self) -> Option<String> {
        if let Some(token) = self.extension::<crate::csrf::CsrfToken>() {
            return Some(token.0.clone());
        }
        crate::net::cookie_in(&self.inner.request.headers, crate::csrf::CSRF_COOKIE)
            .filter(|t| !t.is_empty())
    }

    /// The payload as form fields, when `event_post_from_payload` is on.
    pub fn form(&self) -> Option<&Form> {
        self.extension::<Form>()
    }

    /// Runs `fut` with this context bound as the current one.
    pub(crate) async fn scope<F: Future>(self, fut: F) -> F::Output {
        let client = self.client_addr();
        let request = self.inner.request.clone();
        CURRENT
            .scope(
                self,
                crate::i18n::with_request(request, crate::net::with_client(client, fut)),
            )
            .await
    }
}

/// The context of the event being handled, or `None` outside an event.
pub fn current_context() -> Option<EventContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The request of the event being handled, or `None` outside an event.
pub fn current_request() -> Option<Arc<Parts>> {
    CURRENT.try_with(|c| c.inner.request.clone()).ok()
}

/// The user of the event being handled; anonymous outside an event.
pub fn current_user() -> CurrentUser {
    CURRENT.try_with(EventContext::user).unwrap_or_default()
}

/// The session of the event being handled, or `None` outside an event or without sessions.
pub fn current_session() -> Option<tower_sessions::Session> {
    CURRENT.try_with(|c| c.session().cloned()).ok().flatten()
}
