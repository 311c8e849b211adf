//! Following a login or logout done in a handler: the socket moves to the new session, the
//! browser gets a code for its cookie, the tab moves to a new binding when the session's
//! changed, and `auth_state` stays equal to the event's user.

use super::*;

impl EventBridge {
    /// Moves `socket` to its session's new binding after the tab's own logout, or a login of a
    /// different user: the old tab's states are cleared (as the session's data was) and the
    /// client gets the fresh tab's states in full.
    pub(super) async fn rebind(
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
        let old_session = socket.session_key();
        socket.binding = Some(binding);
        tracing::debug!("tab rebound to its session's new binding; its old states cleared");
        // The tab's own states and, as the session they belonged to is over, the session's.
        for key in std::iter::once(old).chain(old_session) {
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
        // The new session's shared states, which start afresh.
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

    /// After a login or logout in a successful handler: the socket's next events carry the new
    /// session, and the browser gets a one-time code to fetch the matching cookie over HTTP.
    /// Returns the session's new tab binding when it changed (the tab must move to it).
    pub(super) async fn follow_session(
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
            .filter(|b| Some(b) != socket.binding.as_ref())
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
