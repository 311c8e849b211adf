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

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::Error;
use crate::auth::guard::{Guard, denial};
use crate::auth::http::CookieCodes;
use crate::auth::{AuthState, CurrentUser};
use crate::context::{ClientAddr, EventContext, EventInfo, Form, ResponseHead};
use crate::in_flight::{InFlight, InFlightGuard};
use crate::metrics::{self, Phase};
use crate::middleware::{MiddlewareChain, Request, Response, Stack};
use crate::protocol::{ClientEvent, Event, HYDRATE, StateUpdate, ToastLevel};
use crate::settings::{IpNet, Settings, Tier};
use crate::state::{
    AnyState, PreparedCall, RunOutcome, StateEntry, StateManager, StateRegistry, delta,
};
use crate::tab_binding::{TabBinding, storage_key};

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
    pub(crate) headers: HeaderMap,
    pub(crate) client: ClientAddr,
    pub(crate) peer: Option<SocketAddr>,
}

impl SocketInfo {
    /// The rooms every socket of this tab is in, for pushes: its bound key's and its token's
    /// (pushes of states that are not session-bound).
    pub(crate) fn tab_rooms(&self) -> Vec<String> {
        let mut rooms = vec![crate::socket::tab_room(&self.token)];
        if self.client_token != self.token {
            rooms.push(crate::socket::tab_room(&self.client_token));
        }
        rooms
    }

    /// The key of `entry`'s states for this socket.
    fn key_for(&self, entry: &StateEntry) -> &str {
        if entry.session_bound {
            &self.token
        } else {
            &self.client_token
        }
    }
}

/// Marks the response the event endpoint returns, so the bridge knows the handler ran.
#[derive(Clone, Copy)]
struct HandlerRan;

type Pending = Arc<Mutex<Option<(PreparedCall, Box<dyn AnyState>)>>>;
/// How the handler ended inside the chain: its new state and events, or a failure.
type HandlerDone = Result<(Box<dyn AnyState>, Vec<ClientEvent>), ()>;
type Finished = Arc<Mutex<Option<HandlerDone>>>;

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
}

impl EventBridge {
    pub(crate) fn new(
        settings: Settings,
        registry: StateRegistry,
        manager: Arc<dyn StateManager>,
        chain: &MiddlewareChain,
        follow: Option<SessionFollow>,
        rooms: crate::rooms::Rooms,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| {
            Self::build(
                me.clone(),
                settings,
                registry,
                manager,
                chain,
                follow,
                rooms,
            )
        })
    }

    fn build(
        me: Weak<Self>,
        settings: Settings,
        registry: StateRegistry,
        manager: Arc<dyn StateManager>,
        chain: &MiddlewareChain,
        follow: Option<SessionFollow>,
        rooms: crate::rooms::Rooms,
    ) -> Self {
        let skip = &settings.event_middleware_skip;
        Self {
            me,
            shutdown: tokio_util::sync::CancellationToken::new(),
            abort: tokio_util::sync::CancellationToken::new(),
            rooms,
            work: Arc::default(),
            follow,
            full: chain.event_stack(Tier::Full, skip),
            auth_only: chain.event_stack(Tier::AuthOnly, skip),
            none: chain.event_stack(Tier::None, skip),
            settings,
            registry,
            manager,
        }
    }

    /// Handles an upload's event (its payload describes the files already on disk), counted
    /// as in flight so a shutdown waits for it.
    pub(crate) async fn handle_upload(&self, socket: &mut SocketInfo, raw: Value) -> StateUpdate {
        let _guard = self.work.enter();
        self.handle(socket, raw, true).await
    }

    /// Checks that `name` is a registered upload handler.
    pub(crate) fn check_upload_target(&self, name: &str) -> Result<(), String> {
        let (state, handler) = name
            .split_once('.')
            .ok_or_else(|| format!("`{name}` must be `<state>.<handler>`"))?;
        let entry = self
            .registry
            .by_name
            .get(state)
            .ok_or_else(|| format!("unknown state `{state}`"))?;
        if !entry.uploads.contains(handler) {
            return Err(format!("`{name}` is not an upload handler"));
        }
        Ok(())
    }

    /// The key of the states event `name` changes for `socket` (pushes go to its tab room).
    pub(crate) fn key_of<'a>(&self, socket: &'a SocketInfo, name: &str) -> &'a str {
        let state = name.split_once('.').map_or(name, |(s, _)| s);
        match self.registry.by_name.get(state) {
            Some(entry) => socket.key_for(entry),
            None => &socket.token,
        }
    }

    /// Where uploads are spooled.
    pub(crate) fn upload_dir(&self) -> std::path::PathBuf {
        self.settings
            .upload_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
    }

    /// (per file, per request) upload limits in bytes.
    pub(crate) fn upload_limits(&self) -> (u64, u64) {
        (
            self.settings.upload_max_file_bytes,
            self.settings.upload_max_request_bytes,
        )
    }

    /// Sends `update` to every socket of tab `token` (on every node when rooms go over Redis).
    pub(crate) async fn push_to_tab(&self, token: &str, update: &StateUpdate) {
        let room = crate::socket::tab_room(token);
        if let Err(e) = self.rooms.emit_to(room, update).await {
            // A socket whose send buffer is full misses the push; the tab has the state again
            // at its next resync (every reconnect).
            tracing::warn!(error = %e, "could not push an update to a tab");
        }
    }

    /// The rooms and broadcasts of this server.
    pub(crate) fn rooms(&self) -> &crate::rooms::Rooms {
        &self.rooms
    }

    /// Puts tab `token` into `room` now and records it with the tab's states.
    pub(crate) async fn join_room(&self, token: &str, room: &str) -> Result<(), Error> {
        let mut lock = self.manager.lock(token).await?;
        record_rooms(
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
            let changed = delta(&slot.json, &new_json);
            slot.state = working;
            slot.json = new_json;
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
            && entry.tier.unwrap_or(self.settings.default_tier) != Tier::None
    }

    fn stack_for(&self, entry: &StateEntry) -> &Stack {
        if !self.settings.run_middleware_chain {
            return &self.none;
        }
        match entry.tier.unwrap_or(self.settings.default_tier) {
            Tier::Full => &self.full,
            Tier::AuthOnly => &self.auth_only,
            Tier::None => &self.none,
        }
    }

    /// Handles one raw event and returns the final update for it.
    pub(crate) async fn handle(
        &self,
        socket: &mut SocketInfo,
        raw: Value,
        via_upload: bool,
    ) -> StateUpdate {
        let decode_started = Instant::now();
        let id = raw.get("id").and_then(Value::as_u64);
        let event: Event = match serde_path_to_error::deserialize(raw) {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().to_string();
                let msg = if path == "." {
                    format!("malformed event: {}", e.inner())
                } else {
                    format!("malformed event: `{path}`: {}", e.inner())
                };
                return protocol_error(id, msg);
            }
        };
        if event.name == HYDRATE {
            return self.hydrate(socket, &event).await;
        }
        let Some((state_name, handler_name)) = event.target() else {
            return protocol_error(
                id,
                format!("event name `{}` must be `<state>.<handler>`", event.name),
            );
        };
        let Some(entry) = self.registry.by_name.get(state_name).cloned() else {
            return protocol_error(id, format!("unknown state `{state_name}`"));
        };
        let Some(handler) = entry.handlers.get(handler_name).cloned() else {
            // In production the answer does not list what else there is to call.
            if self.settings.is_production() {
                return protocol_error(
                    id,
                    format!("state `{state_name}` has no handler `{handler_name}`"),
                );
            }
            let known: Vec<&str> = entry.handlers.keys().map(String::as_str).collect();
            return protocol_error(
                id,
                format!(
                    "state `{state_name}` has no handler `{handler_name}` (it has: {})",
                    known.join(", ")
                ),
            );
        };
        if entry.uploads.contains(handler_name) && !via_upload {
            return protocol_error(
                id,
                format!("`{}` takes files: POST them to /_upload", event.name),
            );
        }
        let call = match handler.prepare(event.payload.clone()) {
            Ok(call) => call,
            Err(why) => {
                return protocol_error(id, format!("invalid payload for `{}`: {why}", event.name));
            }
        };
        metrics::record(Phase::Decode, decode_started);
        let build_started = Instant::now();
        let req = match self.build_request(socket, &event) {
            Ok(req) => req,
            Err(why) => return protocol_error(id, why),
        };

        metrics::record(Phase::BuildRequest, build_started);
        let lock_started = Instant::now();
        let key = socket.key_for(&entry).to_owned();
        let mut lock = match self.manager.lock(&key).await {
            Ok(lock) => lock,
            Err(e) => return internal_error(id, &event.name, "state manager", &e),
        };
        metrics::record(Phase::Lock, lock_started);
        if let Some(replay) = socket
            .epoch
            .as_deref()
            .and_then(|epoch| lock.states().answered_before(epoch, event.id))
        {
            // Sent again after a reconnect, and handled before: the answer it had, with the
            // state as it is now; never run twice.
            tracing::debug!(event = %event.name, id = event.id, "resent event answered again");
            let mut update = StateUpdate::final_for(Some(event.id));
            update.events = replay;
            ship_in_full(lock.states(), &entry, &mut update);
            if let Err(e) = lock.release().await {
                update.events.push(toast_for(&e));
            }
            return update;
        }
        let working = match lock.states().slot(&entry) {
            Ok(slot) => slot.state.clone_box(),
            Err(e) => {
                let _ = lock.release().await;
                return internal_error(id, &event.name, "state", &e);
            }
        };
        let info = EventInfo {
            id: Some(event.id),
            name: event.name.clone(),
            token: key.clone(),
        };
        let guards = entry.guards.get(handler_name).cloned();
        let outcome = {
            let rebuild = || self.build_request(socket, &event).unwrap_or_default();
            self.run(&entry, req, info, (call, working), guards, rebuild)
                .await
        };

        let commit_started = Instant::now();
        let mut update = StateUpdate::final_for(Some(event.id));
        if let Some((new_state, events)) = outcome.commit {
            match new_state.to_json() {
                Ok(new_json) => {
                    if let Ok(slot) = lock.states().slot(&entry) {
                        let changed = delta(&slot.json, &new_json);
                        slot.state = new_state;
                        slot.json = new_json;
                        if !changed.is_empty() {
                            update.delta.insert(entry.name.clone(), changed);
                        }
                    }
                    update.events = events;
                }
                Err(e) => {
                    let e = Error::from(e);
                    update.events.push(toast_for(&e));
                    tracing::error!(event = %event.name, error = %e, "state does not serialize after the handler; change discarded");
                }
            }
        }
        metrics::record(Phase::Commit, commit_started);
        update.events.extend(outcome.events);
        let mut room_ops = Vec::new();
        let mut rebound = None;
        if let Some(ctx) = &outcome.ctx {
            if outcome.handler_ok {
                room_ops = ctx.take_room_ops();
                record_rooms(lock.states(), &room_ops);
            }
            rebound = self
                .follow_session(socket, ctx, outcome.handler_ok, &mut update)
                .await;
            if entry.session_bound
                && self.resolves_users(&entry)
                && (outcome.handler_ok || ctx.session_change().is_none())
            {
                self.sync_auth_state(lock.states(), &ctx.user(), &mut update);
            }
        }
        if let Some(epoch) = &socket.epoch {
            lock.states().record_answer(epoch, event.id, &update.events);
        }
        if let Err(e) = lock.release().await {
            tracing::error!(event = %event.name, error = %e, "could not store states");
            update.delta.clear();
            update.events.push(toast_for(&e));
            room_ops.clear();
        }
        if !room_ops.is_empty() {
            self.rooms.apply(&key, room_ops).await;
        }
        if let (Some(binding), Some(ctx)) = (rebound, &outcome.ctx) {
            self.rebind(socket, binding, &ctx.user(), event.id, &mut update)
                .await;
        }
        update
    }

    /// Moves `socket` to its session's new binding after the tab's own logout, or a login of a
    /// different user: the old tab's states are cleared (as the session's data was) and the
    /// client gets the fresh tab's states in full.
    async fn rebind(
        &self,
        socket: &mut SocketInfo,
        binding: TabBinding,
        user: &CurrentUser,
        id: u64,
        update: &mut StateUpdate,
    ) {
        let old = std::mem::replace(
            &mut socket.token,
            storage_key(&socket.client_token, Some(&binding)),
        );
        socket.binding = Some(binding);
        tracing::debug!("tab rebound to its session's new binding; its old states cleared");
        match self.manager.lock(&old).await {
            Ok(mut lock) => {
                lock.states().clear();
                if let Err(e) = lock.release().await {
                    tracing::warn!(error = %e, "could not clear a logged-out tab's states; they expire");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not clear a logged-out tab's states; they expire")
            }
        }
        let mut lock = match self.manager.lock(&socket.token).await {
            Ok(lock) => lock,
            Err(e) => {
                update.events.push(toast_for(&e));
                return;
            }
        };
        let mut ignored = StateUpdate::final_for(None);
        self.sync_auth_state(lock.states(), user, &mut ignored);
        for entry in self.registry.by_name.values() {
            if entry.session_bound {
                ship_in_full(lock.states(), entry, update);
            }
        }
        if let Some(epoch) = &socket.epoch {
            lock.states().record_answer(epoch, id, &update.events);
        }
        if let Err(e) = lock.release().await {
            update.events.push(toast_for(&e));
        }
    }

    async fn run(
        &self,
        entry: &StateEntry,
        req: Request,
        info: EventInfo,
        job: (PreparedCall, Box<dyn AnyState>),
        guards: Option<Arc<[Guard]>>,
        rebuild: impl FnOnce() -> Request,
    ) -> Outcome {
        let pending: Pending = Arc::new(Mutex::new(Some(job)));
        let finished: Finished = Arc::new(Mutex::new(None));
        let ctx_slot: Arc<Mutex<Option<EventContext>>> = Arc::new(Mutex::new(None));
        let handler_end: Arc<Mutex<Option<Instant>>> = Arc::default();
        let chain_entered = Instant::now();
        let endpoint = {
            let pending = pending.clone();
            let finished = finished.clone();
            let ctx_slot = ctx_slot.clone();
            let info = info.clone();
            let login_url = self.settings.login_url.clone();
            let handler_end = handler_end.clone();
            move |req: Request| async move {
                metrics::record(Phase::ChainIn, chain_entered);
                if let Some(guards) = guards {
                    let user = req
                        .extensions()
                        .get::<CurrentUser>()
                        .cloned()
                        .unwrap_or_default();
                    for g in guards.iter() {
                        if let Err(denied) = g.check(&user) {
                            return denial(denied, &login_url, req.uri().path());
                        }
                    }
                }
                let taken = pending.lock().unwrap_or_else(|p| p.into_inner()).take();
                let Some((call, working)) = taken else {
                    return Err(Error::internal("the event handler was called twice"));
                };
                let ctx = context_of(req, info, None).await;
                *ctx_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(ctx.clone());
                let handler_started = Instant::now();
                let result = run_handler(call, working, ctx).await;
                metrics::record(Phase::Handler, handler_started);
                *handler_end.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                let mut slot = finished.lock().unwrap_or_else(|p| p.into_inner());
                match result {
                    Ok((state, events)) => {
                        *slot = Some(Ok((state, events)));
                        let mut resp = Response::new(Body::empty());
                        resp.extensions_mut().insert(HandlerRan);
                        Ok(resp)
                    }
                    Err(e) => {
                        *slot = Some(Err(()));
                        Err(e)
                    }
                }
            }
        };
        let run = AssertUnwindSafe(self.stack_for(entry).run(req, endpoint)).catch_unwind();
        let result = match run.await {
            Ok(result) => result,
            Err(panic) => {
                // A middleware panicked, on the way in or out: nothing is committed, the
                // socket goes on, and the user sees the generic message.
                let msg = crate::state::panic_message(&panic);
                tracing::error!(event = %info.name, panic = %msg, "the middleware chain panicked; state unchanged");
                return Outcome::events(vec![toast_for(&Error::internal(msg))]);
            }
        };
        if let Some(end) = *handler_end.lock().unwrap_or_else(|p| p.into_inner()) {
            metrics::record(Phase::ChainOut, end);
        }
        let handler_result = finished.lock().unwrap_or_else(|p| p.into_inner()).take();
        let not_run = pending.lock().unwrap_or_else(|p| p.into_inner()).take();
        let ctx = ctx_slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut out = self
            .policies(&info, result, handler_result, not_run, rebuild)
            .await;
        if out.ctx.is_none() {
            out.ctx = ctx;
        }
        out
    }

    async fn policies(
        &self,
        info: &EventInfo,
        result: Result<Response, Error>,
        handler_result: Option<HandlerDone>,
        not_run: Option<(PreparedCall, Box<dyn AnyState>)>,
        rebuild: impl FnOnce() -> Request,
    ) -> Outcome {
        match (result, handler_result) {
            (Err(e), Some(Err(()))) => {
                // The handler failed and no middleware turned that into a response.
                Outcome::events(vec![toast_for(&e)])
            }
            (Err(e), _) => {
                tracing::warn!(event = %info.name, error = %e, "middleware refused the event; handler not run");
                Outcome::events(vec![toast_for(&e)])
            }
            (Ok(resp), Some(Ok((state, events)))) => {
                let mut out = Outcome::committed(state, events);
                if resp.extensions().get::<HandlerRan>().is_none() && resp.status().is_redirection()
                {
                    // A middleware replaced the handler's answer with a redirect on the way out.
                    out.events.extend(redirect_of(&resp));
                }
                out
            }
            (Ok(resp), Some(Err(()))) => {
                // A middleware's process_exception answered for the failed handler.
                let mut events = redirect_of(&resp);
                if events.is_empty() {
                    events.push(ClientEvent::toast(
                        ToastLevel::Error,
                        refusal_message(resp.status()),
                    ));
                }
                Outcome::events(events)
            }
            (Ok(resp), None) => {
                let status = resp.status();
                if status.is_redirection() && self.settings.auto_redirect_from_middleware {
                    tracing::debug!(event = %info.name, "middleware redirected; handler not run");
                    return Outcome::events(redirect_of(&resp));
                }
                if status.is_redirection() {
                    // auto_redirect_from_middleware = false: the handler runs and sees the response.
                    let Some((call, working)) = not_run else {
                        return Outcome::events(Vec::new());
                    };
                    let head = ResponseHead {
                        status,
                        headers: resp.headers().clone(),
                    };
                    // The chain kept the request it short-circuited; the handler gets a fresh one.
                    let req = rebuild();
                    let ctx = context_of(req, info.clone(), Some(head)).await;
                    let mut out = match run_handler(call, working, ctx.clone()).await {
                        Ok((state, events)) => Outcome::committed(state, events),
                        Err(e) => Outcome::events(vec![toast_for(&e)]),
                    };
                    out.ctx = Some(ctx);
                    return out;
                }
                tracing::warn!(event = %info.name, status = %status, "middleware answered the event itself; handler not run");
                if status.is_success() {
                    Outcome::events(Vec::new())
                } else {
                    let text = short_text_body(resp).await;
                    Outcome::events(vec![ClientEvent::toast(
                        ToastLevel::Error,
                        text.unwrap_or_else(|| refusal_message(status)),
                    )])
                }
            }
        }
    }

    async fn hydrate(&self, socket: &SocketInfo, event: &Event) -> StateUpdate {
        let id = event.id;
        let mut update = StateUpdate::final_for(Some(id));
        // With auth on, resolve the user through the auth tier so auth_state is right at once.
        let mut user = None;
        if self.settings.run_middleware_chain
            && self.registry.by_name.contains_key(AUTH_STATE)
            && let Ok(req) = self.build_request(socket, event)
        {
            let seen: Arc<Mutex<Option<CurrentUser>>> = Arc::default();
            let slot = seen.clone();
            let endpoint = move |req: Request| async move {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(
                    req.extensions()
                        .get::<CurrentUser>()
                        .cloned()
                        .unwrap_or_default(),
                );
                Ok(Response::new(Body::empty()))
            };
            match AssertUnwindSafe(self.auth_only.run(req, endpoint))
                .catch_unwind()
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "auth tier refused the hydrate; auth_state left as stored")
                }
                Err(panic) => {
                    let msg = crate::state::panic_message(&panic);
                    tracing::error!(event = HYDRATE, panic = %msg, "the auth middleware panicked; auth_state left as stored");
                }
            }
            user = seen.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
        let mut lock = match self.manager.lock(&socket.token).await {
            Ok(lock) => lock,
            Err(e) => return internal_error(Some(id), HYDRATE, "state manager", &e),
        };
        if let Some(user) = &user {
            let mut ignored = StateUpdate::final_for(None);
            self.sync_auth_state(lock.states(), user, &mut ignored);
        }
        let one_key = socket.client_token == socket.token;
        let which = if one_key { None } else { Some(true) };
        self.resync_key(&socket.token, lock.states(), which, &mut update)
            .await;
        if let Err(e) = lock.release().await {
            update.events.push(toast_for(&e));
        }
        if !one_key && self.registry.by_name.values().any(|e| !e.session_bound) {
            match self.manager.lock(&socket.client_token).await {
                Ok(mut lock) => {
                    self.resync_key(
                        &socket.client_token,
                        lock.states(),
                        Some(false),
                        &mut update,
                    )
                    .await;
                    if let Err(e) = lock.release().await {
                        update.events.push(toast_for(&e));
                    }
                }
                Err(e) => update.events.push(toast_for(&e)),
            }
        }
        update
    }

    /// For a resync: puts the tab back in the rooms recorded under `key` (a reconnecting tab,
    /// maybe on another node) and ships in full the states kept there: the session-bound ones
    /// (`Some(true)`), the others (`Some(false)`) or all when one key holds both (`None`).
    async fn resync_key(
        &self,
        key: &str,
        states: &mut crate::state::TokenStates,
        session_bound: Option<bool>,
        update: &mut StateUpdate,
    ) {
        let rooms = states.rooms();
        if let Err(e) = self.rooms.join_tab(key, &rooms).await {
            tracing::warn!(error = %e, "could not put a reconnected tab back in its rooms");
        }
        for entry in self.registry.by_name.values() {
            if session_bound.is_none_or(|b| b == entry.session_bound) {
                ship_in_full(states, entry, update);
            }
        }
    }

    /// Step 3: the synthetic request.
    fn build_request(&self, socket: &SocketInfo, event: &Event) -> Result<Request, String> {
        let rd = &event.router_data;
        if !rd.path.starts_with('/') {
            return Err(format!(
                "router_data.path must start with `/`, got `{}`",
                rd.path
            ));
        }
        let uri = if rd.query.is_empty() {
            rd.path.clone()
        } else {
            format!("{}?{}", rd.path, rd.query)
        };
        let uri: http::Uri = uri
            .parse()
            .map_err(|e| format!("router_data does not make a valid URI: {e}"))?;
        let (method, body, form) = if self.settings.event_post_from_payload {
            let pairs = form_pairs(&event.payload);
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish();
            (Method::POST, Bytes::from(encoded), Some(Form(pairs)))
        } else {
            (Method::GET, Bytes::new(), None)
        };
        let mut req = Request::new(Body::from(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = socket.headers.clone();
        if let Some(form) = form {
            req.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            req.extensions_mut().insert(form);
        }
        let ext = req.extensions_mut();
        ext.insert(EventInfo {
            id: Some(event.id),
            name: event.name.clone(),
            token: self.key_of(socket, &event.name).to_owned(),
        });
        ext.insert(socket.client);
        ext.insert(crate::background::BridgeRef(self.me.clone()));
        if let Some(peer) = socket.peer {
            ext.insert(axum::extract::ConnectInfo(peer));
        }
        Ok(req)
    }
}

struct Outcome {
    commit: Option<(Box<dyn AnyState>, Vec<ClientEvent>)>,
    events: Vec<ClientEvent>,
    ctx: Option<EventContext>,
    handler_ok: bool,
}

impl Outcome {
    fn events(events: Vec<ClientEvent>) -> Self {
        Self {
            commit: None,
            events,
            ctx: None,
            handler_ok: false,
        }
    }

    fn committed(state: Box<dyn AnyState>, events: Vec<ClientEvent>) -> Self {
        Self {
            commit: Some((state, events)),
            events: Vec::new(),
            ctx: None,
            handler_ok: true,
        }
    }
}

impl EventBridge {
    /// After a login or logout in a successful handler: the socket's next events carry the new
    /// session, and the browser gets a one-time code to fetch the matching cookie over HTTP.
    /// Returns the session's new tab binding when it changed (the tab must move to it).
    async fn follow_session(
        &self,
        socket: &mut SocketInfo,
        ctx: &EventContext,
        handler_ok: bool,
        update: &mut StateUpdate,
    ) -> Option<TabBinding> {
        let (Some(_), Some(follow)) = (ctx.session_change(), &self.follow) else {
            return None;
        };
        if !handler_ok {
            return None;
        }
        // After a logout the session is a fresh one holding only the tab's new binding.
        let id = ctx.session().and_then(|s| s.id()).map(|id| id.to_string());
        if socket.browser_sessions.is_empty() {
            // The cookie of the handshake (the session it was given, when it had none).
            let first = crate::csrf::cookie_in(&socket.headers, &follow.cookie_name);
            socket.browser_sessions.push(first);
        }
        let handover = crate::auth::codes::CookieHandover {
            session: id.clone(),
            from: socket.browser_sessions.clone(),
            tab: socket.client_token.clone(),
        };
        socket.browser_sessions.push(id.clone());
        let excess = socket.browser_sessions.len().saturating_sub(8);
        socket.browser_sessions.drain(..excess);
        set_cookie_in_header(&mut socket.headers, &follow.cookie_name, id.as_deref());
        match follow.codes.issue(&handover).await {
            Ok(code) => update.events.push(ClientEvent::new(
                SESSION_EVENT,
                serde_json::json!({ "code": code, "url": crate::protocol::SESSION_EXCHANGE_PATH }),
            )),
            Err(e) => {
                // The socket moved; the browser's cookie could not follow. Say so.
                tracing::error!(error = %e, "could not issue a session code; the browser keeps its cookie");
                update.events.push(toast_for(&e));
            }
        }
        ctx.tab_binding()
            .filter(|b| Some(b) != socket.binding.as_ref())
    }

    /// Keeps the built-in `auth_state` equal to the event's user, shipping it only when it changed.
    fn sync_auth_state(
        &self,
        states: &mut crate::state::TokenStates,
        user: &CurrentUser,
        update: &mut StateUpdate,
    ) {
        let Some(entry) = self.registry.by_name.get(AUTH_STATE) else {
            return;
        };
        let Ok(new_json) = serde_json::to_value(AuthState::of(user)) else {
            return;
        };
        let Ok(slot) = states.slot(entry) else { return };
        let changed = delta(&slot.json, &new_json);
        if changed.is_empty() {
            return;
        }
        if let Ok(state) = (entry.from_json)(new_json.clone()) {
            slot.state = state;
            slot.json = new_json;
            update
                .delta
                .entry(AUTH_STATE.to_owned())
                .or_default()
                .extend(changed);
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

/// Keeps the tab's room list (stored with its states) in step with its joins and leaves.
fn record_rooms(states: &mut crate::state::TokenStates, ops: &[crate::rooms::RoomOp]) {
    use crate::rooms::RoomOp;
    if !ops
        .iter()
        .any(|op| matches!(op, RoomOp::Join(_) | RoomOp::Leave(_)))
    {
        return;
    }
    let mut rooms = states.rooms();
    for op in ops {
        match op {
            RoomOp::Join(r) if !rooms.contains(r) => rooms.push(r.clone()),
            RoomOp::Leave(r) => rooms.retain(|x| x != r),
            _ => {}
        }
    }
    states.set_rooms(rooms);
}

/// Name of the client event carrying the one-time cookie code.
pub(crate) const SESSION_EVENT: &str = "_session";
const AUTH_STATE: &str = "auth_state";

/// Replaces (or removes, with `None`) cookie `name` in the `Cookie` header of `headers`.
pub(crate) fn set_cookie_in_header(headers: &mut HeaderMap, name: &str, value: Option<&str>) {
    let mut pairs: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some(name))
        .map(str::to_owned)
        .collect();
    if let Some(v) = value {
        pairs.push(format!("{name}={v}"));
    }
    headers.remove(header::COOKIE);
    if !pairs.is_empty()
        && let Ok(v) = HeaderValue::from_str(&pairs.join("; "))
    {
        headers.insert(header::COOKIE, v);
    }
}

async fn context_of(req: Request, info: EventInfo, response: Option<ResponseHead>) -> EventContext {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    EventContext::new(parts, body, info, response)
}

/// Runs a prepared handler call with `ctx` bound; errors and panics leave no state to commit.
async fn run_handler(
    call: PreparedCall,
    working: Box<dyn AnyState>,
    ctx: EventContext,
) -> Result<(Box<dyn AnyState>, Vec<ClientEvent>), Error> {
    let name = ctx.event().name.clone();
    match ctx.clone().scope(call(working, ctx)).await {
        RunOutcome::Returned(state, Ok(events)) => Ok((state, events)),
        RunOutcome::Returned(_, Err(e)) => {
            match &e {
                Error::Internal(source) => {
                    tracing::error!(event = %name, error = %source, "handler failed; state unchanged")
                }
                other => {
                    tracing::info!(event = %name, error = %other, "handler refused; state unchanged")
                }
            }
            Err(e)
        }
        RunOutcome::Panicked(msg) => {
            tracing::error!(event = %name, panic = %msg, "handler panicked; state unchanged");
            Err(Error::internal(format!("handler panicked: {msg}")))
        }
    }
}

fn protocol_error(id: Option<u64>, message: String) -> StateUpdate {
    tracing::debug!(%message, "event refused");
    let mut u = StateUpdate::final_for(id);
    u.events.push(ClientEvent::error(message));
    u
}

fn internal_error(id: Option<u64>, event: &str, what: &str, e: &Error) -> StateUpdate {
    tracing::error!(event, error = %e, "{what} failed");
    let mut u = StateUpdate::final_for(id);
    u.events.push(toast_for(e));
    u
}

fn toast_for(e: &Error) -> ClientEvent {
    ClientEvent::toast(ToastLevel::Error, e.public_message())
}

fn redirect_of(resp: &Response) -> Vec<ClientEvent> {
    resp.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|loc| vec![ClientEvent::redirect(loc)])
        .unwrap_or_default()
}

fn refusal_message(status: StatusCode) -> String {
    match status {
        StatusCode::FORBIDDEN => "You do not have permission to do this.".to_owned(),
        StatusCode::UNAUTHORIZED => "Please log in first.".to_owned(),
        StatusCode::TOO_MANY_REQUESTS => "Too many requests. Please wait a moment.".to_owned(),
        s if s.is_client_error() => format!(
            "The request was refused ({} {}).",
            s.as_u16(),
            s.canonical_reason().unwrap_or("")
        ),
        _ => crate::error::GENERIC_MESSAGE.to_owned(),
    }
}

/// The body of a 4xx answer when it is short plain text, for the toast.
async fn short_text_body(resp: Response) -> Option<String> {
    if !resp.status().is_client_error() {
        return None;
    }
    let is_text = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    if !is_text {
        return None;
    }
    let body = http_body_util::Limited::new(resp.into_body(), 512)
        .collect()
        .await
        .ok()?;
    let text = String::from_utf8(body.to_bytes().to_vec()).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Top-level payload fields as form pairs: strings as they are, other values as JSON.
fn form_pairs(payload: &Value) -> Vec<(String, String)> {
    let Value::Object(map) = payload else {
        return Vec::new();
    };
    map.iter()
        .flat_map(|(k, v)| match v {
            Value::String(s) => vec![(k.clone(), s.clone())],
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    (
                        k.clone(),
                        i.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| i.to_string()),
                    )
                })
                .collect(),
            Value::Null => Vec::new(),
            other => vec![(k.clone(), other.to_string())],
        })
        .collect()
}

/// The client's address: the peer's, or the forwarded one when the peer is a trusted proxy.
pub(crate) fn resolve_client(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> ClientAddr {
    let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return ClientAddr {
            ip: peer,
            https: false,
        };
    }
    let mut ip = peer;
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in forwarded.iter().rev() {
        let Ok(hop) = hop.parse::<IpAddr>() else {
            break;
        };
        ip = hop;
        if !is_trusted(hop) {
            break;
        }
    }
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    ClientAddr { ip, https }
}

/// Handshake headers that describe the WebSocket upgrade, not the client; dropped from events.
pub(crate) fn strip_upgrade_headers(headers: &mut HeaderMap) {
    for name in [
        header::UPGRADE,
        header::CONNECTION,
        header::SEC_WEBSOCKET_KEY,
        header::SEC_WEBSOCKET_VERSION,
        header::SEC_WEBSOCKET_EXTENSIONS,
        header::SEC_WEBSOCKET_PROTOCOL,
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| IpNet::parse(s).unwrap()).collect()
    }

    #[test]
    fn forwarded_headers_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        let untrusted = resolve_client(
            Some("198.51.100.1".parse().unwrap()),
            &h,
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(untrusted.ip.to_string(), "198.51.100.1");
        assert!(!untrusted.https);
        let trusted = resolve_client(
            Some("10.0.0.1".parse().unwrap()),
            &h,
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(trusted.ip.to_string(), "203.0.113.9");
        assert!(trusted.https);
        // The client writes what it likes at the left: only the hops our proxies added count.
        let mut spoofed = HeaderMap::new();
        spoofed.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.9, 10.0.0.2".parse().unwrap(),
        );
        let seen = resolve_client(
            Some("10.0.0.1".parse().unwrap()),
            &spoofed,
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(seen.ip.to_string(), "203.0.113.9");
    }

    #[test]
    fn cookie_header_is_rewritten() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; ferrule_session=old; csrftoken=x".parse().unwrap(),
        );
        set_cookie_in_header(&mut h, "ferrule_session", Some("new"));
        assert_eq!(h[header::COOKIE], "a=1; csrftoken=x; ferrule_session=new");
        set_cookie_in_header(&mut h, "ferrule_session", None);
        assert_eq!(h[header::COOKIE], "a=1; csrftoken=x");
    }

    #[test]
    fn payload_becomes_form_pairs() {
        let pairs =
            form_pairs(&serde_json::json!({"q": "rust", "n": 3, "tag": ["a", "b"], "none": null}));
        assert_eq!(
            pairs,
            vec![
                ("n".to_owned(), "3".to_owned()),
                ("q".to_owned(), "rust".to_owned()),
                ("tag".to_owned(), "a".to_owned()),
                ("tag".to_owned(), "b".to_owned()),
            ]
        );
    }
}
