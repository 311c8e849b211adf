//! Steps 1 and 3 to 6 of an event: decode, lock, run the chain with the handler innermost,
//! apply the policies to what came back, commit and answer.

use serde::Deserialize;

use super::*;

/// Marks the response the event endpoint returns, so the bridge knows the handler ran.
#[derive(Clone, Copy)]
struct HandlerRan;

/// How the handler ended inside the chain: its new state and events, or a failure.
type HandlerDone = Result<(Box<dyn AnyState>, Vec<ClientCommand>), ()>;

/// What passes between the bridge and the chain's innermost endpoint: the call going in, and
/// what the handler did coming out. One cell, not one per item: it is made for every event.
#[derive(Default)]
struct Handoff {
    /// The prepared call and its working copy, until the endpoint takes them.
    pending: Option<(PreparedCall, Box<dyn AnyState>)>,
    /// How the handler ended, once it ran.
    finished: Option<HandlerDone>,
    /// The handler's context, for what the bridge applies after the chain.
    ctx: Option<EventContext>,
    /// The way out of the chain, timed from the handler's end.
    chain_out: Option<Timing>,
}

type SharedHandoff = Arc<Mutex<Handoff>>;

fn lock_handoff(cell: &SharedHandoff) -> std::sync::MutexGuard<'_, Handoff> {
    cell.lock().unwrap_or_else(|p| p.into_inner())
}

impl EventBridge {
    /// Handles one raw event and returns the final update for it.
    ///
    /// Not an `async fn`: one would hold the event's future twice (its own state and the
    /// language scope's), and every event's future is allocated and written at its size.
    pub(crate) fn handle<'a>(
        &'a self,
        socket: &'a mut SocketInfo,
        raw: Value,
        via_upload: bool,
    ) -> impl Future<Output = StateUpdate> + Send + 'a {
        // What the bridge says itself (refusals, errors) is in the language the socket's
        // handshake negotiates; a handler's own texts are in its request's (which knows the
        // user's saved preference too).
        let language = socket
            .language
            .get_or_insert_with(|| {
                let mut handshake = http::Request::new(()).into_parts().0;
                handshake.headers = socket.headers.clone();
                if let Some(catalogues) = self.extensions.get::<Arc<crate::i18n::Catalogues>>() {
                    handshake.extensions.insert(catalogues.clone());
                }
                Arc::new(handshake)
            })
            .clone();
        crate::i18n::with_request(language, self.handle_event(socket, raw, via_upload))
    }

    async fn handle_event(
        &self,
        socket: &mut SocketInfo,
        raw: Value,
        via_upload: bool,
    ) -> StateUpdate {
        let decode = Phase::Decode.start();
        let id = raw.get("id").and_then(Value::as_u64);
        // Read as it is first: tracking the path copies every key, and only a malformed
        // event needs it, for its message.
        let read = match Event::deserialize(&raw) {
            Ok(event) => Ok(event),
            Err(_) => serde_path_to_error::deserialize(raw),
        };
        let event: Event = match read {
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
        // Boxed: rare next to handler events, and large, they would make every event's
        // future as large as themselves.
        if event.name == HYDRATE {
            return Box::pin(self.hydrate(socket, &event)).await;
        }
        if event.name == LOAD {
            return Box::pin(self.run_loaders(socket, &event)).await;
        }
        if event.name == LIVE {
            return Box::pin(self.refresh(socket, &event)).await;
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
        // Names the app registered, never a client's made-up ones.
        tracing::Span::current().record("state", state_name);
        if entry.handlers.contains_key(handler_name) {
            tracing::Span::current().record("handler", handler_name);
        }
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
        if entry.uploads.contains_key(handler_name) && !via_upload {
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
        decode.end();
        self.run_event(socket, &event, &entry, handler_name, call, true)
            .await
            .0
    }

    /// Steps 2 to 6 for `event`, already decoded to `entry`'s handler `handler_name` and its
    /// prepared `call`. A `replayable` event is answered again, not run, when resent after a
    /// reconnect; a page loader's run (which shares its `_hydrate` or `_load` id) is not.
    /// Returns the answer, and whether the handler ran and succeeded.
    pub(super) async fn run_event(
        &self,
        socket: &mut SocketInfo,
        event: &Event,
        entry: &StateEntry,
        handler_name: &str,
        call: PreparedCall,
        replayable: bool,
    ) -> (StateUpdate, bool) {
        let id = Some(event.id);
        let build = Phase::BuildRequest.start();
        let key = socket.key_for(entry);
        let req = match self.build_request(socket, event, &key) {
            Ok(req) => req,
            Err(why) => return (protocol_error(id, why), false),
        };

        build.end();
        let locking = Phase::Lock.start();
        let locked = self
            .manager
            .lock(&key)
            .instrument(locking.span().clone())
            .await;
        locking.end();
        let mut lock = match locked {
            Ok(lock) => lock,
            Err(e) => return (internal_error(id, &event.name, "state manager", &e), false),
        };
        if let Some(replay) = socket
            .epoch
            .as_deref()
            .filter(|_| replayable)
            .and_then(|epoch| lock.states().answered_before(epoch, event.id))
        {
            // Sent again after a reconnect, and handled before: the answer it had, with the
            // state as it is now; never run twice.
            tracing::debug!(event = %event.name, id = event.id, "resent event answered again");
            let mut update = StateUpdate::final_for(Some(event.id));
            update.events = replay;
            ship_in_full(lock.states(), entry, &mut update);
            if let Err(e) = lock.release().await {
                metrics::error(ErrorKind::of(&e));
                update.events.push(toast_for(&e));
            }
            return (update, false);
        }
        let working = match lock.states().slot(entry) {
            Ok(slot) => slot.state.clone_box(),
            Err(e) => {
                let _ = lock.release().await;
                return (internal_error(id, &event.name, "state", &e), false);
            }
        };
        let joined_live = self.watch_first(&key, entry, lock.states()).await;
        let info = EventInfo {
            id: Some(event.id),
            name: event.name.clone(),
            token: key.clone(),
        };
        let guards = entry.guards.get(handler_name).cloned();
        let outcome = {
            let rebuild = || self.build_request(socket, event, &key).unwrap_or_default();
            self.run(entry, req, info, (call, working), guards, rebuild)
                .await
        };

        let commit = Phase::Commit.start();
        let mut update = StateUpdate::final_for(Some(event.id));
        // A session's state as it was, to put back in the other tabs if storing the change fails.
        let mut shared_before = None;
        if let Some((new_state, events)) = outcome.commit {
            match new_state.to_json().map_err(Error::from).and_then(|json| {
                let bytes = self.fits(entry, &json)?;
                Ok((json, bytes))
            }) {
                Ok((new_json, bytes)) => {
                    if let Ok(slot) = lock.states().slot(entry) {
                        let changed = delta(&slot.json, &new_json);
                        let before = slot.set(new_state, new_json, bytes);
                        if !changed.is_empty() {
                            if entry.keyed == Keyed::Session {
                                // The session's other tabs, in the order of the changes: pushed
                                // while the lock keeps the next change out.
                                let mut push = StateUpdate::final_for(None);
                                push.delta.insert(entry.name.clone(), changed.clone());
                                self.push_to_others(&key, &socket.token, &push).await;
                                shared_before = Some(before);
                            }
                            update.delta.insert(entry.name.clone(), changed);
                        }
                    }
                    update.events = events;
                }
                Err(e) => {
                    metrics::error(ErrorKind::of(&e));
                    update.events.push(toast_for(&e));
                    tracing::error!(event = %event.name, error = %e, "state not kept after the handler; change discarded");
                }
            }
        }
        commit.end();
        update.events.extend(outcome.events);
        let mut room_ops = Vec::new();
        let mut rebound = None;
        let mut auth_elsewhere = None;
        if outcome.handler_ok && joined_live {
            // The tab shows this state now: it hears changes of the tables it declared, after
            // reconnects too.
            lock.states().watch(&entry.name);
        }
        if let Some(ctx) = &outcome.ctx {
            if outcome.handler_ok {
                room_ops = ctx.take_room_ops();
                record_rooms(lock.states(), &room_ops);
            }
            if outcome.handler_ok
                && let Some(language) = ctx.language_choice()
            {
                socket.choose_language(&language);
            }
            rebound = self
                .follow_session(socket, ctx, outcome.handler_ok, &mut update)
                .await;
            if self.resolves_users(entry) && (outcome.handler_ok || ctx.session_change().is_none())
            {
                if entry.keyed == Keyed::Tab {
                    self.sync_auth_state(lock.states(), &ctx.user(), &mut update);
                } else {
                    // auth_state is the tab's own: synced under its key once this lock is free.
                    auth_elsewhere = Some(ctx.user());
                }
            }
        }
        if let Some(epoch) = &socket.epoch
            && replayable
        {
            lock.states().record_answer(epoch, event.id, &update.events);
        }
        if let Err(e) = lock.release().await {
            metrics::error(ErrorKind::of(&e));
            tracing::error!(event = %event.name, error = %e, "could not store states");
            update.delta.clear();
            update.events.push(toast_for(&e));
            room_ops.clear();
            if let Some(Value::Object(before)) = shared_before {
                let mut undo = StateUpdate::final_for(None);
                undo.delta.insert(entry.name.clone(), before);
                self.push_to_others(&key, &socket.token, &undo).await;
            }
        }
        if !room_ops.is_empty() {
            self.rooms.apply(&key, room_ops).await;
        }
        if let Some(ctx) = &outcome.ctx {
            // Whatever the handler's outcome: what it wrote is written.
            for table in ctx.take_changes() {
                self.rooms.changed(&table);
            }
        }
        if let Some(user) = auth_elsewhere
            && rebound.is_none()
        {
            match self.manager.lock(&socket.token).await {
                Ok(mut tab) => {
                    self.sync_auth_state(tab.states(), &user, &mut update);
                    if let Err(e) = tab.release().await {
                        update.events.push(toast_for(&e));
                    }
                }
                Err(e) => update.events.push(toast_for(&e)),
            }
        }
        if let (Some(binding), Some(ctx)) = (rebound, &outcome.ctx) {
            self.rebind(socket, binding, &ctx.user(), event.id, &mut update)
                .await;
        }
        (update, outcome.handler_ok)
    }

    /// Puts the tab in the live rooms of `entry`'s tables when it does not show the state live
    /// yet, before the handler reads them, so no change between its read and the join goes
    /// unheard; `true` when it did, for the state to be recorded as shown once the handler
    /// succeeded.
    async fn watch_first(
        &self,
        key: &str,
        entry: &StateEntry,
        states: &crate::state::TokenStates,
    ) -> bool {
        if entry.watches.is_empty() || states.live_states().contains(&entry.name) {
            return false;
        }
        if let Err(e) = self.rooms.watch_tab(key, &entry.live_tables()).await {
            tracing::warn!(error = %e, "a tab could not be put in its live tables' rooms; it hears their changes after its next reconnect");
        }
        true
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
        let handoff: SharedHandoff = Arc::new(Mutex::new(Handoff {
            pending: Some(job),
            ..Handoff::default()
        }));
        let chain_in = Phase::ChainIn.start();
        let endpoint = {
            let handoff = handoff.clone();
            let info = info.clone();
            let login_url = self.settings.login_url.clone();
            let span = tracing::Span::current();
            move |req: Request| async move {
                chain_in.end();
                if let Some(user) = req
                    .extensions()
                    .get::<CurrentUser>()
                    .and_then(CurrentUser::user)
                {
                    span.record("user_id", user.id);
                }
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
                let taken = lock_handoff(&handoff).pending.take();
                let Some((call, working)) = taken else {
                    return Err(Error::internal("the event handler was called twice"));
                };
                let ctx = context_of(req, info, None).await;
                lock_handoff(&handoff).ctx = Some(ctx.clone());
                let handler = Phase::Handler.start();
                let result = run_handler(call, working, ctx)
                    .instrument(handler.span().clone())
                    .await;
                handler.end();
                let mut out = lock_handoff(&handoff);
                out.chain_out = Some(Phase::ChainOut.start());
                match result {
                    Ok((state, events)) => {
                        out.finished = Some(Ok((state, events)));
                        let mut resp = Response::new(Body::empty());
                        resp.extensions_mut().insert(HandlerRan);
                        Ok(resp)
                    }
                    Err(e) => {
                        out.finished = Some(Err(()));
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
                metrics::error(ErrorKind::Panic);
                tracing::error!(event = %info.name, panic = %msg, "the middleware chain panicked; state unchanged");
                return Outcome::events(vec![toast_for(&Error::internal(msg))]);
            }
        };
        let Handoff {
            pending: not_run,
            finished: handler_result,
            ctx,
            chain_out,
        } = std::mem::take(&mut *lock_handoff(&handoff));
        if let Some(out) = chain_out {
            out.end();
        }
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
                Outcome::events(refusal_for(&e))
            }
            (Err(e), _) => {
                metrics::error(ErrorKind::of(&e));
                tracing::warn!(event = %info.name, error = %e, "middleware refused the event; handler not run");
                Outcome::events(vec![toast_for(&e)])
            }
            (Ok(resp), Some(Ok((state, events)))) => {
                let mut out = Outcome::committed(state, events);
                if resp.extensions().get::<HandlerRan>().is_none() && resp.status().is_redirection()
                {
                    // A middleware replaced the handler's answer with a redirect on the way out.
                    out.events.extend(refusal::redirect_of(&resp));
                }
                out
            }
            (Ok(resp), Some(Err(()))) => {
                // A middleware's process_exception answered for the failed handler (the
                // handler's error is counted already).
                let mut events = refusal::redirect_of(&resp);
                if events.is_empty() {
                    events.push(ClientCommand::toast(
                        ToastLevel::Error,
                        refusal::refusal_message(resp.status()),
                    ));
                }
                Outcome::events(events)
            }
            (Ok(resp), None) => {
                let status = resp.status();
                if status.is_redirection() && self.settings.auto_redirect_from_middleware {
                    tracing::debug!(event = %info.name, "middleware redirected; handler not run");
                    return Outcome::events(refusal::redirect_of(&resp));
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
                    let handler = Phase::Handler.start();
                    let ran = run_handler(call, working, ctx.clone())
                        .instrument(handler.span().clone())
                        .await;
                    handler.end();
                    let mut out = match ran {
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
                    metrics::error(ErrorKind::Refused);
                    let text = refusal::short_text_body(resp).await;
                    Outcome::events(vec![ClientCommand::toast(
                        ToastLevel::Error,
                        text.unwrap_or_else(|| refusal::refusal_message(status)),
                    )])
                }
            }
        }
    }
}

struct Outcome {
    commit: Option<(Box<dyn AnyState>, Vec<ClientCommand>)>,
    events: Vec<ClientCommand>,
    ctx: Option<EventContext>,
    handler_ok: bool,
}

impl Outcome {
    fn events(events: Vec<ClientCommand>) -> Self {
        Self {
            commit: None,
            events,
            ctx: None,
            handler_ok: false,
        }
    }

    fn committed(state: Box<dyn AnyState>, events: Vec<ClientCommand>) -> Self {
        Self {
            commit: Some((state, events)),
            events: Vec::new(),
            ctx: None,
            handler_ok: true,
        }
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
) -> Result<(Box<dyn AnyState>, Vec<ClientCommand>), Error> {
    let name = ctx.event().name.clone();
    match ctx.clone().scope(call(working, ctx.clone())).await {
        RunOutcome::Returned(state, Ok(mut events)) => {
            // The session's pending messages (added over HTTP), then the handler's own.
            let pending = crate::messages::take_pending(ctx.session()).await;
            let added = ctx.messages().take();
            events.extend(pending.iter().chain(&added).map(|m| m.toast()));
            if let Some(language) = ctx.language_choice() {
                events.push(ClientCommand::language(language));
            }
            Ok((state, events))
        }
        RunOutcome::Returned(_, Err(e)) => {
            metrics::error(ErrorKind::of(&e));
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
            metrics::error(ErrorKind::Panic);
            tracing::error!(event = %name, panic = %msg, "handler panicked; state unchanged");
            Err(Error::internal(format!("handler panicked: {msg}")))
        }
    }
}

/// Keeps the tab's room list (stored with its states) in step with its joins and leaves.
pub(super) fn record_rooms(states: &mut crate::state::TokenStates, ops: &[crate::rooms::RoomOp]) {
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
