//! The `ferrule_jobs` table: claiming due jobs under a lease, renewing it, and writing what an
//! attempt came to. Every write by a worker names its claim (the worker and the attempt), so a
//! worker whose lease ran out cannot overwrite what the job's next worker wrote.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Value};

use crate::db::stmt;

/// The table, made by the runtime's fifth migration.
pub(crate) const TABLE: &str = "ferrule_jobs";

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobState {
    /// Waiting for its time (`run_at`) and a worker; a failed job waiting for its retry too.
    Pending,
    /// Claimed by a worker, whose lease (`locked_until`) it holds.
    Running,
    /// Ran to the end.
    Done,
    /// Failed on its last attempt (or cannot be decoded): the dead-letter list.
    Dead,
}

impl JobState {
    /// The name stored in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    /// The state stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Running, Self::Done, Self::Dead]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// One job as stored, for lists and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// Its id.
    pub id: i64,
    /// Its kind's [`Job::NAME`](super::Job::NAME).
    pub name: String,
    /// Its payload, JSON.
    pub payload: String,
    /// Where it is.
    pub state: JobState,
    /// How many times it was started.
    pub attempts: u32,
    /// How many times it may be started.
    pub max_attempts: u32,
    /// When it is due, Unix milliseconds.
    pub run_at: i64,
    /// The error of its last failed attempt.
    pub last_error: Option<String>,
    /// Its uniqueness key, if it was enqueued with one.
    pub unique_key: Option<String>,
}

const COLUMNS: &str =
    "id, name, payload, state, attempts, max_attempts, run_at, last_error, unique_key";

impl JobRow {
    fn read(row: &QueryResult) -> Result<Self, DbErr> {
        let state: String = row.try_get("", "state")?;
        Ok(Self {
            id: row.try_get("", "id")?,
            name: row.try_get("", "name")?,
            payload: row.try_get("", "payload")?,
            state: JobState::parse(&state)
                .ok_or_else(|| DbErr::Custom(format!("unknown job state `{state}`")))?,
            attempts: row.try_get::<i64>("", "attempts")?.max(0) as u32,
            max_attempts: row.try_get::<i64>("", "max_attempts")?.max(0) as u32,
            run_at: row.try_get("", "run_at")?,
            last_error: row.try_get("", "last_error")?,
            unique_key: row.try_get("", "unique_key")?,
        })
    }
}

/// Job `id`, if it exists.
pub async fn find(db: &impl ConnectionTrait, id: i64) -> Result<Option<JobRow>, DbErr> {
    let sql = format!("SELECT {COLUMNS} FROM {TABLE} WHERE id = ?");
    let backend = db.get_database_backend();
    db.query_one_raw(stmt(backend, &sql, vec![id.into()]))
        .await?
        .map(|r| JobRow::read(&r))
        .transpose()
}

/// The jobs in `state` (all of them without one), oldest first, `limit` at most.
pub async fn list(
    db: &impl ConnectionTrait,
    state: Option<JobState>,
    limit: u64,
) -> Result<Vec<JobRow>, DbErr> {
    let backend = db.get_database_backend();
    let (filter, mut values): (&str, Vec<Value>) = match state {
        Some(s) => ("WHERE state = ?", vec![s.as_str().into()]),
        None => ("", vec![]),
    };
    values.push((limit.min(i64::MAX as u64) as i64).into());
    let sql = format!("SELECT {COLUMNS} FROM {TABLE} {filter} ORDER BY id LIMIT ?");
    db.query_all_raw(stmt(backend, &sql, values))
        .await?
        .iter()
        .map(JobRow::read)
        .collect()
}

/// How many jobs are in each state.
pub async fn counts(
    db: &impl ConnectionTrait,
) -> Result<std::collections::BTreeMap<JobState, u64>, DbErr> {
    let sql = format!("SELECT state, COUNT(*) AS n FROM {TABLE} GROUP BY state");
    let backend = db.get_database_backend();
    let mut out = std::collections::BTreeMap::new();
    for row in db.query_all_raw(stmt(backend, &sql, vec![])).await? {
        let state: String = row.try_get("", "state")?;
        if let Some(s) = JobState::parse(&state) {
            out.insert(s, row.try_get::<i64>("", "n")?.max(0) as u64);
        }
    }
    Ok(out)
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A job a worker claimed: what it runs, and the attempt its writes are fenced by.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) payload: String,
    pub(crate) attempts: i64,
    pub(crate) max_attempts: i64,
}

/// Claims up to `limit` due jobs among `names` for worker `node`, for `lease`: pending ones
/// whose time has come, and running ones whose worker's lease ran out (it vanished). Each
/// claim counts as an attempt. PostgreSQL skips the rows another worker is claiming at the
/// same moment (`FOR UPDATE SKIP LOCKED`); SQLite runs one writer at a time, so its one
/// statement is claim enough.
pub(crate) async fn claim(
    db: &impl ConnectionTrait,
    names: &[&str],
    node: &str,
    limit: usize,
    lease: Duration,
) -> Result<Vec<Claim>, DbErr> {
    if names.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let now = now_ms();
    let marks = vec!["?"; names.len()].join(", ");
    let lock = if backend == DbBackend::Postgres {
        "FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE {TABLE} SET state = 'running', attempts = attempts + 1, locked_until = ?, \
         locked_by = ? WHERE id IN (SELECT id FROM {TABLE} WHERE name IN ({marks}) AND \
         ((state = 'pending' AND run_at <= ?) OR (state = 'running' AND locked_until < ?)) \
         ORDER BY run_at, id LIMIT ? {lock}) \
         RETURNING id, name, payload, attempts, max_attempts"
    );
    let mut values: Vec<Value> = vec![(now + lease.as_millis() as i64).into(), node.into()];
    values.extend(names.iter().map(|n| Value::from(*n)));
    values.extend([now.into(), now.into(), (limit as i64).into()]);
    let mut claims = db
        .query_all_raw(stmt(backend, &sql, values))
        .await?
        .iter()
        .map(|row| {
            Ok(Claim {
                id: row.try_get("", "id")?,
                name: row.try_get("", "name")?,
                payload: row.try_get("", "payload")?,
                attempts: row.try_get("", "attempts")?,
                max_attempts: row.try_get("", "max_attempts")?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    claims.sort_by_key(|c| c.id);
    Ok(claims)
}

/// The condition every write of a claim's worker carries.
const FENCE: &str = "id = ? AND state = 'running' AND locked_by = ? AND attempts = ?";

fn fence(claim: &Claim, node: &str) -> [Value; 3] {
    [claim.id.into(), node.into(), claim.attempts.into()]
}

/// Runs `sql` (ending in [`FENCE`]) with `values` then the claim's fence; whether it still
/// held the job.
async fn fenced(
    db: &impl ConnectionTrait,
    sql: &str,
    mut values: Vec<Value>,
    claim: &Claim,
    node: &str,
) -> Result<bool, DbErr> {
    values.extend(fence(claim, node));
    let backend = db.get_database_backend();
    let done = db.execute_raw(stmt(backend, sql, values)).await?;
    Ok(done.rows_affected() == 1)
}

/// Extends the claim's lease to `lease` from now; `false` when the job is no longer ours.
pub(crate) async fn renew(
    db: &impl ConnectionTrait,
    claim: &Claim,
    node: &str,
    lease: Duration,
) -> Result<bool, DbErr> {
    let sql = format!("UPDATE {TABLE} SET locked_until = ? WHERE {FENCE}");
    let until = now_ms() + lease.as_millis() as i64;
    fenced(db, &sql, vec![until.into()], claim, node).await
}

/// Marks the claimed job done.
pub(crate) async fn finish(
    db: &impl ConnectionTrait,
    claim: &Claim,
    node: &str,
) -> Result<bool, DbErr> {
    let sql = format!(
        "UPDATE {TABLE} SET state = 'done', locked_until = NULL, locked_by = NULL, \
         finished_at = ? WHERE {FENCE}"
    );
    fenced(db, &sql, vec![now_ms().into()], claim, node).await
}

/// Writes a failed attempt: pending again at `retry_at` (Unix ms), or `dead` without one.
pub(crate) async fn fail(
    db: &impl ConnectionTrait,
    claim: &Claim,
    node: &str,
    error: &str,
    retry_at: Option<i64>,
) -> Result<bool, DbErr> {
    let now = now_ms();
    let (sql, values): (String, Vec<Value>) = match retry_at {
        Some(at) => (
            format!(
                "UPDATE {TABLE} SET state = 'pending', run_at = ?, last_error = ?, \
                 locked_until = NULL, locked_by = NULL WHERE {FENCE}"
            ),
            vec![at.into(), error.into()],
        ),
        None => (
            format!(
                "UPDATE {TABLE} SET state = 'dead', last_error = ?, locked_until = NULL, \
                 locked_by = NULL, finished_at = ? WHERE {FENCE}"
            ),
            vec![error.into(), now.into()],
        ),
    };
    fenced(db, &sql, values, claim, node).await
}

/// Hands the claimed job back unrun (a stopping worker): pending at once, its attempt not
/// counted.
pub(crate) async fn release(
    db: &impl ConnectionTrait,
    claim: &Claim,
    node: &str,
) -> Result<bool, DbErr> {
    let sql = format!(
        "UPDATE {TABLE} SET state = 'pending', attempts = attempts - 1, locked_until = NULL, \
         locked_by = NULL WHERE {FENCE}"
    );
    fenced(db, &sql, vec![], claim, node).await
}
