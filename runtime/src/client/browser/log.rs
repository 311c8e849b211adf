//! The dev browser log (`browser_log`, on under `ferrule dev`): each event the page sends, its
//! answer and the round trip, in the browser's console, so a developer sees what a click did.
//! The server says whether to log with a `<meta name="ferrule-browser-log">` in the page
//! ([`BROWSER_LOG_META`]).

use std::collections::HashMap;

use crate::protocol::{BROWSER_LOG_META, ClientCommand, StateUpdate};

/// Events sent and not yet answered: their names and when they were sent.
#[derive(Default)]
pub(crate) struct BrowserLog {
    pending: HashMap<u64, (String, f64)>,
}

impl BrowserLog {
    /// A log when the page asks for one.
    pub(crate) fn if_asked() -> Option<Self> {
        let asked = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| {
                d.query_selector(&format!("meta[name=\"{BROWSER_LOG_META}\"]"))
                    .ok()
                    .flatten()
            })
            .is_some();
        asked.then(Self::default)
    }

    /// Logs event `id` going out (once: a resend after a reconnect keeps its first time).
    pub(crate) fn sent(&mut self, id: u64, name: &str, now_ms: f64) {
        if self.pending.contains_key(&id) {
            return;
        }
        web_sys::console::log_1(&format!("ferrule → {name} #{id}").into());
        self.pending.insert(id, (name.to_owned(), now_ms));
    }

    /// Logs the final answer of an event this page sent: what changed, what came with it, and
    /// how long it took.
    pub(crate) fn answered(&mut self, update: &StateUpdate, now_ms: f64) {
        let Some(id) = update.id.filter(|_| update.is_final) else {
            return;
        };
        let Some((name, sent)) = self.pending.remove(&id) else {
            return;
        };
        let line = describe(&name, id, now_ms - sent, update);
        if update.events.iter().any(is_error) {
            web_sys::console::warn_1(&line.into());
        } else {
            web_sys::console::log_1(&line.into());
        }
    }
}

/// `ferrule ← counter_state.increment #3 in 4 ms: delta counter_state.count; events _toast`.
fn describe(name: &str, id: u64, ms: f64, update: &StateUpdate) -> String {
    let fields: Vec<String> = update
        .delta
        .iter()
        .flat_map(|(state, fields)| fields.keys().map(move |f| format!("{state}.{f}")))
        .collect();
    let mut line = format!("ferrule ← {name} #{id} in {ms:.0} ms: ");
    line.push_str(&if fields.is_empty() {
        "no change".to_owned()
    } else {
        format!("delta {}", fields.join(", "))
    });
    if !update.events.is_empty() {
        let events: Vec<String> = update.events.iter().map(command).collect();
        line.push_str(&format!("; events {}", events.join(", ")));
    }
    line
}

/// A command as the log shows it: its name, and the message of an error.
fn command(c: &ClientCommand) -> String {
    match c.payload.get("message").and_then(|m| m.as_str()) {
        Some(message) if is_error(c) => format!("{} \"{message}\"", c.name),
        _ => c.name.clone(),
    }
}

fn is_error(c: &ClientCommand) -> bool {
    c.name == ClientCommand::ERROR
        || (c.name == ClientCommand::TOAST && c.payload.get("level").is_some_and(|l| l == "error"))
}
