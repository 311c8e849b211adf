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

mod rendered;

use crate::client::{StateStore, Status};
use crate::protocol::{Action, ClientCommand, StateName, StateUpdate, ToastLevel};

type Refresher = Arc<dyn Fn(&StateStore) + Send + Sync>;
type EventHook = Arc<dyn Fn(&Value) + Send + Sync>;
type Navigate = Arc<dyn Fn(&str, bool) + Send + Sync>;

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
    navigate: StoredValue<Option<Navigate>>,
    status: RwSignal<Status>,
    toasts: RwSignal<Vec<Toast>>,
    next_toast: StoredValue<u64>,
}

/// The Leptos `<Router>` with Ferrule set up inside it, around `children` (the app's layout and
/// routes): what an app's root component holds, so no app repeats the setup.
#[component]
pub fn FerruleRouter(children: Children) -> impl IntoView {
    view! {
        <leptos_router::components::Router>
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
    view! {
        <script type="application/json" id=rendered::ELEMENT_ID
            inner_html=rendered::script_text(&rendered)></script>
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

    /// Shows a toast; it disappears by itself after a few seconds in the browser.
    pub fn toast(&self, level: ToastLevel, message: impl Into<String>) {
        let id = self.next_toast.get_value();
        self.next_toast.set_value(id + 1);
        self.toasts.update(|t| {
            t.push(Toast {
                id,
                level,
                message: message.into(),
            })
        });
        #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
        {
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

/// The CSRF token for the `csrf_token` field of a plain HTML form: from the request on the server,
/// from the `csrftoken` cookie in the browser (pages reached by client-side navigation render
/// there). Empty when there is none yet.
pub fn csrf_token() -> String {
    #[cfg(feature = "ssr")]
    if let Some(token) = crate::ssr::rendered_csrf_token() {
        return token;
    }
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    if let Some(token) = crate::client::browser::cookie(crate::protocol::CSRF_COOKIE) {
        return token;
    }
    String::new()
}

fn report_error(message: &str) {
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    crate::client::browser::console_error(&format!("ferrule: {message}"));
    #[cfg(not(all(feature = "hydrate", target_arch = "wasm32")))]
    leptos::logging::error!("ferrule: {message}");
}

/// The query parameter `key` of the current page, reactive.
fn query_param(key: &'static str) -> impl Fn() -> Option<String> + Copy + Send + Sync + 'static {
    let query = leptos_router::hooks::use_query_map();
    move || query.with(|q| q.get(key))
}

/// The log-in form: a plain HTML form (it works before the client loads) posting to
/// `/_auth/login` with the CSRF token, which sends the browser on to the page's `?next=` (or `/`)
/// or, on failure, back here with `?error=`, shown above the form in `#form-error`.
#[component]
pub fn LoginForm() -> impl IntoView {
    let next = query_param("next");
    let error = query_param("error");
    view! {
        <p class="form-error" id="form-error">{move || error().unwrap_or_default()}</p>
        <form method="post" action="/_auth/login">
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            <input type="hidden" name="next" value=move || next().unwrap_or_else(|| "/".to_owned())/>
            <label>"Username " <input name="username" autocomplete="username"/></label>
            <label>"Password " <input name="password" type="password" autocomplete="current-password"/></label>
            <button type="submit">"Log in"</button>
        </form>
    }
}

/// The registration form, like [`LoginForm`]: posts to `/_auth/register`, which creates the
/// account and logs it in; a refusal (name taken, password too short) comes back in `#form-error`.
#[component]
pub fn RegisterForm(
    /// Adds an (optional) e-mail field.
    #[prop(optional)]
    email: bool,
) -> impl IntoView {
    let next = query_param("next");
    let error = query_param("error");
    view! {
        <p class="form-error" id="form-error">{move || error().unwrap_or_default()}</p>
        <form method="post" action="/_auth/register">
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            <input type="hidden" name="next" value=move || next().unwrap_or_else(|| "/".to_owned())/>
            <label>"Username " <input name="username" autocomplete="username"/></label>
            {email.then(|| view! {
                <label>"E-mail " <input name="email" type="email" autocomplete="email"/></label>
            })}
            <label>"Password " <input name="password" type="password" autocomplete="new-password"/></label>
            <button type="submit">"Create my account"</button>
        </form>
    }
}

/// The toasts of the page, newest last; put it once in the root component. Each toast has the
/// classes `ferrule-toast ferrule-toast-<level>` and a close button.
#[component]
pub fn Toasts() -> impl IntoView {
    let ferrule = use_ferrule();
    view! {
        <div class="ferrule-toasts" role="status" aria-live="polite">
            <For
                each=move || ferrule.toasts.get()
                key=|t| t.id
                children=move |t: Toast| {
                    let level = format!("{:?}", t.level).to_lowercase();
                    let id = t.id;
                    view! {
                        <div class=format!("ferrule-toast ferrule-toast-{level}") data-level=level>
                            <span class="ferrule-toast-message">{t.message}</span>
                            <button class="ferrule-toast-close" aria-label="Dismiss"
                                on:click=move |_| ferrule.dismiss(id)>"×"</button>
                        </div>
                    }
                }
            />
        </div>
    }
}

/// A small badge showing the connection: `data-status` is `connecting`, `connected` or
/// `reconnecting`, for styling and tests.
#[component]
pub fn ConnectionIndicator() -> impl IntoView {
    let status = use_connection();
    let key = move || match status.get() {
        Status::Connecting => "connecting",
        Status::Connected => "connected",
        Status::Reconnecting { .. } => "reconnecting",
    };
    let label = move || match status.get() {
        Status::Connecting => "Connecting…".to_owned(),
        Status::Connected => "Live".to_owned(),
        Status::Reconnecting { attempt } => format!("Offline, reconnecting (attempt {attempt})"),
    };
    view! { <span class="ferrule-connection" data-status=key>{label}</span> }
}

/// A file input that uploads what the user picks to an upload handler (`Handlers::upload`), with
/// a progress bar. The handler's state update arrives over the socket like any other; a refusal
/// (too large, not allowed) shows as an error toast. `data-state` on the wrapper is `idle`,
/// `uploading`, `done` or `failed`.
#[component]
pub fn FileUpload(
    /// The upload handler's wire name, e.g. `SetAvatar::event_name()`.
    #[prop(into)]
    handler: String,
    /// Form field the files are sent under (default `file`).
    #[prop(optional, into)]
    name: Option<String>,
    /// The input's `accept` filter, e.g. `image/*`.
    #[prop(optional, into)]
    accept: Option<String>,
    /// Allow several files at once.
    #[prop(optional)]
    multiple: bool,
) -> impl IntoView {
    let ferrule = use_ferrule();
    let progress = RwSignal::new(0.0_f64);
    let state = RwSignal::new("idle");
    let on_change = move |ev: leptos::ev::Event| {
        #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
        {
            use crate::client::browser::{UploadEnd, upload};
            use wasm_bindgen::JsCast;
            let Some(input) = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                return;
            };
            progress.set(0.0);
            state.set("uploading");
            let picked = input.clone();
            let result = upload(
                &handler,
                &input,
                move |p| progress.set(p),
                move |end| {
                    match end {
                        UploadEnd::Done => {
                            progress.set(1.0);
                            state.set("done");
                        }
                        UploadEnd::Failed(message) => {
                            state.set("failed");
                            ferrule.toast(ToastLevel::Error, message);
                        }
                    }
                    // So that picking the same file again uploads it again.
                    picked.set_value("");
                },
            );
            if let Err(e) = result {
                state.set("failed");
                ferrule.toast(ToastLevel::Error, e);
            }
        }
        #[cfg(not(all(feature = "hydrate", target_arch = "wasm32")))]
        let _ = (ev, &handler, ferrule);
    };
    view! {
        <span class="ferrule-upload" data-state=move || state.get()>
            <input
                type="file"
                name=name.unwrap_or_else(|| "file".to_owned())
                accept=accept
                multiple=multiple
                on:change=on_change
            />
            <progress
                class="ferrule-upload-progress"
                max="1"
                value=move || progress.get()
                hidden=move || state.get() == "idle"
            ></progress>
        </span>
    }
}
