//! Background event handlers: they start from an event, run detached from the tab's event
//! queue (the tab's other events go on), and push state updates as they go (`id: null`).
//!
//! ```no_run
//! use ferrule::background::Background;
//! # #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
//! # struct ImportState { done: u32 }
//! #[ferrule::state]
//! impl ImportState {
//!     #[background]
//!     async fn import(bg: Background<Self>, rows: Vec<String>) -> Result<(), ferrule::Error> {
//!         for _row in rows {
//!             if bg.is_shutting_down() { break; }
//!             // ... slow work, no lock held ...
//!             bg.update(|s| s.done += 1).await?;     // locked, committed, pushed to the tab
//!         }
//!         Ok(())
//!     }
//! }
//! ```

use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Weak};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;
use crate::bridge::{BridgeRef, EventBridge};
use crate::context::EventContext;
use crate::protocol::{ClientCommand, StateUpdate, ToastLevel};
use crate::state::{
    AnyState, ErasedHandler, Handlers, IntoEvents, PreparedCall, Registered, RunOutcome, State,
    decode_payload,
};

/// A background handler's handle on its tab's state.
pub struct Background<S> {
    ctx: EventContext,
    bridge: Weak<EventBridge>,
    _state: PhantomData<fn() -> S>,
}

impl<S> Clone for Background<S> {
    fn clone(&self) -> Self {
        Self {
            ctx: self.ctx.clone(),
            bridge: self.bridge.clone(),
            _state: PhantomData,
        }
    }
}

impl<S: State> Background<S> {
    /// The context of the event that started the work (request, user, session).
    pub fn ctx(&self) -> &EventContext {
        &self.ctx
    }

    /// Broadcasts and room membership, applied at once (a background handler has no commit to
    /// wait for). `None` once the server has shut down.
    pub fn rooms(&self) -> Option<crate::rooms::Rooms> {
        self.bridge.upgrade().map(|b| b.rooms().clone())
    }

    /// Tells every tab showing `table` live that its rows changed, at once (the background
    /// handler's [`EventContext::changed`]: its event was answered long ago). Nothing to tell
    /// once the server has shut down.
    pub fn changed(&self, table: &str) {
        if let Some(rooms) = self.rooms() {
            rooms.changed(table);
        }
    }

    /// Puts this tab into `room` now (and records it, so reconnects stay in it).
    pub async fn join(&self, room: &str) -> Result<(), crate::Error> {
        let bridge = self
            .bridge
            .upgrade()
            .ok_or_else(|| crate::Error::internal("the server has shut down"))?;
        bridge.join_room(&self.ctx.event().token, room).await
    }

    /// Whether the server is shutting down: end soon.
    pub fn is_shutting_down(&self) -> bool {
        self.bridge
            .upgrade()
            .is_none_or(|b| b.shutdown_token().is_cancelled())
    }

    /// Completes when the server starts shutting down.
    pub async fn shutting_down(&self) {
        if let Some(b) = self.bridge.upgrade() {
            let token = b.shutdown_token().clone();
            drop(b);
            token.cancelled().await;
        }
    }

    /// Applies `f` to the tab's state under its lock (ordered with the tab's events), commits it,
    /// and pushes the changed fields to every socket of the tab.
    pub async fn update<R>(&self, f: impl FnOnce(&mut S) -> R) -> Result<R, Error> {
        let bridge = self
            .bridge
            .upgrade()
            .ok_or_else(|| Error::internal("the server has stopped"))?;
        let name = S::name();
        let (update, out) = bridge
            .with_state(self.ctx.token(), &name, |state| {
                let typed = state
                    .as_any_mut()
                    .downcast_mut::<S>()
                    .expect("the registry pairs names with their types");
                f(typed)
            })
            .await?;
        bridge.push_to_tab(self.ctx.token(), &update).await;
        Ok(out)
    }
}

pub(crate) struct BackgroundTyped<S, P, F> {
    f: F,
    _marker: PhantomData<fn() -> (S, P)>,
}

impl<S, P, F> BackgroundTyped<S, P, F> {
    pub(crate) fn new(f: F) -> Self {
        Self {
            f,
            _marker: PhantomData,
        }
    }
}

impl<S, P, F, Fut, R> ErasedHandler for BackgroundTyped<S, P, F>
where
    S: State,
    P: DeserializeOwned + Send + 'static,
    F: Fn(Background<S>, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoEvents + 'static,
{
    fn prepare(self: Arc<Self>, payload: Value) -> Result<PreparedCall, String> {
        let payload: P = decode_payload(payload)?;
        Ok(Box::new(
            move |state: Box<dyn AnyState>, ctx: EventContext| {
                Box::pin(async move {
                    let bridge = ctx
                        .extension::<BridgeRef>()
                        .map(|b| b.0.clone())
                        .unwrap_or_default();
                    let handle = Background::<S> {
                        ctx: ctx.clone(),
                        bridge: bridge.clone(),
                        _state: PhantomData,
                    };
                    let token = ctx.token().to_owned();
                    let name = ctx.event().name.clone();
                    let fut = (self.f)(handle, payload);
                    if let Some(b) = bridge.upgrade() {
                        b.track(async move {
                            let events = match std::panic::AssertUnwindSafe(fut)
                                .catch_unwind()
                                .await
                            {
                                Ok(r) => r.into_events().unwrap_or_else(|e| {
                                    vec![ClientCommand::toast(ToastLevel::Error, e.public_message())]
                                }),
                                Err(panic) => {
                                    let msg = crate::state::panic_message(&panic);
                                    tracing::error!(event = %name, panic = %msg, "background handler panicked");
                                    vec![ClientCommand::toast(
                                        ToastLevel::Error,
                                        crate::error::GENERIC_MESSAGE,
                                    )]
                                }
                            };
                            if !events.is_empty()
                                && let Some(b) = bridge.upgrade()
                            {
                                let mut u = StateUpdate::final_for(None);
                                u.events = events;
                                b.push_to_tab(&token, &u).await;
                            }
                        });
                    }
                    // The event itself changes nothing; its answer comes at once.
                    RunOutcome::Returned(state, Ok(Vec::new()))
                }) as BoxFuture<'static, RunOutcome>
            },
        ))
    }
}

// Here rather than with the other registrations: the state module sits below this one.
impl<S: State> Handlers<S> {
    /// Registers a background handler: `async fn(Background<Self>, P) -> R`. The event is
    /// answered at once; the work goes on detached, pushing updates with `bg.update(..)`.
    pub fn background<P, F, Fut, R>(&mut self, name: &str, f: F) -> Registered<'_, S>
    where
        P: DeserializeOwned + Send + 'static,
        F: Fn(Background<S>, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoEvents + 'static,
    {
        self.insert(name, Arc::new(BackgroundTyped::<S, P, F>::new(f)))
    }
}
