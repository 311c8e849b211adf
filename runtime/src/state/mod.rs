//! States, their event handlers, and where each client's states live between events.
//!
//! A state is a serde struct. Its handlers are `async fn`s taking `&mut self`, the
//! [`EventContext`] and, optionally, a typed payload; they return `()`, client events, or a
//! `Result` of either. Fields marked `#[serde(skip)]` are transient: never shipped to the
//! client nor stored by a state manager.
//!
//! ```
//! use ferrule::{ClientCommand, EventContext, Handlers, State};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Default, Serialize, Deserialize)]
//! pub struct CounterState {
//!     count: i64,
//!     #[serde(skip)]
//!     clicks_since_load: u32, // transient
//! }
//!
//! #[derive(Deserialize)]
//! pub struct Add {
//!     amount: i64,
//! }
//!
//! impl CounterState {
//!     async fn increment(&mut self, _ctx: EventContext) {
//!         self.count += 1;
//!     }
//!     async fn add(&mut self, _ctx: EventContext, p: Add) -> Result<(), ferrule::Error> {
//!         if p.amount < 0 {
//!             return Err(ferrule::Error::bad_request("amount must not be negative"));
//!         }
//!         self.count += p.amount;
//!         Ok(())
//!     }
//! }
//!
//! impl State for CounterState {
//!     fn handlers(h: &mut Handlers<Self>) {
//!         h.on("increment", Self::increment).on("add", Self::add);
//!     }
//! }
//! ```

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;
use crate::auth::guard::Guard;
use crate::protocol::{ClientCommand, state_name_of};
use crate::settings::Tier;

mod builtin;
mod handler;
mod manager;
mod store;

pub(crate) use handler::{
    AnyState, ErasedHandler, PreparedCall, RunOutcome, Typed, decode_payload, panic_message,
};
pub use handler::{AsyncHandler0, AsyncHandler1, Handler, NoPayload, WithPayload};
pub use manager::{MemoryStateManager, StateLock, StateManager};
pub use store::TokenStates;
pub(crate) use store::delta;

/// A piece of per-client state with event handlers.
pub trait State: Clone + Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The wire name; `None` derives it from the type name (`CartState` → `cart_state`).
    const NAME: Option<&'static str> = None;
    /// How much of the bridge this state's events go through; `None` uses `default_tier`.
    const TIER: Option<Tier> = None;
    /// `true` (the default): the state belongs to the tab *and its session*: another session
    /// presenting the tab's token never sees it, and it is cleared at logout and when another
    /// user logs in on the tab. `false` for public UI state (a theme, a layout) kept under the
    /// token alone: it survives logouts, and any session presenting the token may read it.
    const SESSION_BOUND: bool = true;

    /// Registers the handlers.
    fn handlers(handlers: &mut Handlers<Self>);

    /// The wire name of the state.
    fn name() -> String {
        Self::NAME
            .map(str::to_owned)
            .unwrap_or_else(|| state_name_of(std::any::type_name::<Self>()))
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

/// The handlers of state `S`, filled in by [`State::handlers`].
pub struct Handlers<S> {
    map: BTreeMap<String, Arc<dyn ErasedHandler>>,
    guards: BTreeMap<String, Vec<Guard>>,
    uploads: std::collections::BTreeSet<String>,
    last: Option<String>,
    _state: PhantomData<fn() -> S>,
}

impl<S: State> Handlers<S> {
    /// Registers `handler` under `name` (the part after the dot in the event name).
    pub fn on<M: 'static, H: Handler<S, M>>(&mut self, name: &str, handler: H) -> &mut Self {
        self.insert(
            name,
            Arc::new(Typed::<S, M, H> {
                handler,
                _marker: PhantomData,
            }),
        )
    }

    /// Registers an already type-erased handler (the background module's) under `name`.
    pub(crate) fn insert(&mut self, name: &str, handler: Arc<dyn ErasedHandler>) -> &mut Self {
        self.map.insert(name.to_owned(), handler);
        self.last = Some(name.to_owned());
        self
    }

    /// Registers `handler` for action `A`, under the name the browser emits it with
    /// ([`Action::HANDLER`](crate::protocol::Action::HANDLER)), so the name is written once.
    pub fn action<A, M, H>(&mut self, handler: H) -> &mut Self
    where
        A: crate::protocol::Action<State = S>,
        M: 'static,
        H: Handler<S, M>,
    {
        self.on(A::HANDLER, handler)
    }

    /// Registers an upload handler: it takes `Vec<UploadedFile>` as its payload and runs for
    /// `POST /_upload`, never for a socket event.
    pub fn upload<M: 'static, H: Handler<S, M>>(&mut self, name: &str, handler: H) -> &mut Self {
        self.on(name, handler);
        self.uploads.insert(name.to_owned());
        self
    }

    /// Guards the handler registered last with `guard` (they all must pass).
    pub fn guard(&mut self, guard: Guard) -> &mut Self {
        let name = self
            .last
            .clone()
            .expect("register a handler with `on` before guarding it");
        self.guards.entry(name).or_default().push(guard);
        self
    }

    /// The last handler needs a logged-in user (anonymous users are sent to `login_url`).
    pub fn login_required(&mut self) -> &mut Self {
        self.guard(Guard::LoginRequired)
    }

    /// The last handler needs permission `perm`.
    pub fn permission_required(&mut self, perm: &str) -> &mut Self {
        self.guard(Guard::Permission(perm.to_owned()))
    }

    /// The last handler needs membership of `group`.
    pub fn group_required(&mut self, group: &str) -> &mut Self {
        self.guard(Guard::Group(group.to_owned()))
    }

    /// The last handler needs a staff user.
    pub fn staff_required(&mut self) -> &mut Self {
        self.guard(Guard::Staff)
    }

    /// The last handler needs a superuser.
    pub fn superuser_required(&mut self) -> &mut Self {
        self.guard(Guard::Superuser)
    }
}

/// Everything the bridge needs to know about one registered state type.
#[derive(Clone)]
pub(crate) struct StateEntry {
    pub(crate) name: String,
    pub(crate) tier: Option<Tier>,
    /// [`State::SESSION_BOUND`].
    pub(crate) session_bound: bool,
    pub(crate) handlers: BTreeMap<String, Arc<dyn ErasedHandler>>,
    pub(crate) guards: BTreeMap<String, Arc<[Guard]>>,
    pub(crate) uploads: std::collections::BTreeSet<String>,
    pub(crate) make_default: fn() -> Box<dyn AnyState>,
    pub(crate) from_json: fn(Value) -> Result<Box<dyn AnyState>, serde_json::Error>,
}

impl StateEntry {
    pub(crate) fn of<S: State>() -> Self {
        let mut handlers = Handlers::<S> {
            map: BTreeMap::new(),
            guards: BTreeMap::new(),
            uploads: Default::default(),
            last: None,
            _state: PhantomData,
        };
        S::handlers(&mut handlers);
        Self {
            name: S::name(),
            tier: S::TIER,
            session_bound: S::SESSION_BOUND,
            handlers: handlers.map,
            uploads: handlers.uploads,
            guards: handlers
                .guards
                .into_iter()
                .map(|(k, v)| (k, Arc::from(v)))
                .collect(),
            make_default: || Box::new(S::default()),
            from_json: |v| Ok(Box::new(serde_json::from_value::<S>(v)?)),
        }
    }

    /// Checks the state serializes to a JSON object, so deltas can be per field.
    pub(crate) fn check(&self) -> Result<(), String> {
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

/// The registered states by name.
#[derive(Default, Clone)]
pub(crate) struct StateRegistry {
    pub(crate) by_name: BTreeMap<String, Arc<StateEntry>>,
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

    impl State for Probe {
        fn handlers(h: &mut Handlers<Self>) {
            h.on("bump", Self::bump).on("add", Self::add);
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
