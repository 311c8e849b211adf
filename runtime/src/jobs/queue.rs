//! Where an app's jobs are kept: its database (the default: a job can be enqueued in the
//! transaction of the change that calls for it) or Redis ([`RedisJobs`](super::RedisJobs)).
//! [`Queue`] is the app's choice as a value; [`JobStore`] is anything a job can be enqueued in.

use std::collections::BTreeMap;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};

use super::enqueue::{Enqueued, NewJob};
use super::store::{self, Claim, JobRow, JobState};
use crate::Error;

/// Anything a job can be enqueued in with [`enqueue`](super::enqueue): a database connection or
/// transaction (the job exists only if it commits), or the app's [`Queue`].
pub trait JobStore: Sync {
    /// Stores `job` as its options say.
    #[doc(hidden)]
    fn store_job(&self, job: NewJob) -> impl Future<Output = Result<Enqueued, Error>> + Send;
}

impl<C: ConnectionTrait + Sync> JobStore for C {
    async fn store_job(&self, job: NewJob) -> Result<Enqueued, Error> {
        super::enqueue::insert(self, job).await
    }
}

impl JobStore for Queue {
    async fn store_job(&self, job: NewJob) -> Result<Enqueued, Error> {
        match &self.0 {
            Backend::Database(db) => super::enqueue::insert(db, job).await,
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => redis.enqueue(job).await,
        }
    }
}

/// The app's job queue: where its jobs are enqueued, claimed and listed. Handlers reach it as
/// an extension (`ctx.extension::<Queue>()`), jobs with
/// [`JobContext::queue`](super::JobContext::queue).
#[derive(Clone)]
pub struct Queue(Backend);

#[derive(Clone)]
enum Backend {
    Database(DatabaseConnection),
    #[cfg(feature = "redis")]
    Redis(super::RedisJobs),
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Backend::Database(_) => "Queue(database)",
            #[cfg(feature = "redis")]
            Backend::Redis(_) => "Queue(redis)",
        })
    }
}

impl Queue {
    /// Jobs in the `ferrule_jobs` table of `db`.
    pub fn database(db: DatabaseConnection) -> Self {
        Self(Backend::Database(db))
    }

    /// Jobs in Redis.
    #[cfg(feature = "redis")]
    pub fn redis(redis: super::RedisJobs) -> Self {
        Self(Backend::Redis(redis))
    }

    /// Whether the jobs are in Redis.
    pub fn is_redis(&self) -> bool {
        !matches!(self.0, Backend::Database(_))
    }

    /// Job `id`, if it exists.
    pub async fn find(&self, id: i64) -> Result<Option<JobRow>, Error> {
        match &self.0 {
            Backend::Database(db) => Ok(store::find(db, id).await?),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.find(id).await,
        }
    }

    /// The jobs in `state` (all of them without one), oldest first, `limit` at most.
    pub async fn list(&self, state: Option<JobState>, limit: u64) -> Result<Vec<JobRow>, Error> {
        match &self.0 {
            Backend::Database(db) => Ok(store::list(db, state, limit).await?),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.list(state, limit).await,
        }
    }

    /// How many jobs are in each state.
    pub async fn counts(&self) -> Result<BTreeMap<JobState, u64>, Error> {
        match &self.0 {
            Backend::Database(db) => Ok(store::counts(db).await?),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.counts().await,
        }
    }

    /// Puts dead job `id` back in the queue with all its attempts; `false` when there is no
    /// dead job `id`.
    pub async fn retry(&self, id: i64) -> Result<bool, Error> {
        match &self.0 {
            Backend::Database(db) => Ok(super::admin::retry(db, id).await?),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.retry(Some(id)).await.map(|n| n == 1),
        }
    }

    /// Puts every dead job back in the queue; how many.
    pub async fn retry_dead(&self) -> Result<u64, Error> {
        match &self.0 {
            Backend::Database(db) => Ok(super::admin::retry_dead(db).await?),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.retry(None).await,
        }
    }

    /// Deletes the done or dead jobs that ended more than `older_than` ago; how many.
    pub async fn purge(&self, state: JobState, older_than: Duration) -> Result<u64, Error> {
        if !matches!(state, JobState::Done | JobState::Dead) {
            return Err(Error::bad_request(format!(
                "only done or dead jobs are purged, not {} ones",
                state.as_str()
            )));
        }
        match &self.0 {
            Backend::Database(db) => Ok(super::admin::purge(db, state, older_than).await?),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.purge(state, older_than).await,
        }
    }

    /// Claims up to `limit` due jobs among `names` for worker `node`, for `lease`.
    pub(crate) async fn claim(
        &self,
        names: &[&str],
        node: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claim>, Error> {
        if names.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        match &self.0 {
            Backend::Database(db) => Ok(store::claim(db, names, node, limit, lease).await?),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.claim(names, node, limit, lease).await,
        }
    }

    /// Extends the claim's lease; `false` when the job is no longer ours.
    pub(crate) async fn renew(
        &self,
        claim: &Claim,
        node: &str,
        lease: Duration,
    ) -> Result<bool, Error> {
        match &self.0 {
            Backend::Database(db) => Ok(store::renew(db, claim, node, lease).await?),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.renew(claim, node, lease).await,
        }
    }

    /// Marks the claimed job done.
    pub(crate) async fn finish(&self, claim: &Claim, node: &str) -> Result<bool, Error> {
        match &self.0 {
            Backend::Database(db) => Ok(store::finish(db, claim, node).await?),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.finish(claim, node).await,
        }
    }

    /// Writes a failed attempt: pending again at `retry_at` (Unix ms), or dead without one.
    pub(crate) async fn fail(
        &self,
        claim: &Claim,
        node: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<bool, Error> {
        match &self.0 {
            Backend::Database(db) => Ok(store::fail(db, claim, node, error, retry_at).await?),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.fail(claim, node, error, retry_at).await,
        }
    }

    /// Hands the claimed job back unrun, its attempt not counted.
    pub(crate) async fn release(&self, claim: &Claim, node: &str) -> Result<bool, Error> {
        match &self.0 {
            Backend::Database(db) => Ok(store::release(db, claim, node).await?),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.release(claim, node).await,
        }
    }

    /// The next time schedule `name` fires, first set to `first` when it has none.
    pub(crate) async fn schedule_due(&self, name: &str, first: i64) -> Result<i64, Error> {
        match &self.0 {
            Backend::Database(db) => super::schedule::due_in_database(db, name, first).await,
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.schedule_due(name, first).await,
        }
    }

    /// Moves schedule `name` from `due` to `next` and, with `job`, enqueues it in the same
    /// step; `false` when another node moved it first.
    pub(crate) async fn schedule_move(
        &self,
        name: &str,
        due: i64,
        next: i64,
        job: Option<NewJob>,
    ) -> Result<bool, Error> {
        match &self.0 {
            Backend::Database(db) => {
                super::schedule::move_in_database(db, name, due, next, job).await
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.schedule_move(name, due, next, job).await,
        }
    }
}
