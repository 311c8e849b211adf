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
