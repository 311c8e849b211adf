//! Recurring jobs: a job enqueued once per period of its [`Schedule`], by one node whichever
//! runs. Each schedule's next firing is a row of `ferrule_job_schedules`; a node that finds it
//! due moves it on with a compare-and-set and enqueues the job in the same transaction, so of
//! several nodes exactly one fires each period, and a firing is never lost halfway.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};

use super::store::now_ms;
use super::{Job, Options, enqueue_with};
use crate::db::stmt;

/// When a recurring job fires: every `period`, on the multiples of it since the Unix epoch
/// (UTC), moved by an offset. All nodes compute the same times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    period_ms: i64,
    offset_ms: i64,
}

impl Schedule {
    /// Every `period` (a millisecond at least): `every(Duration::from_secs(3600))` fires on
    /// the hour.
    pub fn every(period: Duration) -> Self {
        Self {
            period_ms: (period.as_millis() as i64).max(1),
            offset_ms: 0,
        }
    }

    /// Every day at `hour:minute` UTC.
    pub fn daily_at(hour: u32, minute: u32) -> Self {
        Self::every(Duration::from_secs(24 * 3600)).offset(Duration::from_secs(
            u64::from(hour % 24) * 3600 + u64::from(minute % 60) * 60,
        ))
    }

    /// The same period, its firings moved `by` later (`every(1 h).offset(15 min)`: at a quarter
    /// past each hour).
    pub fn offset(mut self, by: Duration) -> Self {
        self.offset_ms = (by.as_millis() as i64).rem_euclid(self.period_ms);
        self
    }

    /// The first firing strictly after `now` (Unix ms).
    pub fn next_after(&self, now: i64) -> i64 {
        ((now - self.offset_ms).div_euclid(self.period_ms) + 1) * self.period_ms + self.offset_ms
    }
}

type Fire = Arc<
    dyn for<'a> Fn(&'a DatabaseTransaction, i64) -> BoxFuture<'a, Result<(), crate::Error>>
        + Send
        + Sync,
>;

/// One recurring job of the app.
#[derive(Clone)]
pub(crate) struct Recurring {
    pub(crate) name: &'static str,
    schedule: Schedule,
    fire: Fire,
}

impl Recurring {
    /// `J` made by `make` from the time of each firing, on `schedule`.
    pub(crate) fn new<J: Job>(
        schedule: Schedule,
        make: impl Fn(SystemTime) -> J + Send + Sync + 'static,
    ) -> Self {
        let make = Arc::new(make);
        let fire: Fire = Arc::new(move |txn, at| {
            let make = make.clone();
            Box::pin(async move {
                let time = SystemTime::UNIX_EPOCH + Duration::from_millis(at.max(0) as u64);
                enqueue_with(txn, make(time), Options::default()).await?;
                Ok(())
            })
        });
        Self {
            name: J::NAME,
            schedule,
            fire,
        }
    }
}

const TABLE: &str = "ferrule_job_schedules";

/// Fires each of `recurring` that is due; returns how many this node fired.
pub(crate) async fn tick(
    db: &DatabaseConnection,
    recurring: &[Recurring],
) -> Result<usize, crate::Error> {
    let mut fired = 0;
    for r in recurring {
        if fire_if_due(db, r).await? {
            fired += 1;
        }
    }
    Ok(fired)
}

async fn fire_if_due(db: &DatabaseConnection, r: &Recurring) -> Result<bool, crate::Error> {
    let backend = db.get_database_backend();
    let now = now_ms();
    let next = r.schedule.next_after(now);
    // First sight of the schedule: it fires at its next time, not at once.
    let sql =
        format!("INSERT INTO {TABLE} (name, next_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING");
    db.execute_raw(stmt(backend, &sql, vec![r.name.into(), next.into()]))
        .await?;
    let sql = format!("SELECT next_at FROM {TABLE} WHERE name = ?");
    let Some(row) = db
        .query_one_raw(stmt(backend, &sql, vec![r.name.into()]))
        .await?
    else {
        return Ok(false);
    };
    let due: i64 = row.try_get("", "next_at")?;
    // Read after the row: another node may have moved it on since `now`, never past this.
    let now = now_ms();
    let next = r.schedule.next_after(now);
    let set = format!("UPDATE {TABLE} SET next_at = ? WHERE name = ? AND next_at = ?");
    if due > next + r.schedule.period_ms {
        // Further than this schedule ever sets it, even from a node whose clock is a period
        // ahead: the schedule changed to a shorter period, its next time is the new one's.
        db.execute_raw(stmt(
            backend,
            &set,
            vec![next.into(), r.name.into(), due.into()],
        ))
        .await?;
        return Ok(false);
    }
    if due > now {
        return Ok(false);
    }
    // Due: the node whose compare-and-set moves it on fires it, in the same transaction.
    let txn = db.begin().await?;
    let moved = txn
        .execute_raw(stmt(
            backend,
            &set,
            vec![next.into(), r.name.into(), due.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    if !moved {
        txn.rollback().await?;
        return Ok(false);
    }
    (r.fire)(&txn, due).await?;
    txn.commit()
        .await
        .map_err(|e: DbErr| crate::Error::from(e))?;
    tracing::debug!(job = r.name, at = due, "recurring job enqueued");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firings_fall_on_the_period_and_its_offset() {
        let hourly = Schedule::every(Duration::from_secs(3600));
        assert_eq!(hourly.next_after(0), 3_600_000);
        assert_eq!(hourly.next_after(3_599_999), 3_600_000);
        assert_eq!(hourly.next_after(3_600_000), 7_200_000, "strictly after");
        let quarter_past = hourly.offset(Duration::from_secs(900));
        assert_eq!(quarter_past.next_after(0), 900_000);
        assert_eq!(quarter_past.next_after(900_000), 4_500_000);
        let three_am = Schedule::daily_at(3, 0);
        let day = 86_400_000;
        assert_eq!(three_am.next_after(day + 1), day + 3 * 3_600_000);
        assert_eq!(
            three_am.next_after(day + 4 * 3_600_000),
            2 * day + 3 * 3_600_000
        );
    }
}
