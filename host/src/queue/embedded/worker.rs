//! The embedded queue's worker: claims due jobs up to its concurrency, runs each through the
//! plugin executor while renewing its lock, records the outcome (retrying with exponential
//! backoff), takes back jobs whose lock expired, and fires due job schedulers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Row;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{EmbeddedQueue, next_occurrence, now_ms, write};
use crate::plugins::executor::Executor;
use crate::queue::run::{Attempt, Outcome, run, with_trace};
use crate::queue::{KEEP_COMPLETED, KEEP_FAILED, NewJob, QueueError, WorkerConfig};
use crate::shutdown::Lifecycle;

/// How often an idle worker looks for jobs added by another process (the CLI, say); jobs
/// added in this process wake it at once.
const POLL: Duration = Duration::from_millis(500);
/// How often the worker refreshes its row, fires due schedulers and checks for stalled jobs.
const MAINTENANCE: Duration = Duration::from_secs(1);
/// A worker's row goes this long after it was last refreshed (its host was killed).
const FORGET_WORKERS_AFTER_MS: u64 = 3_600_000;
/// Why a job found stalled a second time fails (BullMQ's words).
const STALLED_TOO_OFTEN: &str = "job stalled more than allowable limit";

pub(super) fn spawn(
    queue: EmbeddedQueue,
    lifecycle: &Lifecycle,
    config: WorkerConfig,
    executor: Arc<Executor>,
) {
    let stop = lifecycle.shutdown_started();
    lifecycle.spawn("queue worker", async move {
        tokio::pin!(stop);
        let token = format!("{}:{}", config.name, uuid::Uuid::new_v4().simple());
        let slots = Arc::new(Semaphore::new(config.concurrency));
        let mut running = JoinSet::new();
        let mut maintenance = tokio::time::interval(MAINTENANCE);
        let mut last_stalled_check = None::<Instant>;
        tracing::info!(concurrency = config.concurrency, name = %config.name, path = %queue.settings.path.display(), "embedded queue worker started");
        loop {
            while let Ok(slot) = slots.clone().try_acquire_owned() {
                match claim(&queue, &token).await {
                    Ok(Some(attempt)) => {
                        let (queue, token, executor) = (queue.clone(), token.clone(), executor.clone());
                        running.spawn(async move {
                            work(&queue, &token, &executor, attempt).await;
                            drop(slot);
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "the embedded queue cannot hand out jobs; retrying");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = queue.added.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = maintenance.tick() => {
                    let check_stalled = last_stalled_check.is_none_or(|at| at.elapsed() >= queue.settings.stalled_interval);
                    if check_stalled {
                        last_stalled_check = Some(Instant::now());
                    }
                    if let Err(e) = maintain(&queue, &config.name, check_stalled).await {
                        tracing::warn!(error = %e, "embedded queue maintenance failed; retrying");
                    }
                }
            }
        }
        tracing::info!("queue worker draining");
        let drained = tokio::time::timeout(config.drain_timeout, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                still_running = running.len(),
                "jobs still running at the end of the drain keep their lock until it expires; they run again then"
            );
        }
        let _ = sqlx::query("DELETE FROM workers WHERE name = ?1").bind(&config.name).execute(&queue.pool).await;
    });
}

/// Takes the next due job, if any: active, locked to `token`, its start counted.
async fn claim(queue: &EmbeddedQueue, token: &str) -> Result<Option<Attempt>, QueueError> {
    let now = now_ms();
    let row = sqlx::query(
        "UPDATE jobs SET state = 'active', lock_token = ?1, lock_until = ?2 + ?3,
                attempts_started = attempts_started + 1, processed_on = ?2
         WHERE seq = (SELECT seq FROM jobs WHERE state IN ('waiting', 'delayed') AND run_at <= ?2
                      ORDER BY run_at, seq LIMIT 1)
         RETURNING id, name, data, attempts, attempts_made, attempts_started, created_at",
    )
    .bind(token)
    .bind(now as i64)
    .bind(queue.settings.lock_duration.as_millis() as i64)
    .fetch_optional(&queue.pool)
    .await?;
    Ok(row.map(|row| Attempt {
        id: row.get("id"),
        name: row.get("name"),
        data: row.get("data"),
        attempts_made: row.get::<i64, _>("attempts_made") as u32,
        attempts_started: row.get::<i64, _>("attempts_started") as u32,
        attempts: row.get::<i64, _>("attempts") as u32,
        enqueued_at_ms: row.get::<i64, _>("created_at") as u64,
    }))
}

/// Runs one attempt, renewing its lock at half the lock duration until it ends, then records
/// the outcome. Should recording fail, the lock lapses and the stalled check runs it again.
async fn work(queue: &EmbeddedQueue, token: &str, executor: &Executor, attempt: Attempt) {
    let (id, attempts_made, attempts) = (attempt.id.clone(), attempt.attempts_made, attempt.attempts);
    let lock = queue.settings.lock_duration;
    let attempt_run = run(executor, attempt);
    tokio::pin!(attempt_run);
    let mut renew = tokio::time::interval(lock / 2);
    renew.tick().await;
    let outcome = loop {
        tokio::select! {
            outcome = &mut attempt_run => break outcome,
            _ = renew.tick() => {
                let renewed = sqlx::query("UPDATE jobs SET lock_until = ?3 WHERE id = ?1 AND lock_token = ?2")
                    .bind(&id)
                    .bind(token)
                    .bind((now_ms() + lock.as_millis() as u64) as i64)
                    .execute(&queue.pool)
                    .await;
                if let Err(e) = renewed {
                    tracing::warn!(job_id = %id, error = %e, "could not renew the job's lock");
                }
            }
        }
    };
    match record(queue, token, &id, attempts_made, attempts, outcome).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(job_id = %id, "the job's lock was lost before it finished; it runs again")
        }
        Err(e) => {
            tracing::error!(job_id = %id, error = %e, "could not record the job's outcome; it runs again")
        }
    }
}

/// Stores what became of an attempt, if `token` still holds the job: completed, failed for
/// good, or delayed for its next attempt (the base delay doubled per attempt made). Trims
/// the finished jobs to the retention counts.
async fn record(
    queue: &EmbeddedQueue,
    token: &str,
    id: &str,
    attempts_made: u32,
    attempts: u32,
    outcome: Outcome,
) -> Result<bool, QueueError> {
    let now = now_ms();
    let mut tx = write(&queue.pool).await?;
    let (updated, state) = match outcome {
        Outcome::Completed(value) => {
            let done = sqlx::query(
                "UPDATE jobs SET state = 'completed', returnvalue = ?3, finished_on = ?4,
                        attempts_made = attempts_made + 1, lock_token = NULL, lock_until = NULL
                 WHERE id = ?1 AND lock_token = ?2",
            )
            .bind(id)
            .bind(token)
            .bind(value.to_string())
            .bind(now as i64)
            .execute(&mut *tx)
            .await?;
            (done.rows_affected(), "completed")
        }
        Outcome::Failed { reason, trace, retryable } => {
            let traces: Option<String> = sqlx::query_scalar("SELECT stacktrace FROM jobs WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let traces =
                with_trace(traces.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default(), trace);
            let again = retryable && attempts_made + 1 < attempts;
            let backoff =
                queue.settings.retry_base_delay.as_millis() as u64 * 2u64.pow(attempts_made.min(20));
            let failed = sqlx::query(
                "UPDATE jobs SET state = ?3, run_at = ?4, finished_on = ?5, failed_reason = ?6,
                        stacktrace = ?7, attempts_made = attempts_made + 1, lock_token = NULL, lock_until = NULL
                 WHERE id = ?1 AND lock_token = ?2",
            )
            .bind(id)
            .bind(token)
            .bind(if again { "delayed" } else { "failed" })
            .bind((now + if again { backoff } else { 0 }) as i64)
            .bind((!again).then_some(now as i64))
            .bind(reason)
            .bind(serde_json::to_string(&traces).unwrap_or_default())
            .execute(&mut *tx)
            .await?;
            (failed.rows_affected(), if again { "delayed" } else { "failed" })
        }
    };
    let keep = match state {
        "completed" => Some(KEEP_COMPLETED),
        "failed" => Some(KEEP_FAILED),
        _ => None,
    };
    if let Some(keep) = keep {
        trim(&mut tx, state, keep).await?;
    }
    tx.commit().await?;
    Ok(updated == 1)
}

/// Deletes the oldest finished jobs in `state` beyond the newest `keep`.
async fn trim(tx: &mut sqlx::SqliteConnection, state: &str, keep: usize) -> Result<(), QueueError> {
    sqlx::query(
        "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE state = ?1
                                        ORDER BY finished_on DESC, seq DESC LIMIT -1 OFFSET ?2)",
    )
    .bind(state)
    .bind(keep as i64)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Once a second: this worker's row, due schedulers, and (every stalled interval) the stalled
/// check.
async fn maintain(queue: &EmbeddedQueue, name: &str, check_stalled: bool) -> Result<(), QueueError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO workers (name, seen_at) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET seen_at = excluded.seen_at",
    )
    .bind(name)
    .bind(now as i64)
    .execute(&queue.pool)
    .await?;
    if check_stalled {
        // Rows of hosts that were killed (a clean shutdown deletes its own).
        sqlx::query("DELETE FROM workers WHERE seen_at < ?1")
            .bind(now.saturating_sub(FORGET_WORKERS_AFTER_MS) as i64)
            .execute(&queue.pool)
            .await?;
        take_back_stalled(queue, now).await?;
    }
    fire_due_schedulers(queue, now).await
}

/// Active jobs whose lock expired (their worker died, or could not renew) go back to waiting;
/// a job found stalled a second time fails, as with BullMQ's `maxStalledCount` of 1.
async fn take_back_stalled(queue: &EmbeddedQueue, now: u64) -> Result<(), QueueError> {
    let mut tx = write(&queue.pool).await?;
    let taken = sqlx::query(
        "UPDATE jobs SET
            state = CASE WHEN stalled >= 1 THEN 'failed' ELSE 'waiting' END,
            failed_reason = CASE WHEN stalled >= 1 THEN ?2 ELSE failed_reason END,
            finished_on = CASE WHEN stalled >= 1 THEN ?1 END,
            stalled = stalled + 1, run_at = ?1, lock_token = NULL, lock_until = NULL
         WHERE state = 'active' AND lock_until < ?1",
    )
    .bind(now as i64)
    .bind(STALLED_TOO_OFTEN)
    .execute(&mut *tx)
    .await?;
    if taken.rows_affected() > 0 {
        trim(&mut tx, "failed", KEEP_FAILED).await?;
        tracing::warn!(jobs = taken.rows_affected(), "stalled jobs taken back from a lost worker");
        queue.added.notify_one();
    }
    tx.commit().await?;
    Ok(())
}

/// Adds the job of every scheduler whose next occurrence has come, with the id
/// `repeat:<scheduler>:<occurrence ms>` (so an occurrence is added once, whoever fires it),
/// and moves the scheduler to its following occurrence.
async fn fire_due_schedulers(queue: &EmbeddedQueue, now: u64) -> Result<(), QueueError> {
    let due: Vec<(String, String, String, String, String, i64)> =
        sqlx::query_as("SELECT id, job_name, pattern, tz, data, next FROM schedulers WHERE next <= ?1")
            .bind(now as i64)
            .fetch_all(&queue.pool)
            .await?;
    for (id, job_name, pattern, tz, data, next) in due {
        let following = match next_occurrence(&pattern, &tz, now.max(next as u64)) {
            Ok(following) => following,
            Err(problem) => {
                tracing::warn!(scheduler = %id, %problem, "job scheduler cannot compute its next run");
                continue;
            }
        };
        let job = NewJob {
            name: job_name,
            data: serde_json::from_str(&data).unwrap_or_default(),
            delay: None,
            job_id: Some(format!("repeat:{id}:{next}")),
        };
        let mut tx = write(&queue.pool).await?;
        let moved = sqlx::query("UPDATE schedulers SET next = ?3 WHERE id = ?1 AND next = ?2")
            .bind(&id)
            .bind(next)
            .bind(following as i64)
            .execute(&mut *tx)
            .await?;
        if moved.rows_affected() == 1 {
            queue.insert(&mut tx, &job, now).await?;
        }
        tx.commit().await?;
        queue.added.notify_one();
    }
    Ok(())
}
