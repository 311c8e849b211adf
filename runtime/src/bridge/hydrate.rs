//! `_hydrate`: a (re)connecting tab gets every state in full, is back in its rooms, and its
//! `auth_state` is resolved through the auth tier first.

use super::*;

impl EventBridge {
    pub(super) async fn hydrate(&self, socket: &mut SocketInfo, event: &Event) -> StateUpdate {
        let id = event.id;
        // The page's loaders first, so the states shipped below hold the page's data; what
        // they changed goes out in full with the rest, what they sent (toasts) goes first.
        let mut loaded = self.run_loaders(socket, event).await;
        // Then what the tab shows live beyond the page, which may have changed while it was away.
        let ran: Vec<(String, String)> = self
            .registry
            .pages
            .at(&event.router_data.path)
            .iter()
            .map(|(entry, handler)| (entry.name.clone(), handler.clone()))
            .collect();
        self.revive(socket, event, &ran, &mut loaded).await;
        let mut update = StateUpdate::final_for(Some(id));
        update.events = loaded.events;
        // With auth on, resolve the user through the auth tier so auth_state is right at once.
        let mut user = None;
        if self.settings.run_middleware_chain
            && self.registry.by_name.contains_key(AUTH_STATE)
            && let Ok(req) = self.build_request(socket, event, &socket.token)
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
        // Each key the tab's states are kept under, the tab's own first (its auth_state and
        // rooms are there): then those under the token alone and the session's.
        let mut keys: Vec<(String, Vec<&StateEntry>)> = vec![(socket.token.clone(), Vec::new())];
        for entry in self.registry.by_name.values() {
            let key = socket.key_for(entry);
            match keys.iter_mut().find(|(k, _)| *k == key) {
                Some((_, entries)) => entries.push(entry),
                None => keys.push((key, vec![entry])),
            }
        }
        for (key, entries) in keys {
            let mut lock = match self.manager.lock(&key).await {
                Ok(lock) => lock,
                Err(e) if key == socket.token => {
                    return internal_error(Some(id), HYDRATE, "state manager", &e);
                }
                Err(e) => {
                    update.events.push(toast_for(&e));
                    continue;
                }
            };
            if key == socket.token
                && let Some(user) = &user
            {
                let mut ignored = StateUpdate::final_for(None);
                self.sync_auth_state(lock.states(), user, &mut ignored);
            }
            self.resync_key(&key, lock.states(), &entries, &mut update)
                .await;
            if let Err(e) = lock.release().await {
                update.events.push(toast_for(&e));
            }
        }
        update
    }

    /// For a resync: puts the tab back in the rooms recorded under `key` (a reconnecting tab,
    /// maybe on another node) and ships in full `entries`, the states kept there.
    async fn resync_key(
        &self,
        key: &str,
        states: &mut crate::state::TokenStates,
        entries: &[&StateEntry],
        update: &mut StateUpdate,
    ) {
        let rooms = states.rooms();
        if let Err(e) = self.rooms.join_tab(key, &rooms).await {
            tracing::warn!(error = %e, "could not put a reconnected tab back in its rooms");
        }
        let mut tables: Vec<String> = Vec::new();
        for name in states.live_states() {
            if let Some(entry) = self.registry.by_name.get(&name) {
                tables.extend(entry.live_tables());
            }
        }
        tables.sort();
        tables.dedup();
        if let Err(e) = self.rooms.watch_tab(key, &tables).await {
            tracing::warn!(error = %e, "could not put a reconnected tab back in its live tables' rooms");
        }
        for entry in entries {
            ship_in_full(states, entry, update);
        }
    }
}

impl EventBridge {
    /// Axum middleware on the app's HTTP routes: a page load whose session has a binding (the
    /// binder put it in the request) is rendered with the session's shared states
    /// ([`crate::State::SESSION_SCOPED`]), as the socket's `_hydrate` will ship them.
    pub(crate) async fn with_shared_states(
        self: Arc<Self>,
        mut req: Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        if let Some(binding) = req.extensions().get::<TabBinding>().cloned() {
            match self.shared_states(&binding).await {
                Ok(states) => {
                    req.extensions_mut()
                        .insert(crate::state::RenderedShared(states));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read a session's shared states; the page renders their defaults");
                }
            }
        }
        next.run(req).await
    }

    async fn shared_states(&self, binding: &TabBinding) -> Result<crate::protocol::Delta, Error> {
        let mut lock = self.manager.lock(&session_storage_key(binding)).await?;
        let mut states = crate::protocol::Delta::new();
        for entry in self.registry.by_name.values() {
            if entry.keyed != Keyed::Session {
                continue;
            }
            match lock.states().slot(entry) {
                Ok(slot) => {
                    if let Value::Object(fields) = slot.json.clone() {
                        states.insert(entry.name.clone(), fields);
                    }
                }
                Err(e) => {
                    tracing::warn!(state = %entry.name, error = %e, "a shared state that does not serialize renders its default");
                }
            }
        }
        lock.release().await?;
        Ok(states)
    }
}
