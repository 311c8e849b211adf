//! Recurring jobs: a job enqueued once per period of its [`Schedule`], by one node whichever
//! runs. Each schedule's next firing is kept beside the queue (a row of
//! `ferrule_job_schedules`, or a Redis key); a node that finds it due moves it on with a
//! compare-and-set and enqueues the job in the same step (a transaction, or one Lua script),
//! so of several nodes exactly one fires each period, and a firing is never lost halfway.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};

use super::enqueue::NewJob;
use super::store::now_ms;
use super::{Job, Options, Queue};
use crate::db::stmt;

/// When a recurring job fires. All nodes compute the same times from the schedule alone (in
/// UTC), so whichever node finds a firing due, it is the same firing.
///
/// - [`Schedule::every`]: every `period`, on the multiples of it since the Unix epoch, moved by
///   an [`offset`](Schedule::offset); [`Schedule::daily_at`] is one of those.
/// - [`Schedule::cron`]: the times a cron expression matches, in UTC (`"0 */5 * * * *"`: every
///   five minutes on the minute; five fields without seconds, six with, seven with a year).
///
/// ```
/// use ferrule::jobs::Schedule;
///
/// let weekdays = Schedule::cron("0 30 8 * * MON-FRI").unwrap(); // 08:30:00 UTC, Monday to Friday
/// // 2024-01-01 was a Monday: 08:30 that day is the first firing after midnight.
/// assert_eq!(weekdays.next_after(1_704_067_200_000), 1_704_067_200_000 + 8 * 3_600_000 + 30 * 60_000);
/// let error = Schedule::cron("0 61 * * * *").unwrap_err();
/// assert!(error.to_string().contains("minute"), "{error}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    when: When,
    /// Milliseconds every firing is moved later by; less than the period of an `Every`.
    offset_ms: i64,
}

/// What a schedule's times are made of, before its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
enum When {
    /// The multiples of this many milliseconds (one at least) since the epoch.
    Every(i64),
    /// The seconds a cron expression matches in UTC.
    Cron(Arc<croner::Cron>),
}

/// A cron expression [`Schedule::cron`] refuses: the expression, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron expression `{expression}`: {reason}")]
pub struct ScheduleError {
    expression: String,
    reason: String,
}

impl ScheduleError {
    /// The expression refused.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// What is wrong with it, its field named when one alone is at fault.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// The names of a cron expression's fields and what each takes, by how many fields it has.
fn field_names(count: usize) -> &'static [(&'static str, &'static str)] {
    const SECOND: (&str, &str) = ("second", "0-59");
    const FIVE: [(&str, &str); 5] = [
        ("minute", "0-59"),
        ("hour", "0-23"),
        ("day-of-month", "1-31, L, W"),
        ("month", "1-12 or JAN-DEC"),
        ("day-of-week", "0-7 or SUN-SAT, L, #"),
    ];
    const SIX: [(&str, &str); 6] = [SECOND, FIVE[0], FIVE[1], FIVE[2], FIVE[3], FIVE[4]];
    const SEVEN: [(&str, &str); 7] = [
        SECOND,
        FIVE[0],
        FIVE[1],
        FIVE[2],
        FIVE[3],
        FIVE[4],
        ("year", "1-5000"),
    ];
    match count {
        5 => &FIVE,
        6 => &SIX,
        7 => &SEVEN,
        _ => &[],
    }
}

/// Why croner refused `expression`, with the field at fault named when one alone is: each
/// field is tried with every other one `*`.
fn explain(expression: &str, error: &croner::errors::CronError) -> String {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let names = field_names(fields.len());
    if fields.iter().any(|f| f.starts_with('@')) || names.is_empty() {
        return error.to_string();
    }
    for (i, field) in fields.iter().enumerate() {
        let alone: Vec<&str> = (0..fields.len())
            .map(|j| if j == i { *field } else { "*" })
            .collect();
        if let Err(e) = alone.join(" ").parse::<croner::Cron>() {
            let (name, takes) = names[i];
            return format!("the {name} field `{field}` (it takes {takes}): {e}");
        }
    }
    error.to_string()
}

impl Schedule {
    /// Every `period` (a millisecond at least): `every(Duration::from_secs(3600))` fires on
    /// the hour.
    pub fn every(period: Duration) -> Self {
        Self {
            when: When::Every(millis(period).max(1)),
            offset_ms: 0,
        }
    }

    /// Every day at `hour:minute` UTC.
    pub fn daily_at(hour: u32, minute: u32) -> Self {
        Self::every(Duration::from_secs(24 * 3600)).offset(Duration::from_secs(
            u64::from(hour % 24) * 3600 + u64::from(minute % 60) * 60,
        ))
    }

    /// The times the cron `expression` matches, in UTC: five fields (minute, hour, day of
    /// month, month, day of week), six with the second first, seven with a year last; names
    /// (`MON-FRI`, `JAN`), ranges, steps (`*/5`), lists, `L`, `W`, `#` and the nicknames
    /// (`@hourly`, `@daily`…) as the `croner` crate reads them. A day of month and a day of
    /// week both given fire on either, as Vixie cron does.
    ///
    /// An expression that does not parse, or that matches no time ahead (`0 0 30 2 *`), is an
    /// error saying what is wrong; [`App::recurring`](crate::App::recurring) also takes the
    /// expression itself and fails the app's start with that error.
    pub fn cron(expression: &str) -> Result<Self, ScheduleError> {
        let refused = |reason: String| ScheduleError {
            expression: expression.to_owned(),
            reason,
        };
        let cron: croner::Cron = expression
            .parse()
            .map_err(|e| refused(explain(expression, &e)))?;
        let schedule = Self {
            when: When::Cron(Arc::new(cron)),
            offset_ms: 0,
        };
        if schedule.next_after(now_ms()) == NEVER {
            return Err(refused("it matches no time from now on".to_owned()));
        }
        Ok(schedule)
    }

    /// The same times moved `by` later (`every(1 h).offset(15 min)`: at a quarter past each
    /// hour; `cron("0 * * * *")?.offset(30 s)`: thirty seconds past each minute).
    pub fn offset(mut self, by: Duration) -> Self {
        self.offset_ms = match self.when {
            When::Every(period) => millis(by).rem_euclid(period),
            When::Cron(_) => millis(by),
        };
        self
    }

    /// The first firing strictly after `now` (Unix ms); `i64::MAX` when there is none (a cron
    /// expression with years that are all past).
    pub fn next_after(&self, now: i64) -> i64 {
        let Some(base) = now.checked_sub(self.offset_ms) else {
            return NEVER;
        };
        let next = match &self.when {
            When::Every(period) => base
                .div_euclid(*period)
                .checked_add(1)
                .and_then(|n| n.checked_mul(*period)),
            When::Cron(cron) => next_cron(cron, base),
        };
        next.and_then(|n| n.checked_add(self.offset_ms))
            .unwrap_or(NEVER)
    }

    /// Whether `at` (Unix ms) is one of this schedule's firings.
    fn fires_at(&self, at: i64) -> bool {
        at != NEVER && self.next_after(at.saturating_sub(1)) == at
    }
}

impl std::str::FromStr for Schedule {
    type Err = ScheduleError;

    /// [`Schedule::cron`].
    fn from_str(expression: &str) -> Result<Self, Self::Err> {
        Self::cron(expression)
    }
}

impl TryFrom<&str> for Schedule {
    type Error = ScheduleError;

    /// [`Schedule::cron`], so [`App::recurring`](crate::App::recurring) takes an expression.
    fn try_from(expression: &str) -> Result<Self, Self::Error> {
        Self::cron(expression)
    }
}

impl TryFrom<String> for Schedule {
    type Error = ScheduleError;

    /// [`Schedule::cron`].
    fn try_from(expression: String) -> Result<Self, Self::Error> {
        Self::cron(&expression)
    }
}

/// No firing: the time stored for a schedule that has none.
const NEVER: i64 = i64::MAX;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The first second `cron` matches strictly after `after` (Unix ms), in Unix ms.
fn next_cron(cron: &croner::Cron, after: i64) -> Option<i64> {
    // Whole seconds: the first match after the second `after` falls in is after `after` too,
    // and croner counts in seconds.
    let second = chrono::DateTime::from_timestamp(after.div_euclid(1000), 0)?;
    let next = cron.find_next_occurrence(&second, false).ok()?;
    Some(next.timestamp_millis())
}

/// Makes the job of the firing at a time (Unix ms).
type Fire = Arc<dyn Fn(i64) -> Result<NewJob, crate::Error> + Send + Sync>;

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
        let fire: Fire = Arc::new(move |at| {
            let time = SystemTime::UNIX_EPOCH + Duration::from_millis(at.max(0) as u64);
            Ok(NewJob::of(&make(time), Options::default())?)
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
pub(crate) async fn tick(queue: &Queue, recurring: &[Recurring]) -> Result<usize, crate::Error> {
    let mut fired = 0;
    for r in recurring {
        if fire_if_due(queue, r).await? {
            fired += 1;
        }
    }
    if fired > 0 {
        super::worker::WAKE.notify_waiters();
    }
    Ok(fired)
}

async fn fire_if_due(queue: &Queue, r: &Recurring) -> Result<bool, crate::Error> {
    // First sight of the schedule: it fires at its next time, not at once.
    let due = queue
        .schedule_due(r.name, r.schedule.next_after(now_ms()))
        .await?;
    // Read after the row: another node may have moved it on since, never past this.
    let now = now_ms();
    let next = r.schedule.next_after(now);
    if due != next && (!r.schedule.fires_at(due) || due > r.schedule.next_after(next)) {
        // Not a time of this schedule, or further than it ever sets it, even from a node whose
        // clock is a firing ahead: the schedule changed (another period, offset or
        // expression) since the row was written. Its next time is the new schedule's, and the
        // old one's pending firing is dropped rather than fired at a time no longer asked for.
        queue.schedule_move(r.name, due, next, None).await?;
        return Ok(false);
    }
    if due > now {
        return Ok(false);
    }
    // Due: the node whose compare-and-set moves it on fires it, in the same step.
    let job = (r.fire)(due)?;
    let fired = queue.schedule_move(r.name, due, next, Some(job)).await?;
    if fired {
        tracing::debug!(job = r.name, at = due, "recurring job enqueued");
    }
    Ok(fired)
}

/// The next firing of schedule `name` in `ferrule_job_schedules`, `first` when it has no row.
pub(crate) async fn due_in_database(
    db: &DatabaseConnection,
    name: &str,
    first: i64,
) -> Result<i64, crate::Error> {
    let backend = db.get_database_backend();
    let sql =
        format!("INSERT INTO {TABLE} (name, next_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING");
    db.execute_raw(stmt(backend, &sql, vec![name.into(), first.into()]))
        .await?;
    let sql = format!("SELECT next_at FROM {TABLE} WHERE name = ?");
    let row = db
        .query_one_raw(stmt(backend, &sql, vec![name.into()]))
        .await?
        .ok_or_else(|| crate::Error::internal(format!("schedule `{name}` has no row")))?;
    Ok(row.try_get("", "next_at")?)
}

/// Moves schedule `name` from `due` to `next` with a compare-and-set and enqueues `job` in the
/// same transaction; whether this call moved it.
pub(crate) async fn move_in_database(
    db: &DatabaseConnection,
    name: &str,
    due: i64,
    next: i64,
    job: Option<NewJob>,
) -> Result<bool, crate::Error> {
    let backend = db.get_database_backend();
    let set = format!("UPDATE {TABLE} SET next_at = ? WHERE name = ? AND next_at = ?");
    let txn = db.begin().await?;
    let moved = txn
        .execute_raw(stmt(
            backend,
            &set,
            vec![next.into(), name.into(), due.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    if !moved {
        txn.rollback().await?;
        return Ok(false);
    }
    if let Some(job) = job {
        super::enqueue::insert(&txn, job).await?;
    }
    txn.commit()
        .await
        .map_err(|e: DbErr| crate::Error::from(e))?;
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
