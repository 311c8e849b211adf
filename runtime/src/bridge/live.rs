//! `_live`: a tab told that rows of tables it shows changed (`_changed`) asks for them again;
//! the handlers its states declared for those tables ([`crate::Registered::on_change`]) run,
//! each as its own event through the chain and its guards.

use super::*;
use crate::protocol::tables_of;

impl EventBridge {
    /// Runs the live handlers of the tables `event` names, for the states `socket`'s tab shows,
    /// and merges their answers.
    pub(super) async fn refresh(&self, socket: &mut SocketInfo, event: &Event) -> StateUpdate {
        let tables = tables_of(&event.payload);
        let mut update = StateUpdate::final_for(Some(event.id));
        if !tables.is_empty() {
            self.run_live(
                socket,
                event,
                |table| tables.iter().any(|t| t == table),
                &[],
                &mut update,
            )
            .await;
        }
        update
    }

    /// For a reconnecting tab (`_hydrate`): runs the live handlers of every state it shows,
    /// but those in `ran` (the page's loaders, just run), so what changed while it was away is
    /// there; merged into `update`.
    pub(super) async fn revive(
        &self,
        socket: &mut SocketInfo,
        event: &Event,
        ran: &[(String, String)],
        update: &mut StateUpdate,
    ) {
        self.run_live(socket, event, |_| true, ran, update).await;
    }

    /// Runs, for the states the tab shows, their live handlers of the tables `wanted` picks,
    /// except the (state, handler) pairs in `skip`, each as its own event sharing `event`'s id.
    /// A live handler that also loads pages runs only on those pages: elsewhere its data is not
    /// on screen, and the page's own loaders run when the tab comes back to it. A refused or
    /// failed run changes nothing and shows nothing: the tab did not ask for it, and keeps what
    /// it had.
    async fn run_live(
        &self,
        socket: &mut SocketInfo,
        event: &Event,
        wanted: impl Fn(&str) -> bool,
        skip: &[(String, String)],
        update: &mut StateUpdate,
    ) {
        let on_page = self.registry.pages.at(&event.router_data.path);
        let elsewhere = |entry: &StateEntry, handler: &String| {
            entry.loads.iter().any(|(_, h)| h == handler)
                && !on_page
                    .iter()
                    .any(|(e, h)| e.name == entry.name && h == handler)
        };
        let mut watchers: Vec<(Arc<StateEntry>, String)> = Vec::new();
        for entry in self.registry.by_name.values() {
            for (table, handler) in &entry.watches {
                let pair = (entry.name.clone(), handler.clone());
                if wanted(table)
                    && !skip.contains(&pair)
                    && !elsewhere(entry, handler)
                    && !watchers
                        .iter()
                        .any(|(e, h)| e.name == entry.name && h == handler)
                {
                    watchers.push((entry.clone(), handler.clone()));
                }
            }
        }
        for (entry, handler_name) in watchers {
            if !self.shows(socket, &entry).await {
                continue;
            }
            let Some((answer, ok)) = self
                .run_attached(socket, event, &entry, &handler_name)
                .await
            else {
                continue;
            };
            if ok {
                page_load::merge(update, answer);
            } else {
                tracing::debug!(state = %entry.name, handler = %handler_name, events = ?answer.events, "a live reload was refused or failed; the tab keeps what it shows");
            }
        }
    }

    /// Whether the tab of `socket` shows `entry`'s state live: a handler of it ran there
    /// (recorded with the tab's states).
    async fn shows(&self, socket: &SocketInfo, entry: &StateEntry) -> bool {
        let key = socket.key_for(entry);
        let mut lock = match self.manager.lock(&key).await {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!(error = %e, "could not read which states a tab shows; no live reload");
                return false;
            }
        };
        let shown = lock.states().live_states().contains(&entry.name);
        if let Err(e) = lock.release().await {
            tracing::warn!(error = %e, "could not release a tab's states after reading what it shows");
        }
        shown
    }
}
