//! Every state of one tab, as managers store it: the live values, what they last shipped, the
//! tab's rooms and its delivery record.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::Error;
use crate::protocol::ClientCommand;

use super::{AnyState, StateEntry};

/// One state of one client: the live value and its JSON as last shipped.
pub(crate) struct Slot {
    pub(crate) state: Box<dyn AnyState>,
    pub(crate) json: Value,
    /// The length of `json` encoded, for the store's size.
    bytes: usize,
}

impl Slot {
    /// Puts `state`, whose JSON is `json` (`bytes` long encoded), in the slot; returns the JSON
    /// it had.
    pub(crate) fn set(&mut self, state: Box<dyn AnyState>, json: Value, bytes: usize) -> Value {
        self.state = state;
        self.bytes = bytes;
        std::mem::replace(&mut self.json, json)
    }
}

/// How many bytes `value` takes as JSON text, counted as the byte budgets count the wire.
pub(crate) fn encoded_len(value: &Value) -> usize {
    usize::try_from(crate::protocol::wire_len(value)).unwrap_or(usize::MAX)
}

/// Where a tab's rooms are kept among its states; not a state name (those never start with `_`).
const ROOMS_KEY: &str = "_rooms";

/// Where the states a tab shows live are kept ([`crate::Registered::on_change`]); not a state
/// name either.
const LIVE_KEY: &str = "_live";

/// Where a tab's delivery records are kept (see [`Delivered`]); not a state name either.
const DELIVERED_KEY: &str = "_delivered";
/// How many page loads of one tab keep their record; older ones cannot reconnect anyway.
pub(super) const EPOCHS_KEPT: usize = 16;

/// What the server remembers of the events one page load (epoch) of a tab sent, so that an
/// event sent again after a reconnect gets the answer it had instead of running twice.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Delivered {
    epoch: String,
    /// The highest event id handled (committed, refused or failed).
    last: u64,
    /// The client events of the latest answers that had any (a failure's toast, a redirect),
    /// oldest first; a client never has more than a window of events to send again.
    replies: Vec<(u64, Vec<ClientCommand>)>,
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

    /// The states the tab shows live: it hears changes of the tables they declared (kept with
    /// its states, like its rooms).
    pub(crate) fn live_states(&self) -> Vec<String> {
        self.stored
            .get(LIVE_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// Records that the tab shows state `name` live.
    pub(crate) fn watch(&mut self, name: &str) {
        let mut live = self.live_states();
        if !live.iter().any(|l| l == name) {
            live.push(name.to_owned());
            self.stored.insert(LIVE_KEY.to_owned(), Value::from(live));
        }
    }

    /// If event `id` of page load `epoch` was handled before, the client events its answer
    /// carried (none for a plain success); `None` when it is new.
    pub(crate) fn answered_before(&self, epoch: &str, id: u64) -> Option<Vec<ClientCommand>> {
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
    pub(crate) fn record_answer(&mut self, epoch: &str, id: u64, events: &[ClientCommand]) {
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

    /// About how many bytes the tab's states take as JSON (what a store keeps of them).
    pub(crate) fn bytes(&self) -> usize {
        let live: usize = self.live.values().map(|s| s.bytes).sum();
        live + self.stored.values().map(encoded_len).sum::<usize>()
    }

    /// Whether nothing is kept: no state, room or delivery record.
    pub(crate) fn is_empty(&self) -> bool {
        self.live.is_empty() && self.stored.is_empty() && self.delivered.is_empty()
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
            let bytes = encoded_len(&json);
            self.live
                .insert(entry.name.clone(), Slot { state, json, bytes });
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
