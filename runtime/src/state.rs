//! States, their event handlers, and where each client's states live between events.
//!
//! A state is a serde struct. Its handlers are `async fn`s taking `&mut self`, the
//! [`EventContext`] and, optionally, a typed payload; they return `()`, client events, or a
//! `Result` of either. Fields marked `#[serde(skip)]` are transient: never shipped to the
//! client nor stored by a state manager.
//!
//! ```
//! use ferrule::{ClientEvent, EventContext, Handlers, State};
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

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Map, Value};

use crate::Error;
use crate::auth::guard::Guard;
use crate::context::EventContext;
use crate::protocol::{ClientEvent, state_name_of};
use crate::settings::Tier;

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
    fn into_events(self) -> Result<Vec<ClientEvent>, Error>;
}

impl IntoEvents for () {
    fn into_events(self) -> Result<Vec<ClientEvent>, Error> {
        Ok(Vec::new())
    }
}

impl IntoEvents for ClientEvent {
    fn into_events(self) -> Result<Vec<ClientEvent>, Error> {
        Ok(vec![self])
    }
}

impl IntoEvents for Vec<ClientEvent> {
    fn into_events(self) -> Result<Vec<ClientEvent>, Error> {
        Ok(self)
    }
}

impl IntoEvents for Option<ClientEvent> {
    fn into_events(self) -> Result<Vec<ClientEvent>, Error> {
        Ok(self.into_iter().collect())
    }
}

impl<T: IntoEvents, E: Into<Error>> IntoEvents for Result<T, E> {
    fn into_events(self) -> Result<Vec<ClientEvent>, Error> {
        self.map_err(Into::into)?.into_events()
    }
}

/// `async fn(&mut S, EventContext) -> R`, with the future's lifetime tied to the borrow.
#[doc(hidden)]
pub trait AsyncHandler0<'a, S: 'a>: Send + Sync + 'static {
    type Output;
    type Fut: Future<Output = Self::Output> + Send + 'a;
    fn invoke(&self, state: &'a mut S, ctx: EventContext) -> Self::Fut;
}

impl<'a, S: 'a, F, Fut> AsyncHandler0<'a, S> for F
where
    F: Fn(&'a mut S, EventContext) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'a,
{
    type Output = Fut::Output;
    type Fut = Fut;
    fn invoke(&self, state: &'a mut S, ctx: EventContext) -> Fut {
        self(state, ctx)
    }
}

/// `async fn(&mut S, EventContext, P) -> R`.
#[doc(hidden)]
pub trait AsyncHandler1<'a, S: 'a, P>: Send + Sync + 'static {
    type Output;
    type Fut: Future<Output = Self::Output> + Send + 'a;
    fn invoke(&self, state: &'a mut S, ctx: EventContext, payload: P) -> Self::Fut;
}

impl<'a, S: 'a, P, F, Fut> AsyncHandler1<'a, S, P> for F
where
    F: Fn(&'a mut S, EventContext, P) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'a,
{
    type Output = Fut::Output;
    type Fut = Fut;
    fn invoke(&self, state: &'a mut S, ctx: EventContext, payload: P) -> Fut {
        self(state, ctx, payload)
    }
}

/// An event handler of state `S`; implemented for `async fn`s of the two shapes above.
/// `M` only tells the shapes apart.
pub trait Handler<S, M>: Send + Sync + 'static {
    /// The payload type; handlers without one ignore any payload.
    type Payload: DeserializeOwned + Send + 'static;
    /// Runs the handler.
    fn call<'a>(
        &'a self,
        state: &'a mut S,
        ctx: EventContext,
        payload: Self::Payload,
    ) -> BoxFuture<'a, Result<Vec<ClientEvent>, Error>>;
}

#[doc(hidden)]
pub struct NoPayload<R>(PhantomData<fn() -> R>);
#[doc(hidden)]
pub struct WithPayload<P, R>(PhantomData<fn() -> (P, R)>);

impl<S, F, R> Handler<S, NoPayload<R>> for F
where
    S: Send + 'static,
    F: for<'a> AsyncHandler0<'a, S, Output = R>,
    R: IntoEvents + 'static,
{
    type Payload = IgnoredAny;
    fn call<'a>(
        &'a self,
        state: &'a mut S,
        ctx: EventContext,
        _: IgnoredAny,
    ) -> BoxFuture<'a, Result<Vec<ClientEvent>, Error>> {
        let fut = self.invoke(state, ctx);
        Box::pin(async move { fut.await.into_events() })
    }
}

impl<S, F, P, R> Handler<S, WithPayload<P, R>> for F
where
    S: Send + 'static,
    P: DeserializeOwned + Send + 'static,
    F: for<'a> AsyncHandler1<'a, S, P, Output = R>,
    R: IntoEvents + 'static,
{
    type Payload = P;
    fn call<'a>(
        &'a self,
        state: &'a mut S,
        ctx: EventContext,
        payload: P,
    ) -> BoxFuture<'a, Result<Vec<ClientEvent>, Error>> {
        let fut = self.invoke(state, ctx, payload);
        Box::pin(async move { fut.await.into_events() })
    }
}

/// A state held without its type.
pub(crate) trait AnyState: Send + Sync + 'static {
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn clone_box(&self) -> Box<dyn AnyState>;
    fn to_json(&self) -> Result<Value, serde_json::Error>;
}

impl<S: State> AnyState for S {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn AnyState> {
        Box::new(self.clone())
    }
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// How a handler run ended.
pub(crate) enum RunOutcome {
    /// It returned; the state is the one to commit on success.
    Returned(Box<dyn AnyState>, Result<Vec<ClientEvent>, Error>),
    /// It panicked with this message; the working copy is gone.
    Panicked(String),
}

/// A handler call with its payload already decoded, waiting for a state and a context.
pub(crate) type PreparedCall =
    Box<dyn FnOnce(Box<dyn AnyState>, EventContext) -> BoxFuture<'static, RunOutcome> + Send>;

pub(crate) trait ErasedHandler: Send + Sync + 'static {
    /// Decodes `payload`; the error names the field that is wrong.
    fn prepare(self: Arc<Self>, payload: Value) -> Result<PreparedCall, String>;
}

struct Typed<S, M, H> {
    handler: H,
    _marker: PhantomData<fn() -> (S, M)>,
}

/// Decodes a handler's payload; the error names the field that is wrong.
pub(crate) fn decode_payload<P: DeserializeOwned>(payload: Value) -> Result<P, String> {
    serde_path_to_error::deserialize(payload).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("field `{path}`: {}", e.inner())
        }
    })
}

impl<S: State, M: 'static, H: Handler<S, M>> ErasedHandler for Typed<S, M, H> {
    fn prepare(self: Arc<Self>, payload: Value) -> Result<PreparedCall, String> {
        let payload: H::Payload = decode_payload(payload)?;
        Ok(Box::new(
            move |mut state: Box<dyn AnyState>, ctx: EventContext| {
                Box::pin(async move {
                    let run = AssertUnwindSafe(async {
                        let typed = state
                            .as_any_mut()
                            .downcast_mut::<S>()
                            .expect("a handler is only ever given its own state type");
                        self.handler.call(typed, ctx, payload).await
                    })
                    .catch_unwind()
                    .await;
                    match run {
                        Ok(result) => RunOutcome::Returned(state, result),
                        Err(panic) => RunOutcome::Panicked(panic_message(&panic)),
                    }
                }) as BoxFuture<'static, RunOutcome>
            },
        ))
    }
}

/// The message a panic was raised with, for the log.
pub(crate) fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
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
        self.map.insert(
            name.to_owned(),
            Arc::new(Typed::<S, M, H> {
                handler,
                _marker: PhantomData,
            }),
        );
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

    /// Registers a background handler: `async fn(Background<Self>, P) -> R`. The event is
    /// answered at once; the work goes on detached, pushing updates with `bg.update(..)`.
    pub fn background<P, F, Fut, R>(&mut self, name: &str, f: F) -> &mut Self
    where
        P: DeserializeOwned + Send + 'static,
        F: Fn(crate::background::Background<S>, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoEvents + 'static,
    {
        self.map.insert(
            name.to_owned(),
            Arc::new(crate::background::BackgroundTyped::<S, P, F>::new(f)),
        );
        self.last = Some(name.to_owned());
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

/// One state of one client: the live value and its JSON as last shipped.
pub(crate) struct Slot {
    pub(crate) state: Box<dyn AnyState>,
    pub(crate) json: Value,
}

/// Where a tab's rooms are kept among its states; not a state name (those never start with `_`).
const ROOMS_KEY: &str = "_rooms";

/// Where a tab's delivery records are kept (see [`Delivered`]); not a state name either.
const DELIVERED_KEY: &str = "_delivered";
/// How many page loads of one tab keep their record; older ones cannot reconnect anyway.
const EPOCHS_KEPT: usize = 16;

/// What the server remembers of the events one page load (epoch) of a tab sent, so that an
/// event sent again after a reconnect gets the answer it had instead of running twice.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Delivered {
    epoch: String,
    /// The highest event id handled (committed, refused or failed).
    last: u64,
    /// The client events of the latest answers that had any (a failure's toast, a redirect),
    /// oldest first; a client never has more than a window of events to send again.
    replies: Vec<(u64, Vec<ClientEvent>)>,
}

/// Every state of one client token. Managers store it; the bridge reads and writes it.
#[derive(Default)]
pub struct TokenStates {
    live: HashMap<String, Slot>,
    stored: Map<String, Value>,
    /// Parsed once per lock, not once per look-up: it is read and written on every event.
    delivered: Vec<Delivered>,
}

impl TokenStates {
    /// Rebuilds the states of a token from what [`TokenStates::to_json`] produced.
    pub fn from_json(mut stored: Map<String, Value>) -> Self {
        let delivered = stored
            .remove(DELIVERED_KEY)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        Self {
            live: HashMap::new(),
            stored,
            delivered,
        }
    }

    /// The rooms the tab is in (kept with its states, so they follow it to other nodes).
    pub(crate) fn rooms(&self) -> Vec<String> {
        self.stored
            .get(ROOMS_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// Records the tab's rooms.
    pub(crate) fn set_rooms(&mut self, rooms: Vec<String>) {
        if rooms.is_empty() {
            self.stored.remove(ROOMS_KEY);
        } else {
            self.stored.insert(ROOMS_KEY.to_owned(), Value::from(rooms));
        }
    }

    /// If event `id` of page load `epoch` was handled before, the client events its answer
    /// carried (none for a plain success); `None` when it is new.
    pub(crate) fn answered_before(&self, epoch: &str, id: u64) -> Option<Vec<ClientEvent>> {
        let record = self.delivered.iter().find(|d| d.epoch == epoch)?;
        if id > record.last {
            return None;
        }
        let replay = record
            .replies
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, events)| events.clone())
            .unwrap_or_default();
        Some(replay)
    }

    /// Records that event `id` of page load `epoch` was handled and answered with `events`.
    /// Kept with the states, so a tab that reconnects to another node is answered alike.
    pub(crate) fn record_answer(&mut self, epoch: &str, id: u64, events: &[ClientEvent]) {
        let mut record = self
            .delivered
            .iter()
            .position(|d| d.epoch == epoch)
            .map(|i| self.delivered.remove(i))
            .unwrap_or_else(|| Delivered {
                epoch: epoch.to_owned(),
                ..Delivered::default()
            });
        record.last = record.last.max(id);
        if !events.is_empty() {
            record.replies.push((id, events.to_vec()));
            let excess = record
                .replies
                .len()
                .saturating_sub(crate::protocol::EVENT_WINDOW);
            record.replies.drain(..excess);
        }
        self.delivered.push(record);
        let excess = self.delivered.len().saturating_sub(EPOCHS_KEPT);
        self.delivered.drain(..excess);
    }

    /// Forgets every state, room and delivery record of the tab (its logout).
    pub(crate) fn clear(&mut self) {
        self.live.clear();
        self.stored.clear();
        self.delivered.clear();
    }

    /// Every state as JSON (transient fields are absent), for managers that store bytes.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut out = self.stored.clone();
        if !self.delivered.is_empty()
            && let Ok(value) = serde_json::to_value(&self.delivered)
        {
            out.insert(DELIVERED_KEY.to_owned(), value);
        }
        for (name, slot) in &self.live {
            out.insert(name.clone(), slot.json.clone());
        }
        out
    }

    /// The slot of `entry`'s state, made from the stored JSON or the default.
    pub(crate) fn slot(&mut self, entry: &StateEntry) -> Result<&mut Slot, Error> {
        if !self.live.contains_key(&entry.name) {
            let state = match self.stored.remove(&entry.name) {
                Some(json) => (entry.from_json)(json).unwrap_or_else(|e| {
                    tracing::warn!(state = %entry.name, error = %e, "stored state no longer fits its type; starting from the default");
                    (entry.make_default)()
                }),
                None => (entry.make_default)(),
            };
            let json = state.to_json()?;
            self.live.insert(entry.name.clone(), Slot { state, json });
        }
        Ok(self.live.get_mut(&entry.name).expect("inserted above"))
    }
}

/// The fields of `new` that differ from `old` (both JSON objects).
pub(crate) fn delta(old: &Value, new: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return out;
    };
    for (k, v) in new {
        if old.get(k) != Some(v) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Exclusive access to one token's states, held while one event of that token runs.
pub trait StateLock: Send {
    /// The token's states.
    fn states(&mut self) -> &mut TokenStates;
    /// Stores the states (where the manager stores anything) and lets the next event in.
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>>;
}

/// Where states live between events: in memory (default) or, for several processes, Redis.
///
/// `lock` is how events of one token stay in order: the bridge holds the lock from before the
/// middleware chain until the delta is computed.
#[async_trait::async_trait]
pub trait StateManager: Send + Sync + 'static {
    /// Waits for and takes the lock on `token`'s states.
    async fn lock(&self, token: &str) -> Result<Box<dyn StateLock>, Error>;

    /// Checks that the store outside this process (Redis) answers, for the readiness check;
    /// `None` for a manager that keeps states in memory.
    async fn ping(&self) -> Option<Result<(), Error>> {
        None
    }
}

struct MemoryEntry {
    states: Arc<tokio::sync::Mutex<TokenStates>>,
    last_used: Instant,
}

/// Keeps states in this process's memory; tokens idle for longer than the TTL are dropped.
pub struct MemoryStateManager {
    tokens: StdMutex<HashMap<String, MemoryEntry>>,
    ttl: Duration,
}

impl Default for MemoryStateManager {
    fn default() -> Self {
        Self::new(Duration::from_secs(24 * 3600))
    }
}

impl MemoryStateManager {
    /// A manager that forgets a token after `ttl` without events.
    pub fn new(ttl: Duration) -> Self {
        Self {
            tokens: StdMutex::new(HashMap::new()),
            ttl,
        }
    }

    /// Drops tokens idle for longer than the TTL; returns how many went.
    pub fn sweep(&self) -> usize {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let before = tokens.len();
        let ttl = self.ttl;
        tokens.retain(|_, e| Arc::strong_count(&e.states) > 1 || e.last_used.elapsed() < ttl);
        before - tokens.len()
    }

    /// Number of tokens held.
    pub fn len(&self) -> usize {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct MemoryLock(tokio::sync::OwnedMutexGuard<TokenStates>);

impl StateLock for MemoryLock {
    fn states(&mut self) -> &mut TokenStates {
        &mut self.0
    }
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        drop(self);
        Box::pin(async { Ok(()) })
    }
}

#[async_trait::async_trait]
impl StateManager for MemoryStateManager {
    async fn lock(&self, token: &str) -> Result<Box<dyn StateLock>, Error> {
        let states = {
            let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            let entry = tokens
                .entry(token.to_owned())
                .or_insert_with(|| MemoryEntry {
                    states: Arc::default(),
                    last_used: Instant::now(),
                });
            entry.last_used = Instant::now();
            entry.states.clone()
        };
        Ok(Box::new(MemoryLock(states.lock_owned().await)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

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
        async fn add(&mut self, _: EventContext, p: Amount) -> Result<ClientEvent, Error> {
            self.a += p.amount;
            Ok(ClientEvent::redirect("/done"))
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
        let refused = ClientEvent::error("nope");
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
