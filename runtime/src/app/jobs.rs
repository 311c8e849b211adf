//! Durable jobs in the app: [`App::job`] registers a kind, and the build starts this process's
//! workers with the lifespan (see [`crate::jobs`]).

use super::*;

impl App {
    /// Registers job `J`: this app's workers run the `J`s enqueued with
    /// [`ferrule::jobs::enqueue`](crate::jobs::enqueue). Needs [`App::database`]; the workers
    /// start with the server (`jobs_concurrency` at once, 0: none in this process).
    pub fn job<J: crate::jobs::Job>(mut self) -> Self {
        if let Err(e) = self.jobs.add::<J>() {
            self.jobs_error.get_or_insert(e);
        }
        self
    }

    /// Enqueues a `J`, made by `make` from the time it is due, once per period of `schedule`,
    /// by one of the app's processes whichever run (and registers `J` like [`App::job`]).
    ///
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Digest;
    /// # impl ferrule::jobs::Job for Digest {
    /// #     const NAME: &'static str = "digest";
    /// #     async fn run(self, _: ferrule::jobs::JobContext) -> Result<(), ferrule::Error> { Ok(()) }
    /// # }
    /// # fn app(db: ferrule::db::sea_orm::DatabaseConnection) -> ferrule::App {
    /// ferrule::App::new()
    ///     .database(db)
    ///     .recurring(ferrule::jobs::Schedule::daily_at(3, 0), |_at| Digest)
    /// # }
    /// ```
    pub fn recurring<J: crate::jobs::Job>(
        mut self,
        schedule: crate::jobs::Schedule,
        make: impl Fn(std::time::SystemTime) -> J + Send + Sync + 'static,
    ) -> Self {
        let recurring = crate::jobs::Recurring::new(schedule, make);
        if let Err(e) = self.jobs.add_recurring::<J>(recurring) {
            self.jobs_error.get_or_insert(e);
        }
        self
    }

    /// Adds the workers' task when jobs are registered; an error when they cannot run.
    pub(super) fn install_jobs(&mut self, settings: &Settings) -> Result<(), BuildError> {
        if let Some(e) = self.jobs_error.take() {
            return Err(BuildError::Jobs(e));
        }
        if self.jobs.is_empty() {
            return Ok(());
        }
        let Some(db) = self.db.clone() else {
            return Err(BuildError::Jobs(
                "jobs are kept in the database: call App::database before App::job".to_owned(),
            ));
        };
        if !self.jobs.recurring.is_empty() {
            let (db, recurring) = (db.clone(), Arc::new(self.jobs.recurring.clone()));
            let poll = Duration::from_millis(settings.jobs_poll_ms);
            self.lifespan.tasks.push(TaskSpec::new(
                "recurring jobs",
                OnPanic::Restart,
                move |cancel| {
                    let (db, recurring) = (db.clone(), recurring.clone());
                    crate::lifespan::every(poll, cancel, move || {
                        let (db, recurring) = (db.clone(), recurring.clone());
                        async move {
                            if let Err(e) = crate::jobs::tick(&db, &recurring).await {
                                tracing::warn!(error = %e, "firing recurring jobs failed");
                            }
                            true
                        }
                    })
                },
            ));
        }
        if settings.jobs_concurrency == 0 {
            return Ok(());
        }
        let pool = crate::jobs::Pool::new(
            db,
            self.jobs.clone(),
            self.extensions.clone(),
            crate::jobs::PoolConfig {
                concurrency: settings.jobs_concurrency,
                poll: Duration::from_millis(settings.jobs_poll_ms),
                lease: Duration::from_millis(settings.jobs_lease_ms),
                grace: Duration::from_millis(settings.shutdown_grace_ms),
            },
        );
        self.lifespan.tasks.push(TaskSpec::new(
            "job workers",
            OnPanic::Restart,
            move |cancel| pool.clone().run(cancel),
        ));
        Ok(())
    }
}
