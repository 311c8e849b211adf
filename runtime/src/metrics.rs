//! Where an event's time goes, phase by phase, and how events end: each phase is timed once and
//! the measure goes three ways, to the running sums the benchmark reads ([`snapshot`]), to the
//! `metrics` facade (`ferrule_event_phase_seconds`), and as a child span of the event's
//! `ferrule.event` span. Without a recorder or a subscriber the facade and the span cost a
//! check each; the sums are two relaxed atomic adds.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::Error;

/// Histogram of each phase's seconds, labelled `phase` ([`Phase::name`]).
pub const PHASE_SECONDS: &str = "ferrule_event_phase_seconds";
/// Counter of events answered, labelled `outcome`: `ok`, `refused`, `invalid` or `failed`.
pub const EVENTS_TOTAL: &str = "ferrule_events_total";
/// Counter of what went wrong in events, labelled `kind` ([`ErrorKind::name`]).
pub const EVENT_ERRORS_TOTAL: &str = "ferrule_event_errors_total";
/// Gauge of the sockets connected to this process.
pub const SOCKETS: &str = "ferrule_sockets";
/// Gauge of the events waiting in the sockets' queues of this process, all sockets together.
pub const QUEUED_EVENTS: &str = "ferrule_queued_events";

/// Gauge of the durable jobs in the database, labelled `state` (`pending`, `running`, `dead`):
/// the queue's depth and the dead-letter list, read by each worker process every few seconds
/// (the same numbers on every node: aggregate with `max`, not `sum`).
pub const JOBS_QUEUED: &str = "ferrule_jobs_queued";
/// Counter of jobs' attempts ended by this process, labelled `job` and `outcome`: `done`,
/// `retry` (failed, will run again), `dead` (failed on its last attempt) or `released` (handed
/// back unfinished at shutdown).
pub const JOBS_TOTAL: &str = "ferrule_jobs_total";
/// Counter of jobs' failed attempts (an error or a panic), labelled `job`.
pub const JOB_FAILURES_TOTAL: &str = "ferrule_job_failures_total";
/// Histogram of the seconds one attempt of a job took, labelled `job`.
pub const JOB_SECONDS: &str = "ferrule_job_seconds";

/// The target of the per-event log line and of the phase spans: `ferrule::event=debug` turns
/// both on.
pub const PHASE_TARGET: &str = "ferrule::event";

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
    /// A short name for tables, metric labels and span names.
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

    /// Starts timing this phase, as a child span of the current one (the event's), at level
    /// `debug` under [`PHASE_TARGET`]: the default filter skips it for the price of a check.
    pub(crate) fn start(self) -> Timing {
        // Span names are static metadata: one literal per phase.
        let span = match self {
            Self::Decode => tracing::debug_span!(target: PHASE_TARGET, "decode"),
            Self::Lock => tracing::debug_span!(target: PHASE_TARGET, "lock"),
            Self::BuildRequest => tracing::debug_span!(target: PHASE_TARGET, "build_request"),
            Self::ChainIn => tracing::debug_span!(target: PHASE_TARGET, "chain_in"),
            Self::User => tracing::debug_span!(target: PHASE_TARGET, "user"),
            Self::Handler => tracing::debug_span!(target: PHASE_TARGET, "handler"),
            Self::ChainOut => tracing::debug_span!(target: PHASE_TARGET, "chain_out"),
            Self::Commit => tracing::debug_span!(target: PHASE_TARGET, "commit"),
        };
        Timing {
            phase: self,
            started: Instant::now(),
            span,
        }
    }
}

/// A phase under way: its start and its span, which closes when the phase is [`Timing::end`]ed.
pub(crate) struct Timing {
    phase: Phase,
    started: Instant,
    span: tracing::Span,
}

impl Timing {
    /// The phase's span, to run the phase's own work in (its logs then name it).
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Ends the phase: its time is recorded and its span closed.
    pub(crate) fn end(self) {
        record(self.phase, self.started);
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
    let elapsed = started.elapsed();
    let c = &COUNTERS[phase.index()];
    c.nanos
        .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    c.count.fetch_add(1, Ordering::Relaxed);
    // Literal labels: the facade then makes no key per call (a label from `phase.name()`
    // would cost an allocation and a hash each time, eight times an event).
    let histogram = match phase {
        Phase::Decode => ::metrics::histogram!(PHASE_SECONDS, "phase" => "decode"),
        Phase::Lock => ::metrics::histogram!(PHASE_SECONDS, "phase" => "lock"),
        Phase::BuildRequest => ::metrics::histogram!(PHASE_SECONDS, "phase" => "build_request"),
        Phase::ChainIn => ::metrics::histogram!(PHASE_SECONDS, "phase" => "chain_in"),
        Phase::User => ::metrics::histogram!(PHASE_SECONDS, "phase" => "user"),
        Phase::Handler => ::metrics::histogram!(PHASE_SECONDS, "phase" => "handler"),
        Phase::ChainOut => ::metrics::histogram!(PHASE_SECONDS, "phase" => "chain_out"),
        Phase::Commit => ::metrics::histogram!(PHASE_SECONDS, "phase" => "commit"),
    };
    histogram.record(elapsed.as_secs_f64());
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

/// What went wrong in an event, the `kind` label of [`EVENT_ERRORS_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not a valid event: malformed, an unknown state, handler or socket event, a bad payload.
    Invalid,
    /// Refused before it ran: the socket's queue was full.
    Overloaded,
    /// The app said no: a handler's or middleware's error for the user (4xx), a guard.
    Refused,
    /// A service the app needs (the database, Redis, the state store) did not answer.
    Unavailable,
    /// A bug: a handler's internal error.
    Internal,
    /// A handler or middleware panicked.
    Panic,
}

impl ErrorKind {
    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Overloaded => "overloaded",
            Self::Refused => "refused",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::Panic => "panic",
        }
    }

    /// The kind of an error a handler, a middleware or the state store returned.
    pub(crate) fn of(e: &Error) -> Self {
        match e {
            Error::Unavailable(_) => Self::Unavailable,
            Error::Internal(_) => Self::Internal,
            _ => Self::Refused,
        }
    }

    fn outcome(self) -> Outcome {
        match self {
            Self::Invalid => Outcome::Invalid,
            Self::Overloaded | Self::Refused => Outcome::Refused,
            Self::Unavailable | Self::Internal | Self::Panic => Outcome::Failed,
        }
    }
}

/// How an event ended, the `outcome` label of [`EVENTS_TOTAL`]; the worst of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Refused,
    Invalid,
    Failed,
}

impl Outcome {
    /// The count of events with this outcome; literal labels, as in [`record`].
    fn counter(self) -> ::metrics::Counter {
        match self {
            Self::Ok => ::metrics::counter!(EVENTS_TOTAL, "outcome" => "ok"),
            Self::Refused => ::metrics::counter!(EVENTS_TOTAL, "outcome" => "refused"),
            Self::Invalid => ::metrics::counter!(EVENTS_TOTAL, "outcome" => "invalid"),
            Self::Failed => ::metrics::counter!(EVENTS_TOTAL, "outcome" => "failed"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Invalid => "invalid",
            Self::Failed => "failed",
        }
    }
}

tokio::task_local! {
    /// The outcome of the event being handled, raised by each error it meets.
    static OUTCOME: Cell<Outcome>;
}

/// Runs `event` (the handling of one event) and counts it once it is done, with the outcome
/// its errors ([`error`]) gave it. An event given up (the future dropped) is not counted.
///
/// A combinator, not an `async` block: one would hold `event` twice (as what it captured and as
/// what it awaits), and every event's future is allocated and written at this size.
pub(crate) fn counted<T>(event: impl Future<Output = T>) -> impl Future<Output = T> {
    use futures_util::FutureExt;
    OUTCOME.scope(
        Cell::new(Outcome::Ok),
        event.map(|out| {
            let outcome = OUTCOME.with(Cell::get);
            // One line per event for whoever asks (`FERRULE_LOG=info,ferrule::event=debug`),
            // with the event's span around it.
            tracing::debug!(target: PHASE_TARGET, outcome = outcome.name(), "event handled");
            outcome.counter().increment(1);
            out
        }),
    )
}

/// Counts an error of `kind` in the event being handled (see [`counted`]).
pub(crate) fn error(kind: ErrorKind) {
    ::metrics::counter!(EVENT_ERRORS_TOTAL, "kind" => kind.name()).increment(1);
    let raised = OUTCOME.try_with(|c| c.set(c.get().max(kind.outcome())));
    if raised.is_err() {
        // Refused before it was queued, so never handled: counted as an event here.
        kind.outcome().counter().increment(1);
    }
}

/// Adds `by` (negative: removes) to gauge `name`.
pub(crate) fn gauge_add(name: &'static str, by: f64) {
    ::metrics::gauge!(name).increment(by);
}

/// One in gauge `name` for as long as it lives: counted when made, taken back when dropped,
/// however its owner ends (a socket gone, an event dropped unrun with its queue).
pub(crate) struct Counted(&'static str);

impl Counted {
    /// Counts one more in `name`.
    pub(crate) fn in_gauge(name: &'static str) -> Self {
        gauge_add(name, 1.0);
        Self(name)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        gauge_add(self.0, -1.0);
    }
}
