//! Following a login or logout done in a handler: the socket moves to the new session, the
//! browser gets a code for its cookie, the tab moves to a new binding when the session's
//! changed (carrying its states at a login), and `auth_state` stays equal to the event's user.

use super::*;
use crate::tab_binding::Rebinding;

impl EventBridge {
    /// Moves `socket` to its session's new binding after a login or logout. After a login that
    /// kept the session's data the tab's states and the session's shared ones go with it;
    /// after a logout, or a login of a different user, they are cleared (as the session's data
    /// was). Either way the client gets the tab's states in full.
    pub(super) async fn rebind(
        &self,
        socket: &mut SocketInfo,
        rebinding: Rebinding,
        user: &CurrentUser,
        id: u64,
        update: &mut StateUpdate,
    ) {
        let carried = rebinding.from.is_some() && rebinding.from == socket.binding;
        let left_rooms = socket.tab_rooms();
        let old = std::mem::replace(
            &mut socket.token,
            storage_key(&socket.client_token, Some(&rebinding.to)),
        );
        let old_session = socket.session_key();
        socket.binding = Some(rebinding.to);
        if carried {
            tracing::debug!("tab moved to its session's new binding at login; its states carried");
            let session = old_session.zip(socket.session_key());
            for (from, to) in std::iter::once((old, socket.token.clone())).chain(session) {
                if let Err(e) = self.carry_states(&from, &to).await {
                    update.events.push(toast_for(&e));
                }
            }
            // The app's rooms are the tab's still; only the old binding's rooms are left.
            socket.left_rooms = Some(left_rooms);
        } else {
            tracing::debug!("tab rebound to its session's new binding; its old states cleared");
            self.clear_states(std::iter::once(old).chain(old_session))
                .await;
            socket.left_rooms = None;
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
            if entry.keyed == Keyed::Tab {
                ship_in_full(lock.states(), entry, update);
            }
        }
        if let Some(epoch) = &socket.epoch {
            lock.states().record_answer(epoch, id, &update.events);
        }
        if let Err(e) = lock.release().await {
            update.events.push(toast_for(&e));
        }
        // The session's shared states: carried, or afresh.
        let shared: Vec<_> = self
            .registry
            .by_name
            .values()
            .filter(|e| e.keyed == Keyed::Session)
            .collect();
        if let (false, Some(key)) = (shared.is_empty(), socket.session_key()) {
            match self.manager.lock(&key).await {
                Ok(mut lock) => {
                    for entry in shared {
                        ship_in_full(lock.states(), entry, update);
                    }
                    if let Err(e) = lock.release().await {
                        update.events.push(toast_for(&e));
                    }
                }
                Err(e) => update.events.push(toast_for(&e)),
            }
        }
    }

    /// A tab that connected after its session's login moved the binding (a login over HTTP,
    /// or in another tab): its states, and the session's shared ones, are carried from the old
    /// binding before its first event runs.
    pub(crate) async fn carry_tab(&self, socket: &SocketInfo, from: &TabBinding) {
        let tab = (
            storage_key(&socket.client_token, Some(from)),
            socket.token.clone(),
        );
        let session = socket
            .session_key()
            .map(|to| (session_storage_key(from), to));
        for (from, to) in std::iter::once(tab).chain(session) {
            if let Err(e) = self.carry_states(&from, &to).await {
                tracing::warn!(error = %e, "could not carry a tab's states to its session's new binding; it starts afresh");
            }
        }
    }

    /// Moves the states kept under `from` to `to` when `to` holds none, and empties `from`.
    /// Both locks are taken old before new, as every carry does, so two never wait on each
    /// other.
    async fn carry_states(&self, from: &str, to: &str) -> Result<(), Error> {
        let mut old = self.manager.lock(from).await?;
        if old.states().is_empty() {
            return old.release().await;
        }
        let mut new = self.manager.lock(to).await?;
        if new.states().is_empty() {
            std::mem::swap(old.states(), new.states());
            new.release().await?;
        } else {
            // The tab already has states of its own there: they win.
            new.release().await?;
            old.states().clear();
        }
        old.release().await
    }

    /// Empties the states kept under `keys` (a logged-out tab's and its session's).
    async fn clear_states(&self, keys: impl Iterator<Item = String>) {
        for key in keys {
            match self.manager.lock(&key).await {
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
        }
    }

    /// After a login or logout in a successful handler: the socket's next events carry the new
    /// session, and the browser gets a one-time code to fetch the matching cookie over HTTP.
    /// Returns where the tab must move when the session's binding changed.
    pub(super) async fn follow_session(
        &self,
        socket: &mut SocketInfo,
        ctx: &EventContext,
        handler_ok: bool,
        update: &mut StateUpdate,
    ) -> Option<Rebinding> {
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
            let first = crate::net::cookie_in(&socket.headers, &follow.cookie_name);
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
            Ok(code) => update.events.push(ClientCommand::new(
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
            .filter(|b| Some(&b.to) != socket.binding.as_ref())
    }

    /// Keeps the built-in `auth_state` equal to the event's user, shipping it only when it changed.
    pub(super) fn sync_auth_state(
        &self,
        states: &mut crate::state::TokenStates,
        user: &CurrentUser,
        update: &mut StateUpdate,
    ) {
        let Some(entry) = self.registry.by_name.get(AUTH_STATE) else {
            return;
        };
        let Ok(slot) = states.slot(entry) else { return };
        // The common case, every event of a tab whose user did not change: nothing to build,
        // encode or compare as JSON.
        if slot
            .state
            .as_any_mut()
            .downcast_ref::<AuthState>()
            .is_some_and(|shown| shown.shows(user))
        {
            return;
        }
        let Ok(new_json) = serde_json::to_value(AuthState::of(user)) else {
            return;
        };
        let changed = delta(&slot.json, &new_json);
        if changed.is_empty() {
            return;
        }
        if let Ok(state) = (entry.from_json)(new_json.clone()) {
            let bytes = crate::state::encoded_len(&new_json);
            slot.set(state, new_json, bytes);
            update
                .delta
                .entry(AUTH_STATE.to_owned())
                .or_default()
                .extend(changed);
        }
    }
}
