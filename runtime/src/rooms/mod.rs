//! Rooms of tabs, and broadcasts to them: a chat room, a live list, a presence count.
//!
//! A handler puts its tab into a room with [`EventContext::join`](crate::EventContext::join) and
//! sends client events to everyone in a room with
//! [`EventContext::broadcast`](crate::EventContext::broadcast); both take effect only when the
//! handler succeeds, after its state is stored. Membership belongs to the *tab* (its token), not
//! to one socket: it is kept with the tab's states, so a reconnect, even to another node, is back
//! in its rooms once it resyncs.
//!
//! Code outside handlers (tasks, hooks) broadcasts through [`Rooms`], from [`App::rooms`].
//!
//! With one process nothing more is needed. With several, build each with
//! [`App::broadcast_over_redis`] and a [`RedisBroadcast`]: broadcasts then travel through
//! Redis pub/sub to the clients of every node.
//!
//! [`App::rooms`]: crate::App::rooms
//! [`App::broadcast_over_redis`]: crate::App::broadcast_over_redis

mod live;
mod push;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::value::RawValue;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::{SendError, SocketError, SocketIo};

use crate::Error;
use crate::protocol::{ClientCommand, EVENT, StateUpdate};
pub(crate) use live::live_room;
pub(crate) use push::CONNECTED_WAIT;
use push::{Fits, Missed, within_limit};

/// The socket server with the adapter it was built with.
#[derive(Clone)]
pub(crate) enum Io {
    /// One process: rooms live in memory.
    Local(SocketIo<LocalAdapter>),
    /// Several processes: rooms and broadcasts go through Redis.
    #[cfg(feature = "redis")]
    Redis(SocketIo<RedisAdapter>),
}

#[cfg(feature = "redis")]
pub(crate) type RedisAdapter = socketioxide_redis::RedisAdapter<socketioxide::adapter::Emitter>;

/// The room name on the wire: app rooms are kept apart from the runtime's per-tab rooms.
fn app_room(room: &str) -> String {
    format!("room:{room}")
}

/// A change a handler asked for, applied after it succeeded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RoomOp {
    Join(String),
    Leave(String),
    Broadcast(String, Vec<ClientCommand>),
}

/// Broadcasts and room membership from anywhere in the app. Cheap to clone; usable once the
/// server is built (before that, calls fail with a clear error).
#[derive(Clone, Default)]
pub struct Rooms {
    wired: Arc<OnceLock<Wired>>,
}

/// What the built server gives [`Rooms`].
struct Wired {
    io: Io,
    /// Largest push in bytes (0: no limit), see [`Rooms::push_limit`].
    push_limit: u64,
    /// How long a socket that missed a push is waited for to take its `_resync`.
    patience: Duration,
    /// The room every socket of this node is in ([`node_room`]).
    node_room: String,
    missed: Arc<Missed>,
    /// The live tables' notice windows ([`live`]).
    windows: live::Windows,
}

/// A room for every socket of one server process, so a broadcast can leave them out: this
/// node pushes to its own sockets one by one, to know which could not take a push.
pub(crate) fn node_room() -> String {
    format!("node:{}", crate::net::random_hex_128())
}

impl Rooms {
    /// Wires the built server in: `patience` is how long the heartbeat lets a socket go
    /// unread, `node_room` the room this node's sockets join.
    pub(crate) fn set(&self, io: Io, push_limit: u64, patience: Duration, node_room: String) {
        let wired = Wired {
            io,
            push_limit,
            patience,
            node_room,
            missed: Arc::default(),
            windows: live::Windows::default(),
        };
        // A second build of the same App keeps the first server's wiring.
        let _ = self.wired.set(wired);
    }

    /// The largest push for `max_unread_bytes`: engine.io holds up to `send_buffer` packets per
    /// socket whatever their size, and pushes, unlike answers, reach a socket without its worker
    /// counting them; capped at this size, the pushes a socket may hold stay within the same
    /// budget as its answers.
    pub(crate) fn push_limit(max_unread_bytes: u64, send_buffer: usize) -> u64 {
        max_unread_bytes / send_buffer.max(1) as u64
    }

    fn wired(&self) -> Result<&Wired, Error> {
        self.wired
            .get()
            .ok_or_else(|| Error::internal("rooms are used before the server was built"))
    }

    fn io(&self) -> Result<&Io, Error> {
        self.wired().map(|w| &w.io)
    }

    /// Sends `update` to every socket in socket.io room `room` (on every node with Redis).
    pub(crate) async fn emit_to(&self, room: String, update: &StateUpdate) -> Result<(), Error> {
        self.emit_to_except(room, Vec::new(), update).await
    }

    /// Sends `update` to every socket in `room` but those in `except`.
    pub(crate) async fn emit_to_except(
        &self,
        room: String,
        except: Vec<String>,
        update: &StateUpdate,
    ) -> Result<(), Error> {
        /// Sends `u` to this node's sockets of `room` one by one, so a socket that cannot take
        /// it (its send buffer full) is known and told to resync; then, with `remote`, to the
        /// other nodes' sockets as one broadcast that leaves this node's out.
        async fn push<A: Adapter>(
            io: &SocketIo<A>,
            room: String,
            mut except: Vec<String>,
            u: &RawValue,
            wired: &Wired,
            remote: bool,
        ) -> Result<(), String> {
            for socket in io.to(room.clone()).except(except.clone()).sockets() {
                match socket.emit(EVENT, u) {
                    Ok(()) => {}
                    Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                        tracing::debug!(sid = %socket.id, room = %room, "a socket could not take a push; it resyncs");
                        wired.missed.resync(socket, wired.patience);
                    }
                    // Closing (its tab resyncs when it reconnects), or not yet marked connected
                    // (see CONNECTED_WAIT): told to resync all the same, once it is.
                    Err(SendError::Socket(SocketError::Closed)) => {
                        wired.missed.resync(socket, wired.patience);
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            if remote {
                except.push(wired.node_room.clone());
                io.to(room)
                    .except(except)
                    .emit(EVENT, u)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        let wired = self.wired()?;
        let limit = wired.push_limit;
        // Encoded once: measured for the limit, then copied to each socket.
        let encode = |u: &StateUpdate| {
            serde_json::value::to_raw_value(u)
                .map_err(|e| Error::internal(format!("a push could not be encoded: {e}")))
        };
        let raw = encode(update)?;
        let raw = match within_limit(update, raw.get().len() as u64, limit) {
            Fits::AsItIs => raw,
            Fits::AsResync(shrunk) => encode(&shrunk)?,
            Fits::Not(size) => {
                return Err(Error::internal(format!(
                    "a broadcast of {size} bytes is over the push limit of {limit} bytes \
                     (which max_unread_bytes sets): send less at once"
                )));
            }
        };
        let sent = match &wired.io {
            Io::Local(io) => push(io, room, except, &raw, wired, false).await,
            #[cfg(feature = "redis")]
            Io::Redis(io) => push(io, room, except, &raw, wired, true).await,
        };
        sent.map_err(|e| Error::internal(format!("broadcast failed: {e}")))
    }

    /// Sends `events` to every tab in `room`, as an update with no delta and `id: null`.
    pub async fn broadcast(&self, room: &str, events: Vec<ClientCommand>) -> Result<(), Error> {
        let mut update = StateUpdate::final_for(None);
        update.events = events;
        self.emit_to(app_room(room), &update).await
    }

    /// Tells every tab whose states show `table` ([`crate::Registered::on_change`]), on every
    /// node, that its rows changed: each reloads what it shows through its handlers, chain and
    /// guards. Call it after the write is committed. Returns at once; a burst of calls is
    /// coalesced (one notice per table per 100 ms per node, the last after the last call).
    /// Handlers use [`EventContext::changed`](crate::EventContext::changed), which calls this
    /// once the event is answered.
    pub fn changed(&self, table: &str) {
        let Ok(wired) = self.wired() else {
            // No server yet (a command such as `createsuperuser`): no tab to tell.
            tracing::debug!(
                table,
                "a table changed before the server was built; no tab to tell"
            );
            return;
        };
        if !wired.windows.change(table) {
            return;
        }
        let (rooms, table) = (self.clone(), table.to_owned());
        // Detached: it ends when a window passes with no change, and logs what it cannot send.
        drop(tokio::spawn(async move {
            loop {
                rooms.tell_changed(&table).await;
                tokio::time::sleep(live::WINDOW).await;
                let more = match rooms.wired() {
                    Ok(wired) => wired.windows.end(&table),
                    Err(_) => false,
                };
                if !more {
                    break;
                }
            }
        }));
    }

    /// Pushes the `_changed` notice of `table` to the tabs in its live room.
    async fn tell_changed(&self, table: &str) {
        let mut update = StateUpdate::final_for(None);
        update
            .events
            .push(ClientCommand::changed(&[table.to_owned()]));
        if let Err(e) = self.emit_to(live_room(table), &update).await {
            tracing::warn!(table, error = %e, "could not tell the tabs of a table's change; they see it at their next reload");
        }
    }

    /// Puts every socket of tab `token` into the live rooms of `tables`.
    pub(crate) async fn watch_tab(&self, token: &str, tables: &[String]) -> Result<(), Error> {
        let rooms: Vec<String> = tables.iter().map(|t| live_room(t)).collect();
        self.join_tab_wire(token, rooms).await
    }

    /// Puts every socket of tab `token` into `rooms` (on every node with Redis).
    pub(crate) async fn join_tab(&self, token: &str, rooms: &[String]) -> Result<(), Error> {
        self.join_tab_wire(token, rooms.iter().map(|r| app_room(r)).collect())
            .await
    }

    /// Puts every socket of tab `token` into `rooms`, as named on the wire.
    async fn join_tab_wire(&self, token: &str, rooms: Vec<String>) -> Result<(), Error> {
        if rooms.is_empty() {
            return Ok(());
        }
        async fn join<A: Adapter>(
            io: &SocketIo<A>,
            tab: String,
            rooms: Vec<String>,
        ) -> Result<(), String> {
            io.to(tab).join(rooms).await.map_err(|e| e.to_string())
        }
        let tab = crate::net::tab_room(token);
        let done = match self.io()? {
            Io::Local(io) => join(io, tab, rooms).await,
            #[cfg(feature = "redis")]
            Io::Redis(io) => join(io, tab, rooms).await,
        };
        done.map_err(|e| Error::internal(format!("joining rooms failed: {e}")))
    }

    /// Takes every socket of tab `token` out of `room`.
    pub(crate) async fn leave_tab(&self, token: &str, room: &str) -> Result<(), Error> {
        async fn leave<A: Adapter>(
            io: &SocketIo<A>,
            tab: String,
            room: String,
        ) -> Result<(), String> {
            io.to(tab).leave(room).await.map_err(|e| e.to_string())
        }
        let tab = crate::net::tab_room(token);
        let done = match self.io()? {
            Io::Local(io) => leave(io, tab, app_room(room)).await,
            #[cfg(feature = "redis")]
            Io::Redis(io) => leave(io, tab, app_room(room)).await,
        };
        done.map_err(|e| Error::internal(format!("leaving a room failed: {e}")))
    }

    /// Applies what a handler of tab `token` asked for: joins and leaves first, then broadcasts,
    /// so a handler that joins and then speaks hears itself.
    pub(crate) async fn apply(&self, token: &str, ops: Vec<RoomOp>) {
        let mut broadcasts = Vec::new();
        for op in ops {
            let done = match op {
                RoomOp::Join(room) => self.join_tab(token, &[room]).await,
                RoomOp::Leave(room) => self.leave_tab(token, &room).await,
                RoomOp::Broadcast(room, events) => {
                    broadcasts.push((room, events));
                    Ok(())
                }
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "room change not applied");
            }
        }
        for (room, events) in broadcasts {
            if let Err(e) = self.broadcast(&room, events).await {
                tracing::warn!(room = %room, error = %e, "broadcast not sent");
            }
        }
    }
}

/// The Redis connection that carries broadcasts between server processes.
#[cfg(feature = "redis")]
pub struct RedisBroadcast {
    pub(crate) ctr:
        socketioxide_redis::RedisAdapterCtr<socketioxide_redis::drivers::redis::RedisDriver>,
}

#[cfg(feature = "redis")]
impl RedisBroadcast {
    /// Connects to Redis at `url` (Redis 7 or later: RESP3 is used). Processes that share a
    /// `prefix` share rooms; give each deployment (and each test) its own.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, Error> {
        let url = if url.contains("protocol=") {
            url.to_owned()
        } else if url.contains('?') {
            format!("{url}&protocol=resp3")
        } else {
            format!("{url}?protocol=resp3")
        };
        let client = redis::Client::open(url.as_str())
            .map_err(|e| Error::internal(format!("bad Redis URL: {e}")))?;
        let config = socketioxide_redis::RedisAdapterConfig::new()
            .with_prefix(format!("{prefix}-socket.io"));
        let ctr = socketioxide_redis::RedisAdapterCtr::new_with_redis_config(&client, config)
            .await
            .map_err(|e| Error::internal(format!("cannot reach Redis for broadcasts: {e}")))?;
        Ok(Self { ctr })
    }
}
