//! Durable jobs: typed work kept in the app's database (`ferrule_jobs`), or in Redis
//! ([`RedisJobs`], `jobs_store = "redis"`), until a worker has run it, so it survives a restart
//! or a deploy and runs once across several server processes.
//!
//! A job is a serde type with [`Job`]; the app registers it with
//! [`App::job`](crate::App::job) and anyone with the app's [`Queue`] (or, for the database's
//! queue, a connection or a transaction) enqueues it with [`enqueue`] (or [`enqueue_with`] and
//! [`Options`]: a time to run at, a uniqueness key, a limit of attempts). Workers start with
//! the server's lifespan, or alone in a worker process
//! ([`App::work_with_shutdown`](crate::App::work_with_shutdown), `app jobs work`): they claim
//! due jobs (on PostgreSQL with `FOR UPDATE SKIP LOCKED`), run them under a lease they renew,
//! retry a failed one with exponential backoff up to its limit and then leave it `dead`, with
//! its last error. Recurring jobs fire on a [`Schedule`]: a period or a cron expression.
//!
//! The queue is written on sea-orm rather than on a job crate: the kept one (`apalis` with
//! `apalis-sql` / `apalis-postgres`) is built on sqlx 0.8 while sea-orm 2 pulls sqlx 0.9, and
//! two sqlx versions cannot both link SQLite (`libsqlite3-sys` may be linked once). On our own
//! tables, a job can also be enqueued in the same transaction as the change that calls for it.

mod admin;
mod enqueue;
mod queue;
#[cfg(feature = "redis")]
mod redis_store;
mod schedule;
mod store;
mod worker;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sea_orm::DatabaseConnection;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use admin::{purge, retry, retry_dead};
#[doc(hidden)]
pub use enqueue::NewJob;
pub use enqueue::{Enqueued, OnDuplicate, Options, enqueue, enqueue_with};
pub use queue::{JobStore, Queue};
#[cfg(feature = "redis")]
pub use redis_store::RedisJobs;
pub(crate) use schedule::{Recurring, tick};
pub use schedule::{Schedule, ScheduleError};
pub use store::{JobRow, JobState, counts, find, list};
pub(crate) use worker::{Pool, PoolConfig};

/// A kind of durable job: its payload is the type itself, stored as JSON.
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Welcome {
///     user_id: i64,
/// }
///
/// impl ferrule::jobs::Job for Welcome {
///     const NAME: &'static str = "welcome";
///
///     async fn run(self, ctx: ferrule::jobs::JobContext) -> Result<(), ferrule::Error> {
///         let _db = ctx.db();
///         tracing::info!(user = self.user_id, "welcome");
///         Ok(())
///     }
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The name the job is stored under; keep it when the type is renamed.
    const NAME: &'static str;

    /// How many times the job runs at most (the first run included) unless enqueued with
    /// [`Options::max_attempts`].
    const MAX_ATTEMPTS: u32 = 5;

    /// Runs the job. An `Err` (or a panic) is retried after [`Job::backoff`] until the job's
    /// attempts are spent; then it is left `dead`.
    fn run(self, ctx: JobContext) -> impl Future<Output = Result<(), crate::Error>> + Send;

    /// How long to wait after failed attempt `attempt` (1 for the first): 1 s, doubled each
    /// time, 1 hour at most.
    fn backoff(attempt: u32) -> Duration {
        Duration::from_secs(1u64 << attempt.saturating_sub(1).min(12))
            .min(Duration::from_secs(3600))
    }
}

/// What a running job gets: the database, the app's extensions, which attempt this is.
#[derive(Clone)]
pub struct JobContext {
    db: DatabaseConnection,
    queue: Queue,
    extensions: Arc<http::Extensions>,
    id: i64,
    attempt: u32,
}

impl JobContext {
    /// The app's database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The app's job queue, to enqueue follow-up jobs where the workers look for them.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// A value the app shared with [`App::extension`](crate::App::extension) (a mailer, an
    /// HTTP client), if it did.
    pub fn extension<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.extensions.get::<T>().cloned()
    }

    /// The job's id in its queue.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Which attempt this is, 1 for the first run.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// How a registered job is run from its stored row.
type RunFn = Arc<dyn Fn(String, JobContext) -> BoxFuture<'static, Ran> + Send + Sync>;

/// What one attempt came to.
pub(crate) enum Ran {
    Done,
    /// Failed; retried while attempts are left, after the backoff.
    Failed(String, Duration),
    /// The payload does not decode as the job's type: it never will, so no retry.
    Undecodable(String),
}

/// One registered kind of job.
#[derive(Clone)]
pub(crate) struct Kind {
    pub(crate) run: RunFn,
}

/// The jobs an app registered ([`App::job`](crate::App::job)), by name.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    pub(crate) kinds: std::collections::BTreeMap<&'static str, Kind>,
    /// The recurring ones among them ([`App::recurring`](crate::App::recurring)).
    pub(crate) recurring: Vec<Recurring>,
}

impl Registry {
    /// Adds `J`; a second kind under one name is an error naming it.
    pub(crate) fn add<J: Job>(&mut self) -> Result<(), String> {
        let run: RunFn = Arc::new(|payload, ctx| {
            Box::pin(async move {
                let attempt = ctx.attempt;
                let job: J = match serde_json::from_str(&payload) {
                    Ok(job) => job,
                    Err(e) => return Ran::Undecodable(format!("the payload does not decode: {e}")),
                };
                // A panic fails the attempt like an error does.
                match AssertUnwindSafe(job.run(ctx)).catch_unwind().await {
                    Ok(Ok(())) => Ran::Done,
                    Ok(Err(e)) => Ran::Failed(e.to_string(), J::backoff(attempt)),
                    Err(panic) => Ran::Failed(
                        format!("panicked: {}", panic_message(panic.as_ref())),
                        J::backoff(attempt),
                    ),
                }
            })
        });
        let kind = Kind { run };
        if self.kinds.insert(J::NAME, kind).is_some() {
            return Err(format!("job `{}` is registered twice", J::NAME));
        }
        Ok(())
    }

    /// Adds `J` on `schedule` (and `J` itself unless it is registered); a second schedule of
    /// `J` is an error naming it.
    pub(crate) fn add_recurring<J: Job>(&mut self, recurring: Recurring) -> Result<(), String> {
        if self.recurring.iter().any(|r| r.name == J::NAME) {
            return Err(format!("job `{}` is scheduled twice", J::NAME));
        }
        if !self.kinds.contains_key(J::NAME) {
            self.add::<J>()?;
        }
        self.recurring.push(recurring);
        Ok(())
    }

    /// Whether no job is registered.
    pub(crate) fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }
}

/// A panic's message, when it has one.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
