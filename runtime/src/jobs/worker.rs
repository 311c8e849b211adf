//! The workers of one server process: a loop that claims due jobs while it has a free slot
//! (`jobs_concurrency`), runs each under a lease it renews, writes what each attempt came to,
//! and at shutdown lets the jobs in hand finish within the grace time or hands them back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::store::{self, Claim, now_ms};
use super::{JobContext, Queue, Ran, Registry};
use crate::metrics::{JOB_FAILURES_TOTAL, JOB_SECONDS, JOBS_QUEUED, JOBS_TOTAL};

/// Wakes this process's idle workers when it enqueues a job (other nodes' wait for their poll).
pub(crate) static WAKE: Notify = Notify::const_new();

/// How often the queue's depth is read for [`JOBS_QUEUED`].
const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// How often done jobs past `jobs_keep_done_ms` are deleted (and once at start).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// How a process's workers run (from the settings).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolConfig {
    /// Jobs run at once by this process.
    pub(crate) concurrency: usize,
    /// How long an idle worker waits before looking for due jobs again.
    pub(crate) poll: Duration,
    /// How long a claim holds a job without being renewed.
    pub(crate) lease: Duration,
    /// How long the jobs in hand get to finish at shutdown, their hand-back included.
    pub(crate) grace: Duration,
    /// How long done jobs are kept; `None`: until purged.
    pub(crate) keep_done: Option<Duration>,
}

/// The workers of one process.
pub(crate) struct Pool {
    db: DatabaseConnection,
    queue: Queue,
    registry: Registry,
    extensions: Arc<http::Extensions>,
    config: PoolConfig,
    /// This process's name in `locked_by`.
    node: String,
    /// The claims being run, to hand back those still running when the grace time ends.
    in_hand: Mutex<HashMap<i64, Claim>>,
}

impl Pool {
    /// Workers for `registry`'s jobs in `queue`; their jobs see `db` and `extensions`.
    pub(crate) fn new(
        db: DatabaseConnection,
        queue: Queue,
        registry: Registry,
        extensions: http::Extensions,
        config: PoolConfig,
    ) -> Arc<Self> {
        let node = format!(
            "{}-{:012x}",
            std::process::id(),
            rand::random::<u64>() & 0xffff_ffff_ffff
        );
        Arc::new(Self {
            db,
            queue,
            registry,
            extensions: Arc::new(extensions),
            config,
            node,
            in_hand: Mutex::default(),
        })
    }

    /// Claims and runs jobs until `cancel` fires, then drains (see the module's words).
    pub(crate) async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let names: Vec<&'static str> = self.registry.kinds.keys().copied().collect();
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut running = JoinSet::new();
        let mut depth_read = Instant::now() - DEPTH_EVERY;
        let mut swept = Instant::now() - SWEEP_EVERY;
        loop {
            while running.try_join_next().is_some() {}
            if swept.elapsed() >= SWEEP_EVERY {
                swept = Instant::now();
                self.sweep_done().await;
            }
            if depth_read.elapsed() >= DEPTH_EVERY {
                depth_read = Instant::now();
                self.report_depth().await;
            }
            let first = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                () = cancel.cancelled() => break,
            };
            let mut free = vec![first];
            while let Ok(p) = slots.clone().try_acquire_owned() {
                free.push(p);
            }
            let claims = match self
                .queue
                .claim(&names, &self.node, free.len(), self.config.lease)
                .await
            {
                Ok(claims) => claims,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming jobs failed");
                    Vec::new()
                }
            };
            if claims.is_empty() {
                drop(free);
                tokio::select! {
                    () = tokio::time::sleep(self.config.poll) => {}
                    () = WAKE.notified() => {}
                    () = cancel.cancelled() => break,
                }
                continue;
            }
            for (claim, slot) in claims.into_iter().zip(free) {
                self.in_hand
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(claim.id, claim.clone());
                running.spawn(self.clone().attempt(claim, slot));
            }
        }
        self.drain(running).await;
    }

    /// Waits for the jobs in hand, up to the grace time less a margin for handing back those
    /// that do not finish in it.
    async fn drain(&self, mut running: JoinSet<()>) {
        let grace = self.config.grace;
        let wait = grace.saturating_sub((grace / 4).min(Duration::from_secs(2)));
        let all = async { while running.join_next().await.is_some() {} };
        if tokio::time::timeout(wait, all).await.is_ok() {
            return;
        }
        running.abort_all();
        while running.join_next().await.is_some() {}
        let left: Vec<Claim> = self
            .in_hand
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, c)| c)
            .collect();
        for claim in left {
            match self.queue.release(&claim, &self.node).await {
                Ok(true) => {
                    tracing::info!(job = %claim.name, id = claim.id, "job handed back at shutdown");
                    ::metrics::counter!(JOBS_TOTAL, "job" => claim.name.clone(), "outcome" => "released")
                        .increment(1);
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    job = %claim.name, id = claim.id, error = %e,
                    "handing a job back failed; it runs again once its lease ends"
                ),
            }
        }
    }

    /// Runs one claimed job, renewing its lease meanwhile, and writes the outcome.
    async fn attempt(self: Arc<Self>, claim: Claim, slot: OwnedSemaphorePermit) {
        let _slot = slot;
        let span = tracing::info_span!("ferrule.job", job = %claim.name, id = claim.id, attempt = claim.attempts);
        let written = tracing::Instrument::instrument(self.attempt_in_span(&claim), span).await;
        if let Err(e) = written {
            tracing::warn!(
                job = %claim.name, id = claim.id, error = %e,
                "writing a job's outcome failed; it runs again once its lease ends"
            );
        }
        self.in_hand
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&claim.id);
    }

    async fn attempt_in_span(&self, claim: &Claim) -> Result<(), crate::Error> {
        let job = claim.name.clone();
        let Some(kind) = self.registry.kinds.get(claim.name.as_str()) else {
            return Ok(());
        };
        if claim.attempts > claim.max_attempts {
            // Its worker vanished during its last attempt (the lease ran out): running it
            // again would pass its limit.
            let error = "its worker stopped during its last attempt (the lease ran out)";
            self.failed(claim, error, None).await?;
            return Ok(());
        }
        let ctx = JobContext {
            db: self.db.clone(),
            queue: self.queue.clone(),
            extensions: self.extensions.clone(),
            id: claim.id,
            attempt: claim.attempts.max(1) as u32,
        };
        let started = Instant::now();
        let mut run = (kind.run)(claim.payload.clone(), ctx);
        let renew_every = self.config.lease / 3;
        let ran = loop {
            tokio::select! {
                ran = &mut run => break ran,
                () = tokio::time::sleep(renew_every) => {
                    match self.queue.renew(claim, &self.node, self.config.lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!("the job's lease was lost: another worker may run it too"),
                        Err(e) => tracing::warn!(error = %e, "renewing the job's lease failed"),
                    }
                }
            }
        };
        ::metrics::histogram!(JOB_SECONDS, "job" => job.clone())
            .record(started.elapsed().as_secs_f64());
        match ran {
            Ran::Done => {
                self.queue.finish(claim, &self.node).await?;
                ::metrics::counter!(JOBS_TOTAL, "job" => job, "outcome" => "done").increment(1);
            }
            Ran::Failed(error, backoff) => {
                let retry = (claim.attempts < claim.max_attempts)
                    .then(|| now_ms() + backoff.as_millis() as i64);
                self.failed(claim, &error, retry).await?;
            }
            Ran::Undecodable(error) => self.failed(claim, &error, None).await?,
        }
        Ok(())
    }

    /// Writes a failed attempt: retried at `retry` (Unix ms), or dead.
    async fn failed(
        &self,
        claim: &Claim,
        error: &str,
        retry: Option<i64>,
    ) -> Result<(), crate::Error> {
        let outcome = if retry.is_some() { "retry" } else { "dead" };
        if retry.is_some() {
            tracing::warn!(error, "job failed; it will run again");
        } else {
            tracing::error!(error, "job failed for the last time; it is dead");
        }
        ::metrics::counter!(JOB_FAILURES_TOTAL, "job" => claim.name.clone()).increment(1);
        ::metrics::counter!(JOBS_TOTAL, "job" => claim.name.clone(), "outcome" => outcome)
            .increment(1);
        self.queue.fail(claim, &self.node, error, retry).await?;
        Ok(())
    }

    /// Deletes the done jobs older than `keep_done`.
    async fn sweep_done(&self) {
        let Some(keep) = self.config.keep_done else {
            return;
        };
        match self.queue.purge(store::JobState::Done, keep).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "old done jobs deleted"),
            Err(e) => tracing::debug!(error = %e, "deleting old done jobs failed"),
        }
    }

    /// Sets [`JOBS_QUEUED`] from the table.
    async fn report_depth(&self) {
        match self.queue.counts().await {
            Ok(counts) => {
                for state in [
                    store::JobState::Pending,
                    store::JobState::Running,
                    store::JobState::Dead,
                ] {
                    let n = counts.get(&state).copied().unwrap_or(0);
                    ::metrics::gauge!(JOBS_QUEUED, "state" => state.as_str()).set(n as f64);
                }
            }
            Err(e) => tracing::debug!(error = %e, "reading the job queue's depth failed"),
        }
    }
}
