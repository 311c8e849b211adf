//! Flow control of a socket's answers: the client confirms what it has read, and answers wait
//! while more than the budget (`max_unread_bytes`) is unconfirmed.
//!
//! Engine.IO keeps a socket's outgoing packets in memory and says nothing when they leave, so a
//! client that stops reading would have every answer made for it held for it. After every
//! quarter of the budget, the server sends a [`FLOW`] marker carrying a random nonce and asks
//! for an ack; the client acks it with the nonce as it reads it. Engine.IO and TCP deliver in
//! order, so the ack proves the client read every byte before the marker, and the nonce cannot
//! be answered without reading that far.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::Value;
use socketioxide::ack::AckStream;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Socket;
use socketioxide::{SendError, SocketError};
use tokio_util::sync::CancellationToken;

pub(crate) use crate::protocol::FLOW;

/// One marker on its way: where it stands in the answers, its nonce, and the client's ack (a
/// single socket's ack, which socketioxide never routes through the adapter).
struct Marker {
    at: u64,
    nonce: String,
    ack: Pin<Box<AckStream<Value>>>,
}

/// Why an answer could not be given room.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoRoom {
    /// The socket is gone.
    Gone,
    /// The client has not confirmed reading `unread` bytes within the patience.
    Unread { unread: u64 },
}

/// The answer bytes one socket has sent and the client has confirmed.
pub(crate) struct Flow<A: Adapter> {
    budget: u64,
    step: u64,
    sent: u64,
    confirmed: u64,
    /// `sent` when the last marker went.
    marked: u64,
    markers: VecDeque<Marker>,
    patience: Duration,
    socket: std::marker::PhantomData<fn(A)>,
}

impl<A: Adapter> Flow<A> {
    /// A budget of `budget` unconfirmed bytes (0: no flow control); a marker's ack is awaited
    /// for `patience`.
    pub(crate) fn new(budget: u64, patience: Duration) -> Self {
        Self {
            budget,
            step: (budget / 4).max(1),
            sent: 0,
            confirmed: 0,
            marked: 0,
            markers: VecDeque::new(),
            patience,
            socket: std::marker::PhantomData,
        }
    }

    /// Bytes sent that the client has not confirmed reading.
    pub(crate) fn unread(&self) -> u64 {
        self.sent - self.confirmed
    }

    /// Waits until an answer of `size` bytes fits the budget: everything sent before it is
    /// confirmed, or the unconfirmed bytes and it stay within the budget. An answer larger than
    /// the budget still goes once the client has read everything before it.
    pub(crate) async fn room_for(
        &mut self,
        socket: &Arc<Socket<A>>,
        size: u64,
        deadline: tokio::time::Instant,
        gone: &CancellationToken,
    ) -> Result<(), NoRoom> {
        loop {
            self.settle();
            if fits(self.budget, self.unread(), size) {
                return Ok(());
            }
            // The bytes sent must end in a marker on its way, or no ack could ever confirm them.
            let covered = self.markers.back().is_some_and(|m| m.at == self.sent);
            if !covered && !self.mark(socket) {
                // The send buffer is full: wait for it a little, then place the marker.
                tokio::select! {
                    () = gone.cancelled() => return Err(NoRoom::Gone),
                    () = tokio::time::sleep_until(deadline) => {
                        return Err(NoRoom::Unread { unread: self.unread() });
                    }
                    () = tokio::time::sleep(Duration::from_millis(10)) => continue,
                }
            }
            let Some(front) = self.markers.front_mut() else {
                continue;
            };
            let acked = tokio::select! {
                () = gone.cancelled() => return Err(NoRoom::Gone),
                () = tokio::time::sleep_until(deadline) => {
                    return Err(NoRoom::Unread { unread: self.unread() });
                }
                acked = front.ack.as_mut() => acked,
            };
            if let Some(marker) = self.markers.pop_front() {
                self.confirm(marker, acked);
            }
        }
    }

    /// Counts an answer of `size` bytes as sent, and sends a marker after every step.
    pub(crate) fn sent(&mut self, socket: &Arc<Socket<A>>, size: u64) {
        self.sent += size;
        if self.budget > 0 && self.sent - self.marked >= self.step {
            // A full send buffer is fine here: `room_for` places the marker when it is needed.
            self.mark(socket);
        }
    }

    /// Takes in the acks that have arrived, in order.
    fn settle(&mut self) {
        while let Some(front) = self.markers.front_mut() {
            let Some(acked) = front.ack.as_mut().now_or_never() else {
                return;
            };
            if let Some(marker) = self.markers.pop_front() {
                self.confirm(marker, acked);
            }
        }
    }

    fn confirm(&mut self, marker: Marker, acked: Result<Value, socketioxide::AckError>) {
        match acked {
            Ok(v) if nonce_of(&v) == Some(marker.nonce.as_str()) => {
                self.confirmed = self.confirmed.max(marker.at);
            }
            Ok(v) => {
                tracing::warn!(ack = %v, "a flow marker acked with the wrong nonce; not counted")
            }
            // Timed out, or the socket closed: a later marker confirms these bytes instead.
            Err(e) => tracing::debug!(error = %e, "a flow marker was not acked"),
        }
    }

    /// Sends a marker at the current position; `false` when the send buffer is full.
    fn mark(&mut self, socket: &Arc<Socket<A>>) -> bool {
        let nonce = crate::net::random_hex_128();
        match socket
            .timeout(self.patience)
            .emit_with_ack::<_, Value>(FLOW, &nonce)
        {
            Ok(ack) => {
                self.markers.push_back(Marker {
                    at: self.sent,
                    nonce,
                    ack: Box::pin(ack),
                });
                self.marked = self.sent;
                true
            }
            Err(SendError::Socket(SocketError::InternalChannelFull)) => false,
            Err(e) => {
                tracing::debug!(error = %e, "could not send a flow marker");
                false
            }
        }
    }
}

/// Whether an answer of `size` bytes may go with `unread` bytes unconfirmed: within the budget,
/// or alone (everything before it read), or without a budget (0).
fn fits(budget: u64, unread: u64, size: u64) -> bool {
    budget == 0 || unread == 0 || unread + size <= budget
}

/// The nonce in a marker's ack: the first argument, or the value itself.
fn nonce_of(v: &Value) -> Option<&str> {
    match v {
        Value::Array(args) => args.first().and_then(Value::as_str),
        other => other.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_fits_up_to_the_budget_and_not_one_byte_past() {
        assert!(fits(100, 60, 40), "at the limit");
        assert!(!fits(100, 60, 41), "one past it");
        assert!(!fits(100, 1, 100));
        assert!(
            fits(100, 0, 5000),
            "alone, an answer larger than the budget goes"
        );
        assert!(fits(0, u64::MAX / 2, 5000), "0: no budget");
    }

    #[test]
    fn a_nonce_is_read_from_the_ack_arguments() {
        assert_eq!(nonce_of(&serde_json::json!(["abc"])), Some("abc"));
        assert_eq!(nonce_of(&serde_json::json!("abc")), Some("abc"));
        assert_eq!(nonce_of(&serde_json::json!([])), None);
        assert_eq!(nonce_of(&serde_json::json!([1])), None);
    }
}
