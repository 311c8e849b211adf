//! Ferrule in Leptos components: reactive states, typed emit, toasts and the connection status.
//!
//! Call [`provide`] once, inside `<Router>`, in the app's root component. Then any component can
//! read a state with [`use_state`] and send handler events with [`use_emit`]:
//!
//! ```ignore
//! #[component]
//! fn Counter() -> impl IntoView {
//!     let counter = ferrule::ui::use_state::<CounterState>();
//!     let count = counter.field(|s| s.count); // re-renders only when `count` changes
//!     let emit = ferrule::ui::use_emit();
//!     view! { <button on:click=move |_| emit.send(Increment)>{count}</button> }
//! }
//! ```
//!
//! On the server (`ssr`) states render with their default values and emitting does nothing; in
//! the browser (`hydrate`) the page connects after hydration, resyncs every state and applies
//! each delta to the signals of the states it names.

use std::collections::HashMap;
use std::sync::Arc;

use leptos::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

// Leptos' `#[component]` writes a hidden inner function with the component's own visibility,
// which the lint cannot see re-exported below.
#[allow(unreachable_pub)]
mod account;
mod embedded;
#[allow(unreachable_pub)]
pub(crate) mod field;
mod flash;
#[allow(unreachable_pub)]
mod language;
mod mount;
mod rendered;
#[allow(unreachable_pub)]
mod widgets;

pub use account::{
    AccountMenu, AccountMenuProps, EmailChangeForm, EmailChangeFormProps, LoginForm,
    LoginFormProps, PasswordResetForm, PasswordResetFormProps, PasswordResetRequestForm,
    PasswordResetRequestFormProps, RegisterForm, RegisterFormProps, csrf_token,
};
pub use field::{Field, FieldProps, FormHandle, use_form};
pub use language::{LanguageSwitcher, LanguageSwitcherProps};
pub use mount::{mount_path, mounted, unmounted};
pub use widgets::{
    ConnectionIndicator, ConnectionIndicatorProps, FileUpload, FileUploadProps, Toasts, ToastsProps,
};

use crate::client::{StateStore, Status};
use crate::protocol::{Action, ClientCommand, StateName, StateUpdate, ToastLevel};

type Refresher = Arc<dyn Fn(&StateStore) + Send + Sync>;
type EventHook = Arc<dyn Fn(&Value) + Send + Sync>;
type Navigate = Arc<dyn Fn(&str, bool) + Send + Sync>;
type AnswerHook = Box<dyn FnOnce(&StateUpdate) + Send + Sync>;

/// One toast on screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    /// Unique per page, for keyed rendering and dismissal.
    pub id: u64,
    /// Severity, also the CSS class `ferrule-toast-<level>`.
    pub level: ToastLevel,
    /// The text shown.
    pub message: String,
}

/// The page's Ferrule runtime, shared through Leptos context ([`provide`], [`use_ferrule`]).
#[derive(Clone, Copy)]
pub struct Ferrule {
    store: StoredValue<StateStore>,
    refreshers: StoredValue<HashMap<String, Vec<Refresher>>>,
    hooks: StoredValue<HashMap<String, Vec<EventHook>>>,
    answers: StoredValue<HashMap<u64, AnswerHook>>,
    navigate: StoredValue<Option<Navigate>>,
    status: RwSignal<Status>,
    toasts: RwSignal<Vec<Toast>>,
    next_toast: StoredValue<u64>,
}

/// The Leptos `<Router>` with Ferrule set up inside it, around `children` (the app's layout and
/// routes): what an app's root component holds, so no app repeats the setup.
#[component]
pub fn FerruleRouter(children: Children) -> impl IntoView {
    // Under a host app's prefix the routes match below it and links resolve into it.
    view! {
        <leptos_router::components::Router base=mount_path()>
            <Provided children/>
        </leptos_router::components::Router>
    }
}

/// Runs [`provide`] inside the router, then renders `children` from the states the server
/// rendered the page with (who is logged in), which the page carries to the browser.
#[component]
fn Provided(children: Children) -> impl IntoView {
    let ferrule = provide();
    let rendered = rendered::rendered_states();
    ferrule.store.update_value(|store| {
        store.apply(&rendered);
    });
    // The session's messages, taken for this page: they stay until dismissed, being why the
    // visitor landed here.
    let flashed = flash::rendered_messages();
    for m in &flashed {
        ferrule.show(m.level, m.text.clone(), false);
    }
    view! {
        <script type="application/json" id=rendered::ELEMENT_ID
            inner_html=rendered::script_text(&rendered)></script>
        {(!flashed.is_empty()).then(|| view! {
            <script type="application/json" id=flash::ELEMENT_ID
                inner_html=flash::script_text(&flashed)></script>
        })}
        {children()}
    }
}

/// Sets up Ferrule for this page, inside `<Router>` (so `_redirect` navigates client-side);
/// [`FerruleRouter`] calls it. In the browser it connects after hydration.
pub fn provide() -> Ferrule {
    let ferrule = Ferrule {
        store: StoredValue::new(StateStore::default()),
        refreshers: StoredValue::new(HashMap::new()),
        hooks: StoredValue::new(HashMap::new()),
        answers: StoredValue::new(HashMap::new()),
        navigate: StoredValue::new(None),
        status: RwSignal::new(Status::Connecting),
        toasts: RwSignal::new(Vec::new()),
        next_toast: StoredValue::new(1),
    };
    provide_context(ferrule);
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    {
        let navigate = leptos_router::hooks::use_navigate();
        ferrule
            .navigate
            .set_value(Some(Arc::new(move |path: &str, replace: bool| {
                navigate(
                    path,
                    leptos_router::NavigateOptions {
                        replace,
                        ..Default::default()
                    },
                )
            })));
        // Effects run only in the browser, after hydration: the page is interactive before the
        // socket is up, and events clicked meanwhile are queued.
        Effect::new(move |_| {
            crate::client::browser::start(crate::client::browser::Callbacks {
                update: Box::new(move |u| ferrule.apply(u)),
                status: Box::new(move |s| ferrule.status.set(s)),
            });
        });
        // A page reached without a page load gets its data from its loaders (the first page's
        // ran before it rendered, and run again with the socket's `_hydrate`).
        let location = leptos_router::hooks::use_location();
        Effect::new(move |shown: Option<(String, String)>| {
            let now = (unmounted(&location.pathname.get()), location.search.get());
            if shown.is_some_and(|before| before != now) {
                // From the router's location: the address bar may not show the new page yet.
                let page = crate::protocol::RouterData {
                    path: now.0.clone(),
                    query: now.1.trim_start_matches('?').to_owned(),
                };
                crate::client::browser::emit_from(
                    crate::protocol::LOAD.to_owned(),
                    serde_json::Value::Null,
                    page,
                );
            }
            now
        });
    }
    ferrule
}

/// The page's runtime; panics with a clear message when [`provide`] was not called.
pub fn use_ferrule() -> Ferrule {
    use_context::<Ferrule>()
        .expect("ferrule::ui::provide() must be called in the app's root component first")
}

/// A state mirrored from the server, as a reactive value.
pub struct StateHandle<S: Send + Sync + 'static> {
    signal: RwSignal<S>,
}

impl<S: Send + Sync + 'static> Clone for StateHandle<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Send + Sync + 'static> Copy for StateHandle<S> {}

impl<S: Clone + Send + Sync + 'static> StateHandle<S> {
    /// The whole state (re-runs the reader on any change of the state).
    pub fn get(&self) -> S {
        self.signal.get()
    }

    /// Reads the state by reference.
    pub fn with<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        self.signal.with(f)
    }

    /// One part of the state as a memo: its readers re-render only when that part changes,
    /// not when a delta touches other fields.
    pub fn field<T>(&self, f: impl Fn(&S) -> T + Send + Sync + 'static) -> Memo<T>
    where
        T: PartialEq + Clone + Send + Sync + 'static,
    {
        let signal = self.signal;
        Memo::new(move |_| signal.with(&f))
    }
}

/// The state `S` of this tab, updated by every delta that names it. Renders `S::default()` on
/// the server and until the first resync. The name is [`StateName::state_name`], the one the
/// server and the actions use.
pub fn use_state<S>() -> StateHandle<S>
where
    S: StateName + Clone + Default + Serialize + DeserializeOwned + Send + Sync,
{
    use_state_named(&S::state_name())
}

/// [`use_state`] for a state known by a wire name only (a state of another crate, say).
pub fn use_state_named<S>(name: &str) -> StateHandle<S>
where
    S: Clone + Default + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let ferrule = use_ferrule();
    let initial = S::default();
    ferrule
        .store
        .update_value(|store| store.register(name, &initial));
    let current = ferrule
        .store
        .with_value(|store| store.decode::<S>(name))
        .unwrap_or(initial);
    let signal = RwSignal::new(current);
    let state_name = name.to_owned();
    let refresh: Refresher =
        Arc::new(
            move |store: &StateStore| match store.decode::<S>(&state_name) {
                Ok(value) => signal.set(value),
                Err(e) => report_error(&e),
            },
        );
    ferrule.refreshers.update_value(|r| {
        r.entry(name.to_owned()).or_default().push(refresh.clone());
    });
    // A component that goes away (a route left) stops listening, so refreshers do not pile up.
    let key = name.to_owned();
    on_cleanup(move || {
        ferrule.refreshers.try_update_value(|r| {
            if let Some(list) = r.get_mut(&key) {
                list.retain(|x| !Arc::ptr_eq(x, &refresh));
            }
        });
    });
    StateHandle { signal }
}

/// Who is logged in (the built-in `auth_state`): the request's user from the server's render on,
/// kept current by the socket.
pub fn use_auth() -> StateHandle<crate::protocol::AuthState> {
    use_state()
}

/// Sends handler events; `Copy`, so event handlers can capture it.
#[derive(Clone, Copy)]
pub struct Emitter {
    _ferrule: Ferrule,
}

impl Emitter {
    /// Emits `action` to its handler; returns the event id (`None` on the server).
    pub fn send<A: Action>(&self, action: A) -> Option<u64> {
        self.send_named(A::event_name(), action.payload())
    }

    /// Emits an event by its wire name, for names known only at run time.
    pub fn send_named(&self, name: String, payload: Value) -> Option<u64> {
        #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
        {
            crate::client::browser::emit(name, payload)
        }
        #[cfg(not(all(feature = "hydrate", target_arch = "wasm32")))]
        {
            let _ = (name, payload);
            None
        }
    }
}

/// The emitter of this page.
pub fn use_emit() -> Emitter {
    Emitter {
        _ferrule: use_ferrule(),
    }
}

/// The connection status, for an indicator.
pub fn use_connection() -> Signal<Status> {
    use_ferrule().status.into()
}

/// The toasts on screen.
pub fn use_toasts() -> Signal<Vec<Toast>> {
    use_ferrule().toasts.into()
}

impl Ferrule {
    /// Runs `hook` for every client event named `name` (app-defined events).
    pub fn on_event(&self, name: &str, hook: impl Fn(&Value) + Send + Sync + 'static) {
        self.hooks.update_value(|h| {
            h.entry(name.to_owned()).or_default().push(Arc::new(hook));
        });
    }

    /// Runs `hook` once, on the final answer to event `id` (what [`FormHandle`] reads its
    /// field messages from).
    pub fn on_answer(&self, id: u64, hook: impl FnOnce(&StateUpdate) + Send + Sync + 'static) {
        self.answers.update_value(|a| {
            a.insert(id, Box::new(hook));
        });
    }

    /// Shows a toast; it disappears by itself after a few seconds in the browser.
    pub fn toast(&self, level: ToastLevel, message: impl Into<String>) {
        self.show(level, message, true);
    }

    /// Shows a toast, which disappears by itself when `expires`, else when dismissed.
    fn show(&self, level: ToastLevel, message: impl Into<String>, expires: bool) {
        let id = self.next_toast.get_value();
        self.next_toast.set_value(id + 1);
        self.toasts.update(|t| {
            t.push(Toast {
                id,
                level,
                message: message.into(),
            })
        });
        #[cfg(not(all(feature = "hydrate", target_arch = "wasm32")))]
        let _ = expires;
        #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
        if expires {
            let toasts = self.toasts;
            crate::client::browser::after(6000, move || {
                toasts.try_update(|t| t.retain(|x| x.id != id));
            });
        }
    }

    /// Removes toast `id` (its close button).
    pub fn dismiss(&self, id: u64) {
        self.toasts.update(|t| t.retain(|x| x.id != id));
    }

    /// Applies one update from the server: the delta to the states, then the client events.
    pub fn apply(&self, update: StateUpdate) {
        let changed = self
            .store
            .try_update_value(|s| s.apply(&update.delta))
            .unwrap_or_default();
        for name in changed {
            let refreshers = self
                .refreshers
                .with_value(|r| r.get(&name).cloned().unwrap_or_default());
            self.store.with_value(|store| {
                for refresh in &refreshers {
                    refresh(store);
                }
            });
        }
        let hook = match update.id {
            Some(id) if update.is_final => self.answers.try_update_value(|a| a.remove(&id)),
            _ => None,
        };
        if let Some(hook) = hook.flatten() {
            hook(&update);
        }
        for event in update.events {
            self.run(event);
        }
    }

    fn run(&self, event: ClientCommand) {
        match event.name.as_str() {
            ClientCommand::REDIRECT => {
                // Only paths of this site: a handler (or a forged answer) cannot send the tab
                // to another site or run `javascript:`.
                let path = event
                    .path()
                    .and_then(crate::protocol::same_site_path)
                    .unwrap_or("/")
                    .to_owned();
                let replace = event
                    .payload
                    .get("replace")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let router = self.navigate.get_value();
                #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
                if router.is_none() {
                    crate::client::browser::assign_location(&path, replace);
                }
                if let Some(nav) = router {
                    nav(&path, replace);
                }
            }
            ClientCommand::TOAST => {
                let level = event.level().unwrap_or(ToastLevel::Info);
                self.toast(level, event.message().unwrap_or_default());
            }
            ClientCommand::ERROR => {
                let message = event.message().unwrap_or("error").to_owned();
                report_error(&message);
                // Users of a development build see what went wrong; release builds only log it.
                if cfg!(debug_assertions) {
                    self.toast(ToastLevel::Error, message);
                }
            }
            ClientCommand::LANGUAGE => {
                #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
                if let Some(language) = event.payload.get("language").and_then(Value::as_str) {
                    crate::client::browser::keep_language(language);
                }
            }
            "_session" => {
                #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
                {
                    let field = |k: &str| {
                        event
                            .payload
                            .get(k)
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    };
                    if let (Some(code), Some(url)) = (field("code"), field("url")) {
                        crate::client::browser::follow_session(url, code);
                    }
                }
            }
            name => {
                let hooks = self
                    .hooks
                    .with_value(|h| h.get(name).cloned().unwrap_or_default());
                for hook in hooks {
                    hook(&event.payload);
                }
            }
        }
    }
}

fn report_error(message: &str) {
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    crate::client::browser::console_error(&format!("ferrule: {message}"));
    #[cfg(not(all(feature = "hydrate", target_arch = "wasm32")))]
    leptos::logging::error!("ferrule: {message}");
}
