//! Page loaders ([`crate::Registered::on_load`]): the handlers a page's path names, run on the
//! server before the page renders, when a tab on the page (re)connects (`_hydrate`), and when a
//! tab navigates to it without a page load (`_load`).

use futures_util::future::BoxFuture;

use super::*;
use crate::protocol::Delta;
use crate::state::{LoadPage, Loader, RenderedShared};

impl EventBridge {
    /// Whether any state loads a page.
    pub(crate) fn has_page_loaders(&self) -> bool {
        self.registry.pages.any()
    }

    /// Runs the loaders of `event`'s page for `socket`, each as its own event through the
    /// chain and its guards (sharing `event`'s id, never replayed), and merges their answers.
    pub(super) async fn run_loaders(&self, socket: &mut SocketInfo, event: &Event) -> StateUpdate {
        let mut update = StateUpdate::final_for(Some(event.id));
        for (entry, handler_name) in self.registry.pages.at(&event.router_data.path) {
            if let Some((answer, _)) = self.run_attached(socket, event, entry, handler_name).await {
                merge(&mut update, answer);
            }
        }
        update
    }

    /// Runs `entry`'s payload-less handler `handler_name` (a page loader, a live handler) for
    /// `socket` as its own event through the chain and its guards, sharing `event`'s id and
    /// never replayed: its answer, and whether it succeeded. `None` when it takes a payload.
    pub(super) async fn run_attached(
        &self,
        socket: &mut SocketInfo,
        event: &Event,
        entry: &StateEntry,
        handler_name: &str,
    ) -> Option<(StateUpdate, bool)> {
        let call = prepared(entry, handler_name)?;
        let attached = Event {
            id: event.id,
            name: format!("{}.{handler_name}", entry.name),
            payload: Value::Null,
            router_data: event.router_data.clone(),
        };
        Some(
            self.run_event(socket, &attached, entry, handler_name, call, false)
                .await,
        )
    }
}

/// Adds what `answer` changed and sent to `update`.
pub(super) fn merge(update: &mut StateUpdate, answer: StateUpdate) {
    for (state, fields) in answer.delta {
        update.delta.entry(state).or_default().extend(fields);
    }
    update.events.extend(answer.events);
}

/// The call of a loader with its empty payload (the registry checked it takes none).
fn prepared(entry: &StateEntry, handler_name: &str) -> Option<PreparedCall> {
    let handler = entry.handlers.get(handler_name)?;
    match handler
        .clone()
        .prepare(Value::Object(serde_json::Map::new()))
    {
        Ok(call) => Some(call),
        Err(why) => {
            tracing::error!(state = %entry.name, handler = handler_name, %why, "a page loader refused its empty payload");
            None
        }
    }
}

impl LoadPage for EventBridge {
    fn load(&self, parts: http::request::Parts) -> BoxFuture<'static, Delta> {
        let loaders = self.registry.pages.at(parts.uri.path()).to_vec();
        Box::pin(render_loads(parts, loaders))
    }
}

/// For the server's render of a page: runs `loaders` on a request that went through the app's
/// middleware (`parts`), each on its state's default (a session-scoped state: on what the
/// session holds). What they change is rendered, not stored: the tab's `_hydrate` runs them
/// again on the tab's own states. A loader that a guard refuses, or that fails, renders its
/// state as it was; its toasts and redirects have no page to go to and are logged.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
async fn render_loads(parts: http::request::Parts, loaders: Vec<Loader>) -> Delta {
    let mut states = Delta::new();
    let user = parts
        .extensions
        .get::<CurrentUser>()
        .cloned()
        .unwrap_or_default();
    let shared = parts.extensions.get::<RenderedShared>().map(|s| &s.0);
    for (entry, handler_name) in loaders {
        let name = format!("{}.{handler_name}", entry.name);
        let refused = entry
            .guards
            .get(&handler_name)
            .and_then(|guards| guards.iter().find_map(|g| g.check(&user).err()));
        if let Some(denied) = refused {
            tracing::debug!(loader = %name, ?denied, "a guard refused a page loader; the page renders the state without it");
            continue;
        }
        let Some(call) = prepared(&entry, &handler_name) else {
            continue;
        };
        let start = match shared.and_then(|s| s.get(&entry.name)) {
            Some(fields) if entry.keyed == Keyed::Session => {
                (entry.from_json)(Value::Object(fields.clone()))
                    .unwrap_or_else(|_| (entry.make_default)())
            }
            _ => (entry.make_default)(),
        };
        let info = EventInfo {
            id: None,
            name: name.clone(),
            token: String::new(),
        };
        let ctx = EventContext::new(parts.clone(), Bytes::new(), info, None);
        // Not the event path's runner: a render takes none of the session's pending messages,
        // which the page itself shows.
        match ctx.clone().scope(call(start, ctx)).await {
            RunOutcome::Returned(state, Ok(events)) => {
                if !events.is_empty() {
                    tracing::debug!(loader = %name, count = events.len(), "a page loader's client events have no page yet; not sent");
                }
                match state.to_json() {
                    Ok(Value::Object(fields)) => {
                        states.insert(entry.name.clone(), fields);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(loader = %name, error = %e, "a page loader's state does not serialize; the page renders its default");
                    }
                }
            }
            RunOutcome::Returned(_, Err(e)) => {
                tracing::info!(loader = %name, error = %e, "a page loader refused; the page renders the state without it");
            }
            RunOutcome::Panicked(msg) => {
                tracing::error!(loader = %name, panic = %msg, "a page loader panicked; the page renders the state without it");
            }
        }
    }
    states
}
