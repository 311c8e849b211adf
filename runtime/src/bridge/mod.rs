//! The event bridge: every socket event becomes an `http::Request`, goes through the app's
//! middleware chain with the handler innermost, and comes back as a [`StateUpdate`].
//!
//! The steps, in the order `handle` runs them:
//! 1. decode the [`Event`]; find its state and handler; decode the payload (errors → `_error`);
//! 2. build the request from the socket handshake and the event's `router_data`;
//! 3. lock the token's states (events of one token run in order);
//! 4. run the chain for the state's tier, the handler innermost, bound in the task-local
//!    [`EventContext`]; the handler works on a copy of the state;
//! 5. apply the policies: a 3xx from middleware → `_redirect`; an error → toast; a handler
//!    error or panic → toast and the state stays as it was;
//! 6. commit the copy and ship the fields that changed.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tracing::Instrument;

use crate::Error;
use crate::auth::guard::{Guard, denial};
use crate::auth::http::CookieCodes;
use crate::auth::{AuthState, CurrentUser};
use crate::context::{EventContext, EventInfo, Form, ResponseHead};
use crate::in_flight::{InFlight, InFlightGuard};
use crate::metrics::{self, ErrorKind, Phase, Timing};
use crate::middleware::{MiddlewareChain, Request, Response, Stack};
use crate::net::{ClientAddr, set_cookie_in_header};
use crate::protocol::{ClientCommand, Event, HYDRATE, LIVE, LOAD, StateUpdate, ToastLevel};
use crate::settings::{Settings, Tier};
use crate::state::{
    AnyState, Keyed, PreparedCall, RunOutcome, StateEntry, StateManager, StateRegistry, delta,
};
use crate::tab_binding::{TabBinding, session_storage_key, storage_key};

mod hydrate;
mod live;
mod page_load;
mod pipeline;
mod refusal;
mod request;
mod session_follow;

/// What the bridge knows about a socket from its handshake.
#[derive(Debug, Clone)]
pub(crate) struct SocketInfo {
    /// Where the tab's states are kept: its token bound to its session (see
    /// [`crate::tab_binding`]); it changes when the tab's own login or logout rebinds it.
    pub(crate) token: String,
    /// The token the client presented, the key of states that are not session-bound.
    pub(crate) client_token: String,
    /// The binding of the socket's session; `None` without sessions.
    pub(crate) binding: Option<TabBinding>,
    /// The session cookies the tab's browser may hold, newest last: the handshake's, then
    /// those handed over after logins and logouts on this socket (a code is good only there).
    pub(crate) browser_sessions: Vec<Option<String>>,
    /// The client's page load; with it, events resent after a reconnect are applied once.
    pub(crate) epoch: Option<String>,
    /// Set when the tab's login moved it and carried its states: the rooms of its old binding,
    /// the only ones the socket leaves (it stays in the app's rooms). `None` after a logout: the
    /// socket leaves every room.
    pub(crate) left_rooms: Option<Vec<String>>,
    /// What the bridge's own texts (refusals, errors) are translated for: the handshake's
    /// headers and the app's catalogues, made at the socket's first event and kept (a login
    /// changes the session cookie, never the language cookie).
    pub(crate) language: Option<Arc<http::request::Parts>>,
    pub(crate) headers: HeaderMap,
    pub(crate) client: ClientAddr,
    pub(crate) peer: Option<SocketAddr>,
}

impl SocketInfo {
    /// Makes the socket's next events carry `language` in their `language` cookie, as the
    /// browser's next requests will once it applies the `_language` instruction.
    pub(crate) fn choose_language(&mut self, language: &str) {
        let cookies = crate::net::cookies_without(&self.headers, crate::i18n::LANGUAGE_COOKIE);
        let mut header = format!("{}={language}", crate::i18n::LANGUAGE_COOKIE);
        if !cookies.is_empty() {
            header = format!("{cookies}; {header}");
        }
        self.headers.remove(http::header::COOKIE);
        // A configured language tag and cookies that came in as a header: ASCII.
        if let Ok(value) = http::HeaderValue::from_str(&header) {
            self.headers.insert(http::header::COOKIE, value);
        }
        // The bridge's own texts follow too.
        self.language = None;
    }

    /// The rooms every socket of this tab is in, for pushes: its bound key's and its token's
    /// (pushes of states that are not session-bound).
    pub(crate) fn tab_rooms(&self) -> Vec<String> {
        let mut rooms = vec![crate::net::tab_room(&self.token)];
        if self.client_token != self.token {
            rooms.push(crate::net::tab_room(&self.client_token));
        }
        if let Some(session) = self.session_key() {
            rooms.push(crate::net::tab_room(&session));
        }
        rooms
    }

    /// The key of the states every tab of the socket's session shares; `None` without sessions.
    pub(crate) fn session_key(&self) -> Option<String> {
        self.binding.as_ref().map(session_storage_key)
    }

    /// The key of `entry`'s states for this socket.
    fn key_for(&self, entry: &StateEntry) -> String {
        match entry.keyed {
            Keyed::Tab => self.token.clone(),
            Keyed::Token => self.client_token.clone(),
            Keyed::Session => self.session_key().unwrap_or_else(|| self.token.clone()),
        }
    }
}

/// The span of one event, `ferrule.event`: the bridge records the state and handler once it
/// found them and the user once the chain resolved it; the socket runs the answer's sending
/// in it too. Nothing is formatted unless a subscriber wants the span.
pub(crate) fn event_span(socket: &SocketInfo, id: Option<u64>) -> tracing::Span {
    // Made once, not parsed from its name at every event.
    const REQUEST_ID: HeaderName = HeaderName::from_static(crate::net::REQUEST_ID_HEADER);
    // Fields are read only when the span is enabled.
    tracing::info_span!(
        "ferrule.event",
        state = tracing::field::Empty,
        handler = tracing::field::Empty,
        event_id = id,
        tab = %TabId(&socket.client_token),
        user_id = tracing::field::Empty,
        handshake_id = socket.headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok()),
    )
}

/// A tab in logs and traces: a short hash of its token, never the token, which opens its
/// states.
struct TabId<'a>(&'a str);

impl std::fmt::Display for TabId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::hash::{Hash, Hasher};
        // SipHash with fixed keys: the same tab gets the same id in every process of a
        // deployment, and 32 bits of it say nothing of a 128-bit token.
        let mut h = std::hash::DefaultHasher::new();
        self.0.hash(&mut h);
        write!(f, "{:08x}", h.finish() >> 32)
    }
}

/// The bridge, reachable from a running event (put into the request's extensions), for
/// background handlers.
#[derive(Clone)]
pub(crate) struct BridgeRef(pub(crate) Weak<EventBridge>);

/// What the bridge needs to move a socket's session after a login or logout in a handler.
#[derive(Clone)]
pub(crate) struct SessionFollow {
    pub(crate) codes: CookieCodes,
    pub(crate) cookie_name: String,
}

/// Runs events through the chain and the handlers.
pub(crate) struct EventBridge {
    me: Weak<Self>,
    shutdown: tokio_util::sync::CancellationToken,
    abort: tokio_util::sync::CancellationToken,
    rooms: crate::rooms::Rooms,
    work: Arc<InFlight>,
    follow: Option<SessionFollow>,
    settings: Settings,
    registry: StateRegistry,
    manager: Arc<dyn StateManager>,
    full: Stack,
    auth_only: Stack,
    none: Stack,
    /// The app's extensions, in every event's request ([`crate::App::extension`]).
    extensions: http::Extensions,
}

impl EventBridge {
    /// The bridge, reachable from its own events through a weak reference to itself.
    pub(crate) fn new(
        settings: Settings,
        registry: StateRegistry,
        manager: Arc<dyn StateManager>,
        chain: &MiddlewareChain,
        follow: Option<SessionFollow>,
        rooms: crate::rooms::Rooms,
        extensions: http::Extensions,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| {
            let skip = &settings.event_middleware_skip;
            Self {
                me: me.clone(),
                shutdown: tokio_util::sync::CancellationToken::new(),
                abort: tokio_util::sync::CancellationToken::new(),
                rooms,
                work: Arc::default(),
                follow,
                full: chain.event_stack(Tier::Full, skip),
                auth_only: chain.event_stack(Tier::AuthOnly, skip),
                none: chain.event_stack(Tier::NoChain, skip),
                extensions,
                settings,
                registry,
                manager,
            }
        })
    }

    /// Handles an upload's event (its payload describes the files already on disk), counted
    /// as in flight so a shutdown waits for it.
    pub(crate) async fn handle_upload(&self, socket: &mut SocketInfo, raw: Value) -> StateUpdate {
        let _guard = self.work.enter();
        let span = event_span(socket, raw.get("id").and_then(Value::as_u64));
        metrics::counted(self.handle(socket, raw, true))
            .instrument(span)
            .await
    }

    /// Checks that `name` is a registered upload handler; its (per file, per request) limits in
    /// bytes: the settings', the request's lowered by the handler's own `max_bytes`.
    pub(crate) fn upload_target_limits(&self, name: &str) -> Result<(u64, u64), String> {
        let (state, handler) = name
            .split_once('.')
            .ok_or_else(|| format!("`{name}` must be `<state>.<handler>`"))?;
        let entry = self
            .registry
            .by_name
            .get(state)
            .ok_or_else(|| format!("unknown state `{state}`"))?;
        let Some(own) = entry.uploads.get(handler) else {
            return Err(format!("`{name}` is not an upload handler"));
        };
        let request = self.settings.upload_max_request_bytes;
        Ok((
            self.settings.upload_max_file_bytes,
            own.map_or(request, |own| own.min(request)),
        ))
    }

    /// The key of the states event `name` changes for `socket` (pushes go to its tab room).
    pub(crate) fn key_of(&self, socket: &SocketInfo, name: &str) -> String {
        let state = name.split_once('.').map_or(name, |(s, _)| s);
        match self.registry.by_name.get(state) {
            Some(entry) => socket.key_for(entry),
            None => socket.token.clone(),
        }
    }

    /// Where uploads are spooled.
    pub(crate) fn upload_dir(&self) -> std::path::PathBuf {
        self.settings
            .upload_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
    }

    /// Sends `update` to every socket of tab `token` (on every node when rooms go over Redis).
    pub(crate) async fn push_to_tab(&self, token: &str, update: &StateUpdate) {
        let room = crate::net::tab_room(token);
        if let Err(e) = self.rooms.emit_to(room, update).await {
            // A socket whose send buffer is full misses the push; the tab has the state again
            // at its next resync (every reconnect).
            tracing::warn!(error = %e, "could not push an update to a tab");
        }
    }

    /// Sends `update` to the other tabs sharing `key` (a session's), not to tab `token`, which
    /// has it in its answer.
    pub(crate) async fn push_to_others(&self, key: &str, token: &str, update: &StateUpdate) {
        let (room, except) = (crate::net::tab_room(key), crate::net::tab_room(token));
        if let Err(e) = self.rooms.emit_to_except(room, vec![except], update).await {
            // As for any push: the other tabs have the state again at their next resync.
            tracing::warn!(error = %e, "could not push a shared state's change to the other tabs");
        }
    }

    /// The rooms and broadcasts of this server.
    pub(crate) fn rooms(&self) -> &crate::rooms::Rooms {
        &self.rooms
    }

    /// Puts tab `token` into `room` now and records it with the tab's states.
    pub(crate) async fn join_room(&self, token: &str, room: &str) -> Result<(), Error> {
        let mut lock = self.manager.lock(token).await?;
        pipeline::record_rooms(
            lock.states(),
            &[crate::rooms::RoomOp::Join(room.to_owned())],
        );
        lock.release().await?;
        self.rooms.join_tab(token, &[room.to_owned()]).await
    }

    /// Cancelled when the server begins to shut down (background handlers watch it).
    pub(crate) fn shutdown_token(&self) -> &tokio_util::sync::CancellationToken {
        &self.shutdown
    }

    /// Asks the state store outside this process whether it answers (`None`: states are in memory).
    pub(crate) async fn ping_states(&self) -> Option<Result<(), Error>> {
        self.manager.ping().await
    }

    /// How much the state store holds, where it keeps count.
    pub(crate) fn states_size(&self) -> Option<crate::state::StoreSize> {
        self.manager.size()
    }

    /// Drops the states of tab `key` (past its session's or address's tab cap), in the
    /// background; a failure is logged, and the states then expire with their TTL.
    pub(crate) fn forget_tab(&self, key: String) {
        let manager = self.manager.clone();
        self.track(async move {
            if let Err(e) = manager.forget(&key).await {
                tracing::warn!(error = %e, "could not drop the states of a tab past its cap");
            }
        });
    }

    /// How long `json`, a new value of `entry`'s state, is encoded, when that is within
    /// `max_state_bytes`; otherwise the error the change is refused with.
    pub(crate) fn fits(&self, entry: &StateEntry, json: &Value) -> Result<usize, Error> {
        let bytes = crate::state::encoded_len(json);
        let max = self.settings.max_state_bytes;
        if max > 0 && bytes > max {
            tracing::warn!(state = %entry.name, bytes, max, "a change would make a state larger than max_state_bytes; not kept");
            return Err(Error::bad_request(
                "That change is too large to keep; it was not saved.",
            ));
        }
        Ok(bytes)
    }

    /// The settings the app runs with.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Cancelled when the grace time of a shutdown is over: queued events are given up.
    pub(crate) fn abort_token(&self) -> &tokio_util::sync::CancellationToken {
        &self.abort
    }

    /// Counts one piece of work (a queued event, an upload) as in flight until the guard drops.
    pub(crate) fn enter(&self) -> InFlightGuard {
        self.work.enter()
    }

    /// Runs `fut` detached, counted as in flight so shutdown waits for it.
    pub(crate) fn track(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let guard = self.work.enter();
        tokio::spawn(async move {
            fut.await;
            drop(guard);
        });
    }

    /// Locks `token`'s states, applies `f` to a copy of state `name`, commits it and returns
    /// the update to push (`id: null`).
    pub(crate) async fn with_state<R>(
        &self,
        token: &str,
        name: &str,
        f: impl FnOnce(&mut dyn AnyState) -> R,
    ) -> Result<(StateUpdate, R), Error> {
        let entry = self
            .registry
            .by_name
            .get(name)
            .cloned()
            .ok_or_else(|| Error::internal(format!("state `{name}` is not registered")))?;
        let mut lock = self.manager.lock(token).await?;
        let result = (|| {
            let slot = lock.states().slot(&entry)?;
            let mut working = slot.state.clone_box();
            let out = f(working.as_mut());
            let new_json = working.to_json()?;
            let bytes = self.fits(&entry, &new_json)?;
            let changed = delta(&slot.json, &new_json);
            slot.set(working, new_json, bytes);
            let mut update = StateUpdate::final_for(None);
            if !changed.is_empty() {
                update.delta.insert(entry.name.clone(), changed);
            }
            Ok::<_, Error>((update, out))
        })();
        lock.release().await?;
        result
    }

    /// Waits until no event is queued or running, up to `limit`; `false` if some still were.
    pub(crate) async fn drain(&self, limit: Duration) -> bool {
        self.work.wait_idle(limit).await
    }

    /// Whether events of `entry` go through the middleware that resolves users.
    fn resolves_users(&self, entry: &StateEntry) -> bool {
        self.settings.run_middleware_chain
            && entry.tier.unwrap_or(self.settings.default_tier) != Tier::NoChain
    }

    fn stack_for(&self, entry: &StateEntry) -> &Stack {
        if !self.settings.run_middleware_chain {
            return &self.none;
        }
        match entry.tier.unwrap_or(self.settings.default_tier) {
            Tier::Full => &self.full,
            Tier::AuthOnly => &self.auth_only,
            Tier::NoChain => &self.none,
        }
    }
}

/// Puts every field of `entry`'s state into `update` (a resync), or the error toast.
fn ship_in_full(
    states: &mut crate::state::TokenStates,
    entry: &StateEntry,
    update: &mut StateUpdate,
) {
    match states.slot(entry) {
        Ok(slot) => {
            if let Value::Object(fields) = &slot.json {
                update.delta.insert(entry.name.clone(), fields.clone());
            }
        }
        Err(e) => update.events.push(toast_for(&e)),
    }
}

/// Name of the client event carrying the one-time cookie code.
pub(crate) const SESSION_EVENT: &str = "_session";
const AUTH_STATE: &str = "auth_state";

fn protocol_error(id: Option<u64>, message: String) -> StateUpdate {
    metrics::error(ErrorKind::Invalid);
    tracing::debug!(%message, "event refused");
    let mut u = StateUpdate::final_for(id);
    u.events.push(ClientCommand::error(message));
    u
}

fn internal_error(id: Option<u64>, event: &str, what: &str, e: &Error) -> StateUpdate {
    metrics::error(ErrorKind::of(e));
    tracing::error!(event, error = %e, "{what} failed");
    let mut u = StateUpdate::final_for(id);
    u.events.push(toast_for(e));
    u
}

fn toast_for(e: &Error) -> ClientCommand {
    ClientCommand::toast(
        ToastLevel::Error,
        crate::i18n::localize(&e.public_message()),
    )
}

/// What a handler's error answers with: its toast, and for a refused form each field's
/// messages (`_invalid`), which clients that do not know them ignore.
fn refusal_for(e: &Error) -> Vec<ClientCommand> {
    let mut commands = vec![toast_for(e)];
    if let Some(errors) = e.field_errors() {
        let errors = errors.clone().map_messages(crate::i18n::localize);
        commands.push(ClientCommand::new(
            ClientCommand::INVALID,
            serde_json::json!({ "fields": errors }),
        ));
    }
    commands
}
