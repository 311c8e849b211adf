//! The connection in the browser: a `web_sys::WebSocket` driving [`Connection`], timers for
//! reconnects and the heartbeat, and the tab token in `sessionStorage`.
//!
//! wasm is single-threaded, so the one client of a page lives in a thread-local.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{BroadcastChannel, CloseEvent, MessageEvent, WebSocket};

use super::connection::{Connection, Output, Status};
use crate::protocol::{EVENT_PATH, RouterData, StateUpdate};

mod log;
mod upload;

use log::BrowserLog;
pub(crate) use upload::{UploadEnd, upload};

const TOKEN_KEY: &str = "ferrule_token";
const TABS_CHANNEL: &str = "ferrule_tabs";
/// How long a tab with a stored token waits to hear whether another live tab holds it.
const DUPLICATE_PROBE_MS: i32 = 100;
const HEARTBEAT_CHECK_MS: i32 = 2000;

/// The channel on which this tab answers "who holds token X?", with its handler.
type TabProbe = (BroadcastChannel, Closure<dyn FnMut(MessageEvent)>);

/// What the client tells the page.
pub(crate) struct Callbacks {
    pub(crate) update: Box<dyn Fn(StateUpdate)>,
    pub(crate) status: Box<dyn Fn(Status)>,
}

struct Inner {
    conn: Connection,
    ws: Option<WebSocket>,
    /// Bumped per socket, so events of a socket already replaced are ignored.
    generation: u64,
    callbacks: Callbacks,
    // Closures must live as long as the JS objects that call them.
    handlers: Vec<Closure<dyn FnMut(web_sys::Event)>>,
    _tabs: Option<TabProbe>,
    _heartbeat: Option<Closure<dyn FnMut()>>,
    /// The dev log of events and answers, when the page asks for it.
    log: Option<BrowserLog>,
}

thread_local! {
    static CLIENT: RefCell<Option<Rc<RefCell<Inner>>>> = const { RefCell::new(None) };
    /// Events emitted before the client started (a click between hydration and the token
    /// decision): handed to the connection's queue when it starts.
    static EARLY: RefCell<Vec<(String, Value, RouterData)>> = const { RefCell::new(Vec::new()) };
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn window() -> web_sys::Window {
    web_sys::window().expect("the Ferrule client runs in a browser window")
}

/// Starts the page's client (once; later calls do nothing).
pub(crate) fn start(callbacks: Callbacks) {
    if CLIENT.with(|c| c.borrow().is_some()) {
        return;
    }
    let stored = session_storage().and_then(|s| s.get_item(TOKEN_KEY).ok().flatten());
    match stored {
        None => begin(new_token(), callbacks),
        Some(token) => {
            // A duplicated tab carries a copy of sessionStorage: ask the other tabs whether one
            // of them is using this token, and take a fresh one if so.
            let answered = Rc::new(RefCell::new(false));
            let probe = BroadcastChannel::new(TABS_CHANNEL).ok();
            let on_answer = {
                let answered = answered.clone();
                let token = token.clone();
                Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                    if e.data().as_string().as_deref() == Some(&format!("a:{token}")) {
                        *answered.borrow_mut() = true;
                    }
                })
            };
            if let Some(ch) = &probe {
                ch.set_onmessage(Some(on_answer.as_ref().unchecked_ref()));
                let _ = ch.post_message(&format!("q:{token}").into());
            }
            let callbacks = RefCell::new(Some(callbacks));
            let decide = Closure::once_into_js(move || {
                if let Some(ch) = probe {
                    ch.set_onmessage(None);
                    ch.close();
                }
                drop(on_answer);
                let token = if *answered.borrow() {
                    new_token()
                } else {
                    token
                };
                if let Some(cb) = callbacks.borrow_mut().take() {
                    begin(token, cb);
                }
            });
            let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(
                decide.unchecked_ref(),
                DUPLICATE_PROBE_MS,
            );
        }
    }
}

fn begin(token: String, callbacks: Callbacks) {
    if let Some(s) = session_storage() {
        let _ = s.set_item(TOKEN_KEY, &token);
    }
    let tabs = answer_tab_probes(token.clone());
    // A new epoch per page load: the server applies each event id of this load once, even
    // when a reconnect sends it again.
    let mut conn = Connection::new(token).with_epoch(random_hex());
    let mut log = BrowserLog::if_asked();
    for (name, payload, router) in EARLY.with(|e| std::mem::take(&mut *e.borrow_mut())) {
        let logged = log.is_some().then(|| name.clone());
        let (id, _) = conn.emit(name, payload, router);
        if let (Some(log), Some(name)) = (&mut log, logged) {
            log.sent(id, &name, now_ms());
        }
    }
    let inner = Rc::new(RefCell::new(Inner {
        conn,
        ws: None,
        generation: 0,
        callbacks,
        handlers: Vec::new(),
        _tabs: tabs,
        _heartbeat: None,
        log,
    }));
    let beat = {
        let inner = Rc::downgrade(&inner);
        Closure::<dyn FnMut()>::new(move || {
            let Some(inner) = inner.upgrade() else { return };
            if !inner.borrow().conn.is_silent(now_ms()) {
                return;
            }
            // A dead connection's close handshake may never finish (no network, a half-open
            // TCP connection), so its `close` event may never come: give it up now and open a
            // new one, which sends again what the dead one had no answer for.
            schedule_reconnect(&inner);
        })
    };
    let _ = window().set_interval_with_callback_and_timeout_and_arguments_0(
        beat.as_ref().unchecked_ref(),
        HEARTBEAT_CHECK_MS,
    );
    inner.borrow_mut()._heartbeat = Some(beat);
    CLIENT.with(|c| *c.borrow_mut() = Some(inner.clone()));
    open(&inner);
}

/// Answers other tabs asking whether this tab holds `token`.
fn answer_tab_probes(token: String) -> Option<TabProbe> {
    let ch = BroadcastChannel::new(TABS_CHANNEL).ok()?;
    let reply = ch.clone();
    let on_query = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        if e.data().as_string().as_deref() == Some(&format!("q:{token}")) {
            let _ = reply.post_message(&format!("a:{token}").into());
        }
    });
    ch.set_onmessage(Some(on_query.as_ref().unchecked_ref()));
    Some((ch, on_query))
}

fn socket_url() -> String {
    let loc = window().location();
    let scheme = if loc.protocol().ok().as_deref() == Some("https:") {
        "wss"
    } else {
        "ws"
    };
    let host = loc.host().unwrap_or_default();
    let base = base();
    format!("{scheme}://{host}{base}{EVENT_PATH}/?EIO=4&transport=websocket")
}

thread_local! {
    static BASE: String = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| {
            d.query_selector(&format!("meta[name=\"{}\"]", crate::protocol::BASE_META))
                .ok()
                .flatten()
        })
        .and_then(|meta| meta.get_attribute("content"))
        .map(|base| base.trim_end_matches('/').to_owned())
        .unwrap_or_default();
}

/// The prefix a host app mounted this one under (`""` at the root), as the page's
/// `<meta name="ferrule-base">` says; read once, as it cannot change without a page load.
pub(crate) fn base() -> String {
    BASE.with(Clone::clone)
}

/// `path` as the browser shows it, without the mount prefix: the app's own path, which the
/// server's routes and page loaders know.
pub(crate) fn unmounted(path: &str) -> String {
    crate::protocol::app_path(&base(), path)
}

/// `path` as the browser must ask for it: one of the app's own (`/…`) with the mount prefix in
/// front; another site's (`//host/…`, `https://…`) as it is.
fn mounted(path: &str) -> String {
    if path.starts_with('/') && !path.starts_with("//") {
        crate::protocol::mounted_path(&base(), path)
    } else {
        path.to_owned()
    }
}

fn open(inner: &Rc<RefCell<Inner>>) {
    let ws = match WebSocket::new(&socket_url()) {
        Ok(ws) => ws,
        Err(_) => {
            schedule_reconnect(inner);
            return;
        }
    };
    let generation = {
        let mut i = inner.borrow_mut();
        i.generation += 1;
        i.handlers.clear();
        i.generation
    };
    let weak = Rc::downgrade(inner);
    let on_open = {
        let weak = weak.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if let Some(inner) = current(&weak, generation) {
                inner.borrow_mut().conn.transport_opened(now_ms());
            }
        })
    };
    let on_message = {
        let weak = weak.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            let Some(inner) = current(&weak, generation) else {
                return;
            };
            let Some(text) = e
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string())
            else {
                return;
            };
            let outputs = {
                let mut inner = inner.borrow_mut();
                // A (re)connect's `_hydrate` names the page shown now.
                inner.conn.set_route(router_data());
                inner.conn.receive(&text, now_ms())
            };
            perform(&inner, outputs);
        })
    };
    let on_close = {
        Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            if let Some(inner) = current(&weak, generation) {
                if let Some(c) = e.dyn_ref::<CloseEvent>() {
                    web_sys::console::debug_1(
                        &format!("ferrule: socket closed ({})", c.code()).into(),
                    );
                }
                schedule_reconnect(&inner);
            }
        })
    };
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let mut i = inner.borrow_mut();
    i.handlers.extend([on_open, on_message, on_close]);
    i.ws = Some(ws);
}

fn current(weak: &std::rc::Weak<RefCell<Inner>>, generation: u64) -> Option<Rc<RefCell<Inner>>> {
    let inner = weak.upgrade()?;
    let live = inner.borrow().generation == generation;
    live.then_some(inner)
}

fn schedule_reconnect(inner: &Rc<RefCell<Inner>>) {
    let (delay, status) = {
        let mut i = inner.borrow_mut();
        if let Some(ws) = i.ws.take() {
            ws.set_onopen(None);
            ws.set_onmessage(None);
            ws.set_onclose(None);
            let _ = ws.close();
        }
        // Socket callbacks of the closed socket are ignored from here on.
        i.generation += 1;
        let delay = i.conn.transport_closed(js_sys::Math::random());
        (delay, i.conn.status())
    };
    (inner.borrow().callbacks.status)(status);
    let weak = Rc::downgrade(inner);
    let retry = Closure::once_into_js(move || {
        if let Some(inner) = weak.upgrade() {
            open(&inner);
        }
    });
    let _ = window()
        .set_timeout_with_callback_and_timeout_and_arguments_0(retry.unchecked_ref(), delay as i32);
}

fn perform(inner: &Rc<RefCell<Inner>>, outputs: Vec<Output>) {
    for out in outputs {
        match out {
            Output::Send(frame) => {
                let ws = inner.borrow().ws.clone();
                if let Some(ws) = ws {
                    let _ = ws.send_with_str(&frame);
                }
            }
            Output::Connected => {
                let status = inner.borrow().conn.status();
                (inner.borrow().callbacks.status)(status);
            }
            Output::Update(update) => {
                if let Some(log) = inner.borrow_mut().log.as_mut() {
                    log.answered(&update, now_ms());
                }
                (inner.borrow().callbacks.update)(update)
            }
            Output::Close(why) => {
                web_sys::console::warn_1(&format!("ferrule: {why}; reconnecting").into());
                schedule_reconnect(inner);
                return;
            }
        }
    }
}

/// Emits an event from the current page; queued while disconnected (or not yet started).
/// Returns its id once the connection has assigned one.
pub(crate) fn emit(name: String, payload: Value) -> Option<u64> {
    emit_from(name, payload, router_data())
}

/// [`emit`] from the page `from`: the router's location, which leads the address bar during a
/// client-side navigation.
pub(crate) fn emit_from(name: String, payload: Value, from: RouterData) -> Option<u64> {
    let Some(inner) = CLIENT.with(|c| c.borrow().clone()) else {
        EARLY.with(|e| e.borrow_mut().push((name, payload, from)));
        return None;
    };
    let logged = inner.borrow().log.is_some().then(|| name.clone());
    let (id, frame) = inner.borrow_mut().conn.emit(name, payload, from);
    if let (Some(log), Some(name)) = (inner.borrow_mut().log.as_mut(), logged) {
        log.sent(id, &name, now_ms());
    }
    if let Some(frame) = frame {
        let ws = inner.borrow().ws.clone();
        if let Some(ws) = ws {
            let _ = ws.send_with_str(&frame);
        }
    }
    Some(id)
}

fn router_data() -> RouterData {
    let loc = window().location();
    RouterData {
        path: unmounted(&loc.pathname().unwrap_or_else(|_| "/".into())),
        query: loc
            .search()
            .unwrap_or_default()
            .trim_start_matches('?')
            .to_owned(),
    }
}

fn session_storage() -> Option<web_sys::Storage> {
    window().session_storage().ok().flatten()
}

/// 128 random bits from the browser's CSPRNG: the token names the tab's states, so it must not
/// be guessable.
fn new_token() -> String {
    random_hex()
}

/// 128 random bits from the browser's CSPRNG, as hex. There is no fallback: a predictable
/// token would name someone else's states, so without `crypto.getRandomValues` the client stops.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    window()
        .crypto()
        .and_then(|crypto| crypto.get_random_values_with_u8_array(&mut bytes))
        .expect("the Ferrule client needs crypto.getRandomValues for its tab token");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

thread_local! {
    /// Codes waiting for their exchange, oldest first, and whether one is under way: a login
    /// and a logout in quick succession must reach the browser's cookie in that order.
    static HANDOVERS: RefCell<(std::collections::VecDeque<(String, String)>, bool)> =
        RefCell::default();
}

/// Sends a login's or logout's one-time code to `url`, which answers with the new session
/// cookie (HttpOnly, so only an HTTP response can set it). The exchange carries the tab token
/// and the CSRF token (the server gives the cookie only to the tab that got the code), and
/// codes are exchanged one at a time, in the order they came.
pub(crate) fn follow_session(url: String, code: String) {
    let start = HANDOVERS.with(|h| {
        let mut h = h.borrow_mut();
        h.0.push_back((url, code));
        !std::mem::replace(&mut h.1, true)
    });
    if !start {
        return;
    }
    wasm_bindgen_futures::spawn_local(async {
        while let Some((url, code)) = HANDOVERS.with(|h| {
            let mut h = h.borrow_mut();
            let next = h.0.pop_front();
            h.1 = next.is_some();
            next
        }) {
            exchange_code(&url, &code).await;
        }
    });
}

async fn exchange_code(url: &str, code: &str) {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    let headers = web_sys::Headers::new().ok();
    if let Some(h) = &headers {
        let _ = h.set("content-type", "application/x-www-form-urlencoded");
        if let Some(tab) = token() {
            let _ = h.set(crate::protocol::TOKEN_HEADER, &tab);
        }
        if let Some(csrf) = cookie(crate::protocol::CSRF_COOKIE) {
            let _ = h.set("x-csrftoken", &csrf);
        }
        init.set_headers(h);
    }
    let body: String = js_sys::encode_uri_component(code).into();
    init.set_body(&format!("code={body}").into());
    // The server names its own path; under a prefix the browser must add it.
    let url = mounted(url);
    let promise = window().fetch_with_str_and_init(&url, &init);
    let ok = match wasm_bindgen_futures::JsFuture::from(promise).await {
        Ok(resp) => resp.dyn_into::<web_sys::Response>().is_ok_and(|r| r.ok()),
        Err(_) => false,
    };
    if !ok {
        web_sys::console::error_1(&"ferrule: could not update the session cookie".into());
    }
}

/// Navigates the whole page (used when the app has no client-side router for the path).
pub(crate) fn assign_location(path: &str, replace: bool) {
    let loc = window().location();
    let path = &mounted(path);
    let _ = if replace {
        loc.replace(path)
    } else {
        loc.assign(path)
    };
}

/// Keeps `language` in the `language` cookie, as `POST /_language` would have, and reloads the
/// page so it renders in it. Only a language tag is kept: a forged answer cannot write other
/// cookies through it.
pub(crate) fn keep_language(language: &str) {
    use crate::i18n::{LANGUAGE_COOKIE, LANGUAGE_COOKIE_MAX_AGE_SECONDS};
    let is_tag = !language.is_empty()
        && language.len() <= 35
        && language
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !is_tag {
        console_error(&format!("ferrule: `{language}` is not a language tag"));
        return;
    }
    let location = window().location();
    let secure = if location.protocol().is_ok_and(|p| p == "https:") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{LANGUAGE_COOKIE}={language}; Path=/; Max-Age={LANGUAGE_COOKIE_MAX_AGE_SECONDS}; SameSite=Lax{secure}"
    );
    let kept = window()
        .document()
        .and_then(|d| d.dyn_into::<web_sys::HtmlDocument>().ok())
        .map(|document| document.set_cookie(&cookie));
    if !matches!(kept, Some(Ok(()))) {
        // A reload would come back in the old language: say why instead.
        console_error(&format!(
            "ferrule: could not keep the language `{language}`"
        ));
        return;
    }
    if let Err(e) = location.reload() {
        console_error(&format!("ferrule: could not reload the page: {e:?}"));
    }
}

/// Runs `f` after `ms` milliseconds.
pub(crate) fn after(ms: i32, f: impl FnOnce() + 'static) {
    let cb = Closure::once_into_js(f);
    let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(cb.unchecked_ref(), ms);
}

/// Logs an error to the browser console.
pub(crate) fn console_error(message: &str) {
    web_sys::console::error_1(&message.into());
}

/// The value of cookie `name` as the page's script sees it (HttpOnly cookies are invisible).
pub(crate) fn cookie(name: &str) -> Option<String> {
    let doc = window()
        .document()?
        .dyn_into::<web_sys::HtmlDocument>()
        .ok()?;
    let all = doc.cookie().ok()?;
    all.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// The tab token in use, once the client started.
pub(crate) fn token() -> Option<String> {
    CLIENT.with(|c| {
        c.borrow()
            .as_ref()
            .map(|i| i.borrow().conn.token().to_owned())
    })
}
