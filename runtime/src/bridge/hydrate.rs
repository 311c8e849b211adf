//! `_hydrate`: a (re)connecting tab gets every state in full, is back in its rooms, and its
//! `auth_state` is resolved through the auth tier first.

use super::*;

impl EventBridge {
    pub(super) async fn hydrate(&self, socket: &SocketInfo, event: &Event) -> StateUpdate {
        let id = event.id;
        let mut update = StateUpdate::final_for(Some(id));
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
}
