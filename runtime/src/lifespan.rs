//! Startup and shutdown hooks and supervised background tasks, tied to the server's lifespan.
//!
//! [`App::serve`](crate::App::serve) runs the startup hooks before it accepts a connection,
//! starts the tasks, and on Ctrl-C or SIGTERM: lets in-flight events finish (bounded by
//! `drain`), closes the sockets cleanly, cancels the tasks and waits for them, runs the shutdown
//! hooks, and returns `Ok` (exit code 0). A host app that serves the router itself runs the same
//! through [`App::into_parts`](crate::App::into_parts) and [`Lifespan`](crate::Lifespan).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
pub use tokio_util::sync::CancellationToken;

use crate::Error;

/// The server's stop signal, in every HTTP request's extensions (`Extension<Stopping>`): a
/// long-lived response (an event stream, a long poll) ends when it fires, so a graceful shutdown
/// does not wait for it.
#[derive(Clone, Debug)]
pub struct Stopping(CancellationToken);

impl Stopping {
    pub(crate) fn new(token: CancellationToken) -> Self {
        Self(token)
    }

    /// Completes once the server has begun to stop.
    pub async fn stopped(&self) {
        self.0.cancelled().await;
    }

    /// Whether the server has begun to stop.
    pub fn is_stopping(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// What happens when a background task panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnPanic {
    /// Log it and start the task again, waiting 100 ms, then twice as long each time up to 30 s.
    Restart,
    /// Log it and stop the server (which then returns an error naming the task).
    StopServer,
}

pub(crate) type Hook = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), Error>> + Send>;
pub(crate) type TaskFn = Arc<dyn Fn(CancellationToken) -> BoxFuture<'static, ()> + Send + Sync>;

/// A task registered with [`App::task`](crate::App::task).
pub(crate) struct TaskSpec {
    pub(crate) name: String,
    pub(crate) on_panic: OnPanic,
    pub(crate) run: TaskFn,
}

impl TaskSpec {
    pub(crate) fn new<F, Fut>(name: &str, on_panic: OnPanic, f: F) -> Self
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            name: name.to_owned(),
            on_panic,
            run: Arc::new(move |c| Box::pin(f(c))),
        }
    }
}

/// The hooks and tasks an app registered, run by its [`Lifespan`](crate::Lifespan).
#[derive(Default)]
pub(crate) struct HooksAndTasks {
    pub(crate) startup: Vec<(String, Hook)>,
    pub(crate) shutdown: Vec<(String, Hook)>,
    pub(crate) tasks: Vec<TaskSpec>,
}

/// The running tasks.
pub(crate) struct Supervisor {
    cancel: CancellationToken,
    handles: Vec<tokio::task::JoinHandle<()>>,
    /// Cancelled when a task with [`OnPanic::StopServer`] panicked; holds its name.
    pub(crate) failed: Arc<std::sync::Mutex<Option<String>>>,
    pub(crate) stop_server: CancellationToken,
}

impl Supervisor {
    pub(crate) fn start(tasks: Vec<TaskSpec>) -> Self {
        let cancel = CancellationToken::new();
        let stop_server = CancellationToken::new();
        let failed: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let handles = tasks
            .into_iter()
            .map(|spec| {
                let cancel = cancel.clone();
                let stop_server = stop_server.clone();
                let failed = failed.clone();
                tokio::spawn(supervise(spec, cancel, stop_server, failed))
            })
            .collect();
        Self {
            cancel,
            handles,
            failed,
            stop_server,
        }
    }

    /// Cancels every task and waits up to `wait` for them to end.
    pub(crate) async fn stop(self, wait: Duration) {
        self.cancel.cancel();
        let all = futures_util::future::join_all(self.handles);
        if tokio::time::timeout(wait, all).await.is_err() {
            tracing::warn!(
                ?wait,
                "background tasks did not stop in time; abandoning them"
            );
        }
    }
}

async fn supervise(
    spec: TaskSpec,
    cancel: CancellationToken,
    stop_server: CancellationToken,
    failed: Arc<std::sync::Mutex<Option<String>>>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        let run = tokio::spawn((spec.run)(cancel.child_token()));
        match run.await {
            Ok(()) => {
                tracing::debug!(task = %spec.name, "background task ended");
                return;
            }
            Err(e) if e.is_panic() => {
                tracing::error!(task = %spec.name, "background task panicked");
                if spec.on_panic == OnPanic::StopServer {
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(spec.name.clone());
                    stop_server.cancel();
                    return;
                }
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_millis(100);
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = cancel.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                tracing::info!(task = %spec.name, "restarting background task");
            }
            Err(_) => return,
        }
    }
}

/// Runs hooks in order; the first failure stops and is returned with the hook's name.
pub(crate) async fn run_hooks(kind: &str, hooks: Vec<(String, Hook)>) -> Result<(), String> {
    for (name, hook) in hooks {
        if let Err(e) = hook().await {
            return Err(format!("{kind} hook `{name}` failed: {e}"));
        }
    }
    Ok(())
}

/// Runs `tick` at once and then every `period` until `cancel` fires or `tick` answers
/// `false`: the loop of the runtime's sweepers.
pub(crate) async fn every<F, Fut>(period: Duration, cancel: CancellationToken, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let mut interval = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = cancel.cancelled() => return,
        }
        if !tick().await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn every_runs_at_once_then_each_period_until_told_to_stop() {
        let runs = AtomicUsize::new(0);
        every(
            Duration::from_millis(5),
            CancellationToken::new(),
            || async { runs.fetch_add(1, Ordering::SeqCst) < 2 },
        )
        .await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "until the third run says stop"
        );

        let cancel = CancellationToken::new();
        cancel.cancel();
        let before = runs.load(Ordering::SeqCst);
        every(Duration::from_secs(3600), cancel, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            true
        })
        .await;
        assert!(
            runs.load(Ordering::SeqCst) - before <= 1,
            "a cancelled loop ends"
        );
    }
}
