//! Wire types shared by the server and the browser client.
//!
//! Nothing here does I/O, so the module compiles for `wasm32-unknown-unknown` as well. The shapes
//! are the wire contract: a client emits one [`Event`] per action and the server answers
//! with [`StateUpdate`]s carrying a delta of the changed fields and [`ClientCommand`]s.

pub mod codec;
mod naming;
mod redirect;

pub use codec::wire_len;
pub use naming::{Action, StateName, state_name_of};
pub use redirect::same_site_path;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Socket.IO event name that carries [`Event`]s to the server and [`StateUpdate`]s back.
pub const EVENT: &str = "event";

/// Engine.IO path of the socket endpoint.
pub const EVENT_PATH: &str = "/_event";

/// Where the client runtime posts uploads (multipart, with the tab token and the CSRF token).
pub const UPLOAD_PATH: &str = "/_upload";

/// Cookie holding the CSRF token that unsafe HTTP requests must repeat (readable by scripts).
pub const CSRF_COOKIE: &str = "csrftoken";

/// Header naming the tab (its token) on HTTP requests of the client runtime: uploads and the
/// session-code exchange.
pub const TOKEN_HEADER: &str = "ferrule-client-token";

/// The `<meta name=…>` the page shell writes when `browser_log` is on: the browser client then
/// logs each event, its answer and its round trip to the console.
pub const BROWSER_LOG_META: &str = "ferrule-browser-log";

/// The `<meta name=…>` the page shell writes when the app is mounted under a prefix (`/app`):
/// the browser client puts it in front of the socket's and uploads' addresses and of the pages'
/// routes.
pub const BASE_META: &str = "ferrule-base";

/// `path`, one of the app's own (`/notes`), as the browser must ask for it when the app is
/// mounted under `base` (`/app/notes`). The home page is the mount point itself (`/app`): axum
/// routes `/app`, not `/app/`, into a router nested at `/app`.
pub fn mounted_path(base: &str, path: &str) -> String {
    match path.strip_prefix('/') {
        Some(rest) if !base.is_empty() && (rest.is_empty() || rest.starts_with(['?', '#'])) => {
            format!("{base}{rest}")
        }
        _ => format!("{base}{path}"),
    }
}

/// `path` as the browser shows it (`/app/notes`) without the prefix `base` the app is mounted
/// under (`/app`): the app's own path (`/notes`), which its routes and page loaders know. A path
/// outside the prefix is returned whole.
pub fn app_path(base: &str, path: &str) -> String {
    match path.strip_prefix(base) {
        Some(rest) if !base.is_empty() && rest.starts_with('/') => rest.to_owned(),
        // The mount point itself, maybe with a query: the home page.
        Some(rest) if !base.is_empty() && (rest.is_empty() || rest.starts_with(['?', '#'])) => {
            format!("/{rest}")
        }
        _ => path.to_owned(),
    }
}

/// Where the browser trades a socket login's or logout's one-time code for its cookie.
pub const SESSION_EXCHANGE_PATH: &str = "/_auth/session";

/// Event name a client sends to receive every state of its token in full; the page loaders of
/// its `router_data` path run first, so the states it gets hold the page's data.
pub const HYDRATE: &str = "_hydrate";

/// Event name a client sends when it moved to another page without a page load (client-side
/// navigation): the server runs the page loaders of its `router_data` path and answers with
/// what they changed.
pub const LOAD: &str = "_load";

/// Event name a client sends when the server told it (`_changed`) that rows of tables it shows
/// changed: its payload's `tables` names them, and the server runs the handlers of the tab's
/// states that declared those tables ([`crate::Registered::on_change`]) and answers with what
/// they changed.
pub const LIVE: &str = "_live";

/// The most tables one `_live` event names; the rest are ignored.
pub const LIVE_TABLES: usize = 64;

/// Socket.IO event name of the server's flow markers: its one argument is a nonce, and the
/// client acks it with that nonce as it reads it, confirming it read every answer before it.
/// The server holds back answers while more than `max_unread_bytes` are unconfirmed.
pub const FLOW: &str = "_flow";

/// How many events a client keeps unanswered on one socket; the server queues more than this
/// per socket, so a client that keeps to it (as ours does, also when it flushes what was
/// clicked offline) is never refused for a full queue.
pub const EVENT_WINDOW: usize = 128;

/// The table names in `payload`'s `tables` field (at most [`LIVE_TABLES`], each once, in
/// order); none when it is missing or not a list of strings.
pub fn tables_of(payload: &Value) -> Vec<String> {
    let mut tables: Vec<String> = Vec::new();
    for name in payload
        .get("tables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if tables.len() == LIVE_TABLES {
            break;
        }
        if !tables.iter().any(|t| t == name) {
            tables.push(name.to_owned());
        }
    }
    tables
}

/// One action of the user, as the client emits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Client-chosen id; the answers to this event carry it back.
    pub id: u64,
    /// `"<state>.<handler>"`, for example `"cart_state.add_item"`.
    pub name: String,
    /// The handler's arguments as one JSON value (an object for typed payloads).
    #[serde(default)]
    pub payload: Value,
    /// The page the event came from.
    #[serde(default)]
    pub router_data: RouterData,
}

impl Event {
    /// Splits [`Event::name`] into state and handler names, `None` when there is no dot.
    pub fn target(&self) -> Option<(&str, &str)> {
        self.name.split_once('.')
    }
}

/// Where the page that sent an event is: its real path and raw query string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterData {
    /// The real path (`/posts/42`), never the route pattern.
    #[serde(default = "root_path")]
    pub path: String,
    /// The raw query string without `?`; repeated keys survive (`tag=a&tag=b`).
    #[serde(default)]
    pub query: String,
}

fn root_path() -> String {
    "/".to_owned()
}

impl Default for RouterData {
    fn default() -> Self {
        Self {
            path: root_path(),
            query: String::new(),
        }
    }
}

/// Changed fields per state name: `{"cart_state": {"items": [..]}}`.
pub type Delta = BTreeMap<String, Map<String, Value>>;

/// What the server sends back for an event (or pushes from a background task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateUpdate {
    /// The id of the event this answers; `None` for pushes not caused by an event.
    pub id: Option<u64>,
    /// Only the fields that changed.
    #[serde(default)]
    pub delta: Delta,
    /// Instructions for the client: redirect, toast, error, or app-defined names.
    #[serde(default)]
    pub events: Vec<ClientCommand>,
    /// `true` on the last update for the event.
    #[serde(rename = "final")]
    pub is_final: bool,
}

impl StateUpdate {
    /// The last update for event `id`, with nothing in it yet.
    pub fn final_for(id: Option<u64>) -> Self {
        Self {
            id,
            delta: Delta::new(),
            events: Vec::new(),
            is_final: true,
        }
    }

    /// The client events named `name`, in order.
    pub fn events_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a ClientCommand> + 'a {
        self.events.iter().filter(move |e| e.name == name)
    }
}

/// An instruction the server sends the client alongside a delta (server → client): a redirect,
/// a toast, an error, or an app-defined name the client's hooks handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientCommand {
    /// `_redirect`, `_toast`, `_error` or an app-defined name.
    pub name: String,
    /// Arguments of the instruction.
    #[serde(default)]
    pub payload: Value,
}

/// The old name of [`ClientCommand`]: it read like an event the client sends.
#[deprecated(
    since = "0.2.0",
    note = "renamed to ClientCommand (an instruction to the client)"
)]
pub type ClientEvent = ClientCommand;

/// Severity of a `_toast`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToastLevel {
    /// Neutral information.
    Info,
    /// Something worked.
    Success,
    /// Something needs attention.
    Warning,
    /// Something failed.
    Error,
}

impl ToastLevel {
    /// Its wire name (`info`, `success`, `warning`, `error`), as serde writes it; the toast's
    /// class and `data-level`. A match rather than `Debug` and `to_lowercase`: those pull
    /// Unicode's case tables (12 KB) into the browser's client.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Success => "success",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// A flash message (`ferrule::messages`): shown once as a toast, kept in the session until then
/// and embedded in the page that shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its severity, the toast's.
    pub level: ToastLevel,
    /// What it says.
    pub text: String,
}

impl Message {
    /// `text` at `level`.
    pub fn new(level: ToastLevel, text: impl Into<String>) -> Self {
        Self {
            level,
            text: text.into(),
        }
    }

    /// The toast that shows it in an event's answer.
    pub fn toast(&self) -> ClientCommand {
        ClientCommand::toast(self.level, self.text.clone())
    }
}

impl ClientCommand {
    /// Name of the redirect instruction.
    pub const REDIRECT: &'static str = "_redirect";
    /// Name of the toast instruction.
    pub const TOAST: &'static str = "_toast";
    /// Name of the protocol-error instruction.
    pub const ERROR: &'static str = "_error";
    /// Name of the instruction that follows the error toast of a refused form: its payload's
    /// `fields` holds each field's messages (`{"title": ["Required."]}`).
    pub const INVALID: &'static str = "_invalid";
    /// Name of the instruction to fetch the tab's states again (`_hydrate`): it stands in for a
    /// push too large to send as it is.
    pub const RESYNC: &'static str = "_resync";
    /// Name of the notice that rows of tables changed (`_changed`): its payload's `tables` names
    /// them, and the client answers with a `_live` event naming them (one at a time: changes
    /// heard while one is out are named by the next).
    pub const CHANGED: &'static str = "_changed";
    /// Name of the instruction to keep a new language (`_language`): the browser stores its
    /// payload's `language` in the `language` cookie and reloads the page in it.
    pub const LANGUAGE: &'static str = "_language";

    /// An app-defined instruction.
    pub fn new(name: impl Into<String>, payload: Value) -> Self {
        Self {
            name: name.into(),
            payload,
        }
    }

    /// Fetch the tab's states again.
    pub fn resync() -> Self {
        Self::new(Self::RESYNC, Value::Object(Map::new()))
    }

    /// Rows of `tables` changed: reload what shows them.
    pub fn changed(tables: &[String]) -> Self {
        Self::new(Self::CHANGED, serde_json::json!({ "tables": tables }))
    }

    /// The `tables` field of a `_changed` payload (or a `_live` event's).
    pub fn tables(&self) -> Vec<String> {
        tables_of(&self.payload)
    }

    /// Navigate the client to `path`, adding a history entry.
    pub fn redirect(path: impl Into<String>) -> Self {
        Self::redirect_with(path, false)
    }

    /// Navigate the client to `path`; `replace` swaps the current history entry.
    pub fn redirect_with(path: impl Into<String>, replace: bool) -> Self {
        Self::new(
            Self::REDIRECT,
            serde_json::json!({ "path": path.into(), "replace": replace }),
        )
    }

    /// Keep `language` (a tag of the app's `languages`) in the browser and reload the page in it.
    pub fn language(language: impl Into<String>) -> Self {
        Self::new(
            Self::LANGUAGE,
            serde_json::json!({ "language": language.into() }),
        )
    }

    /// Show `message` to the user at `level`.
    pub fn toast(level: ToastLevel, message: impl Into<String>) -> Self {
        Self::new(
            Self::TOAST,
            serde_json::json!({ "level": level, "message": message.into() }),
        )
    }

    /// A protocol error: the event could not be understood or routed.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(
            Self::ERROR,
            serde_json::json!({ "message": message.into() }),
        )
    }

    /// The `message` field of a toast or error payload.
    pub fn message(&self) -> Option<&str> {
        self.payload.get("message").and_then(Value::as_str)
    }

    /// The `path` field of a redirect payload.
    pub fn path(&self) -> Option<&str> {
        self.payload.get("path").and_then(Value::as_str)
    }

    /// The `level` field of a toast payload.
    pub fn level(&self) -> Option<ToastLevel> {
        serde_json::from_value(self.payload.get("level")?.clone()).ok()
    }
}

/// The built-in state every client has when auth is on (`auth_state`): who is logged in, as the
/// page shows it. The server keeps it equal to the event's user; pages read it with
/// `ferrule::ui::use_auth()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    /// Whether a user is logged in.
    pub is_authenticated: bool,
    /// The username, empty when anonymous.
    pub username: String,
    /// The e-mail, if any.
    pub email: Option<String>,
    /// Staff flag.
    pub is_staff: bool,
    /// Superuser flag.
    pub is_superuser: bool,
    /// Group names, sorted.
    pub groups: Vec<String>,
}

impl StateName for AuthState {
    const NAME: Option<&'static str> = Some("auth_state");
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    #[test]
    fn a_path_leaves_with_the_mount_prefix_and_home_is_the_mount_point() {
        assert_eq!(mounted_path("", "/"), "/", "at the root nothing moves");
        assert_eq!(mounted_path("", "/notes?a=1"), "/notes?a=1");
        assert_eq!(mounted_path("/app", "/notes"), "/app/notes");
        assert_eq!(mounted_path("/app", "/"), "/app");
        assert_eq!(mounted_path("/app", "/?next=%2F"), "/app?next=%2F");
        for path in ["/", "/notes", "/?next=%2F", "/a/b?c#d"] {
            assert_eq!(
                app_path("/app", &mounted_path("/app", path)),
                path,
                "there and back"
            );
        }
    }

    #[test]
    fn the_apps_own_path_is_what_follows_the_mount_prefix() {
        assert_eq!(app_path("", "/notes"), "/notes", "at the root");
        assert_eq!(app_path("/app", "/app/notes"), "/notes");
        assert_eq!(
            app_path("/app", "/app"),
            "/",
            "the mount point is the home page"
        );
        assert_eq!(app_path("/app", "/app/"), "/");
        assert_eq!(app_path("/app", "/app?next=%2F"), "/?next=%2F");
        assert_eq!(
            app_path("/app", "/apple"),
            "/apple",
            "a longer name is not inside"
        );
        assert_eq!(app_path("/app", "/other"), "/other");
    }

    #[test]
    fn event_parses_the_documented_shape() {
        let e: Event = serde_json::from_value(json!({
            "id": 7, "name": "cart_state.add_item", "payload": {"product_id": 3},
            "router_data": {"path": "/posts/42", "query": "tag=a&tag=b"}
        }))
        .unwrap();
        assert_eq!(e.target(), Some(("cart_state", "add_item")));
        assert_eq!(e.router_data.query, "tag=a&tag=b");
    }

    #[test]
    fn event_defaults_router_data_and_payload() {
        let e: Event = serde_json::from_value(json!({"id": 1, "name": "a.b"})).unwrap();
        assert_eq!(e.router_data.path, "/");
        assert_eq!(e.payload, Value::Null);
    }

    #[test]
    fn event_rejects_unknown_keys() {
        let r: Result<Event, _> = serde_json::from_value(json!({"id": 1, "name": "a.b", "x": 1}));
        assert!(r.unwrap_err().to_string().contains("unknown field `x`"));
    }

    #[test]
    fn state_update_serializes_final_key() {
        let mut u = StateUpdate::final_for(Some(3));
        u.delta
            .entry("counter_state".into())
            .or_default()
            .insert("count".into(), json!(1));
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            json!({"id": 3, "delta": {"counter_state": {"count": 1}}, "events": [], "final": true})
        );
    }

    #[test]
    fn client_events_have_documented_payloads() {
        assert_eq!(
            serde_json::to_value(ClientCommand::redirect("/login")).unwrap(),
            json!({"name": "_redirect", "payload": {"path": "/login", "replace": false}})
        );
        let t = ClientCommand::toast(ToastLevel::Error, "Account suspended.");
        assert_eq!(
            t.payload,
            json!({"level": "error", "message": "Account suspended."})
        );
        assert_eq!(t.level(), Some(ToastLevel::Error));
    }

    #[test]
    fn a_toast_levels_name_is_its_wire_name() {
        use ToastLevel::*;
        for level in [Info, Success, Warning, Error] {
            assert_eq!(serde_json::to_value(level).unwrap(), json!(level.as_str()));
        }
    }
}
