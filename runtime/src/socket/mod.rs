//! The socketioxide side of `/_event`: connect with a tab token (and the page load's epoch),
//! queue each socket's events in arrival order, run them through the
//! [`EventBridge`](crate::bridge::EventBridge) one at a time, and send every event's final answer
//! in that order.
//!
//! socketioxide spawns a task per message for ordinary handlers, which can reorder them. Our
//! [`EventSink`] implements its `MessageHandler` directly: `call` runs synchronously in packet
//! order and only enqueues (or refuses, in line), and one worker task per socket drains the
//! queue. An answer waits for room in the socket's send buffer rather than being dropped, and
//! for the client to confirm it read what came before once `max_unread_bytes` are unconfirmed
//! ([`flow`]).

mod admission;
mod flow;
mod tabs;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::{FromMessageParts, MessageHandler};
use socketioxide::socket::Socket;
use socketioxide::{SendError, SocketError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::bridge::{EventBridge, SocketInfo, event_span};
use crate::in_flight::InFlightGuard;
use crate::metrics::{self, ErrorKind, QUEUED_EVENTS, SOCKETS};
use crate::net::{resolve_client, strip_upgrade_headers};
use crate::protocol::{ClientCommand, EVENT, StateUpdate};
use crate::settings::IpNet;
use crate::tab_binding::{MovedFrom, TabBinding, storage_key};
use admission::check_auth;
pub(crate) use admission::{Auth, ConnectRefused, OriginPolicy, admit_transport};
use flow::{Flow, NoRoom};
pub(crate) use tabs::TabLimits;

/// Events a socket may have queued before new ones are refused. The browser client never has
/// more than [`EVENT_WINDOW`](crate::protocol::EVENT_WINDOW) unanswered, so its flushes are
/// never refused.
pub(crate) const QUEUE: usize = 256;
/// Refusals (an id and an ack each) that may wait behind a full queue. A client past that
/// sends without reading its answers: it is disconnected.
const REFUSALS: usize = 4096;
/// Engine.IO's outgoing buffer per socket, in packets: room for the answers of two full queues
/// and for pushes.
pub(crate) const SEND_BUFFER: usize = 4 * QUEUE;

/// What one socket has waiting in its queue, for admission.
#[derive(Default)]
struct Backlog {
    events: AtomicUsize,
    refusals: AtomicUsize,
}

/// Where an answer goes: an `event` packet on the socket, or the ack the client asked for.
struct Reply<A: Adapter> {
    socket: Arc<Socket<A>>,
    ack_id: Option<i64>,
}

/// What the worker of one socket receives, in the order the client sent it.
enum Job<A: Adapter> {
    /// An accepted event, counted as in flight until it is answered, and as queued until its
    /// worker takes it (or drops it unrun with the queue).
    Event(Value, Reply<A>, InFlightGuard, metrics::Counted),
    /// The final answer of an event that was refused before it was queued.
    Refusal(StateUpdate, Reply<A>),
}

/// A job as the socket's queue carries it: boxed, because tokio's channel allocates its first
/// block of 32 slots when it is made, and with a job of about a hundred bytes in each slot every
/// idle socket would hold 3 KiB for nothing (`cargo xtask bench`: 2.5 KiB less per idle
/// connection boxed).
type Queued<A> = Box<Job<A>>;

/// The size of the last socket task spawned, the memory every socket holds for it while idle:
/// what the test of it reads.
static TASK_BYTES: AtomicUsize = AtomicUsize::new(0);

/// The size of the last event's future, which every event allocates and writes: what the test
/// of it reads.
static EVENT_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Shared by every socket: the bridge, the proxies to trust, and how long an answer may wait
/// for a client that does not read.
pub(crate) struct SocketEnv {
    pub(crate) bridge: Arc<EventBridge>,
    /// The room every socket of this node joins (see `rooms::node_room`).
    pub(crate) node_room: String,
    pub(crate) trusted: Vec<IpNet>,
    pub(crate) patience_ms: u64,
    /// Most answer bytes a client may leave unconfirmed (0: no limit), see [`flow`].
    pub(crate) max_unread_bytes: u64,
    /// Most transports at once from one client address (0: no limit), and how many each has.
    pub(crate) max_per_client: usize,
    /// How many leading bits of an IPv6 address make one client address.
    pub(crate) ipv6_prefix_len: u8,
    /// The tabs with states per session and per address, and their caps.
    pub(crate) tabs: Arc<TabLimits>,
    pub(crate) per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
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
        let checked = if env.bridge.shutdown_token().is_cancelled() {
            Err(ConnectRefused(
                "the server is shutting down; connect again (to another server)".into(),
            ))
        } else {
            check_auth(&s, auth)
        };
        std::future::ready(checked.and_then(|(token, epoch)| on_connect(env, s, token, epoch)))
    }
}

/// Wires a socket: its info, its queue, its worker; refused when its address has too many.
fn on_connect<A: Adapter>(
    env: Arc<SocketEnv>,
    s: SocketRef<A>,
    token: String,
    epoch: Option<String>,
) -> Result<(), ConnectRefused> {
    let parts = s.req_parts();
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let mut headers = parts.headers.clone();
    strip_upgrade_headers(&mut headers);
    let binding = parts.extensions.get::<TabBinding>().cloned();
    let moved_from = parts.extensions.get::<MovedFrom>().map(|m| m.0.clone());
    let info = SocketInfo {
        client: resolve_client(peer.map(|p| p.ip()), &headers, &env.trusted),
        token: storage_key(&token, binding.as_ref()),
        client_token: token,
        binding,
        browser_sessions: Vec::new(),
        epoch,
        left_rooms: None,
        language: None,
        headers,
        peer,
    };
    s.join(info.tab_rooms());
    s.join(env.node_room.clone());
    open_tab(&env, &info);
    // Unbounded in type, bounded by admission: at most QUEUE events and REFUSALS refusals.
    let (tx, rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(Backlog::default());
    let gone = CancellationToken::new();
    s.on(
        EVENT,
        EventSink {
            refuser: Refuser {
                tx: tx.clone(),
                backlog: backlog.clone(),
            },
            bridge: env.bridge.clone(),
        },
    );
    // An unknown event name is answered through the queue like any refusal, so its answer
    // counts against the socket's byte budget, and names only a bounded part of the name.
    s.on_fallback(UnknownEvent(Refuser {
        tx,
        backlog: backlog.clone(),
    }));
    {
        let gone = gone.clone();
        s.on_disconnect(async move |s: SocketRef<A>, reason: socketioxide::socket::DisconnectReason| {
            // The worker closes its tab in the registry when it ends (it knows the tab's key
            // after a login or logout moved it).
            gone.cancel();
            if matches!(reason, socketioxide::socket::DisconnectReason::PacketParsingError) {
                // Among them: binary attachments past `max_event_bytes` in size or count.
                tracing::warn!(sid = %s.id, "socket closed: a packet it sent could not be read or was over the limits");
            }
        });
    }
    let flow = Flow::new(env.max_unread_bytes, Duration::from_millis(env.patience_ms));
    let socket = s.clone();
    let counted = metrics::Counted::in_gauge(SOCKETS);
    let task = async move {
        let _counted = counted;
        // The client may send its first event as soon as it hears the CONNECT answer, which
        // socketioxide queues before it marks the socket connected; a push sent before then
        // (a background task of that very event, say) would reach the tab only as a resync,
        // without its toast. So no event of the socket runs before it is marked connected.
        wait_connected(&socket, &gone).await;
        if let Some(from) = moved_from {
            // Before the tab's first event (its hydrate) reads them.
            // Boxed, as the events' futures are: it runs once, the task lives on.
            Box::pin(env.bridge.carry_tab(&info, &from)).await;
        }
        worker(env, info, rx, backlog, gone, flow).await;
    };
    TASK_BYTES.store(std::mem::size_of_val(&task), Ordering::Relaxed);
    tokio::spawn(task);
    Ok(())
}

/// `event` on the heap, its size noted for the test of it. A function, not a `let` in the
/// worker: a local's storage would stay in the worker's task past the move.
fn boxed_event<F: Future>(event: F) -> std::pin::Pin<Box<F>> {
    EVENT_BYTES.store(std::mem::size_of_val(&event), Ordering::Relaxed);
    Box::pin(event)
}

/// Waits until socketioxide marks `socket` connected, the socket goes, or
/// [`crate::rooms::CONNECTED_WAIT`] is over (its sends then fail as they would have).
async fn wait_connected<A: Adapter>(socket: &SocketRef<A>, gone: &CancellationToken) {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    while !socket.connected()
        && !gone.is_cancelled()
        && started.elapsed() < crate::rooms::CONNECTED_WAIT
    {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Counts a socket of `info`'s tab in the registry, dropping the states of the tabs that are
/// then past their session's or address's cap.
fn open_tab(env: &SocketEnv, info: &SocketInfo) {
    let session = info.binding.as_ref().map(|b| b.0.as_str());
    let client = crate::net::address_key(info.client.ip, env.ipv6_prefix_len);
    for key in env.tabs.opened(&info.token, session, client) {
        tracing::info!(
            "a session or address past its tab cap: the longest-idle tab's states dropped"
        );
        env.bridge.forget_tab(key);
    }
}

/// Runs one socket's events in order and sends each one's final answer, waiting for room in
/// the socket's send buffer rather than dropping an answer.
async fn worker<A: Adapter>(
    env: Arc<SocketEnv>,
    mut info: SocketInfo,
    mut rx: mpsc::UnboundedReceiver<Queued<A>>,
    backlog: Arc<Backlog>,
    gone: CancellationToken,
    mut flow: Flow<A>,
) {
    let (bridge, patience) = (&env.bridge, Duration::from_millis(env.patience_ms));
    let abort = bridge.abort_token().clone();
    loop {
        let job = tokio::select! {
            biased;
            () = abort.cancelled() => break,
            () = gone.cancelled() => break,
            job = rx.recv() => job,
        };
        let Some(job) = job else { break };
        let (update, reply, guard) = match *job {
            Job::Refusal(update, reply) => {
                backlog.refusals.fetch_sub(1, Ordering::SeqCst);
                (update, reply, None)
            }
            Job::Event(raw, reply, guard, queued) => {
                backlog.events.fetch_sub(1, Ordering::SeqCst);
                drop(queued);
                let id = raw.get("id").and_then(Value::as_u64);
                let span = event_span(&info, id);
                let name = raw
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                let key = info.token.clone();
                // Boxed: held inline, the event's future would make every socket's task as
                // large as itself, idle or not.
                let handled = boxed_event(metrics::counted(async {
                    AssertUnwindSafe(bridge.handle(&mut info, raw, false))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|panic| {
                            let msg = crate::state::panic_message(&panic);
                            metrics::error(ErrorKind::Panic);
                            tracing::error!(event = %name, panic = %msg, "event panicked outside its handler; state unchanged");
                            let mut u = StateUpdate::final_for(id);
                            u.events.push(ClientCommand::toast(
                                crate::protocol::ToastLevel::Error,
                                crate::Error::internal(msg).public_message(),
                            ));
                            u
                        })
                })
                .instrument(span.clone()));
                // A shutdown past its grace time gives up the event where it stands; dropping
                // the future releases its lock, and the client resends it to the next server.
                let update = tokio::select! {
                    biased;
                    () = abort.cancelled() => break,
                    handled = handled => handled,
                };
                if info.token != key {
                    env.tabs.closed(&key);
                    open_tab(&env, &info);
                    // The tab's own login or logout moved it to a fresh binding: its pushes
                    // are the new tab's from here on, and after a logout its rooms too.
                    match info.left_rooms.take() {
                        Some(old) => reply.socket.leave(old),
                        None => reply.socket.leave_all(),
                    }
                    reply.socket.join(info.tab_rooms());
                    reply.socket.join(env.node_room.clone());
                }
                (update, reply, Some((guard, span)))
            }
        };
        let delivered = match &guard {
            Some((_, span)) => {
                let send =
                    tracing::debug_span!(target: metrics::PHASE_TARGET, parent: span, "send");
                deliver(&reply, &update, patience, &gone, &mut flow)
                    .instrument(send)
                    .await
            }
            None => deliver(&reply, &update, patience, &gone, &mut flow).await,
        };
        if !delivered {
            break;
        }
        drop(guard);
    }
    env.tabs.closed(&info.token);
}

/// Sends `update` as the answer `reply` describes, waiting while the client has too much
/// unconfirmed ([`Flow`]) or the socket's send buffer is full. `false` when the socket is gone
/// or the client has not read for `patience`: the socket is then closed (or, when even that
/// cannot be sent, left to the heartbeat), and the client resends what it has no answer for
/// after reconnecting.
async fn deliver<A: Adapter>(
    reply: &Reply<A>,
    update: &StateUpdate,
    patience: Duration,
    gone: &CancellationToken,
    flow: &mut Flow<A>,
) -> bool {
    let started = tokio::time::Instant::now();
    let deadline = started + patience;
    // Encoded once: counted for the budget, then sent as it is.
    let encoded = match serde_json::value::to_raw_value(update) {
        Ok(raw) => raw,
        Err(e) => {
            tracing::error!(error = %e, id = ?update.id, "could not encode an answer");
            return true;
        }
    };
    let size = encoded.get().len() as u64;
    match flow.room_for(&reply.socket, size, deadline, gone).await {
        Ok(()) => {}
        Err(NoRoom::Gone) => return false,
        Err(NoRoom::Unread { unread }) => {
            tracing::warn!(
                sid = %reply.socket.id,
                unread,
                ?patience,
                "client has not confirmed reading its answers; closing its socket"
            );
            if let Err(e) = reply.socket.clone().disconnect() {
                tracing::debug!(error = %e, "could not close an unread socket at once; the heartbeat will");
            }
            return false;
        }
    }
    let mut pause = Duration::from_millis(1);
    loop {
        let sent = match reply.ack_id {
            // socketioxide's ack sender is used up by a try; a fresh one per try is the same ack.
            Some(id) => {
                let mut none = socketioxide_core::Value::Bytes(bytes::Bytes::new());
                match AckSender::from_message_parts(&reply.socket, &mut none, &Some(id)) {
                    Ok(ack) => ack.send(&*encoded),
                    Err(never) => match never {},
                }
            }
            None => reply.socket.emit(EVENT, &*encoded),
        };
        match sent {
            Ok(()) => {
                flow.sent(&reply.socket, size);
                return true;
            }
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(
                        sid = %reply.socket.id,
                        ?patience,
                        "client has not read its answers; leaving its socket to the heartbeat to close"
                    );
                    return false;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(SendError::Socket(SocketError::Closed)) => {
                // socketioxide marks a socket connected only after it queued the CONNECT
                // answer, so the first event's answer can race ahead of that: a socket that
                // has not said it disconnected is waited for, briefly.
                if !gone.is_cancelled() && started.elapsed() < crate::rooms::CONNECTED_WAIT {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                    continue;
                }
                tracing::debug!(id = ?update.id, "socket gone before its answer; the client resends");
                return false;
            }
            Err(e) => {
                tracing::error!(error = %e, id = ?update.id, "could not encode an answer");
                return true;
            }
        }
    }
}

/// socketioxide message handler that queues `event` messages in arrival order.
pub(crate) struct EventSink<A: Adapter> {
    refuser: Refuser<A>,
    bridge: Arc<EventBridge>,
}

/// Queues refusals on a socket's queue, behind the answers of the events before them.
pub(crate) struct Refuser<A: Adapter> {
    tx: mpsc::UnboundedSender<Queued<A>>,
    backlog: Arc<Backlog>,
}

/// How much of an unknown event's name its refusal repeats.
const NAME_ECHO_CHARS: usize = 64;

/// socketioxide's fallback handler: any event not named `event` is refused through the queue.
pub(crate) struct UnknownEvent<A: Adapter>(Refuser<A>);

impl<A: Adapter> MessageHandler<A, SinkMarker> for UnknownEvent<A> {
    fn call(&self, s: Arc<Socket<A>>, mut v: socketioxide_core::Value, ack_id: Option<i64>) {
        let name = match socketioxide::extract::Event::from_message_parts(&s, &mut v, &ack_id) {
            Ok(socketioxide::extract::Event(name)) => name,
            Err(_) => "?".to_owned(),
        };
        let shown: String = name.chars().take(NAME_ECHO_CHARS).collect();
        let more = if shown.len() < name.len() { "…" } else { "" };
        let reply = Reply { socket: s, ack_id };
        metrics::error(ErrorKind::Invalid);
        self.0.refuse(
            reply,
            None,
            format!("unknown socket event `{shown}{more}`: send events as `{EVENT}`"),
        );
    }
}

/// Marker for our `MessageHandler` impl.
pub(crate) struct SinkMarker;

impl<A: Adapter> MessageHandler<A, SinkMarker> for EventSink<A> {
    fn call(&self, s: Arc<Socket<A>>, mut v: socketioxide_core::Value, ack_id: Option<i64>) {
        let reply = Reply {
            socket: s.clone(),
            ack_id,
        };
        let raw = match TryData::<Value>::from_message_parts(&s, &mut v, &ack_id) {
            Ok(TryData(Ok(raw))) => raw,
            Ok(TryData(Err(e))) => {
                metrics::error(ErrorKind::Invalid);
                self.refuser
                    .refuse(reply, None, format!("malformed event: {e}"));
                return;
            }
            Err(never) => match never {},
        };
        if self.bridge.shutdown_token().is_cancelled() {
            // Not accepted, so not answered: the socket closes soon and the client resends
            // the event to the server it reconnects to.
            tracing::debug!("event arrived during shutdown; the client will resend it");
            return;
        }
        if self.refuser.backlog.events.load(Ordering::SeqCst) >= QUEUE {
            metrics::error(ErrorKind::Overloaded);
            let id = raw.get("id").and_then(Value::as_u64);
            self.refuser.refuse(
                reply,
                id,
                format!("too many events in flight (more than {QUEUE}): this one was not run; send it again once earlier ones are answered"),
            );
            return;
        }
        let guard = self.bridge.enter();
        self.refuser.backlog.events.fetch_add(1, Ordering::SeqCst);
        if self
            .refuser
            .tx
            .send(Box::new(Job::Event(
                raw,
                reply,
                guard,
                metrics::Counted::in_gauge(QUEUED_EVENTS),
            )))
            .is_err()
        {
            // The worker is gone (the socket is closing): the client resends after reconnecting.
            tracing::debug!("event arrived on a socket whose worker has ended");
        }
    }
}

impl<A: Adapter> Refuser<A> {
    /// Queues the final answer of a refused event behind the answers of the events before it.
    fn refuse(&self, reply: Reply<A>, id: Option<u64>, message: String) {
        if self.backlog.refusals.load(Ordering::SeqCst) >= REFUSALS {
            tracing::warn!(
                sid = %reply.socket.id,
                "a client floods its socket without reading the answers; disconnecting it"
            );
            if let Err(e) = reply.socket.disconnect() {
                // Its send buffer is full too: the heartbeat closes it shortly.
                tracing::debug!(error = %e, "could not disconnect a flooding client at once");
            }
            return;
        }
        let mut u = StateUpdate::final_for(id);
        u.events.push(ClientCommand::error(message));
        self.backlog.refusals.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(Box::new(Job::Refusal(u, reply))).is_err() {
            tracing::debug!("refusal for a socket whose worker has ended");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_slot_is_a_pointer_not_a_job() {
        let slot = std::mem::size_of::<Queued<socketioxide::adapter::LocalAdapter>>();
        let job = std::mem::size_of::<Job<socketioxide::adapter::LocalAdapter>>();
        // 32 slots are allocated per socket when its queue is made, used or not.
        assert!(
            slot <= 8 && job > 32,
            "a slot of {slot} bytes (a job is {job}): idle sockets would hold {} bytes each",
            32 * slot
        );
    }

    /// The task of a socket holds its queue and its tab, not an event's future: held inline,
    /// the bridge's future made every idle socket's task 28 KiB (`cargo xtask bench`'s idle
    /// memory slope, 2.2 times the bare echo's).
    #[cfg(feature = "testing")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_sockets_task_holds_no_events_future() {
        let server = crate::testing::TestServer::start(crate::App::new())
            .await
            .unwrap();
        let client = crate::testing::TestClient::connect(server.addr(), Default::default())
            .await
            .unwrap();
        let bytes = TASK_BYTES.load(Ordering::Relaxed);
        assert!(
            bytes > 0 && bytes <= 4096,
            "each socket's task is {bytes} bytes"
        );
        drop(client);
        server.stop().await.unwrap();
    }

    /// Every event's future is allocated and written in full before it runs, so its size is a
    /// cost per event. The wrappers around the bridge (language, outcome count) each held it
    /// twice, and the rare page loads, live refreshes and hydrations made it as large as they are.
    #[cfg(feature = "testing")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_events_future_is_small() {
        #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
        struct Counter {
            n: i64,
        }
        impl crate::protocol::StateName for Counter {
            const NAME: Option<&'static str> = Some("counter");
        }
        impl crate::state::State for Counter {
            fn handlers(h: &mut crate::state::Handlers<Self>) {
                h.on("bump", async |s: &mut Self, _: crate::EventContext| {
                    s.n += 1
                });
            }
        }
        let server = crate::testing::TestServer::start(crate::App::new().state::<Counter>())
            .await
            .unwrap();
        let mut client = crate::testing::TestClient::connect(server.addr(), Default::default())
            .await
            .unwrap();
        let answer = client
            .call("counter.bump", serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(answer.delta["counter"]["n"], 1, "{answer:?}");
        // 27,184 bytes before the wrappers around the bridge stopped holding it twice each.
        let bytes = EVENT_BYTES.load(Ordering::Relaxed);
        assert!(
            bytes > 0 && bytes <= 5 * 1024,
            "each event's future is {bytes} bytes"
        );
        drop(client);
        server.stop().await.unwrap();
    }
}
