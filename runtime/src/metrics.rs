//! Where an event's time goes, phase by phase: cheap counters the bridge always keeps (two
//! relaxed atomic adds per phase), read by benchmarks and by apps that export metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A phase of the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Decoding the event, finding the handler, decoding the payload.
    Decode,
    /// Waiting for and taking the token's state lock.
    Lock,
    /// Building the synthetic request.
    BuildRequest,
    /// Middleware on the way in, up to the handler (includes session and user loading).
    ChainIn,
    /// Resolving the user from the session (part of `ChainIn`; includes the session read).
    User,
    /// The handler itself.
    Handler,
    /// Middleware on the way out (includes saving a changed session).
    ChainOut,
    /// Serializing the state, computing the delta, storing it.
    Commit,
}

const PHASES: [Phase; 8] = [
    Phase::Decode,
    Phase::Lock,
    Phase::BuildRequest,
    Phase::ChainIn,
    Phase::User,
    Phase::Handler,
    Phase::ChainOut,
    Phase::Commit,
];

impl Phase {
    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Decode => "decode",
            Self::Lock => "lock",
            Self::BuildRequest => "build_request",
            Self::ChainIn => "chain_in",
            Self::User => "user",
            Self::Handler => "handler",
            Self::ChainOut => "chain_out",
            Self::Commit => "commit",
        }
    }

    fn index(self) -> usize {
        PHASES.iter().position(|p| *p == self).unwrap_or(0)
    }
}

struct Counter {
    nanos: AtomicU64,
    count: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: Counter = Counter {
    nanos: AtomicU64::new(0),
    count: AtomicU64::new(0),
};

static COUNTERS: [Counter; 8] = [ZERO; 8];

/// Adds the time since `started` to `phase`.
pub(crate) fn record(phase: Phase, started: Instant) {
    let c = &COUNTERS[phase.index()];
    c.nanos
        .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    c.count.fetch_add(1, Ordering::Relaxed);
}

/// Totals per phase since start (or the last [`reset`]): `(name, total nanoseconds, count)`.
pub fn snapshot() -> Vec<(&'static str, u64, u64)> {
    PHASES
        .iter()
        .map(|p| {
            let c = &COUNTERS[p.index()];
            (
                p.name(),
                c.nanos.load(Ordering::Relaxed),
                c.count.load(Ordering::Relaxed),
            )
        })
        .collect()
}

/// Sets every counter to zero.
pub fn reset() {
    for c in &COUNTERS {
        c.nanos.store(0, Ordering::Relaxed);
        c.count.store(0, Ordering::Relaxed);
    }
}
