//! What an operator does with the queue (`app jobs retry|purge`): dead jobs run again, finished
//! ones deleted.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbErr, Value};

use super::store::{JobState, TABLE, now_ms};
use crate::db::stmt;

/// Puts dead job `id` back in the queue with all its attempts, to run at once; `false` when
/// there is no dead job `id`.
pub async fn retry(db: &impl ConnectionTrait, id: i64) -> Result<bool, DbErr> {
    retry_where(db, "id = ?", vec![id.into()])
        .await
        .map(|n| n == 1)
}

/// Puts every dead job back in the queue, as [`retry`] does; how many.
pub async fn retry_dead(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    retry_where(db, "1 = 1", vec![]).await
}

async fn retry_where(
    db: &impl ConnectionTrait,
    filter: &str,
    mut values: Vec<Value>,
) -> Result<u64, DbErr> {
    // A dead job keeps its key: another job may have taken it meanwhile, and then this one
    // goes back without it rather than break the key's promise.
    let sql = format!(
        "UPDATE {TABLE} SET state = 'pending', attempts = 0, run_at = ?, finished_at = NULL, \
         unique_key = CASE WHEN EXISTS (SELECT 1 FROM {TABLE} o WHERE o.name = {TABLE}.name \
         AND o.unique_key = {TABLE}.unique_key AND o.state IN ('pending', 'running')) \
         THEN NULL ELSE unique_key END \
         WHERE state = 'dead' AND {filter}"
    );
    values.insert(0, now_ms().into());
    let backend = db.get_database_backend();
    let done = db.execute_raw(stmt(backend, &sql, values)).await?;
    super::worker::WAKE.notify_waiters();
    Ok(done.rows_affected())
}

/// Deletes the jobs in `state` (done or dead: waiting and running ones are never purged) that
/// ended more than `older_than` ago; how many.
pub async fn purge(
    db: &impl ConnectionTrait,
    state: JobState,
    older_than: Duration,
) -> Result<u64, DbErr> {
    if !matches!(state, JobState::Done | JobState::Dead) {
        return Err(DbErr::Custom(format!(
            "only done or dead jobs are purged, not {} ones",
            state.as_str()
        )));
    }
    let before = now_ms() - older_than.as_millis() as i64;
    let sql = format!("DELETE FROM {TABLE} WHERE state = ? AND finished_at <= ?");
    let backend = db.get_database_backend();
    let done = db
        .execute_raw(stmt(
            backend,
            &sql,
            vec![state.as_str().into(), before.into()],
        ))
        .await?;
    Ok(done.rows_affected())
}
