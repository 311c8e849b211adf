//! Durable jobs kept in the real Redis (`App::jobs_in(Queue::redis(..))`): run once, retried
//! with backoff up to the limit and then dead, unique while waiting, scheduled, kept across a
//! restart and a vanished worker, handed back at shutdown, run exactly once by two servers,
//! fired once per period across two nodes, and Ferrule's own mail jobs routed there too.

mod dbsupport;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbsupport::{Backend, TestDb};
use ferrule::auth::NewUser;
use ferrule::db::sea_orm::DatabaseConnection;
use ferrule::jobs::{self, Enqueued, Job, JobContext, JobState, Options, Queue, RedisJobs};
use ferrule::mail::{Mailer, Outbox};
use ferrule::testing::TestServer;
use ferrule::{App, Settings};
use serde::{Deserialize, Serialize};

/// One run of a job: `(kind, number, attempt, when)`.
type Run = (&'static str, i64, u32, Instant);

/// Each run of a job, in order.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<Vec<Run>>>);

impl Runs {
    fn record(&self, kind: &'static str, n: i64, attempt: u32) {
        self.0
            .lock()
            .unwrap()
            .push((kind, n, attempt, Instant::now()));
    }

    /// The numbers the runs of `kind` carried.
    fn numbers(&self, kind: &str) -> Vec<i64> {
        let all = self.0.lock().unwrap();
        all.iter().filter(|r| r.0 == kind).map(|r| r.1).collect()
    }

    /// When each attempt of `kind` number `n` started.
    fn attempts(&self, kind: &str, n: i64) -> Vec<(u32, Instant)> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|r| r.0 == kind && r.1 == n)
            .map(|r| (r.2, r.3))
            .collect()
    }
}

/// Records its number.
#[derive(Serialize, Deserialize)]
struct Mark {
    n: i64,
}

impl Job for Mark {
    const NAME: &'static str = "mark";

    async fn run(self, ctx: JobContext) -> Result<(), ferrule::Error> {
        runs(&ctx).record("mark", self.n, ctx.attempt());
        Ok(())
    }
}

/// Fails its first `fails` attempts; quick backoff (200 ms, doubled).
#[derive(Serialize, Deserialize)]
struct Flaky {
    n: i64,
    fails: u32,
}

impl Job for Flaky {
    const NAME: &'static str = "flaky";

    async fn run(self, ctx: JobContext) -> Result<(), ferrule::Error> {
        runs(&ctx).record("flaky", self.n, ctx.attempt());
        if ctx.attempt() <= self.fails {
            return Err(ferrule::Error::bad_request(format!(
                "attempt {} failed",
                ctx.attempt()
            )));
        }
        Ok(())
    }

    fn backoff(attempt: u32) -> Duration {
        Duration::from_millis(200 << attempt.saturating_sub(1))
    }
}

/// Takes `ms`, then records its number.
#[derive(Serialize, Deserialize)]
struct Slow {
    ms: u64,
    n: i64,
}

impl Job for Slow {
    const NAME: &'static str = "slow";

    async fn run(self, ctx: JobContext) -> Result<(), ferrule::Error> {
        tokio::time::sleep(Duration::from_millis(self.ms)).await;
        runs(&ctx).record("slow", self.n, ctx.attempt());
        Ok(())
    }
}

/// Fired by a schedule: records the time it was due.
#[derive(Serialize, Deserialize)]
struct Tick {
    at_ms: i64,
}

impl Job for Tick {
    const NAME: &'static str = "tick";

    async fn run(self, ctx: JobContext) -> Result<(), ferrule::Error> {
        runs(&ctx).record("tick", self.at_ms, ctx.attempt());
        Ok(())
    }
}

fn runs(ctx: &JobContext) -> Runs {
    ctx.extension::<Runs>().expect("the app shares them")
}

/// A fresh key prefix in the real Redis, and a SQLite database for the app's other tables;
/// `None` (after saying so) when there is no Redis outside CI.
struct Fixture {
    url: String,
    prefix: String,
    queue: Queue,
    db: TestDb,
    runs: Runs,
}

impl Fixture {
    async fn new() -> Option<Self> {
        let url = dbsupport::redis_url("the Redis job queue tests")?;
        let prefix = format!("jobs-test-{:016x}", rand::random::<u64>());
        let queue = Queue::redis(RedisJobs::connect(&url, &prefix).await.unwrap());
        let db = TestDb::new(Backend::Sqlite).await?;
        Some(Self {
            url,
            prefix,
            queue,
            db,
            runs: Runs::default(),
        })
    }

    /// Another process's view of the same queue: its own connection.
    async fn queue(&self) -> Queue {
        Queue::redis(RedisJobs::connect(&self.url, &self.prefix).await.unwrap())
    }

    /// An app on this queue and database, with `settings`.
    async fn app(&self, settings: Settings) -> App {
        self.app_on(settings, self.db.conn.clone()).await
    }

    async fn app_on(&self, settings: Settings, conn: DatabaseConnection) -> App {
        App::new()
            .settings(settings)
            .database(conn)
            .jobs_in(self.queue().await)
            .extension(self.runs.clone())
            .job::<Mark>()
            .job::<Flaky>()
            .job::<Slow>()
    }

    /// Waits up to `limit` for job `id` to be in `state`; its row then.
    async fn wait_state(&self, id: i64, state: JobState, limit: Duration) -> jobs::JobRow {
        let deadline = Instant::now() + limit;
        loop {
            let row = self.queue.find(id).await.unwrap().expect("the job exists");
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

    /// Runs a Redis command on the test's connection.
    async fn redis<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        cmd.query_async(&mut conn).await.unwrap()
    }

    /// Deletes the test's keys and its database.
    async fn cleanup(self) {
        let pattern = format!("ferrule:{}:*", self.prefix);
        let keys: Vec<String> = self.redis(redis::cmd("KEYS").arg(&pattern)).await;
        if !keys.is_empty() {
            let _: i64 = self.redis(redis::cmd("DEL").arg(&keys)).await;
        }
        self.db.cleanup().await;
    }
}

fn settings() -> Settings {
    Settings {
        jobs_poll_ms: 50,
        jobs_lease_ms: 3000,
        shutdown_grace_ms: 2000,
        ..Settings::default()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The `ferrule_jobs` table stays empty: the jobs went to Redis.
async fn nothing_in_the_database(db: &TestDb) {
    let counts = jobs::counts(&db.conn).await.unwrap();
    assert!(counts.is_empty(), "jobs in the database: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_in_redis_runs_once_and_a_failing_one_retries_then_lands_dead() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let server = TestServer::start(f.app(settings()).await).await.unwrap();
    let id = jobs::enqueue(&f.queue, Mark { n: 7 }).await.unwrap().id();
    let row = f
        .wait_state(id, JobState::Done, Duration::from_secs(5))
        .await;
    assert_eq!((row.attempts, row.last_error), (1, None));
    let three = Options::default().max_attempts(3);
    let last_chance = jobs::enqueue_with(&f.queue, Flaky { n: 1, fails: 2 }, three.clone())
        .await
        .unwrap()
        .id();
    let doomed = jobs::enqueue_with(&f.queue, Flaky { n: 2, fails: 3 }, three)
        .await
        .unwrap()
        .id();
    let row = f
        .wait_state(last_chance, JobState::Done, Duration::from_secs(8))
        .await;
    assert_eq!(row.attempts, 3);
    assert_eq!(row.last_error.as_deref(), Some("attempt 2 failed"));
    let row = f
        .wait_state(doomed, JobState::Dead, Duration::from_secs(8))
        .await;
    assert_eq!(row.attempts, 3);
    assert_eq!(row.last_error.as_deref(), Some("attempt 3 failed"));
    let dead = f.queue.list(Some(JobState::Dead), 10).await.unwrap();
    assert_eq!(dead.iter().map(|r| r.id).collect::<Vec<_>>(), vec![doomed]);
    // Longer than the next backoff would be: no fourth attempt, and the first job ran once.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(f.runs.numbers("mark"), vec![7]);
    for n in [1, 2] {
        let attempts = f.runs.attempts("flaky", n);
        assert_eq!(
            attempts.iter().map(|a| a.0).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(attempts[1].1 - attempts[0].1 >= Duration::from_millis(200));
        assert!(attempts[2].1 - attempts[1].1 >= Duration::from_millis(400));
    }
    let counts = f.queue.counts().await.unwrap();
    assert_eq!(counts.get(&JobState::Done), Some(&2), "{counts:?}");
    assert_eq!(counts.get(&JobState::Dead), Some(&1), "{counts:?}");
    // Retried, the dead job runs with all its attempts again.
    assert!(f.queue.retry(doomed).await.unwrap());
    assert!(!f.queue.retry(doomed).await.unwrap(), "no longer dead");
    assert!(
        !f.queue.retry(id).await.unwrap(),
        "a done job is not retried"
    );
    let row = f
        .wait_state(doomed, JobState::Dead, Duration::from_secs(8))
        .await;
    assert_eq!(row.attempts, 3);
    assert_eq!(f.runs.attempts("flaky", 2).len(), 6);
    server.stop().await.unwrap();
    // Purges: only finished states, only old enough.
    assert!(
        f.queue
            .purge(JobState::Pending, Duration::ZERO)
            .await
            .is_err()
    );
    let hour = Duration::from_secs(3600);
    assert_eq!(f.queue.purge(JobState::Done, hour).await.unwrap(), 0);
    assert_eq!(
        f.queue.purge(JobState::Done, Duration::ZERO).await.unwrap(),
        2
    );
    assert_eq!(f.queue.retry_dead().await.unwrap(), 1);
    let left = f.queue.list(None, 10).await.unwrap();
    assert_eq!(
        left.iter().map(|r| (r.id, r.state)).collect::<Vec<_>>(),
        vec![(doomed, JobState::Pending)]
    );
    assert_eq!(f.queue.find(id).await.unwrap(), None, "purged");
    nothing_in_the_database(&f.db).await;
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uniqueness_key_in_redis_refuses_or_merges_a_duplicate_while_one_waits() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let later = || {
        Options::default()
            .after(Duration::from_secs(3600))
            .unique("k")
    };
    let first = jobs::enqueue_with(&f.queue, Mark { n: 1 }, later())
        .await
        .unwrap();
    let Enqueued::New(id) = first else {
        panic!("{first:?}")
    };
    let again = jobs::enqueue_with(&f.queue, Mark { n: 2 }, later())
        .await
        .unwrap();
    assert_eq!(again, Enqueued::Duplicate(id));
    let payload = |row: Option<jobs::JobRow>| row.unwrap().payload;
    assert_eq!(payload(f.queue.find(id).await.unwrap()), r#"{"n":1}"#);
    let soon = Options::default().unique("k").replace_duplicate();
    let merged = jobs::enqueue_with(&f.queue, Mark { n: 3 }, soon)
        .await
        .unwrap();
    assert_eq!(merged, Enqueued::Replaced(id));
    let row = f.queue.find(id).await.unwrap().unwrap();
    assert_eq!(row.payload, r#"{"n":3}"#);
    assert!(row.run_at <= now_ms(), "the new time too");
    // Another kind, or no key: not duplicates.
    let other = jobs::enqueue_with(&f.queue, Slow { ms: 0, n: 1 }, later())
        .await
        .unwrap();
    assert!(matches!(other, Enqueued::New(o) if o != id));
    // Once the keyed job has run (at its new time), the key is free again.
    let server = TestServer::start(f.app(settings()).await).await.unwrap();
    f.wait_state(id, JobState::Done, Duration::from_secs(5))
        .await;
    assert_eq!(f.runs.numbers("mark"), vec![3]);
    let after = jobs::enqueue_with(&f.queue, Mark { n: 5 }, later())
        .await
        .unwrap();
    assert!(matches!(after, Enqueued::New(n) if n != id), "{after:?}");
    server.stop().await.unwrap();
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_in_redis_scheduled_at_a_time_waits_for_it() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let server = TestServer::start(f.app(settings()).await).await.unwrap();
    let start = Instant::now();
    let at = std::time::SystemTime::now() + Duration::from_millis(1200);
    let id = jobs::enqueue_with(&f.queue, Mark { n: 1 }, Options::default().at(at))
        .await
        .unwrap()
        .id();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let row = f.queue.find(id).await.unwrap().unwrap();
    assert_eq!((row.state, row.attempts), (JobState::Pending, 0));
    f.wait_state(id, JobState::Done, Duration::from_secs(5))
        .await;
    assert!(start.elapsed() >= Duration::from_millis(1200));
    server.stop().await.unwrap();
    f.cleanup().await;
}

/// Jobs enqueued while no server runs are run by the next; one claimed by a worker that
/// vanished runs once its lease ends; a stopping server finishes the short job in hand and
/// hands the long one back, which the next server runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_in_redis_survive_restarts_vanished_workers_and_shutdowns() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(jobs::enqueue(&f.queue, Mark { n }).await.unwrap().id());
    }
    // A worker that vanished holds job `orphan` until its lease ends, 1.5 s from now: what its
    // claim wrote, written by hand.
    let orphan = jobs::enqueue(&f.queue, Mark { n: 4 }).await.unwrap().id();
    let until = now_ms() + 1500;
    let key = |k: &str| format!("ferrule:{}:jobs:{k}", f.prefix);
    let mut claim = redis::pipe();
    claim
        .atomic()
        .hset_multiple(
            key(&format!("job:{orphan}")),
            &[
                ("state", "running".to_owned()),
                ("attempts", "1".to_owned()),
                ("locked_by", "gone".to_owned()),
                ("locked_until", until.to_string()),
            ],
        )
        .zrem(key("due:mark"), orphan)
        .zadd(key("lease:mark"), orphan, until)
        .zrem(key("in:pending"), orphan)
        .zadd(key("in:running"), orphan, orphan);
    let client = redis::Client::open(f.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = claim.query_async(&mut conn).await.unwrap();
    let server = TestServer::start(f.app(settings()).await).await.unwrap();
    for id in &ids {
        f.wait_state(*id, JobState::Done, Duration::from_secs(5))
            .await;
    }
    let row = f.queue.find(orphan).await.unwrap().unwrap();
    assert_eq!(row.state, JobState::Running, "its lease holds it");
    let row = f
        .wait_state(orphan, JobState::Done, Duration::from_secs(5))
        .await;
    assert!(now_ms() >= until, "run only once its lease ended");
    assert_eq!(row.attempts, 2);
    let mut marks = f.runs.numbers("mark");
    marks.sort_unstable();
    assert_eq!(marks, vec![1, 2, 3, 4]);
    // Shutdown: the short job finishes in the grace time, the long one is handed back.
    let short = jobs::enqueue(&f.queue, Slow { ms: 500, n: 1 })
        .await
        .unwrap()
        .id();
    let long = jobs::enqueue(&f.queue, Slow { ms: 2500, n: 2 })
        .await
        .unwrap()
        .id();
    for id in [short, long] {
        f.wait_state(id, JobState::Running, Duration::from_secs(5))
            .await;
    }
    server.stop().await.unwrap();
    let row = f.queue.find(short).await.unwrap().unwrap();
    assert_eq!(row.state, JobState::Done, "finished in the grace time");
    let row = f.queue.find(long).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.attempts),
        (JobState::Pending, 0),
        "handed back, its attempt not counted"
    );
    let server = TestServer::start(f.app(settings()).await).await.unwrap();
    let row = f
        .wait_state(long, JobState::Done, Duration::from_secs(8))
        .await;
    assert_eq!(row.attempts, 1);
    assert_eq!(f.runs.numbers("slow"), vec![1, 2]);
    server.stop().await.unwrap();
    nothing_in_the_database(&f.db).await;
    f.cleanup().await;
}

/// Two servers, each with its own connection to Redis, run 200 jobs: each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_run_200_jobs_in_redis_exactly_once() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let quick = Settings {
        jobs_poll_ms: 20,
        ..settings()
    };
    let a = TestServer::start(f.app(quick.clone()).await).await.unwrap();
    let b = TestServer::start(f.app(quick).await).await.unwrap();
    for n in 0..200 {
        jobs::enqueue(&f.queue, Slow { ms: 5, n }).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let counts = f.queue.counts().await.unwrap();
        if counts.get(&JobState::Done) == Some(&200) {
            break;
        }
        assert!(Instant::now() < deadline, "not all done: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    let mut ran = f.runs.numbers("slow");
    ran.sort_unstable();
    assert_eq!(ran, (0..200).collect::<Vec<_>>(), "each once");
    f.cleanup().await;
}

/// Two servers on one Redis queue fire a cron schedule once per period in all; a worker
/// process on the same queue runs what a web process leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_fire_a_cron_schedule_in_redis_once_per_period() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let even_seconds = jobs::Schedule::cron("*/2 * * * * *").unwrap();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let app =
            f.app(settings())
                .await
                .recurring(even_seconds.clone(), |at: std::time::SystemTime| Tick {
                    at_ms: at
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis() as i64,
                });
        nodes.push(TestServer::start(app).await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    for node in nodes {
        node.stop().await.unwrap();
    }
    let mut times = f.runs.numbers("tick");
    let fired = times.len();
    // A 5 s window holds two or three even seconds.
    assert!((2..=3).contains(&fired), "{times:?}");
    assert!(
        times.iter().all(|t| t % 2000 == 0),
        "on the period: {times:?}"
    );
    times.sort_unstable();
    times.dedup();
    assert_eq!(times.len(), fired, "each time once: {times:?}");
    nothing_in_the_database(&f.db).await;
    f.cleanup().await;
}

/// A web process that runs no jobs enqueues a password reset in Redis; a worker process on the
/// same queue mails the link. Nothing goes to the database's queue, which no worker reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrules_own_mail_jobs_go_to_the_redis_queue() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let outbox = Outbox::new();
    let web = f
        .app(Settings {
            jobs_concurrency: 0,
            ..settings()
        })
        .await
        .mailer(Mailer::to_outbox(&outbox));
    web.auth()
        .unwrap()
        .create_user(NewUser {
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            password: "wonderland1".into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let server = TestServer::start(web).await.unwrap();
    let (token, csrf) = server.csrf().await.unwrap();
    let asked = server
        .http(
            "POST",
            "/_auth/password_reset",
            &[
                ("content-type", "application/json"),
                ("x-csrftoken", token.as_str()),
                ("cookie", csrf.as_str()),
            ],
            br#"{"email": "alice@example.com"}"#,
        )
        .await
        .unwrap();
    assert_eq!(asked.status, 202, "{}", asked.text());
    let waiting = f.queue.list(Some(JobState::Pending), 10).await.unwrap();
    assert_eq!(
        waiting.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        vec!["ferrule.password_reset"],
        "{waiting:?}"
    );
    nothing_in_the_database(&f.db).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = f.app(settings()).await.mailer(Mailer::to_outbox(&outbox));
    let working = tokio::spawn(worker.work_with_shutdown(async {
        let _ = stopped.await;
    }));
    let mail = outbox
        .nth_to("alice@example.com", 0, Duration::from_secs(10))
        .await
        .expect("the worker mails it");
    assert!(
        mail.links()
            .first()
            .is_some_and(|l| l.contains("/reset-password?token=")),
        "{mail:?}"
    );
    stop.send(()).unwrap();
    working.await.unwrap().unwrap();
    server.stop().await.unwrap();
    let counts = f.queue.counts().await.unwrap();
    assert_eq!(
        counts.get(&JobState::Done),
        Some(&2),
        "the reset and its mail: {counts:?}"
    );
    nothing_in_the_database(&f.db).await;
    f.cleanup().await;
}

/// `jobs_store = "redis"` with `redis_url` puts the jobs of an app built with
/// `with_redis_from_settings` in Redis, where an HTTP handler's `Extension<Queue>` enqueues
/// them; without a Redis queue the app refuses to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_store_setting_moves_the_jobs_to_redis_or_refuses_to_start() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let in_redis = Settings {
        jobs_store: ferrule::JobsStore::Redis,
        ..settings()
    };
    let refused = TestServer::start(
        App::new()
            .settings(in_redis.clone())
            .database(f.db.conn.clone())
            .job::<Mark>(),
    )
    .await
    .err()
    .expect("no Redis queue: no start");
    assert!(
        refused.to_string().contains("jobs_store is `redis`"),
        "{refused}"
    );
    let app = App::new()
        .settings(Settings {
            redis_url: Some(f.url.clone()),
            ..in_redis
        })
        .database(f.db.conn.clone())
        .extension(f.runs.clone())
        .job::<Mark>()
        .route(
            "/mark",
            axum::routing::get(
                |axum::Extension(queue): axum::Extension<Queue>| async move {
                    let id = jobs::enqueue(&queue, Mark { n: 1 }).await.unwrap().id();
                    id.to_string()
                },
            ),
        )
        .with_redis_from_settings(&f.prefix)
        .await
        .unwrap();
    let server = TestServer::start(app).await.unwrap();
    let answer = server.http("GET", "/mark", &[], b"").await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    let id: i64 = answer.text().parse().unwrap();
    f.wait_state(id, JobState::Done, Duration::from_secs(5))
        .await;
    assert_eq!(f.runs.numbers("mark"), vec![1]);
    server.stop().await.unwrap();
    nothing_in_the_database(&f.db).await;
    f.cleanup().await;
}
