//! States, their event handlers, and where each client's states live between events.
//!
//! A state is a serde struct. Its handlers are `async fn`s taking `&mut self`, the
//! [`EventContext`] and their payload's parameters; they return `()`, client events, or a
//! `Result` of either. Fields marked `#[serde(skip)]` are transient: never shipped to the
//! client nor stored by a state manager. [`#[ferrule::state]`](macro@crate::state) declares them
//! once, in shared code, and writes one action type per handler for the page and the tests:
//!
//! ```
//! use ferrule::EventContext;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Default, Serialize, Deserialize)]
//! pub struct CounterState {
//!     count: i64,
//!     #[serde(skip)]
//!     clicks_since_load: u32, // transient
//! }
//!
//! #[ferrule::state]
//! impl CounterState {
//!     async fn increment(&mut self, _ctx: EventContext) {
//!         self.count += 1;
//!     }
//!     async fn add(&mut self, _ctx: EventContext, amount: i64) -> Result<(), ferrule::Error> {
//!         if amount < 0 {
//!             return Err(ferrule::Error::bad_request("amount must not be negative"));
//!         }
//!         self.count += amount;
//!         Ok(())
//!     }
//! }
//!
//! // What the page sends and the test client too: `counter_state.add` with `{"amount": 5}`.
//! use ferrule::protocol::Action;
//! assert_eq!(Add::event_name(), "counter_state.add");
//! ```
//!
//! By hand, without the attribute, the same state is a [`StateName`], the action types with
//! [`actions!`](crate::actions), and a [`State`] impl registering each handler with
//! [`Handlers::action`]; the book's "Handlers" chapter puts the two side by side.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;
use crate::auth::guard::Guard;
use crate::protocol::{ClientCommand, StateName};
use crate::settings::Tier;

mod builtin;
mod handler;
mod handlers;
mod manager;
mod store;

pub(crate) use handler::{
    AnyState, ErasedHandler, PreparedCall, RunOutcome, Typed, decode_payload, panic_message,
};
pub use handler::{AsyncHandler0, AsyncHandler1, Handler, NoPayload, WithPayload};
#[doc(hidden)]
pub use handlers::{Event, Upload};
pub use handlers::{Handlers, Registered};
pub use manager::{MemoryStateManager, StateLock, StateManager, StoreSize};
pub use store::TokenStates;
pub(crate) use store::{delta, encoded_len};

/// A piece of per-client state with event handlers. Its wire name comes from [`StateName`],
/// which the browser's side shares.
pub trait State:
    StateName + Clone + Default + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// How much of the bridge this state's events go through; `None` uses `default_tier`.
    const TIER: Option<Tier> = None;
    /// `true` (the default): the state belongs to the tab *and its session*: another session
    /// presenting the tab's token never sees it, and it is cleared at logout and when another
    /// user logs in on the tab. `false` for public UI state (a theme, a layout) kept under the
    /// token alone: it survives logouts, and any session presenting the token may read it.
    const SESSION_BOUND: bool = true;
    /// `true`: one value shared by every tab of the session (a cart, a draft), kept under the
    /// session rather than the tab. A change in one tab is pushed to the others, the server
    /// renders the page with the session's value (no jump at hydration), and it follows the
    /// session: it carries over into a login, and a logout or another user's login starts it
    /// afresh. Without sessions (no database) it is kept per tab. Implies
    /// [`SESSION_BOUND`](State::SESSION_BOUND).
    const SESSION_SCOPED: bool = false;

    /// Registers the handlers.
    fn handlers(handlers: &mut Handlers<Self>);

    /// The wire name of the state ([`StateName::state_name`]).
    fn name() -> String {
        Self::state_name()
    }
}

/// What a handler may return: nothing, client events, or a `Result` of those.
pub trait IntoEvents {
    /// Converts to the client events to ship, or the error to show.
    fn into_events(self) -> Result<Vec<ClientCommand>, Error>;
}

impl IntoEvents for () {
    fn into_events(self) -> Result<Vec<ClientCommand>, Error> {
        Ok(Vec::new())
    }
}

impl IntoEvents for ClientCommand {
    fn into_events(self) -> Result<Vec<ClientCommand>, Error> {
        Ok(vec![self])
    }
}

impl IntoEvents for Vec<ClientCommand> {
    fn into_events(self) -> Result<Vec<ClientCommand>, Error> {
        Ok(self)
    }
}

impl IntoEvents for Option<ClientCommand> {
    fn into_events(self) -> Result<Vec<ClientCommand>, Error> {
        Ok(self.into_iter().collect())
    }
}

impl<T: IntoEvents, E: Into<Error>> IntoEvents for Result<T, E> {
    fn into_events(self) -> Result<Vec<ClientCommand>, Error> {
        self.map_err(Into::into)?.into_events()
    }
}

/// The session's shared states ([`State::SESSION_SCOPED`]) a page load is rendered with, in
/// its request's extensions. Only the page renderer (feature `ssr`) reads them; a server built
/// without it still puts them there.
#[derive(Clone, Debug, Default)]
pub(crate) struct RenderedShared(
    #[cfg_attr(not(feature = "ssr"), allow(dead_code))] pub(crate) crate::protocol::Delta,
);

/// What the page loaders of a page load gave, in its request's extensions: the page renders
/// with these states, as the tab's `_hydrate` will ship them.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
#[derive(Clone, Debug, Default)]
pub(crate) struct RenderedLoaded(
    #[cfg_attr(not(feature = "ssr"), allow(dead_code))] pub(crate) crate::protocol::Delta,
);

/// Runs the page loaders of a page request, inside the app's middleware chain (the page
/// renderer calls it; the bridge does the work). In every HTTP request's extensions when the
/// app has page loaders.
#[derive(Clone)]
pub(crate) struct PageLoads(
    #[cfg_attr(not(feature = "ssr"), allow(dead_code))] pub(crate) Arc<dyn LoadPage>,
);

/// The bridge's side of [`PageLoads`].
pub(crate) trait LoadPage: Send + Sync {
    /// The states the loaders of `parts`' path leave, each started from its default.
    #[cfg_attr(not(feature = "ssr"), allow(dead_code))]
    fn load(
        &self,
        parts: http::request::Parts,
    ) -> futures_util::future::BoxFuture<'static, crate::protocol::Delta>;
}

/// Which key a state's values are kept under, and so who shares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keyed {
    /// The tab's token bound to its session: the tab alone (the default).
    Tab,
    /// The token the client presented: any session showing it ([`State::SESSION_BOUND`] false).
    Token,
    /// The session's binding: every tab of the session ([`State::SESSION_SCOPED`]).
    Session,
}

/// Everything the bridge needs to know about one registered state type.
#[derive(Clone)]
pub(crate) struct StateEntry {
    pub(crate) name: String,
    /// The Rust type, for errors that must tell two states apart.
    pub(crate) rust_type: &'static str,
    pub(crate) tier: Option<Tier>,
    /// Under which key its values are kept: [`State::SESSION_SCOPED`], [`State::SESSION_BOUND`].
    pub(crate) keyed: Keyed,
    pub(crate) handlers: BTreeMap<String, Arc<dyn ErasedHandler>>,
    pub(crate) guards: BTreeMap<String, Arc<[Guard]>>,
    /// The upload handlers, with their own size limits.
    pub(crate) uploads: BTreeMap<String, Option<u64>>,
    /// Page loaders ([`Registered::on_load`]): (path pattern, handler name).
    pub(crate) loads: Vec<(String, String)>,
    /// Live tables ([`Registered::on_change`]): (table, handler name).
    pub(crate) watches: Vec<(String, String)>,
    pub(crate) make_default: fn() -> Box<dyn AnyState>,
    pub(crate) from_json: fn(Value) -> Result<Box<dyn AnyState>, serde_json::Error>,
}

impl StateEntry {
    pub(crate) fn of<S: State>() -> Self {
        let mut handlers = Handlers::<S>::default();
        S::handlers(&mut handlers);
        Self {
            name: S::name(),
            rust_type: std::any::type_name::<S>(),
            tier: S::TIER,
            keyed: if S::SESSION_SCOPED {
                Keyed::Session
            } else if S::SESSION_BOUND {
                Keyed::Tab
            } else {
                Keyed::Token
            },
            handlers: handlers.map,
            uploads: handlers.uploads,
            loads: handlers.loads,
            watches: handlers.watches,
            guards: handlers
                .guards
                .into_iter()
                .map(|(k, v)| (k, Arc::from(v)))
                .collect(),
            make_default: || Box::new(S::default()),
            from_json: |v| Ok(Box::new(serde_json::from_value::<S>(v)?)),
        }
    }

    /// The tables its live handlers watch, each once.
    pub(crate) fn live_tables(&self) -> Vec<String> {
        let mut tables: Vec<String> = Vec::new();
        for (table, _) in &self.watches {
            if !tables.contains(table) {
                tables.push(table.clone());
            }
        }
        tables
    }

    /// Checks the state serializes to a JSON object, so deltas can be per field, and that its
    /// page loaders and live handlers take no payload (nothing would be there to give them one).
    pub(crate) fn check(&self) -> Result<(), String> {
        let takes_nothing = |handler: &str| {
            self.handlers
                .get(handler)
                .is_some_and(|h| h.clone().prepare(Value::Object(Default::default())).is_ok())
        };
        for (path, handler) in &self.loads {
            if !takes_nothing(handler) {
                return Err(format!(
                    "`{}.{handler}` loads page `{path}` but takes a payload: a page loader takes none (read the page's query with `ctx.query`)",
                    self.name
                ));
            }
        }
        for (table, handler) in &self.watches {
            if table.is_empty() {
                return Err(format!(
                    "`{}.{handler}` reloads on changes of a table with no name",
                    self.name
                ));
            }
            if !takes_nothing(handler) {
                return Err(format!(
                    "`{}.{handler}` reloads on changes of `{table}` but takes a payload: a live handler takes none",
                    self.name
                ));
            }
        }
        match (self.make_default)().to_json() {
            Ok(Value::Object(_)) => Ok(()),
            Ok(other) => Err(format!(
                "state `{}` serializes to {other}, not an object: a state must be a struct with named fields",
                self.name
            )),
            Err(e) => Err(format!("state `{}` does not serialize: {e}", self.name)),
        }
    }
}

/// The registered states by name, and their page loaders by path.
#[derive(Default, Clone)]
pub(crate) struct StateRegistry {
    pub(crate) by_name: BTreeMap<String, Arc<StateEntry>>,
    pub(crate) pages: PageRoutes,
}

/// One page loader: a state and the name of its handler.
pub(crate) type Loader = (Arc<StateEntry>, String);

/// The page loaders of every path pattern, in the order their states were registered.
#[derive(Default, Clone)]
pub(crate) struct PageRoutes {
    router: Option<Arc<matchit::Router<Vec<Loader>>>>,
}

impl PageRoutes {
    /// The routes of every loader of `states`; a pattern axum would refuse is an error.
    pub(crate) fn of<'a>(
        states: impl IntoIterator<Item = &'a Arc<StateEntry>>,
    ) -> Result<Self, String> {
        let mut by_pattern: Vec<(String, Vec<Loader>)> = Vec::new();
        for entry in states {
            for (pattern, handler) in &entry.loads {
                let loader = (entry.clone(), handler.clone());
                match by_pattern.iter_mut().find(|(p, _)| p == pattern) {
                    Some((_, loaders)) => loaders.push(loader),
                    None => by_pattern.push((pattern.clone(), vec![loader])),
                }
            }
        }
        if by_pattern.is_empty() {
            return Ok(Self::default());
        }
        let mut router = matchit::Router::new();
        for (pattern, loaders) in by_pattern {
            let (state, handler) = (&loaders[0].0.name, &loaders[0].1);
            router.insert(pattern.as_str(), loaders.clone()).map_err(|e| {
                format!("`{state}.{handler}` loads page `{pattern}`, which is not a route pattern: {e}")
            })?;
        }
        Ok(Self {
            router: Some(Arc::new(router)),
        })
    }

    /// Whether any state loads a page.
    pub(crate) fn any(&self) -> bool {
        self.router.is_some()
    }

    /// The loaders of the page at `path`, none when no pattern matches.
    pub(crate) fn at(&self, path: &str) -> &[Loader] {
        self.router
            .as_deref()
            .and_then(|r| r.at(path).ok())
            .map_or(&[], |m| m.value.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::EventContext;
    use serde::Deserialize;
    use serde_json::json;
    use std::time::Duration;
    use store::EPOCHS_KEPT;

    #[derive(Clone, Default, Serialize, Deserialize)]
    struct Probe {
        a: i64,
        b: String,
        #[serde(skip)]
        scratch: u8,
    }

    #[derive(Deserialize)]
    struct Amount {
        amount: i64,
    }

    impl Probe {
        async fn bump(&mut self, _: EventContext) {
            self.a += 1;
            self.scratch += 1;
        }
        async fn add(&mut self, _: EventContext, p: Amount) -> Result<ClientCommand, Error> {
            self.a += p.amount;
            Ok(ClientCommand::redirect("/done"))
        }
    }

    impl crate::protocol::StateName for Probe {}

    impl State for Probe {
        fn handlers(h: &mut Handlers<Self>) {
            h.on("bump", Self::bump);
            h.on("add", Self::add);
        }
    }

    #[test]
    fn transient_fields_are_not_serialized() {
        let entry = StateEntry::of::<Probe>();
        assert_eq!(entry.name, "probe");
        assert_eq!(
            (entry.make_default)().to_json().unwrap(),
            json!({"a": 0, "b": ""})
        );
        assert!(entry.check().is_ok());
    }

    #[test]
    fn answers_are_remembered_per_epoch_with_what_they_said() {
        let mut states = TokenStates::default();
        assert_eq!(states.answered_before("a", 1), None);
        states.record_answer("a", 1, &[]);
        let refused = ClientCommand::error("nope");
        states.record_answer("a", 2, std::slice::from_ref(&refused));
        states.record_answer("b", 1, &[]);
        assert_eq!(states.answered_before("a", 1), Some(vec![]));
        assert_eq!(states.answered_before("a", 2), Some(vec![refused]));
        assert_eq!(states.answered_before("a", 3), None);
        assert_eq!(states.answered_before("b", 2), None, "epochs are separate");
        for i in 0..EPOCHS_KEPT {
            states.record_answer(&format!("later-{i}"), 1, &[]);
        }
        assert_eq!(
            states.answered_before("a", 1),
            None,
            "the oldest epochs are forgotten"
        );
        let stored = TokenStates::from_json(states.to_json());
        assert_eq!(
            stored.answered_before("later-0", 1),
            Some(vec![]),
            "kept with the states"
        );
    }

    #[test]
    fn delta_has_only_changed_fields() {
        assert_eq!(
            Value::Object(delta(
                &json!({"a": 1, "b": "x"}),
                &json!({"a": 2, "b": "x"})
            )),
            json!({"a": 2})
        );
    }

    #[test]
    fn payload_errors_name_the_field() {
        let entry = StateEntry::of::<Probe>();
        let add = entry.handlers["add"].clone();
        let err = add.clone().prepare(json!({"amount": "x"})).err().unwrap();
        assert!(err.contains("field `amount`"), "{err}");
        let err = add.prepare(json!({})).err().unwrap();
        assert!(err.contains("missing field `amount`"), "{err}");
        assert!(
            entry.handlers["bump"]
                .clone()
                .prepare(json!({"any": 1}))
                .is_ok()
        );
    }

    #[test]
    fn a_unit_action_reads_the_empty_object_the_browser_sends() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Reset;
        assert_eq!(decode_payload::<Reset>(json!({})).unwrap(), Reset);
        assert!(
            decode_payload::<Reset>(json!({"x": 1})).is_err(),
            "only the empty object"
        );
        // A type that reads `{}` itself keeps its own reading.
        assert_eq!(
            decode_payload::<Option<BTreeMap<String, i64>>>(json!({})).unwrap(),
            Some(BTreeMap::new())
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_manager_serializes_one_token() {
        let m = Arc::new(MemoryStateManager::default());
        let first = m.lock("t").await.unwrap();
        let m2 = m.clone();
        let waiter = tokio::spawn(async move { m2.lock("t").await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "second lock must wait for the first");
        let other = m.lock("u").await.unwrap();
        first.release().await.unwrap();
        waiter.await.unwrap().unwrap();
        other.release().await.unwrap();
    }

    #[tokio::test]
    async fn sweep_drops_idle_tokens_only() {
        let m = MemoryStateManager::new(Duration::from_millis(10));
        m.lock("idle").await.unwrap().release().await.unwrap();
        let held = m.lock("busy").await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(m.sweep(), 1);
        assert_eq!(m.len(), 1);
        held.release().await.unwrap();
    }
}
