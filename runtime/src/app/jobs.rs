//! Durable jobs in the app: [`App::job`] registers a kind, and the build starts this process's
//! workers with the lifespan (see [`crate::jobs`]).

use super::*;

impl App {
    /// Registers job `J`: this app's workers run the `J`s enqueued with
    /// [`ferrule::jobs::enqueue`](crate::jobs::enqueue). Needs [`App::database`]; the workers
    /// start with the server (`jobs_concurrency` at once, 0: none in this process), or in a
    /// worker process that serves nothing ([`App::work_with_shutdown`], `app jobs work`).
    pub fn job<J: crate::jobs::Job>(mut self) -> Self {
        if let Err(e) = self.jobs.add::<J>() {
            self.jobs_error.get_or_insert(e);
        }
        self
    }

    /// Keeps the app's jobs in `queue` instead of the database: `Queue::redis(RedisJobs)` for
    /// nodes that share a Redis. Every process of the app must say the same.
    pub fn jobs_in(mut self, queue: crate::jobs::Queue) -> Self {
        self.jobs_queue = Some(queue);
        self
    }

    /// The app's job queue: the one [`App::jobs_in`] gave, else its database's.
    pub(super) fn job_queue(&self) -> Option<crate::jobs::Queue> {
        self.jobs_queue
            .clone()
            .or_else(|| self.db.clone().map(crate::jobs::Queue::database))
    }

    /// Enqueues a `J`, made by `make` from the time it is due, once per period of `schedule`,
    /// by one of the app's processes whichever run (and registers `J` like [`App::job`]).
    /// `schedule` is a [`Schedule`](crate::jobs::Schedule) or a cron expression; an expression
    /// that [`Schedule::cron`](crate::jobs::Schedule::cron) refuses fails the app's start
    /// ([`BuildError::Jobs`]) with the job's name and what is wrong.
    ///
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Digest;
    /// # impl ferrule::jobs::Job for Digest {
    /// #     const NAME: &'static str = "digest";
    /// #     async fn run(self, _: ferrule::jobs::JobContext) -> Result<(), ferrule::Error> { Ok(()) }
    /// # }
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Sweep;
    /// # impl ferrule::jobs::Job for Sweep {
    /// #     const NAME: &'static str = "sweep";
    /// #     async fn run(self, _: ferrule::jobs::JobContext) -> Result<(), ferrule::Error> { Ok(()) }
    /// # }
    /// # fn app(db: ferrule::db::sea_orm::DatabaseConnection) -> ferrule::App {
    /// ferrule::App::new()
    ///     .database(db)
    ///     .recurring(ferrule::jobs::Schedule::daily_at(3, 0), |_at| Digest)
    ///     // Every five minutes on the minute, UTC.
    ///     .recurring("0 */5 * * * *", |_at| Sweep)
    /// # }
    /// ```
    pub fn recurring<J: crate::jobs::Job>(
        mut self,
        schedule: impl TryInto<crate::jobs::Schedule, Error: std::fmt::Display>,
        make: impl Fn(std::time::SystemTime) -> J + Send + Sync + 'static,
    ) -> Self {
        let schedule = match schedule.try_into() {
            Ok(schedule) => schedule,
            Err(e) => {
                self.jobs_error
                    .get_or_insert(format!("the schedule of job `{}`: {e}", J::NAME));
                return self;
            }
        };
        let recurring = crate::jobs::Recurring::new(schedule, make);
        if let Err(e) = self.jobs.add_recurring::<J>(recurring) {
            self.jobs_error.get_or_insert(e);
        }
        self
    }

    /// Adds the tasks that run the app's jobs to the lifespan; an error when they cannot run.
    pub(super) fn install_jobs(&mut self, settings: &Settings) -> Result<(), BuildError> {
        let tasks = self.job_tasks(settings)?;
        self.lifespan.tasks.extend(tasks);
        Ok(())
    }

    /// The tasks that run the app's jobs in a process: the recurring schedules' ticks, and the
    /// workers unless `jobs_concurrency` is 0. None when no job is registered; an error when
    /// one was refused or there is no database.
    fn job_tasks(&mut self, settings: &Settings) -> Result<Vec<TaskSpec>, BuildError> {
        if let Some(e) = self.jobs_error.take() {
            return Err(BuildError::Jobs(e));
        }
        if settings.jobs_store == crate::JobsStore::Redis
            && !self.jobs_queue.as_ref().is_some_and(|q| q.is_redis())
        {
            return Err(BuildError::Jobs(
                "jobs_store is `redis` but the app has no Redis queue: set redis_url (REDIS_URL) \
                 and build the app with App::with_redis_from_settings, or give one with \
                 App::jobs_in(Queue::redis(..))"
                    .to_owned(),
            ));
        }
        // Handlers and jobs enqueue where the workers look.
        if let Some(queue) = self.job_queue() {
            self.extensions.insert(queue);
        }
        let mut tasks = Vec::new();
        if self.jobs.is_empty() {
            return Ok(tasks);
        }
        let Some(db) = self.db.clone() else {
            return Err(BuildError::Jobs(
                "jobs are kept in the database: call App::database before App::job".to_owned(),
            ));
        };
        let queue = self
            .jobs_queue
            .clone()
            .unwrap_or_else(|| crate::jobs::Queue::database(db.clone()));
        if !self.jobs.recurring.is_empty() {
            let (queue, recurring) = (queue.clone(), Arc::new(self.jobs.recurring.clone()));
            let poll = Duration::from_millis(settings.jobs_poll_ms);
            tasks.push(TaskSpec::new(
                "recurring jobs",
                OnPanic::Restart,
                move |cancel| {
                    let (queue, recurring) = (queue.clone(), recurring.clone());
                    crate::lifespan::every(poll, cancel, move || {
                        let (queue, recurring) = (queue.clone(), recurring.clone());
                        async move {
                            if let Err(e) = crate::jobs::tick(&queue, &recurring).await {
                                tracing::warn!(error = %e, "firing recurring jobs failed");
                            }
                            true
                        }
                    })
                },
            ));
        }
        if settings.jobs_concurrency == 0 {
            return Ok(tasks);
        }
        let pool = crate::jobs::Pool::new(
            db,
            queue,
            self.jobs.clone(),
            self.extensions.clone(),
            crate::jobs::PoolConfig {
                concurrency: settings.jobs_concurrency,
                poll: Duration::from_millis(settings.jobs_poll_ms),
                lease: Duration::from_millis(settings.jobs_lease_ms),
                grace: Duration::from_millis(settings.shutdown_grace_ms),
                keep_done: (settings.jobs_keep_done_ms > 0)
                    .then(|| Duration::from_millis(settings.jobs_keep_done_ms)),
            },
        );
        tasks.push(TaskSpec::new(
            "job workers",
            OnPanic::Restart,
            move |cancel| pool.clone().run(cancel),
        ));
        Ok(tasks)
    }

    /// Runs the app's job workers (`jobs_concurrency` jobs at once) and its recurring
    /// schedules, and serves nothing, until `shutdown` completes: the process `app jobs work`
    /// starts. Then it stops as a server does: the workers stop claiming, the jobs in hand get
    /// `shutdown_grace_ms` to finish (less a margin), and those still running are handed back
    /// for another process. The web processes' hooks, tasks and sweepers do not run here.
    ///
    /// Ferrule's own jobs (the mail, the account links) run here as in a server. Errs at once
    /// when there is nothing to work (no database, so no job), a job or schedule is refused,
    /// or `jobs_concurrency` is 0.
    pub async fn work_with_shutdown(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let settings = self
            .resolved_settings()
            .map_err(std::io::Error::other)?
            .clone();
        // Ferrule's own jobs (mail, account links) run here too, with what they need.
        self.install_worker_mail(&settings)
            .map_err(std::io::Error::other)?;
        if let Some(e) = self.jobs_error.take() {
            return Err(std::io::Error::other(BuildError::Jobs(e)));
        }
        if self.jobs.is_empty() {
            return Err(std::io::Error::other(
                "this app registers no job (App::job, App::recurring): a worker has nothing to run",
            ));
        }
        if settings.jobs_concurrency == 0 {
            return Err(std::io::Error::other(
                "jobs_concurrency is 0: a worker process needs 1 at least (FERRULE_JOBS_CONCURRENCY, \
                 or `jobs work --concurrency N`)",
            ));
        }
        // What a job sees in its extensions is what it sees in a server: the translations too.
        let catalogues = crate::i18n::Catalogues::new(&settings.languages, self.locales)
            .map_err(|e| std::io::Error::other(BuildError::Locales(e)))?;
        self.extensions.insert(Arc::new(catalogues));
        let tasks = self.job_tasks(&settings).map_err(std::io::Error::other)?;
        // The job metrics of this process, which no web process counts.
        let metrics_stop = tokio_util::sync::CancellationToken::new();
        let metrics = match settings.metrics_addr {
            Some(addr) => Some(
                super::metrics_endpoint::start(
                    addr,
                    None,
                    Duration::from_millis(settings.header_read_timeout_ms),
                    metrics_stop.clone(),
                )
                .await?,
            ),
            None => None,
        };
        let supervisor = Supervisor::start(tasks);
        tracing::info!(
            concurrency = settings.jobs_concurrency,
            schedules = self.jobs.recurring.len(),
            "working jobs (no HTTP server)"
        );
        shutdown.await;
        supervisor
            .stop(Duration::from_millis(settings.shutdown_grace_ms))
            .await;
        metrics_stop.cancel();
        if let Some(served) = metrics {
            match served.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the metrics endpoint failed"),
                Err(e) => tracing::warn!(error = %e, "the metrics endpoint panicked"),
            }
        }
        crate::logging::flush();
        Ok(())
    }

    /// `app jobs work`: [`App::work_with_shutdown`] until Ctrl-C or SIGTERM, with
    /// `concurrency` instead of `jobs_concurrency` when given. Refuses to start while
    /// migrations are pending.
    async fn work(self, concurrency: Option<usize>) -> std::io::Result<()> {
        self.work_until(concurrency, shutdown_signal()).await
    }

    /// [`App::work`] until `shutdown` completes.
    async fn work_until(
        mut self,
        concurrency: Option<usize>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if let Some(n) = concurrency {
            let mut settings = self
                .resolved_settings()
                .map_err(std::io::Error::other)?
                .clone();
            settings.jobs_concurrency = n;
            self.settings = Some(settings);
        }
        self.refuse_pending_migrations().await?;
        self.work_with_shutdown(shutdown).await
    }
}

/// What `app jobs` does.
#[derive(Debug, clap::Subcommand)]
pub(super) enum JobsAction {
    /// List jobs, oldest first: id, kind, state, attempts, due time, last error.
    List {
        /// Only those in this state: pending, running, done or dead.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Put dead jobs back in the queue with all their attempts.
    Retry {
        /// The jobs' ids.
        ids: Vec<i64>,
        /// Every dead job.
        #[arg(long, conflicts_with = "ids")]
        dead: bool,
    },
    /// Delete finished jobs.
    Purge {
        /// done or dead.
        #[arg(long, default_value = "done")]
        state: String,
        /// Only those that ended more than this many hours ago.
        #[arg(long, default_value_t = 0)]
        older_than_hours: u64,
    },
    /// Run the job workers and the recurring schedules, serving no HTTP, until Ctrl-C or
    /// SIGTERM; jobs in hand then get `shutdown_grace_ms` to finish.
    Work {
        /// Jobs run at once, instead of `jobs_concurrency`.
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        concurrency: Option<usize>,
    },
}

impl App {
    /// `app jobs …`.
    pub(super) async fn jobs_command(self, action: JobsAction) -> ExitCode {
        if let JobsAction::Work { concurrency } = action {
            return match self.work(concurrency).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: jobs work: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        let Some(queue) = self.job_queue() else {
            eprintln!("error: jobs: this app has no database (App::database)");
            return ExitCode::FAILURE;
        };
        match jobs_action(&queue, action).await {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: jobs: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

fn state_arg(name: &str) -> Result<crate::jobs::JobState, String> {
    crate::jobs::JobState::parse(name).ok_or_else(|| {
        format!("unknown job state `{name}` (expected pending, running, done or dead)")
    })
}

/// Does `action` on `queue`; what to print.
pub(super) async fn jobs_action(
    queue: &crate::jobs::Queue,
    action: JobsAction,
) -> Result<String, String> {
    let db_err = |e: crate::Error| e.to_string();
    match action {
        JobsAction::List { state, limit } => {
            let state = state.as_deref().map(state_arg).transpose()?;
            let rows = queue.list(state, limit).await.map_err(db_err)?;
            Ok(jobs_table(&rows))
        }
        JobsAction::Retry { ids, dead: true } if ids.is_empty() => {
            let n = queue.retry_dead().await.map_err(db_err)?;
            Ok(format!("{n} dead job(s) back in the queue\n"))
        }
        JobsAction::Retry { ids, .. } => {
            if ids.is_empty() {
                return Err("name the jobs' ids, or --dead for every dead job".to_owned());
            }
            let mut out = String::new();
            for id in ids {
                if queue.retry(id).await.map_err(db_err)? {
                    out.push_str(&format!("job {id}: back in the queue\n"));
                } else {
                    return Err(format!("{out}job {id}: no dead job has this id"));
                }
            }
            Ok(out)
        }
        JobsAction::Purge {
            state,
            older_than_hours,
        } => {
            let state = state_arg(&state)?;
            let age = Duration::from_secs(older_than_hours.saturating_mul(3600));
            let n = queue.purge(state, age).await.map_err(db_err)?;
            Ok(format!("{n} {} job(s) deleted\n", state.as_str()))
        }
        JobsAction::Work { .. } => {
            Err("`jobs work` runs until stopped: it is App::work_with_shutdown".to_owned())
        }
    }
}

/// Jobs as a table, one line each.
fn jobs_table(rows: &[crate::jobs::JobRow]) -> String {
    if rows.is_empty() {
        return "no jobs\n".to_owned();
    }
    let mut out = format!(
        "{:>8}  {:<20}  {:<8}  {:>8}  {:<13}  {}\n",
        "id", "job", "state", "attempts", "due (unix ms)", "last error"
    );
    for r in rows {
        let error: String = r
            .last_error
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        out.push_str(&format!(
            "{:>8}  {:<20}  {:<8}  {:>8}  {:<13}  {}\n",
            r.id,
            r.name,
            r.state.as_str(),
            format!("{}/{}", r.attempts, r.max_attempts),
            r.run_at,
            error
        ));
    }
    out
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use clap::Parser;
    use sea_orm::ConnectionTrait;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        action: JobsAction,
    }

    fn parse(words: &[&str]) -> JobsAction {
        Cli::try_parse_from(std::iter::once("jobs").chain(words.iter().copied()))
            .unwrap()
            .action
    }

    #[test]
    fn jobs_work_takes_a_concurrency_of_one_at_least() {
        assert!(matches!(
            parse(&["work"]),
            JobsAction::Work { concurrency: None }
        ));
        assert!(matches!(
            parse(&["work", "--concurrency", "1"]),
            JobsAction::Work {
                concurrency: Some(1)
            }
        ));
        let zero = Cli::try_parse_from(["jobs", "work", "--concurrency", "0"]);
        assert!(zero.is_err(), "a worker that runs nothing");
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Nothing;

    impl crate::jobs::Job for Nothing {
        const NAME: &'static str = "nothing";

        async fn run(self, _: crate::jobs::JobContext) -> Result<(), crate::Error> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn jobs_work_refuses_pending_migrations_and_takes_its_own_concurrency() {
        let db = crate::testing::TestDatabase::create("sqlite://test.sqlite3")
            .await
            .unwrap();
        let conn = db.connection();
        let enqueue_only = Settings {
            jobs_concurrency: 0,
            ..Settings::default()
        };
        let app = || {
            App::new()
                .settings(enqueue_only.clone())
                .database(conn.clone())
                .job::<Nothing>()
        };
        let error = app().work_until(Some(1), async {}).await.unwrap_err();
        assert!(
            error.to_string().contains("migration(s) pending"),
            "{error}"
        );
        crate::db::migrations::migrate(&conn).await.unwrap();
        let error = app().work_until(None, async {}).await.unwrap_err();
        assert!(
            error.to_string().contains("jobs_concurrency is 0"),
            "{error}"
        );
        // `--concurrency 1` stands in for the setting.
        app().work_until(Some(1), async {}).await.unwrap();
    }

    #[tokio::test]
    async fn jobs_commands_list_retry_and_purge() {
        let db = crate::testing::TestDatabase::create("sqlite://test.sqlite3")
            .await
            .unwrap();
        let conn = db.connection();
        crate::db::migrations::migrate(&conn).await.unwrap();
        let queue = crate::jobs::Queue::database(conn.clone());
        let list = |w: &'static [&'static str]| jobs_action(&queue, parse(w));
        assert_eq!(list(&["list"]).await.unwrap(), "no jobs\n");
        conn.execute_unprepared(
            "INSERT INTO ferrule_jobs (name, payload, state, attempts, max_attempts, run_at, \
             last_error, created_at, finished_at) VALUES \
             ('mail', '{}', 'dead', 3, 3, 0, 'smtp said no', 0, 0), \
             ('mail', '{}', 'done', 1, 3, 0, NULL, 0, 0)",
        )
        .await
        .unwrap();
        let table = list(&["list", "--state", "dead"]).await.unwrap();
        assert!(table.contains("dead") && table.contains("3/3") && table.contains("smtp said no"));
        assert!(!table.contains("done"), "{table}");
        assert!(
            list(&["list", "--state", "gone"])
                .await
                .unwrap_err()
                .contains("gone")
        );
        assert!(
            list(&["retry", "2"])
                .await
                .unwrap_err()
                .contains("no dead job")
        );
        assert_eq!(
            list(&["retry", "1"]).await.unwrap(),
            "job 1: back in the queue\n"
        );
        let row = crate::jobs::find(&conn, 1).await.unwrap().unwrap();
        assert_eq!(
            (row.state, row.attempts),
            (crate::jobs::JobState::Pending, 0)
        );
        assert_eq!(
            list(&["retry", "--dead"]).await.unwrap(),
            "0 dead job(s) back in the queue\n"
        );
        assert!(
            list(&["purge", "--state", "pending"]).await.is_err(),
            "waiting jobs stay"
        );
        assert_eq!(
            list(&["purge", "--older-than-hours", "1"]).await.unwrap(),
            "1 done job(s) deleted\n"
        );
        assert_eq!(crate::jobs::list(&conn, None, 10).await.unwrap().len(), 1);
    }
}
