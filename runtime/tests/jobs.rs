//! Durable jobs on SQLite and the real PostgreSQL: run once, retried with backoff up to the
//! limit and then dead, unique while waiting, scheduled, kept across restarts, handed back at
//! shutdown, and run exactly once by two servers on one database.

mod dbsupport;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbsupport::{Backend, TestDb};
use ferrule::db::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use ferrule::jobs::{self, Enqueued, Job, JobContext, JobState, Options};
use ferrule::testing::TestServer;
use ferrule::{App, Settings};
use serde::{Deserialize, Serialize};

/// Writes its number into `job_effects`: one row per run.
#[derive(Serialize, Deserialize)]
struct Mark {
    n: i64,
}

impl Job for Mark {
    const NAME: &'static str = "mark";

    async fn run(self, ctx: JobContext) -> Result<(), ferrule::Error> {
        ctx.db()
            .execute_unprepared(&format!("INSERT INTO job_effects (n) VALUES ({})", self.n))
            .await?;
        Ok(())
    }
}

/// When each attempt of each `Flaky` started.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<Vec<(i64, u32, Instant)>>>);

impl Attempts {
    fn of(&self, id: i64) -> Vec<(u32, Instant)> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|(i, ..)| *i == id)
            .map(|(_, a, t)| (*a, *t))
            .collect()
    }
}

/// Fails its first `fails` attempts.
#[derive(Serialize, Deserialize)]
struct Flaky {
    fails: u32,
}

impl Job for Flaky {
    const NAME: &'static str = "flaky";

    async fn run(self, ctx: JobContext) -> Result<(), ferrule::Error> {
        let attempts = ctx.extension::<Attempts>().expect("the app shares them");
        attempts
            .0
            .lock()
            .unwrap()
            .push((ctx.id(), ctx.attempt(), Instant::now()));
        if ctx.attempt() <= self.fails {
            return Err(ferrule::Error::bad_request(format!(
                "attempt {} failed",
                ctx.attempt()
            )));
        }
        Ok(())
    }

    /// 200 ms, then 400 ms, …
    fn backoff(attempt: u32) -> Duration {
        Duration::from_millis(200 << (attempt - 1))
    }
}

/// Sleeps `ms`, then marks `n`.
#[derive(Serialize, Deserialize)]
struct Slow {
    ms: u64,
    n: i64,
}

impl Job for Slow {
    const NAME: &'static str = "slow";

    async fn run(self, ctx: JobContext) -> Result<(), ferrule::Error> {
        tokio::time::sleep(Duration::from_millis(self.ms)).await;
        Mark { n: self.n }.run(ctx).await
    }
}

/// Fired by a schedule: marks the time it was due.
#[derive(Serialize, Deserialize)]
struct Tick {
    at_ms: i64,
}

impl Job for Tick {
    const NAME: &'static str = "tick";

    async fn run(self, ctx: JobContext) -> Result<(), ferrule::Error> {
        Mark { n: self.at_ms }.run(ctx).await
    }
}

/// `Tick` at the time it was due, once per period of `schedule`.
fn ticking_on(conn: DatabaseConnection, settings: Settings, schedule: jobs::Schedule) -> App {
    app(conn, settings).recurring(schedule, |at: std::time::SystemTime| Tick {
        at_ms: at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    })
}

/// The times the stored `tick` jobs were due, in the order they were enqueued.
async fn tick_times(db: &DatabaseConnection) -> Vec<i64> {
    let rows = jobs::list(db, None, 100).await.unwrap();
    rows.iter()
        .filter(|r| r.name == "tick")
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.payload).unwrap()["at_ms"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

/// Runs `servers` servers on `db` firing `Tick` on `schedule` for `run`; checks that the
/// firings fell on multiples of `step_ms`, numbered within `expected`, each time once.
async fn fires_once_per_period(
    db: &TestDb,
    servers: usize,
    schedule: jobs::Schedule,
    run: Duration,
    step_ms: i64,
    expected: std::ops::RangeInclusive<usize>,
) {
    let mut running = Vec::new();
    for _ in 0..servers {
        let conn = ferrule::db::connect(&db.url).await.unwrap();
        let app = ticking_on(conn, settings(), schedule.clone());
        running.push(TestServer::start(app).await.unwrap());
    }
    tokio::time::sleep(run).await;
    for server in running {
        server.stop().await.unwrap();
    }
    let mut times = tick_times(&db.conn).await;
    let fired = times.len();
    assert!(expected.contains(&fired), "{times:?}");
    assert!(
        times.iter().all(|t| t % step_ms == 0),
        "on the period: {times:?}"
    );
    times.sort_unstable();
    times.dedup();
    assert_eq!(times.len(), fired, "each time once: {times:?}");
    let (rows, distinct) = effects(&db.conn).await;
    assert_eq!(rows, distinct, "each firing ran once");
}

/// Runs `servers` ticking servers on `db` for 3.5 s; checks each second fired once.
async fn ticks_once_per_period(db: &TestDb, servers: usize) {
    let every_second = jobs::Schedule::every(Duration::from_secs(1));
    let run = Duration::from_millis(3500);
    fires_once_per_period(db, servers, every_second, run, 1000, 2..=4).await;
}

/// Every even second, by a cron expression: over 5 s, two or three firings (a 5 s window holds
/// two or three even seconds, and when it holds three the first is a second in at least).
async fn cron_ticks_once_per_period(db: &TestDb, servers: usize) {
    let even_seconds = jobs::Schedule::cron("*/2 * * * * *").unwrap();
    let run = Duration::from_secs(5);
    fires_once_per_period(db, servers, even_seconds, run, 2000, 2..=3).await;
}

async fn a_recurring_job_fires_once_per_period(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    ticks_once_per_period(&db, 1).await;
    db.cleanup().await;
}

async fn a_cron_schedule_fires_once_per_period(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    cron_ticks_once_per_period(&db, 1).await;
    db.cleanup().await;
}

/// Two servers on one PostgreSQL database fire a recurring job once per period in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_fire_a_recurring_job_once_per_period() {
    let Some(db) = fresh(Backend::Postgres).await else {
        return;
    };
    ticks_once_per_period(&db, 2).await;
    db.cleanup().await;
}

/// Two servers on one PostgreSQL database fire a cron schedule once per period in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_fire_a_cron_schedule_once_per_period() {
    let Some(db) = fresh(Backend::Postgres).await else {
        return;
    };
    cron_ticks_once_per_period(&db, 2).await;
    db.cleanup().await;
}

/// 2024-01-01T00:00:00Z, a Monday.
const MONDAY: i64 = 1_704_067_200_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

#[test]
fn a_cron_schedule_fires_at_the_times_its_expression_matches() {
    let five_minutes = jobs::Schedule::cron("0 */5 * * * *").unwrap();
    // Just before a firing, at it, one past it, and just before the next one.
    assert_eq!(five_minutes.next_after(MONDAY - 1), MONDAY);
    assert_eq!(
        five_minutes.next_after(MONDAY),
        MONDAY + 5 * MINUTE,
        "strictly after"
    );
    assert_eq!(five_minutes.next_after(MONDAY + 1), MONDAY + 5 * MINUTE);
    assert_eq!(
        five_minutes.next_after(MONDAY + 5 * MINUTE - 1),
        MONDAY + 5 * MINUTE
    );
    // Five fields: no seconds, the minute first.
    let five_fields = jobs::Schedule::cron("*/5 * * * *").unwrap();
    for now in [MONDAY - 1, MONDAY, MONDAY + 1, MONDAY + 7 * MINUTE] {
        assert_eq!(five_fields.next_after(now), five_minutes.next_after(now));
    }
    // Seconds: every one of them.
    let every_second = jobs::Schedule::cron("*/1 * * * * *").unwrap();
    assert_eq!(every_second.next_after(MONDAY + 999), MONDAY + 1000);
    assert_eq!(every_second.next_after(MONDAY + 1000), MONDAY + 2000);
    // Names and ranges: 08:30 on weekdays, so Friday's is followed by Monday's.
    let weekdays = jobs::Schedule::cron("30 8 * * MON-FRI").unwrap();
    let friday_830 = MONDAY + 4 * DAY + 8 * HOUR + 30 * MINUTE;
    assert_eq!(weekdays.next_after(friday_830 - 1), friday_830);
    assert_eq!(
        weekdays.next_after(friday_830),
        MONDAY + 7 * DAY + 8 * HOUR + 30 * MINUTE
    );
    // The last day of the month, in a leap year's February.
    let month_end = jobs::Schedule::cron("0 0 L * *").unwrap();
    let feb_29 = MONDAY + (31 + 28) * DAY;
    assert_eq!(month_end.next_after(MONDAY + 31 * DAY), feb_29);
    // An offset moves every firing, the boundary with it.
    let half_past = jobs::Schedule::cron("* * * * *")
        .unwrap()
        .offset(Duration::from_secs(30));
    assert_eq!(half_past.next_after(MONDAY), MONDAY + 30_000);
    assert_eq!(half_past.next_after(MONDAY + 29_999), MONDAY + 30_000);
    assert_eq!(half_past.next_after(MONDAY + 30_000), MONDAY + 90_000);
    // The hourly cron and the hourly period agree.
    let hourly = jobs::Schedule::every(Duration::from_secs(3600));
    let cron_hourly: jobs::Schedule = "0 * * * *".parse().unwrap();
    for now in [
        MONDAY - 1,
        MONDAY,
        MONDAY + 1,
        MONDAY + HOUR - 1,
        MONDAY + HOUR,
    ] {
        assert_eq!(cron_hourly.next_after(now), hourly.next_after(now), "{now}");
    }
    // Before the Unix epoch too.
    assert_eq!(every_second.next_after(-1500), -1000);
}

#[test]
fn a_bad_cron_expression_says_what_is_wrong() {
    let wrong = |expression: &str| jobs::Schedule::cron(expression).unwrap_err();
    let error = wrong("0 61 * * * *");
    assert_eq!(error.expression(), "0 61 * * * *");
    assert!(
        error
            .to_string()
            .starts_with("cron expression `0 61 * * * *`: the minute field `61`"),
        "{error}"
    );
    // The last valid value, and one past it.
    assert!(jobs::Schedule::cron("59 * * * *").is_ok());
    assert!(
        wrong("60 * * * *")
            .reason()
            .contains("the minute field `60`")
    );
    assert!(jobs::Schedule::cron("0 0 23 * * *").is_ok());
    assert!(
        wrong("0 0 24 * * *")
            .reason()
            .contains("the hour field `24`")
    );
    assert!(
        wrong("* * * 13 *")
            .reason()
            .contains("the month field `13`")
    );
    assert!(
        wrong("0 * * * * FUNDAY")
            .reason()
            .contains("the day-of-week field"),
        "{}",
        wrong("0 * * * * FUNDAY")
    );
    // Too few fields, too many, none.
    assert!(
        wrong("* * * *").reason().contains("field"),
        "{}",
        wrong("* * * *")
    );
    assert!(wrong("* * * * * * * *").reason().contains("field"));
    assert!(jobs::Schedule::cron("").is_err());
    // February has no 30th.
    let started = Instant::now();
    assert!(jobs::Schedule::cron("0 0 30 2 *").is_err());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // It parses, but never fires again.
    assert_eq!(
        wrong("0 0 0 1 1 * 2020").reason(),
        "it matches no time from now on"
    );
    assert!("0 61 * * * *".parse::<jobs::Schedule>().is_err());
}

/// A refused expression fails the app's start, naming the job and the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_cron_expression_stops_the_start() {
    let Some(db) = fresh(Backend::Sqlite).await else {
        return;
    };
    let bad = || app(db.conn.clone(), settings()).recurring("0 61 * * * *", |_| Tick { at_ms: 0 });
    match bad().into_parts() {
        Err(ferrule::BuildError::Jobs(e)) => assert!(
            e.starts_with(
                "the schedule of job `tick`: cron expression `0 61 * * * *`: the minute field \
                 `61` (it takes 0-59): "
            ),
            "{e}"
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("started with a bad expression"),
    }
    let error = TestServer::start(bad()).await.err().expect("refused");
    assert!(error.to_string().contains("minute field `61`"), "{error}");
    let error = bad().work_with_shutdown(async {}).await.unwrap_err();
    assert!(error.to_string().contains("minute field `61`"), "{error}");
    // The same expression, right, starts.
    let good = app(db.conn.clone(), settings()).recurring("0 59 * * * *", |_| Tick { at_ms: 0 });
    TestServer::start(good).await.unwrap().stop().await.unwrap();
    db.cleanup().await;
}

/// `next_at` of the `tick` schedule's row.
async fn stored_next(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT next_at FROM ferrule_job_schedules WHERE name = 'tick'",
        ))
        .await
        .unwrap()
        .expect("the schedule's row");
    row.try_get("", "next_at").unwrap()
}

async fn set_stored_next(db: &DatabaseConnection, at: i64) {
    db.execute_unprepared(&format!(
        "INSERT INTO ferrule_job_schedules (name, next_at) VALUES ('tick', {at}) \
         ON CONFLICT (name) DO UPDATE SET next_at = {at}"
    ))
    .await
    .unwrap();
}

/// A schedule whose expression changed since its row was written (a deploy) moves to the new
/// expression's next time, and the old one's firing is not fired.
async fn a_changed_schedule_moves_to_the_new_expressions_times(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let even_seconds = || jobs::Schedule::cron("*/2 * * * * *").unwrap();
    // The old expression fired on odd seconds, and its last firing was missed while no node
    // ran: overdue, but no time of the new expression.
    let odd = (now_ms() / 2000 - 3) * 2000 + 1000;
    set_stored_next(&db.conn, odd).await;
    let server = TestServer::start(ticking_on(db.conn.clone(), settings(), even_seconds()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let next = loop {
        let next = stored_next(&db.conn).await;
        if next != odd {
            break next;
        }
        assert!(
            Instant::now() < deadline,
            "the row still holds the old time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(next % 2000 == 0 && next > odd, "moved on: {next}");
    assert!(next <= now_ms() + 2000, "to the next even second: {next}");
    server.stop().await.unwrap();
    let before = tick_times(&db.conn).await;
    assert!(
        !before.contains(&odd),
        "the old firing is dropped: {before:?}"
    );
    // The old expression was daily: its next time is a time of the new one too, but further
    // than it ever sets it.
    let tomorrow = (now_ms() / DAY + 1) * DAY;
    set_stored_next(&db.conn, tomorrow).await;
    let server = TestServer::start(ticking_on(db.conn.clone(), settings(), even_seconds()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(6);
    while tick_times(&db.conn).await.len() == before.len() {
        assert!(
            Instant::now() < deadline,
            "no firing: the row kept tomorrow"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await.unwrap();
    let next = stored_next(&db.conn).await;
    assert!(next < tomorrow && next % 2000 == 0, "moved on: {next}");
    let times = tick_times(&db.conn).await;
    assert!(
        !times.is_empty() && times.iter().all(|t| t % 2000 == 0),
        "fired on the new times: {times:?}"
    );
    db.cleanup().await;
}

async fn fresh(backend: Backend) -> Option<TestDb> {
    let db = TestDb::new(backend).await?;
    db.conn
        .execute_unprepared("CREATE TABLE job_effects (n BIGINT NOT NULL)")
        .await
        .unwrap();
    Some(db)
}

fn settings() -> Settings {
    Settings {
        jobs_poll_ms: 50,
        jobs_lease_ms: 3000,
        shutdown_grace_ms: 2000,
        ..Settings::default()
    }
}

fn app(conn: DatabaseConnection, settings: Settings) -> App {
    App::new()
        .settings(settings)
        .database(conn)
        .job::<Mark>()
        .job::<Flaky>()
        .job::<Slow>()
}

/// `(rows, distinct numbers)` of `job_effects`.
async fn effects(db: &DatabaseConnection) -> (i64, i64) {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS c, COUNT(DISTINCT n) AS d FROM job_effects",
        ))
        .await
        .unwrap()
        .unwrap();
    (row.try_get("", "c").unwrap(), row.try_get("", "d").unwrap())
}

/// Waits up to `limit` for job `id` to be in `state`; its row then.
async fn wait_state(
    db: &DatabaseConnection,
    id: i64,
    state: JobState,
    limit: Duration,
) -> jobs::JobRow {
    let deadline = Instant::now() + limit;
    loop {
        let row = jobs::find(db, id).await.unwrap().expect("the job exists");
        if row.state == state {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is {:?}, not {state:?}, after {limit:?}: {row:?}",
            row.state
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_job_enqueued_runs_once(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let server = TestServer::start(app(db.conn.clone(), settings()))
        .await
        .unwrap();
    let id = jobs::enqueue(&db.conn, Mark { n: 7 }).await.unwrap().id();
    let row = wait_state(&db.conn, id, JobState::Done, Duration::from_secs(5)).await;
    assert_eq!(row.attempts, 1);
    assert_eq!(row.last_error, None);
    // Well past a poll or two: nothing runs it again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(effects(&db.conn).await, (1, 1));
    server.stop().await.unwrap();
    db.cleanup().await;
}

async fn a_failing_job_retries_with_backoff_then_lands_dead(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let attempts = Attempts::default();
    let server = TestServer::start(app(db.conn.clone(), settings()).extension(attempts.clone()))
        .await
        .unwrap();
    let three = Options::default().max_attempts(3);
    // Fails twice, succeeds on its third and last attempt: the limit is exactly enough.
    let last_chance = jobs::enqueue_with(&db.conn, Flaky { fails: 2 }, three.clone())
        .await
        .unwrap()
        .id();
    // Fails three times out of three: one past what it may.
    let doomed = jobs::enqueue_with(&db.conn, Flaky { fails: 3 }, three)
        .await
        .unwrap()
        .id();
    let row = wait_state(
        &db.conn,
        last_chance,
        JobState::Done,
        Duration::from_secs(8),
    )
    .await;
    assert_eq!(row.attempts, 3);
    assert_eq!(row.last_error.as_deref(), Some("attempt 2 failed"));
    let row = wait_state(&db.conn, doomed, JobState::Dead, Duration::from_secs(8)).await;
    assert_eq!(row.attempts, 3);
    assert_eq!(row.last_error.as_deref(), Some("attempt 3 failed"));
    let dead = jobs::list(&db.conn, Some(JobState::Dead), 10)
        .await
        .unwrap();
    assert_eq!(dead.iter().map(|r| r.id).collect::<Vec<_>>(), vec![doomed]);
    // Longer than the next backoff would be: no fourth attempt.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for id in [last_chance, doomed] {
        let runs = attempts.of(id);
        assert_eq!(
            runs.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(
            runs[1].1 - runs[0].1 >= Duration::from_millis(200),
            "backoff 1"
        );
        assert!(
            runs[2].1 - runs[1].1 >= Duration::from_millis(400),
            "backoff 2"
        );
    }
    server.stop().await.unwrap();
    db.cleanup().await;
}

async fn a_uniqueness_key_refuses_or_merges_a_duplicate_while_one_waits(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let later = || {
        Options::default()
            .after(Duration::from_secs(3600))
            .unique("k")
    };
    let first = jobs::enqueue_with(&db.conn, Mark { n: 1 }, later())
        .await
        .unwrap();
    let Enqueued::New(id) = first else {
        panic!("{first:?}")
    };
    let again = jobs::enqueue_with(&db.conn, Mark { n: 2 }, later())
        .await
        .unwrap();
    assert_eq!(again, Enqueued::Duplicate(id));
    assert_eq!(
        jobs::find(&db.conn, id).await.unwrap().unwrap().payload,
        r#"{"n":1}"#
    );
    let merged = jobs::enqueue_with(&db.conn, Mark { n: 3 }, later().replace_duplicate())
        .await
        .unwrap();
    assert_eq!(merged, Enqueued::Replaced(id));
    assert_eq!(
        jobs::find(&db.conn, id).await.unwrap().unwrap().payload,
        r#"{"n":3}"#
    );
    // Another kind, or no key: not duplicates.
    let other = jobs::enqueue_with(&db.conn, Slow { ms: 0, n: 1 }, later())
        .await
        .unwrap();
    assert!(matches!(other, Enqueued::New(o) if o != id));
    assert!(matches!(
        jobs::enqueue(&db.conn, Mark { n: 4 }).await.unwrap(),
        Enqueued::New(_)
    ));
    // Once the keyed job has run, the key is free again.
    db.conn
        .execute_unprepared(&format!(
            "UPDATE ferrule_jobs SET state = 'done' WHERE id = {id}"
        ))
        .await
        .unwrap();
    let after = jobs::enqueue_with(&db.conn, Mark { n: 5 }, later())
        .await
        .unwrap();
    assert!(matches!(after, Enqueued::New(n) if n != id), "{after:?}");
    db.cleanup().await;
}

async fn a_job_scheduled_at_a_time_waits_for_it(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let server = TestServer::start(app(db.conn.clone(), settings()))
        .await
        .unwrap();
    let start = Instant::now();
    let at = std::time::SystemTime::now() + Duration::from_millis(1200);
    let id = jobs::enqueue_with(&db.conn, Mark { n: 1 }, Options::default().at(at))
        .await
        .unwrap()
        .id();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let row = jobs::find(&db.conn, id).await.unwrap().unwrap();
    assert_eq!((row.state, row.attempts), (JobState::Pending, 0));
    assert_eq!(effects(&db.conn).await, (0, 0));
    wait_state(&db.conn, id, JobState::Done, Duration::from_secs(5)).await;
    assert!(start.elapsed() >= Duration::from_millis(1200));
    assert_eq!(effects(&db.conn).await, (1, 1));
    server.stop().await.unwrap();
    db.cleanup().await;
}

async fn jobs_survive_a_restart_and_a_vanished_worker(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    // Enqueued while no server runs.
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(jobs::enqueue(&db.conn, Mark { n }).await.unwrap().id());
    }
    // Claimed by a worker that vanished: its lease ends 1.5 s from now.
    let orphan = jobs::enqueue(&db.conn, Mark { n: 4 }).await.unwrap().id();
    let until = now_ms() + 1500;
    db.conn
        .execute_unprepared(&format!(
            "UPDATE ferrule_jobs SET state = 'running', attempts = 1, locked_by = 'gone', \
             locked_until = {until} WHERE id = {orphan}"
        ))
        .await
        .unwrap();
    // A payload its type cannot read: dead at once, not retried.
    db.conn
        .execute_unprepared(&format!(
            "INSERT INTO ferrule_jobs (name, payload, state, attempts, max_attempts, run_at, \
             created_at) VALUES ('mark', '{{}}', 'pending', 0, 5, 0, {until})"
        ))
        .await
        .unwrap();
    let server = TestServer::start(app(db.conn.clone(), settings()))
        .await
        .unwrap();
    for id in &ids {
        wait_state(&db.conn, *id, JobState::Done, Duration::from_secs(5)).await;
    }
    let row = jobs::find(&db.conn, orphan).await.unwrap().unwrap();
    assert_eq!(row.state, JobState::Running, "its lease holds it");
    let row = wait_state(&db.conn, orphan, JobState::Done, Duration::from_secs(5)).await;
    assert!(now_ms() >= until, "run only once its lease ended");
    assert_eq!(row.attempts, 2);
    let dead = jobs::list(&db.conn, Some(JobState::Dead), 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("does not decode")),
        "{dead:?}"
    );
    assert_eq!(effects(&db.conn).await, (4, 4));
    server.stop().await.unwrap();
    db.cleanup().await;
}

async fn a_stopping_server_finishes_short_jobs_and_hands_back_long_ones(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let server = TestServer::start(app(db.conn.clone(), settings()))
        .await
        .unwrap();
    let short = jobs::enqueue(&db.conn, Slow { ms: 500, n: 1 })
        .await
        .unwrap()
        .id();
    let long = jobs::enqueue(&db.conn, Slow { ms: 60_000, n: 2 })
        .await
        .unwrap()
        .id();
    for id in [short, long] {
        wait_state(&db.conn, id, JobState::Running, Duration::from_secs(5)).await;
    }
    let stopping = Instant::now();
    server.stop().await.unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "within the grace"
    );
    let row = jobs::find(&db.conn, short).await.unwrap().unwrap();
    assert_eq!(row.state, JobState::Done, "finished in the grace time");
    let row = jobs::find(&db.conn, long).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.attempts),
        (JobState::Pending, 0),
        "handed back, its attempt not counted"
    );
    assert_eq!(effects(&db.conn).await, (1, 1));
    db.cleanup().await;
}

async fn a_dead_job_retried_runs_and_finished_ones_are_purged(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    // Dead with its key; a live job has taken the key since.
    db.conn
        .execute_unprepared(
            "INSERT INTO ferrule_jobs (name, payload, state, attempts, max_attempts, run_at, \
             last_error, unique_key, created_at, finished_at) VALUES \
             ('mark', '{\"n\":9}', 'dead', 1, 1, 0, 'x', 'k', 0, 0)",
        )
        .await
        .unwrap();
    let dead = jobs::list(&db.conn, Some(JobState::Dead), 1).await.unwrap()[0].id;
    let later = Options::default()
        .after(Duration::from_secs(3600))
        .unique("k");
    let live = jobs::enqueue_with(&db.conn, Mark { n: 1 }, later)
        .await
        .unwrap();
    assert!(
        matches!(live, Enqueued::New(_)),
        "a dead job does not hold its key"
    );
    assert!(jobs::retry(&db.conn, dead).await.unwrap());
    assert!(
        !jobs::retry(&db.conn, dead).await.unwrap(),
        "no longer dead"
    );
    let server = TestServer::start(app(db.conn.clone(), settings()))
        .await
        .unwrap();
    let row = wait_state(&db.conn, dead, JobState::Done, Duration::from_secs(5)).await;
    assert_eq!(
        (row.attempts, row.unique_key),
        (1, None),
        "the live job keeps the key"
    );
    server.stop().await.unwrap();
    assert_eq!(effects(&db.conn).await, (1, 1));
    assert!(
        jobs::purge(&db.conn, JobState::Pending, Duration::ZERO)
            .await
            .is_err()
    );
    assert_eq!(
        jobs::purge(&db.conn, JobState::Done, Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "too recent"
    );
    assert_eq!(
        jobs::purge(&db.conn, JobState::Done, Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        jobs::list(&db.conn, None, 10).await.unwrap().len(),
        1,
        "the waiting one stays"
    );
    db.cleanup().await;
}

async fn workers_delete_done_jobs_past_the_keep_time(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let hour_ago = now_ms() - 3_600_000;
    db.conn
        .execute_unprepared(&format!(
            "INSERT INTO ferrule_jobs (name, payload, state, attempts, max_attempts, run_at, \
             created_at, finished_at) VALUES \
             ('mark', '{{}}', 'done', 1, 5, 0, 0, {hour_ago}), \
             ('mark', '{{}}', 'dead', 5, 5, 0, 0, {hour_ago})"
        ))
        .await
        .unwrap();
    let keep = Settings {
        jobs_keep_done_ms: 60_000,
        ..settings()
    };
    let server = TestServer::start(app(db.conn.clone(), keep)).await.unwrap();
    let recent = jobs::enqueue(&db.conn, Mark { n: 1 }).await.unwrap().id();
    wait_state(&db.conn, recent, JobState::Done, Duration::from_secs(5)).await;
    let left = jobs::list(&db.conn, None, 10).await.unwrap();
    let states: Vec<_> = left.iter().map(|r| r.state).collect();
    assert_eq!(states, vec![JobState::Dead, JobState::Done], "{left:?}");
    assert_eq!(
        left[1].id, recent,
        "the hour-old done job went, the fresh one stays"
    );
    server.stop().await.unwrap();
    db.cleanup().await;
}

on_both!(
    a_job_enqueued_runs_once,
    a_failing_job_retries_with_backoff_then_lands_dead,
    a_uniqueness_key_refuses_or_merges_a_duplicate_while_one_waits,
    a_job_scheduled_at_a_time_waits_for_it,
    jobs_survive_a_restart_and_a_vanished_worker,
    a_stopping_server_finishes_short_jobs_and_hands_back_long_ones,
    a_recurring_job_fires_once_per_period,
    a_cron_schedule_fires_once_per_period,
    a_changed_schedule_moves_to_the_new_expressions_times,
    a_worker_process_runs_the_jobs_web_processes_leave,
    a_dead_job_retried_runs_and_finished_ones_are_purged,
    workers_delete_done_jobs_past_the_keep_time,
);

/// Two servers on one PostgreSQL database run 200 jobs, each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_run_200_jobs_exactly_once() {
    let Some(db) = fresh(Backend::Postgres).await else {
        return;
    };
    let quick = Settings {
        jobs_poll_ms: 20,
        ..settings()
    };
    let a_conn = ferrule::db::connect(&db.url).await.unwrap();
    let b_conn = ferrule::db::connect(&db.url).await.unwrap();
    let a = TestServer::start(app(a_conn, quick.clone())).await.unwrap();
    let b = TestServer::start(app(b_conn, quick)).await.unwrap();
    for n in 0..200 {
        jobs::enqueue(&db.conn, Slow { ms: 5, n }).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let counts = jobs::counts(&db.conn).await.unwrap();
        if counts.get(&JobState::Done) == Some(&200) {
            break;
        }
        assert!(Instant::now() < deadline, "not all done: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(effects(&db.conn).await, (200, 200));
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    db.cleanup().await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Succeeds, or fails for good: counted in the metrics test alone.
#[derive(Serialize, Deserialize)]
struct Metered {
    fail: bool,
}

impl Job for Metered {
    const NAME: &'static str = "metered";

    async fn run(self, _: JobContext) -> Result<(), ferrule::Error> {
        if self.fail {
            return Err(ferrule::Error::bad_request("no"));
        }
        Ok(())
    }
}

/// A loopback address nothing listens on yet.
fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Scrapes `/metrics` at `addr` until `counted` says the page has it (8 s at most).
async fn scrape_until(addr: std::net::SocketAddr, counted: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let page = ferrule::testing::http_request(addr, "GET", "/metrics", &[], b"")
            .await
            .map(|r| r.text())
            .unwrap_or_default();
        if counted(&page) {
            return;
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The job metrics on `/metrics`: outcomes, failures, the queue's depth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_outcomes_and_the_queue_depth_are_metrics() {
    let Some(db) = fresh(Backend::Sqlite).await else {
        return;
    };
    let metrics_addr = free_addr();
    let server = TestServer::start(
        app(
            db.conn.clone(),
            Settings {
                metrics_addr: Some(metrics_addr),
                ..settings()
            },
        )
        .job::<Metered>(),
    )
    .await
    .unwrap();
    let ok = jobs::enqueue(&db.conn, Metered { fail: false })
        .await
        .unwrap()
        .id();
    let once = Options::default().max_attempts(1);
    let bad = jobs::enqueue_with(&db.conn, Metered { fail: true }, once)
        .await
        .unwrap()
        .id();
    wait_state(&db.conn, ok, JobState::Done, Duration::from_secs(5)).await;
    wait_state(&db.conn, bad, JobState::Dead, Duration::from_secs(5)).await;
    scrape_until(metrics_addr, |page| {
        let has = |line: &str| page.lines().any(|l| l == line);
        has(r#"ferrule_jobs_total{job="metered",outcome="done"} 1"#)
            && has(r#"ferrule_jobs_total{job="metered",outcome="dead"} 1"#)
            && has(r#"ferrule_job_failures_total{job="metered"} 1"#)
            && page.contains("ferrule_job_seconds")
            && page.contains(r#"ferrule_jobs_queued{state="pending"}"#)
    })
    .await;
    server.stop().await.unwrap();
    db.cleanup().await;
}

/// A web process with `jobs_concurrency = 0` runs no job; a worker process (`jobs work`) runs
/// them and the schedules, serving nothing, and at its stop finishes the short job in hand and
/// hands the long one back.
async fn a_worker_process_runs_the_jobs_web_processes_leave(backend: Backend) {
    let Some(db) = fresh(backend).await else {
        return;
    };
    let enqueue_only = Settings {
        jobs_concurrency: 0,
        ..settings()
    };
    let web = TestServer::start(app(db.conn.clone(), enqueue_only))
        .await
        .unwrap();
    let early = jobs::enqueue(&db.conn, Mark { n: 1 }).await.unwrap().id();
    // Several polls of a worker, were there one.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let row = jobs::find(&db.conn, early).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.attempts),
        (JobState::Pending, 0),
        "the web ran it"
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let conn = ferrule::db::connect(&db.url).await.unwrap();
    let every_second = jobs::Schedule::cron("* * * * * *").unwrap();
    let worker = tokio::spawn(
        ticking_on(conn, settings(), every_second).work_with_shutdown(async {
            let _ = stopped.await;
        }),
    );
    wait_state(&db.conn, early, JobState::Done, Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while tick_times(&db.conn).await.is_empty() {
        assert!(Instant::now() < deadline, "the worker fires the schedule");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let short = jobs::enqueue(&db.conn, Slow { ms: 500, n: 2 })
        .await
        .unwrap()
        .id();
    let long = jobs::enqueue(&db.conn, Slow { ms: 60_000, n: 3 })
        .await
        .unwrap()
        .id();
    for id in [short, long] {
        wait_state(&db.conn, id, JobState::Running, Duration::from_secs(5)).await;
    }
    let stopping = Instant::now();
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "within the grace"
    );
    let row = jobs::find(&db.conn, short).await.unwrap().unwrap();
    assert_eq!(row.state, JobState::Done, "finished in the grace time");
    let row = jobs::find(&db.conn, long).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.attempts),
        (JobState::Pending, 0),
        "handed back, its attempt not counted"
    );
    // Nothing runs jobs once the worker stopped.
    let late = jobs::enqueue(&db.conn, Mark { n: 4 }).await.unwrap().id();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let row = jobs::find(&db.conn, late).await.unwrap().unwrap();
    assert_eq!(row.state, JobState::Pending);
    web.stop().await.unwrap();
    db.cleanup().await;
}

/// Only ever run by the worker-metrics test.
#[derive(Serialize, Deserialize)]
struct Worked;

impl Job for Worked {
    const NAME: &'static str = "worked";

    async fn run(self, _: JobContext) -> Result<(), ferrule::Error> {
        Ok(())
    }
}

/// A worker process with `metrics_addr` serves its own job metrics there, and closes the
/// endpoint when it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_serves_its_job_metrics() {
    let Some(db) = fresh(Backend::Sqlite).await else {
        return;
    };
    let metrics_addr = free_addr();
    let worker = app(
        db.conn.clone(),
        Settings {
            metrics_addr: Some(metrics_addr),
            ..settings()
        },
    )
    .job::<Worked>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let working = tokio::spawn(worker.work_with_shutdown(async {
        let _ = stopped.await;
    }));
    for _ in 0..2 {
        let id = jobs::enqueue(&db.conn, Worked).await.unwrap().id();
        wait_state(&db.conn, id, JobState::Done, Duration::from_secs(5)).await;
    }
    scrape_until(metrics_addr, |page| {
        page.lines()
            .any(|l| l == r#"ferrule_jobs_total{job="worked",outcome="done"} 2"#)
            && page.contains(r#"ferrule_jobs_queued{state="pending"}"#)
    })
    .await;
    stop.send(()).unwrap();
    working.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(metrics_addr).await.is_err(),
        "the endpoint closed with the worker"
    );
    db.cleanup().await;
}

/// A worker with nothing to run refuses to start, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_nothing_to_run_says_so() {
    let Some(db) = fresh(Backend::Sqlite).await else {
        return;
    };
    let none = Settings {
        jobs_concurrency: 0,
        ..settings()
    };
    let error = app(db.conn.clone(), none)
        .work_with_shutdown(async {})
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("jobs_concurrency is 0"),
        "{error}"
    );
    // Without a database there is no job at all (with one, Ferrule's mail is there to send).
    let error = App::new()
        .settings(settings())
        .work_with_shutdown(async {})
        .await
        .unwrap_err();
    assert!(error.to_string().contains("registers no job"), "{error}");
    // One at once is enough.
    let one = Settings {
        jobs_concurrency: 1,
        ..settings()
    };
    app(db.conn.clone(), one)
        .work_with_shutdown(async {})
        .await
        .unwrap();
    db.cleanup().await;
}
