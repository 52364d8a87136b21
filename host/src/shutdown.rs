//! Shutdown as one pattern: a token every task watches, and a registry of the tasks to await.
//!
//! Long-running parts of the host (the HTTP server, the queue worker, the scheduler) are
//! spawned through [`Lifecycle::spawn`]. Shutdown cancels the token, then waits for every
//! registered task, bounded by the grace period; tasks still running then are named.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Tasks that had not finished when the grace period ran out.
#[derive(Debug, thiserror::Error)]
#[error("shutdown grace period of {grace:?} ran out; still running: {}", still_running.join(", "))]
pub struct GraceExceeded {
    pub grace: Duration,
    pub still_running: Vec<String>,
}

#[derive(Clone, Default)]
pub struct Lifecycle {
    token: CancellationToken,
    tracker: TaskTracker,
    running: Arc<Mutex<BTreeMap<u64, String>>>,
    next_id: Arc<AtomicU64>,
}

impl Lifecycle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts shutting down: every task's token fires. Idempotent.
    pub fn begin_shutdown(&self) {
        self.token.cancel();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown has begun.
    pub fn shutdown_started(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }

    /// Runs `task` until it finishes by itself; shutdown waits for it. The task is expected
    /// to watch [`Lifecycle::shutdown_started`] and wind down when it fires.
    pub fn spawn<F>(&self, name: impl Into<String>, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.running.lock().expect("task registry lock").insert(id, name.into());
        let guard = Registered { id, running: self.running.clone() };
        self.tracker.spawn(async move {
            let _guard = guard;
            task.await
        })
    }

    /// Begins shutdown and waits for every registered task, at most `grace`.
    pub async fn drain(&self, grace: Duration) -> Result<(), GraceExceeded> {
        self.begin_shutdown();
        self.tracker.close();
        match tokio::time::timeout(grace, self.tracker.wait()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(GraceExceeded { grace, still_running: self.still_running() }),
        }
    }

    /// Names of the registered tasks that have not finished.
    pub fn still_running(&self) -> Vec<String> {
        self.running.lock().expect("task registry lock").values().cloned().collect()
    }
}

/// Removes a task from the registry when it ends, however it ends.
struct Registered {
    id: u64,
    running: Arc<Mutex<BTreeMap<u64, String>>>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_tasks_that_watch_the_token() {
        let lifecycle = Lifecycle::new();
        let watcher = lifecycle.clone();
        lifecycle.spawn("worker", async move {
            watcher.shutdown_started().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        assert_eq!(lifecycle.still_running(), ["worker"]);
        lifecycle.drain(Duration::from_secs(5)).await.expect("drains in time");
        assert!(lifecycle.still_running().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn drain_names_what_outlives_the_grace_period() {
        let lifecycle = Lifecycle::new();
        lifecycle.spawn("stubborn job", std::future::pending::<()>());
        lifecycle.spawn("quick", async {});
        let err = lifecycle.drain(Duration::from_secs(3)).await.unwrap_err();
        assert_eq!(err.still_running, ["stubborn job"]);
        assert!(err.to_string().contains("still running: stubborn job"), "{err}");
    }
}
