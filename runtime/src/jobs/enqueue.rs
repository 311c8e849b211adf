//! Putting a job in the queue: at once or at a time, with a uniqueness key, with a limit of
//! attempts. On any connection, a transaction's included: a job enqueued in one exists only if
//! it commits.

use std::time::{Duration, SystemTime};

use sea_orm::{ConnectionTrait, SqlErr, Value};

use super::Job;
use super::queue::JobStore;
use super::store::{TABLE, now_ms};
use crate::db::stmt;

/// What to do when a job with the same name and uniqueness key is still waiting or running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnDuplicate {
    /// Keep the job already there; the new one is not stored.
    #[default]
    Refuse,
    /// Put the new payload, time and limit into the job already there if it is still waiting;
    /// a running one is kept as it is, as with [`OnDuplicate::Refuse`].
    Replace,
}

/// How a job is enqueued ([`enqueue_with`]).
#[derive(Debug, Clone, Default)]
pub struct Options {
    run_at: Option<SystemTime>,
    unique_key: Option<String>,
    on_duplicate: OnDuplicate,
    max_attempts: Option<u32>,
}

impl Options {
    /// Runs the job at `time`, not before (a time past: at once).
    pub fn at(mut self, time: SystemTime) -> Self {
        self.run_at = Some(time);
        self
    }

    /// Runs the job `delay` from now, not before.
    pub fn after(self, delay: Duration) -> Self {
        self.at(SystemTime::now() + delay)
    }

    /// One job of this kind with `key` at a time, waiting or running: a second is refused
    /// (or, with [`Options::replace_duplicate`], merged into the first while it waits).
    pub fn unique(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// A duplicate of a waiting job replaces its payload, time and limit
    /// ([`OnDuplicate::Replace`]).
    pub fn replace_duplicate(mut self) -> Self {
        self.on_duplicate = OnDuplicate::Replace;
        self
    }

    /// Runs the job `n` times at most (at least once), instead of its [`Job::MAX_ATTEMPTS`].
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n.max(1));
        self
    }
}

/// What [`enqueue_with`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored as a new job, with this id.
    New(i64),
    /// A job with the same key was waiting or running (this id); nothing was stored.
    Duplicate(i64),
    /// The waiting job with the same key (this id) took the new payload.
    Replaced(i64),
}

impl Enqueued {
    /// The id of the job that will run.
    pub fn id(self) -> i64 {
        match self {
            Self::New(id) | Self::Duplicate(id) | Self::Replaced(id) => id,
        }
    }
}

/// A job ready to store: its kind, its payload as JSON and how it was enqueued.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct NewJob {
    pub(crate) name: &'static str,
    pub(crate) payload: String,
    /// Unix milliseconds.
    pub(crate) run_at: i64,
    pub(crate) max_attempts: i64,
    pub(crate) unique_key: Option<String>,
    pub(crate) on_duplicate: OnDuplicate,
}

impl NewJob {
    /// `job` with `options`.
    pub(crate) fn of<J: Job>(job: &J, options: Options) -> Result<Self, serde_json::Error> {
        Ok(Self {
            name: J::NAME,
            payload: serde_json::to_string(job)?,
            run_at: options.run_at.map_or_else(now_ms, |t| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64)
            }),
            max_attempts: i64::from(options.max_attempts.unwrap_or(J::MAX_ATTEMPTS).max(1)),
            unique_key: options.unique_key,
            on_duplicate: options.on_duplicate,
        })
    }
}

/// Enqueues `job` to run at once in `store`: a database connection or transaction, or the
/// app's [`Queue`](super::Queue).
pub async fn enqueue<J: Job>(store: &impl JobStore, job: J) -> Result<Enqueued, crate::Error> {
    enqueue_with(store, job, Options::default()).await
}

/// Enqueues `job` in `store` as `options` say.
pub async fn enqueue_with<J: Job>(
    store: &impl JobStore,
    job: J,
    options: Options,
) -> Result<Enqueued, crate::Error> {
    let new = NewJob::of(&job, options)?;
    let enqueued = store.store_job(new).await?;
    if !matches!(enqueued, Enqueued::Duplicate(_)) {
        super::worker::WAKE.notify_waiters();
    }
    Ok(enqueued)
}

/// Stores `job` in the `ferrule_jobs` table of `db`.
pub(crate) async fn insert(
    db: &impl ConnectionTrait,
    job: NewJob,
) -> Result<Enqueued, crate::Error> {
    let NewJob {
        name,
        payload,
        run_at,
        max_attempts,
        unique_key,
        on_duplicate,
    } = job;
    let now = now_ms();
    let backend = db.get_database_backend();
    let insert = format!(
        "INSERT INTO {TABLE} (name, payload, state, attempts, max_attempts, run_at, unique_key, \
         created_at) VALUES (?, ?, 'pending', 0, ?, ?, ?, ?)"
    );
    let values: Vec<Value> = vec![
        name.into(),
        payload.into(),
        max_attempts.into(),
        run_at.into(),
        unique_key.clone().into(),
        now.into(),
    ];
    let Some(key) = unique_key else {
        let sql = format!("{insert} RETURNING id");
        let row = db
            .query_one_raw(stmt(backend, &sql, values))
            .await?
            .ok_or_else(|| crate::Error::internal("the job's insert returned no id"))?;
        return Ok(Enqueued::New(row.try_get("", "id")?));
    };
    // The partial unique index on (name, unique_key) of live jobs decides, so two nodes
    // enqueueing the same key at once store one job. PostgreSQL is told what to do on a
    // conflict, so an enqueue inside a transaction does not abort it. SQLite is not: a
    // connection opened before the index was made checks an `ON CONFLICT` target against the
    // tables as it knew them and fails; a plain insert refused by the index is as good there
    // (a failed statement leaves its transaction as it was).
    let postgres = backend == sea_orm::DbBackend::Postgres;
    let sql = if postgres {
        format!(
            "{insert} ON CONFLICT (name, unique_key) WHERE state IN ('pending', 'running') \
             DO NOTHING RETURNING id"
        )
    } else {
        format!("{insert} RETURNING id")
    };
    let live = "name = ? AND unique_key = ? AND state IN ('pending', 'running')";
    // The live job may end between the insert and the look-up: then insert again.
    for _ in 0..3 {
        let inserted = match db.query_one_raw(stmt(backend, &sql, values.clone())).await {
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => None,
            other => other?,
        };
        if let Some(row) = inserted {
            return Ok(Enqueued::New(row.try_get("", "id")?));
        }
        let keyed = || vec![Value::from(name), Value::from(key.clone())];
        if on_duplicate == OnDuplicate::Replace {
            let replace = format!(
                "UPDATE {TABLE} SET payload = ?, run_at = ?, max_attempts = ? \
                 WHERE {live} AND state = 'pending' RETURNING id"
            );
            let mut v = vec![values[1].clone(), run_at.into(), max_attempts.into()];
            v.extend(keyed());
            if let Some(row) = db.query_one_raw(stmt(backend, &replace, v)).await? {
                return Ok(Enqueued::Replaced(row.try_get("", "id")?));
            }
        }
        let find = format!("SELECT id FROM {TABLE} WHERE {live}");
        if let Some(row) = db.query_one_raw(stmt(backend, &find, keyed())).await? {
            return Ok(Enqueued::Duplicate(row.try_get("", "id")?));
        }
    }
    Err(crate::Error::unavailable(
        "the job's uniqueness key kept changing hands while enqueueing",
    ))
}
