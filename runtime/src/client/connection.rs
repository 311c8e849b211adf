//! The connection as a state machine with no I/O: text frames and clock readings in, frames to
//! send and updates to apply out.
//!
//! The browser runtime feeds it from a `web_sys::WebSocket` and timers; tests feed it from
//! tokio-tungstenite against the official Node `socket.io` server. Keeping the protocol logic
//! here means both run the same code.

use std::collections::VecDeque;

use serde_json::{Value, json};

use crate::protocol::codec::{EnginePacket, SocketPacket};
use crate::protocol::{
    ClientCommand, EVENT, EVENT_WINDOW, Event, FLOW, HYDRATE, LIVE, LIVE_TABLES, RouterData,
    StateUpdate,
};

/// How many unanswered events a client keeps; beyond it the oldest unsent ones are dropped.
pub const MAX_QUEUED: usize = 1000;

/// First reconnect delay, in milliseconds; it doubles per failed attempt.
pub const BACKOFF_BASE_MS: f64 = 250.0;
/// Longest reconnect delay, in milliseconds.
pub const BACKOFF_MAX_MS: f64 = 10_000.0;

/// Where the connection stands, as an app shows it ("connecting…", "offline, retrying").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    /// The first connection is being made.
    #[default]
    Connecting,
    /// Connected: events go straight to the server.
    Connected,
    /// The connection dropped; events are queued until it is back.
    Reconnecting {
        /// How many attempts failed since the connection was last up.
        attempt: u32,
    },
}

impl Status {
    /// `true` while events reach the server directly.
    pub fn is_connected(self) -> bool {
        self == Self::Connected
    }
}

/// What the caller has to do after feeding the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this text frame on the socket.
    Send(String),
    /// The namespace connection is up (after a reconnect too): show it.
    Connected,
    /// An update from the server: apply its delta and run its client events.
    Update(StateUpdate),
    /// The server refused the connection (or closed it): close the transport and reconnect.
    Close(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No transport.
    Idle,
    /// Transport open, waiting for Engine.IO's handshake.
    Handshake,
    /// Socket.IO CONNECT sent, waiting for the answer.
    Connecting,
    /// Events flow.
    Connected,
}

/// One client's connection: the tab token, the event ids, the events still unanswered and the
/// heartbeat.
///
/// Every event stays here until its final answer arrives. At most [`EVENT_WINDOW`] are out on
/// the socket at once (the rest wait their turn), and those that were out when a socket died
/// are sent again on the next one; with an epoch the server answers such a resend as already
/// applied instead of running it twice.
#[derive(Debug)]
pub struct Connection {
    token: String,
    epoch: Option<String>,
    phase: Phase,
    next_id: u64,
    /// Events with no final answer yet, oldest first; the first `sent` are out on this socket.
    pending: VecDeque<Event>,
    sent: usize,
    dropped: u64,
    last_heard_ms: f64,
    heartbeat_ms: f64,
    attempt: u32,
    was_connected: bool,
    /// The page the tab shows, which its `_hydrate` names (so the server runs its loaders).
    route: RouterData,
    /// The id of the `_live` event out on this socket, if one is: one at a time, so a burst of
    /// `_changed` notices costs a bounded number of reloads.
    live_out: Option<u64>,
    /// Tables heard changed (`_changed`) since the last `_live` went out.
    live_waiting: Vec<String>,
}

impl Connection {
    /// A connection for tab `token`, not yet opened.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            epoch: None,
            phase: Phase::Idle,
            next_id: 1,
            pending: VecDeque::new(),
            sent: 0,
            dropped: 0,
            last_heard_ms: 0.0,
            heartbeat_ms: 45_000.0,
            attempt: 0,
            was_connected: false,
            route: RouterData::default(),
            live_out: None,
            live_waiting: Vec::new(),
        }
    }

    /// Names this page load (random, 1 to 64 of `[A-Za-z0-9_-]`), so the server applies each
    /// event id of it once even when a reconnect sends it again.
    pub fn with_epoch(mut self, epoch: impl Into<String>) -> Self {
        self.epoch = Some(epoch.into());
        self
    }

    /// The tab token the connection sends in its CONNECT auth.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// What to show the user now.
    pub fn status(&self) -> Status {
        match (self.phase, self.was_connected) {
            (Phase::Connected, _) => Status::Connected,
            (_, false) if self.attempt == 0 => Status::Connecting,
            _ => Status::Reconnecting {
                attempt: self.attempt,
            },
        }
    }

    /// Events not sent yet (offline, or waiting for room in the window).
    pub fn queued(&self) -> usize {
        self.pending.len() - self.sent
    }

    /// Events without a final answer yet, sent or not.
    pub fn unanswered(&self) -> usize {
        self.pending.len()
    }

    /// Events dropped because more than [`MAX_QUEUED`] were waiting.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The transport (WebSocket) opened at `now_ms`; the server speaks first.
    pub fn transport_opened(&mut self, now_ms: f64) {
        self.phase = Phase::Handshake;
        self.last_heard_ms = now_ms;
    }

    /// The transport closed (or failed to open). Returns how long to wait before reopening it:
    /// exponential backoff from [`BACKOFF_BASE_MS`] to [`BACKOFF_MAX_MS`], with `jitter` in
    /// `[0, 1)` spreading clients so a restarted server is not hit by all of them at once.
    /// Events that were out without an answer go again on the next socket.
    pub fn transport_closed(&mut self, jitter: f64) -> f64 {
        self.phase = Phase::Idle;
        self.sent = 0;
        self.attempt = self.attempt.saturating_add(1);
        backoff_ms(self.attempt, jitter)
    }

    /// `true` when the server has been silent for longer than its heartbeat allows: the
    /// connection is dead even if the transport has not noticed, so close and reconnect.
    pub fn is_silent(&self, now_ms: f64) -> bool {
        self.phase != Phase::Idle && now_ms - self.last_heard_ms > self.heartbeat_ms
    }

    /// Feeds one text frame received at `now_ms`.
    pub fn receive(&mut self, frame: &str, now_ms: f64) -> Vec<Output> {
        self.last_heard_ms = now_ms;
        let packet = match EnginePacket::decode(frame) {
            Ok(p) => p,
            Err(e) => return vec![Output::Close(format!("bad Engine.IO frame: {e}"))],
        };
        match packet {
            EnginePacket::Open(info) => {
                // The server pings every `ping_interval` and gives up after `ping_timeout`
                // more; allow the same before calling the connection dead.
                self.heartbeat_ms = (info.ping_interval + info.ping_timeout) as f64 + 1000.0;
                self.phase = Phase::Connecting;
                let mut auth = json!({ "token": self.token });
                if let Some(epoch) = &self.epoch {
                    auth["epoch"] = json!(epoch);
                }
                vec![Output::Send(message(&SocketPacket::connect(auth)))]
            }
            EnginePacket::Ping(data) => vec![Output::Send(EnginePacket::Pong(data).encode())],
            EnginePacket::Close => vec![Output::Close("the server closed the connection".into())],
            EnginePacket::Message(text) => self.receive_socket(&text),
            EnginePacket::Pong(_) | EnginePacket::Upgrade | EnginePacket::Noop => Vec::new(),
        }
    }

    fn receive_socket(&mut self, text: &str) -> Vec<Output> {
        let packet = match SocketPacket::decode(text) {
            Ok(p) => p,
            Err(e) => return vec![Output::Close(format!("bad Socket.IO packet: {e}"))],
        };
        match packet {
            SocketPacket::Connect { .. } => self.connected(),
            SocketPacket::ConnectError { data, .. } => {
                let why = data
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("connection refused")
                    .to_owned();
                vec![Output::Close(why)]
            }
            SocketPacket::Disconnect { .. } => {
                vec![Output::Close("the server ended the session".into())]
            }
            SocketPacket::Event {
                name,
                args,
                ack: Some(ack),
                nsp,
            } if name == FLOW => {
                // Reading this far is what the marker asks to confirm: ack it with its nonce.
                vec![Output::Send(message(&SocketPacket::Ack { nsp, ack, args }))]
            }
            SocketPacket::Event { name, args, .. } => {
                if name != EVENT {
                    return Vec::new();
                }
                match args
                    .into_iter()
                    .next()
                    .map(serde_json::from_value::<StateUpdate>)
                {
                    Some(Ok(update)) => {
                        let answered = update.is_final.then_some(update.id).flatten();
                        let resync = update
                            .events
                            .iter()
                            .any(|e| e.name == ClientCommand::RESYNC);
                        for table in update
                            .events
                            .iter()
                            .filter(|e| e.name == ClientCommand::CHANGED)
                            .flat_map(ClientCommand::tables)
                        {
                            if !self.live_waiting.contains(&table)
                                && self.live_waiting.len() < LIVE_TABLES
                            {
                                self.live_waiting.push(table);
                            }
                        }
                        let mut out = vec![Output::Update(update)];
                        if resync && self.phase == Phase::Connected {
                            // A push too large to send as it is: fetch the states instead.
                            let hydrate =
                                self.event(HYDRATE.to_owned(), Value::Null, self.route.clone());
                            out.push(Output::Send(frame_for(&hydrate)));
                        }
                        if let Some(id) = answered {
                            if self.live_out == Some(id) {
                                self.live_out = None;
                            }
                            self.answered(id);
                            out.extend(self.fill_window());
                        }
                        out.extend(self.ask_live());
                        out
                    }
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// The `_live` event for the tables heard changed, when there are some and none is out.
    /// Not kept with the unanswered events: a reconnect's `_hydrate` reloads what the tab shows.
    fn ask_live(&mut self) -> Option<Output> {
        if self.phase != Phase::Connected || self.live_out.is_some() || self.live_waiting.is_empty()
        {
            return None;
        }
        let tables = std::mem::take(&mut self.live_waiting);
        let live = self.event(
            LIVE.to_owned(),
            json!({ "tables": tables }),
            self.route.clone(),
        );
        self.live_out = Some(live.id);
        Some(Output::Send(frame_for(&live)))
    }

    /// Event `id` has its final answer: it leaves the unanswered list.
    fn answered(&mut self, id: u64) {
        if let Some(i) = self.pending.iter().take(self.sent).position(|e| e.id == id) {
            self.pending.remove(i);
            self.sent -= 1;
        }
    }

    /// Frames for the waiting events that fit in the window now.
    fn fill_window(&mut self) -> Vec<Output> {
        if self.phase != Phase::Connected {
            return Vec::new();
        }
        let room = EVENT_WINDOW.saturating_sub(self.sent);
        let out: Vec<Output> = self
            .pending
            .iter()
            .skip(self.sent)
            .take(room)
            .map(|e| Output::Send(frame_for(e)))
            .collect();
        self.sent += out.len();
        out
    }

    fn connected(&mut self) -> Vec<Output> {
        self.phase = Phase::Connected;
        self.attempt = 0;
        self.was_connected = true;
        self.sent = 0;
        // The `_hydrate` below reloads everything the tab shows, live tables too.
        self.live_out = None;
        self.live_waiting.clear();
        // Resync first (the server may have restarted or another node may hold newer states),
        // then every event still without an answer, in order: what the user did offline, and
        // what was out on a socket that died before answering.
        let hydrate = self.event(HYDRATE.to_owned(), Value::Null, self.route.clone());
        let mut out = vec![Output::Connected, Output::Send(frame_for(&hydrate))];
        out.extend(self.fill_window());
        out
    }

    /// Notes the page the tab shows now: the next `_hydrate` names it.
    pub fn set_route(&mut self, route: RouterData) {
        self.route = route;
    }

    fn event(&mut self, name: String, payload: Value, router_data: RouterData) -> Event {
        let id = self.next_id;
        self.next_id += 1;
        Event {
            id,
            name,
            payload,
            router_data,
        }
    }

    /// Emits `name` with `payload` from the page at `router_data`. Returns its id and the frame
    /// to send now, or `None` when it waits (offline, or [`EVENT_WINDOW`] events are out).
    pub fn emit(
        &mut self,
        name: impl Into<String>,
        payload: Value,
        router_data: RouterData,
    ) -> (u64, Option<String>) {
        let event = self.event(name.into(), payload, router_data);
        let id = event.id;
        if self.pending.len() >= MAX_QUEUED && self.pending.len() > self.sent {
            // Keep memory bounded: the oldest event not sent yet gives way.
            self.pending.remove(self.sent);
            self.dropped += 1;
        }
        self.pending.push_back(event);
        let frame = match self.fill_window().pop() {
            Some(Output::Send(frame)) => Some(frame),
            _ => None,
        };
        (id, frame)
    }
}

/// The reconnect delay after `attempt` failures, with `jitter` in `[0, 1)`: between half and
/// all of `min(base · 2^(attempt-1), max)`.
pub fn backoff_ms(attempt: u32, jitter: f64) -> f64 {
    let exp = attempt.saturating_sub(1).min(16);
    let ceiling = (BACKOFF_BASE_MS * f64::from(1u32 << exp)).min(BACKOFF_MAX_MS);
    ceiling * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

fn message(packet: &SocketPacket) -> String {
    EnginePacket::Message(packet.encode()).encode()
}

/// The text frame of one event.
pub fn frame_for(event: &Event) -> String {
    let value = serde_json::to_value(event).unwrap_or(Value::Null);
    message(&SocketPacket::event(EVENT, vec![value]))
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
