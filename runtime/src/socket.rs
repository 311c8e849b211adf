//! The socketioxide side of `/_event`: connect with a tab token, queue each socket's events in
//! arrival order, and run them through the [`EventBridge`](crate::bridge::EventBridge) one at a
//! time.
//!
//! socketioxide spawns a task per message for ordinary handlers, which can reorder them. Our
//! [`EventSink`] implements its `MessageHandler` directly: `call` runs synchronously in packet
//! order and only enqueues, and one worker task per socket drains the queue.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::{FromMessageParts, MessageHandler};
use socketioxide::socket::Socket;
use tokio::sync::mpsc;

use crate::bridge::{EventBridge, SocketInfo, resolve_client, strip_upgrade_headers};
use crate::protocol::{ClientEvent, EVENT, StateUpdate};
use crate::settings::IpNet;

/// The room every socket of one tab is in, for pushes (uploads, background handlers).
pub(crate) fn tab_room(token: &str) -> String {
    format!("tab:{token}")
}

/// Events a socket may have queued before new ones are refused.
const QUEUE: usize = 256;

/// What the worker of one socket receives.
enum Job<A: Adapter> {
    /// An event, with the ack to answer when the client asked for one.
    Event(Value, Option<AckSender<A>>),
    Stop,
}

/// Shared by every socket: the bridge and the proxies to trust.
pub(crate) struct SocketEnv {
    pub(crate) bridge: Arc<EventBridge>,
    pub(crate) trusted: Vec<IpNet>,
}

/// Which origins may open the socket.
#[derive(Clone, Debug)]
pub(crate) struct OriginPolicy {
    /// Explicitly allowed origins (`scheme://host[:port]`); empty means same origin only.
    pub(crate) allowed: Arc<[String]>,
}

impl OriginPolicy {
    /// Checks the handshake. No `Origin` header (not a browser) passes: the check exists to stop
    /// other sites' pages from using a visitor's cookies (cross-site WebSocket hijacking).
    pub(crate) fn check(&self, headers: &http::HeaderMap) -> Result<(), ConnectRefused> {
        let Some(origin) = headers.get(http::header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
        if self
            .allowed
            .iter()
            .any(|a| a.trim_end_matches('/') == origin)
        {
            return Ok(());
        }
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
        if self.allowed.is_empty() && !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
            return Ok(());
        }
        Err(ConnectRefused(format!(
            "origin `{origin}` may not open this socket (allowed_origins setting)"
        )))
    }
}

/// The auth object of the Socket.IO CONNECT packet.
#[derive(serde::Deserialize)]
pub(crate) struct Auth {
    token: String,
}

/// Why a connection was refused; the message goes to the client as `connect_error`.
#[derive(Debug)]
pub(crate) struct ConnectRefused(String);

impl std::fmt::Display for ConnectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectRefused {}

/// Checks the tab token: 1 to 128 characters of `[A-Za-z0-9_-]`.
pub(crate) fn valid_token(token: &str) -> bool {
    (1..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks the handshake and wires the socket, as socketioxide connect middleware.
///
/// This runs *before* socketioxide answers the CONNECT packet. Wiring in the connect handler
/// instead (which runs after the answer, in a task of its own) leaves a window in which a
/// client's first event finds no handler and is silently dropped.
pub(crate) fn connect_middleware<A: Adapter>(
    env: Arc<SocketEnv>,
) -> impl FnOnce(SocketRef<A>, TryData<Auth>) -> std::future::Ready<Result<(), ConnectRefused>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |s: SocketRef<A>, TryData(auth): TryData<Auth>| {
        std::future::ready(check_auth(&s, auth).map(|token| on_connect(env, s, token)))
    }
}

/// Reads the token from the CONNECT auth, refusing the connection without a valid one.
fn check_auth<A: Adapter>(
    s: &SocketRef<A>,
    auth: Result<Auth, socketioxide::ParserError>,
) -> Result<String, ConnectRefused> {
    if let Some(policy) = s.req_parts().extensions.get::<OriginPolicy>() {
        policy.check(&s.req_parts().headers)?;
    }
    match auth {
        Ok(Auth { token }) if valid_token(&token) => Ok(token),
        Ok(_) => Err(ConnectRefused(
            "invalid token: expected 1 to 128 characters of A-Z, a-z, 0-9, - and _".into(),
        )),
        Err(_) => Err(ConnectRefused(
            "missing auth: connect with {\"token\": \"<tab token>\"}".into(),
        )),
    }
}

/// Wires a socket: its info, its queue, its worker.
fn on_connect<A: Adapter>(env: Arc<SocketEnv>, s: SocketRef<A>, token: String) {
    let parts = s.req_parts();
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let mut headers = parts.headers.clone();
    strip_upgrade_headers(&mut headers);
    let info = SocketInfo {
        client: resolve_client(peer.map(|p| p.ip()), &headers, &env.trusted),
        token,
        headers,
        peer,
    };
    s.join(tab_room(&info.token));
    let (tx, rx) = mpsc::channel(QUEUE);
    s.on(EVENT, EventSink { tx: tx.clone() });
    s.on_fallback(
        async |s: SocketRef<A>,
               socketioxide::extract::Event(name): socketioxide::extract::Event| {
            let mut u = StateUpdate::final_for(None);
            u.events.push(ClientEvent::error(format!(
                "unknown socket event `{name}`: send events as `{EVENT}`"
            )));
            let _ = s.emit(EVENT, &u);
        },
    );
    s.on_disconnect(async move || {
        let _ = tx.send(Job::Stop).await;
    });
    tokio::spawn(worker(env.bridge.clone(), info, s, rx));
}

async fn worker<A: Adapter>(
    bridge: Arc<EventBridge>,
    mut info: SocketInfo,
    s: SocketRef<A>,
    mut rx: mpsc::Receiver<Job<A>>,
) {
    while let Some(job) = rx.recv().await {
        let Job::Event(raw, ack) = job else { break };
        let update = bridge.handle_counted(&mut info, raw).await;
        // A client that asked for an ack (socket.io's `emitWithAck`) gets the final update as
        // the ack's argument instead of an `event` packet.
        let sent = match ack {
            Some(ack) => ack.send(&update),
            None => s.emit(EVENT, &update),
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "could not send an update; the socket is gone");
        }
    }
}

/// socketioxide message handler that enqueues `event` messages in arrival order.
pub(crate) struct EventSink<A: Adapter> {
    tx: mpsc::Sender<Job<A>>,
}

/// Marker for our `MessageHandler` impl.
pub(crate) struct SinkMarker;

impl<A: Adapter> MessageHandler<A, SinkMarker> for EventSink<A> {
    fn call(&self, s: Arc<Socket<A>>, mut v: socketioxide_core::Value, ack_id: Option<i64>) {
        let ack = ack_id.map(
            |_| match AckSender::from_message_parts(&s, &mut v, &ack_id) {
                Ok(ack) => ack,
                Err(never) => match never {},
            },
        );
        let raw = match TryData::<Value>::from_message_parts(&s, &mut v, &ack_id) {
            Ok(TryData(Ok(raw))) => raw,
            Ok(TryData(Err(e))) => {
                reply_error(&s, ack, format!("malformed event: {e}"));
                return;
            }
            Err(never) => match never {},
        };
        if let Err(mpsc::error::TrySendError::Full(Job::Event(_, ack))) =
            self.tx.try_send(Job::Event(raw, ack))
        {
            reply_error(
                &s,
                ack,
                format!("too many events in flight (more than {QUEUE}); slow down"),
            );
        }
    }
}

fn reply_error<A: Adapter>(s: &Arc<Socket<A>>, ack: Option<AckSender<A>>, message: String) {
    let mut u = StateUpdate::final_for(None);
    u.events.push(ClientEvent::error(message));
    let _ = match ack {
        Some(ack) => ack.send(&u),
        None => s.emit(EVENT, &u),
    };
}
