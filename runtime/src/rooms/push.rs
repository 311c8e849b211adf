//! What a push may be, and what happens when one cannot be delivered: a push larger than the
//! limit goes as an instruction to fetch the states (`_resync`), and a socket that could not
//! take a push (its send buffer full) gets one as soon as it has room: either way no tab is
//! left showing what the push changed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError};

use crate::protocol::{ClientCommand, EVENT, StateUpdate};

/// How long a send waits for a socket that is not yet marked connected: socketioxide marks a
/// socket connected only after it queued the CONNECT answer, so a client can hear it and get
/// an answer or a push in before that, which then fails as if the socket were closed.
pub(crate) const CONNECTED_WAIT: Duration = Duration::from_secs(2);

/// How a push fits the push limit.
pub(super) enum Fits {
    AsItIs,
    /// Its delta is too large: the tabs are told to fetch their states instead.
    AsResync(StateUpdate),
    /// Even its client events alone are too large (its size).
    Not(u64),
}

/// How `update`, `size` bytes as JSON, fits `limit` (0: no limit).
pub(super) fn within_limit(update: &StateUpdate, size: u64, limit: u64) -> Fits {
    if limit == 0 || size <= limit {
        return Fits::AsItIs;
    }
    let mut resync = StateUpdate::final_for(update.id);
    resync.events = update.events.clone();
    resync.events.push(ClientCommand::resync());
    if update.delta.is_empty() || crate::protocol::wire_len(&resync) > limit {
        return Fits::Not(size);
    }
    tracing::debug!(
        size,
        limit,
        "a push too large to send as it is goes as a resync"
    );
    Fits::AsResync(resync)
}

/// The sockets of this node that missed a push and are being told to resync.
#[derive(Default)]
pub(super) struct Missed {
    resyncing: Mutex<HashSet<Sid>>,
}

impl Missed {
    /// Tells `socket`, which could not take a push, to fetch its states again as soon as its
    /// send buffer has room, waiting up to `patience` (the heartbeat closes a socket that reads
    /// nothing sooner, and a reconnect resyncs anyway), or as soon as it is marked connected. A socket already being told is not told
    /// twice: one resync covers every push it missed before it.
    pub(super) fn resync<A: Adapter>(self: &Arc<Self>, socket: SocketRef<A>, patience: Duration) {
        let fresh = self
            .resyncing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(socket.id);
        if !fresh {
            return;
        }
        let missed = Arc::clone(self);
        // Detached: it ends on its own (sent, socket gone, or patience spent) and logs what it
        // could not do.
        drop(tokio::spawn(async move {
            send_resync(&socket, patience).await;
            missed
                .resyncing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&socket.id);
        }));
    }
}

/// Sends `socket` a `_resync`, waiting while its send buffer is full, for up to `patience`.
async fn send_resync<A: Adapter>(socket: &SocketRef<A>, patience: Duration) {
    let mut update = StateUpdate::final_for(None);
    update.events.push(ClientCommand::resync());
    let started = tokio::time::Instant::now();
    let deadline = started + patience;
    let mut pause = Duration::from_millis(1);
    loop {
        match socket.emit(EVENT, &update) {
            Ok(()) => {
                tracing::debug!(sid = %socket.id, "a socket that missed a push was told to resync");
                return;
            }
            Err(SendError::Socket(SocketError::InternalChannelFull))
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(SendError::Socket(SocketError::Closed)) if started.elapsed() < CONNECTED_WAIT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(SendError::Socket(SocketError::Closed)) => {
                tracing::debug!(sid = %socket.id, "a socket that missed a push closed; its tab resyncs when it reconnects");
                return;
            }
            Err(e) => {
                tracing::warn!(
                    sid = %socket.id,
                    error = %e,
                    "a socket that missed a push could not be told to resync; its tab resyncs when it reconnects"
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ClientCommand;

    #[test]
    fn a_push_goes_as_it_is_up_to_the_limit_and_as_a_resync_one_byte_past() {
        let mut update = StateUpdate::final_for(None);
        let mut fields = serde_json::Map::new();
        fields.insert("text".into(), serde_json::json!("x".repeat(200)));
        update.delta.insert("s".into(), fields);
        let size = crate::protocol::wire_len(&update);
        assert!(matches!(within_limit(&update, size, size), Fits::AsItIs));
        assert!(
            matches!(within_limit(&update, size, 0), Fits::AsItIs),
            "0: no limit"
        );
        let Fits::AsResync(resync) = within_limit(&update, size, size - 1) else {
            panic!("one byte past the limit is no longer pushed as it is");
        };
        assert!(resync.delta.is_empty());
        assert_eq!(resync.events, vec![ClientCommand::resync()]);
        let mut events_only = StateUpdate::final_for(None);
        events_only.events = vec![ClientCommand::new(
            "big",
            serde_json::json!("x".repeat(200)),
        )];
        let size = crate::protocol::wire_len(&events_only);
        assert!(matches!(within_limit(&events_only, size, size - 1), Fits::Not(s) if s == size));
    }
}
