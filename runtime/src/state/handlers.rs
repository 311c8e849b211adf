//! Registering a state's handlers: [`Handlers`], filled in by `State::handlers`, and
//! [`Registered`], which scopes guards and limits to the one handler just registered.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::auth::guard::Guard;
use crate::protocol::Action;

use super::{ErasedHandler, Handler, State, Typed};

/// The handlers of state `S`, filled in by [`State::handlers`]. `#[ferrule::state]` writes the
/// calls; by hand, each registration is its own statement, guards chained onto it:
///
/// ```
/// # use ferrule::{EventContext, Handlers, State};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Clone, Default, Serialize, Deserialize)]
/// # pub struct CounterState { count: i64 }
/// # #[derive(Serialize, Deserialize)] pub struct Increment;
/// # #[derive(Serialize, Deserialize)] pub struct Reset;
/// # ferrule::actions!(CounterState { increment: Increment, reset: Reset });
/// # impl CounterState {
/// #     async fn increment(&mut self, _: EventContext, _: Increment) { self.count += 1; }
/// #     async fn reset(&mut self, _: EventContext, _: Reset) { self.count = 0; }
/// # }
/// impl State for CounterState {
///     fn handlers(h: &mut Handlers<Self>) {
///         h.action(Self::increment);
///         h.action(Self::reset).login_required();
///     }
/// }
/// ```
pub struct Handlers<S> {
    pub(super) map: BTreeMap<String, Arc<dyn ErasedHandler>>,
    pub(super) guards: BTreeMap<String, Vec<Guard>>,
    pub(super) uploads: BTreeMap<String, Option<u64>>,
    /// Page loaders: (path pattern, handler name), in the order registered.
    pub(super) loads: Vec<(String, String)>,
    /// Live tables: (table, handler name), in the order registered.
    pub(super) watches: Vec<(String, String)>,
    _state: PhantomData<fn() -> S>,
}

impl<S> Default for Handlers<S> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            guards: BTreeMap::new(),
            uploads: BTreeMap::new(),
            loads: Vec::new(),
            watches: Vec::new(),
            _state: PhantomData,
        }
    }
}

/// Marks a [`Registered`] as an event handler's.
#[doc(hidden)]
pub enum Event {}
/// Marks a [`Registered`] as an upload handler's, which alone may take
/// [`Registered::max_bytes`].
#[doc(hidden)]
pub enum Upload {}

/// The handler just registered: guards and limits chained onto it apply to it alone. It holds
/// the registry borrowed, so the next registration is a new statement and cannot be mistaken
/// for one these guards cover.
pub struct Registered<'h, S, Kind = Event> {
    handlers: &'h mut Handlers<S>,
    name: String,
    _kind: PhantomData<fn() -> Kind>,
}

impl<S: State> Handlers<S> {
    /// Registers `handler` under `name` (the part after the dot in the event name). Prefer
    /// [`Handlers::action`], whose name comes from the payload's type.
    pub fn on<M: 'static, H: Handler<S, M>>(
        &mut self,
        name: &str,
        handler: H,
    ) -> Registered<'_, S> {
        self.insert(
            name,
            Arc::new(Typed::<S, M, H> {
                handler,
                _marker: PhantomData,
            }),
        )
    }

    /// Registers an already type-erased handler (the background module's) under `name`.
    pub(crate) fn insert(
        &mut self,
        name: &str,
        handler: Arc<dyn ErasedHandler>,
    ) -> Registered<'_, S> {
        self.map.insert(name.to_owned(), handler);
        self.registered(name)
    }

    fn registered<K>(&mut self, name: &str) -> Registered<'_, S, K> {
        Registered {
            handlers: self,
            name: name.to_owned(),
            _kind: PhantomData,
        }
    }

    /// Registers `handler` for the action it takes as its payload, under the name the browser
    /// emits it with ([`Action::HANDLER`]): `h.action(Self::add)` for
    /// `async fn add(&mut self, ctx: EventContext, p: Add)`. The action's state must be `S`, so
    /// a handler cannot be registered for another state's action.
    pub fn action<M, H>(&mut self, handler: H) -> Registered<'_, S>
    where
        M: 'static,
        H: Handler<S, M>,
        H::Payload: Action<State = S>,
    {
        self.on(<H::Payload as Action>::HANDLER, handler)
    }

    /// Registers an upload handler: it takes `Vec<UploadedFile>` as its payload and runs for
    /// `POST /_upload`, never for a socket event.
    pub fn upload<M: 'static, H: Handler<S, M>>(
        &mut self,
        name: &str,
        handler: H,
    ) -> Registered<'_, S, Upload> {
        self.on(name, handler);
        self.uploads.insert(name.to_owned(), None);
        self.registered(name)
    }
}

impl<S, K> Registered<'_, S, K> {
    /// Guards this handler with `guard` (all of its guards must pass).
    pub fn guard(self, guard: Guard) -> Self {
        self.handlers
            .guards
            .entry(self.name.clone())
            .or_default()
            .push(guard);
        self
    }

    /// This handler needs a logged-in user (anonymous users are sent to `login_url`).
    pub fn login_required(self) -> Self {
        self.guard(Guard::LoginRequired)
    }

    /// This handler needs permission `perm`.
    pub fn permission_required(self, perm: &str) -> Self {
        self.guard(Guard::Permission(perm.to_owned()))
    }

    /// This handler needs membership of `group`.
    pub fn group_required(self, group: &str) -> Self {
        self.guard(Guard::Group(group.to_owned()))
    }

    /// This handler needs a staff user.
    pub fn staff_required(self) -> Self {
        self.guard(Guard::Staff)
    }

    /// This handler needs a superuser.
    pub fn superuser_required(self) -> Self {
        self.guard(Guard::Superuser)
    }
}

impl<S> Registered<'_, S, Event> {
    /// Runs this handler (which takes no payload) whenever a page at `path` is shown: on the
    /// server before the page's first render, when a tab on that page connects or reconnects,
    /// and when a tab navigates to it without a page load. Through the same middleware chain and
    /// guards as the event would go; a guard that refuses leaves the state as it is. `path` is
    /// a route pattern as axum writes them: `/notes`, `/posts/{id}`, `/docs/{*rest}`.
    pub fn on_load(self, path: &str) -> Self {
        self.handlers
            .loads
            .push((path.to_owned(), self.name.clone()));
        self
    }

    /// Runs this handler (which takes no payload) again in every tab that shows this state
    /// whenever rows of `table` change (a handler calls [`EventContext::changed`], or code
    /// outside handlers [`Rooms::changed`]), on every node, through the same middleware chain
    /// and guards as the event would go. A tab shows the state once one of its handlers ran
    /// there (its page loader, typically); a handler that also loads pages ([`Self::on_load`])
    /// runs only while the tab is on one of them. A burst of changes gives each tab a bounded
    /// number of runs, the last after the last change; a refused run changes nothing and shows
    /// nothing.
    ///
    /// [`EventContext::changed`]: crate::EventContext::changed
    /// [`Rooms::changed`]: crate::rooms::Rooms::changed
    pub fn on_change(self, table: &str) -> Self {
        self.handlers
            .watches
            .push((table.to_owned(), self.name.clone()));
        self
    }
}

impl<S> Registered<'_, S, Upload> {
    /// The most this upload may carry in all, in bytes; the smaller of this and the
    /// `upload_max_request_bytes` setting applies.
    pub fn max_bytes(self, bytes: u64) -> Self {
        self.handlers.uploads.insert(self.name.clone(), Some(bytes));
        self
    }
}
