//! The embedded queue: `workflow-scheduler` in a SQLite file of the host's own (QUEUE_PATH),
//! for a host that runs without Redis. It keeps the Redis queue's semantics: the same states,
//! attempts and exponential backoff, retention counts, delayed jobs, job schedulers with
//! deterministic occurrence ids, locks that a stalled check takes back when their worker dies,
//! and a drain at shutdown. Every change is a committed SQLite transaction (WAL,
//! `synchronous=FULL`), so queued jobs survive a restart or a `kill -9`.

mod worker;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use tokio::sync::Notify;

use super::{
    ATTEMPTS, HourOfActivity, JobDetail, JobQueue, JobSummary, KEEP_COMPLETED, KEEP_FAILED, NewJob, Overview,
    QueueError, QueueSettings, Retried, STATES, Schedule, StoredSchedule, WorkerConfig, hour_starts,
};
use crate::plugins::executor::Executor;
use crate::shutdown::Lifecycle;

/// A worker counts as running while it refreshed its row this recently.
const WORKER_SEEN_WITHIN_MS: u64 = 5_000;

/// `workflow-scheduler` in SQLite.
#[derive(Clone)]
pub struct EmbeddedQueue {
    pool: SqlitePool,
    settings: QueueSettings,
    /// Wakes this process's worker when a job is added here (other processes' jobs are found
    /// by polling).
    added: Arc<Notify>,
}

impl EmbeddedQueue {
    /// Opens (creating if needed) the queue file at `settings.path`.
    pub async fn open(settings: QueueSettings) -> Result<Self, QueueError> {
        let file_problem = |e: &dyn std::fmt::Display| QueueError::File {
            path: settings.path.clone(),
            problem: e.to_string(),
        };
        let options = SqliteConnectOptions::new().filename(&settings.path);
        let options =
            crate::database::sqlite_file(options, Duration::from_secs(5)).map_err(|e| file_problem(&e))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| file_problem(&e))?;
        sqlx::raw_sql(include_str!("schema.sql")).execute(&pool).await?;
        Ok(Self { pool, settings, added: Arc::new(Notify::new()) })
    }

    /// The runbook's options in BullMQ's shape, as the admin API shows a job's `opts`.
    fn options(&self, job: &NewJob) -> serde_json::Value {
        let mut opts = serde_json::json!({
            "attempts": ATTEMPTS,
            "backoff": { "type": "exponential", "delay": self.settings.retry_base_delay.as_millis() as u64 },
            "removeOnComplete": KEEP_COMPLETED,
            "removeOnFail": KEEP_FAILED,
        });
        if let Some(delay) = job.delay {
            opts["delay"] = (delay.as_millis() as u64).into();
        }
        if let Some(id) = &job.job_id {
            opts["jobId"] = id.clone().into();
        }
        opts
    }

    /// Adds `job` inside `tx`, with `id` or the next number; returns the id.
    async fn insert(
        &self,
        tx: &mut sqlx::SqliteConnection,
        job: &NewJob,
        now: u64,
    ) -> Result<String, QueueError> {
        let id = match &job.job_id {
            Some(id) => id.clone(),
            None => sqlx::query_scalar::<_, i64>(
                "UPDATE counters SET value = value + 1 WHERE name = 'job' RETURNING value",
            )
            .fetch_one(&mut *tx)
            .await?
            .to_string(),
        };
        let delay = job.delay.map_or(0, |d| d.as_millis() as u64);
        sqlx::query(
            "INSERT INTO jobs (id, name, data, opts, state, run_at, attempts, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(&job.name)
        .bind(job.data.to_string())
        .bind(self.options(job).to_string())
        .bind(if delay > 0 { "delayed" } else { "waiting" })
        .bind((now + delay) as i64)
        .bind(i64::from(ATTEMPTS))
        .bind(now as i64)
        .execute(&mut *tx)
        .await?;
        Ok(id)
    }
}

/// A write transaction holding SQLite's write lock from its start, so that it waits for
/// another writer (up to the busy timeout) instead of failing when it would upgrade from a
/// read to a write after that writer committed.
async fn write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Milliseconds since the epoch, the queue's clock (as BullMQ's is Redis's).
fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default()
}

fn millis(row: &SqliteRow, column: &str) -> Option<u64> {
    row.get::<Option<i64>, _>(column).and_then(|v| u64::try_from(v).ok())
}

fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn summary(row: &SqliteRow) -> JobSummary {
    JobSummary {
        id: row.get("id"),
        name: row.get("name"),
        data: json(row.get("data")).unwrap_or_default(),
        attempts_made: row.get::<i64, _>("attempts_made") as u32,
        failed_reason: row.get("failed_reason"),
        returnvalue: json(row.get("returnvalue")),
        timestamp: millis(row, "created_at").unwrap_or_default(),
        processed_on: millis(row, "processed_on"),
        finished_on: millis(row, "finished_on"),
    }
}

/// The next occurrence of `pattern` in time zone `tz` strictly after `after_ms`.
fn next_occurrence(pattern: &str, tz: &str, after_ms: u64) -> Result<u64, String> {
    let cron = croner::Cron::from_str(pattern).map_err(|e| format!("pattern {pattern}: {e}"))?;
    let tz: chrono_tz::Tz = tz.parse().map_err(|e| format!("time zone {tz}: {e}"))?;
    let after =
        chrono::DateTime::from_timestamp_millis(after_ms as i64).unwrap_or_default().with_timezone(&tz);
    let next = cron.find_next_occurrence(&after, false).map_err(|e| format!("pattern {pattern}: {e}"))?;
    Ok(u64::try_from(next.timestamp_millis()).unwrap_or_default())
}

#[async_trait::async_trait]
impl JobQueue for EmbeddedQueue {
    async fn enqueue(&self, job: NewJob) -> Result<String, QueueError> {
        let mut tx = write(&self.pool).await?;
        let id = self.insert(&mut tx, &job, now_ms()).await?;
        tx.commit().await?;
        self.added.notify_one();
        Ok(id)
    }

    async fn overview(&self) -> Result<Overview, QueueError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM jobs GROUP BY state").fetch_all(&self.pool).await?;
        let mut counts: BTreeMap<&'static str, u64> = STATES.iter().map(|s| (*s, 0)).collect();
        for (state, count) in rows {
            if let Some(slot) = STATES.iter().find(|s| **s == state).and_then(|s| counts.get_mut(s)) {
                *slot = count as u64;
            }
        }
        let workers: i64 = sqlx::query_scalar("SELECT count(*) FROM workers WHERE seen_at > ?1")
            .bind(now_ms().saturating_sub(WORKER_SEEN_WITHIN_MS) as i64)
            .fetch_one(&self.pool)
            .await?;
        Ok(Overview { counts, workers: workers as usize, paused: false })
    }

    async fn jobs(&self, state: &str, page: u32, per_page: u32) -> Result<Vec<JobSummary>, QueueError> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE state = ?1 ORDER BY coalesce(finished_on, 0) DESC, seq DESC
             LIMIT ?2 OFFSET ?3",
        )
        .bind(state)
        .bind(i64::from(per_page))
        .bind(i64::from(page.saturating_sub(1)) * i64::from(per_page))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(summary).collect())
    }

    async fn job(&self, id: &str) -> Result<Option<JobDetail>, QueueError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ?1").bind(id).fetch_optional(&self.pool).await?;
        Ok(row.map(|row| JobDetail {
            summary: summary(&row),
            state: row.get("state"),
            opts: json(row.get("opts")).unwrap_or_default(),
            stacktrace: json(row.get("stacktrace"))
                .and_then(|t| serde_json::from_value(t).ok())
                .unwrap_or_default(),
        }))
    }

    async fn retry(&self, id: &str) -> Result<Retried, QueueError> {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match state.as_deref() {
            None => return Ok(Retried::NotFound),
            Some("failed") => {}
            Some(other) => return Ok(Retried::NotFailed(other.to_owned())),
        }
        let moved = sqlx::query(
            "UPDATE jobs SET state = 'waiting', run_at = ?2, attempts_made = 0, attempts_started = 0,
                    stalled = 0, failed_reason = NULL, processed_on = NULL, finished_on = NULL
             WHERE id = ?1 AND state = 'failed'",
        )
        .bind(id)
        .bind(now_ms() as i64)
        .execute(&self.pool)
        .await?;
        self.added.notify_one();
        Ok(if moved.rows_affected() == 1 { Retried::Retried } else { Retried::NotFound })
    }

    async fn remove(&self, id: &str) -> Result<bool, QueueError> {
        let removed = sqlx::query("DELETE FROM jobs WHERE id = ?1 AND state <> 'active'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(removed.rows_affected() == 1)
    }

    async fn activity(&self, now_ms: u64, hours: u32) -> Result<Vec<HourOfActivity>, QueueError> {
        let starts = hour_starts(now_ms, hours);
        let first = starts.first().copied().unwrap_or_default();
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT finished_on / 3600000 * 3600000, state, count(*) FROM jobs
             WHERE state IN ('completed', 'failed') AND finished_on >= ?1 GROUP BY 1, 2",
        )
        .bind(first as i64)
        .fetch_all(&self.pool)
        .await?;
        let count = |start: u64, state: &str| {
            rows.iter()
                .find(|(hour, s, _)| *hour as u64 == start && s == state)
                .map_or(0, |(.., n)| *n as u64)
        };
        Ok(starts
            .iter()
            .map(|&start| HourOfActivity {
                start,
                completed: count(start, "completed"),
                failed: count(start, "failed"),
            })
            .collect())
    }

    async fn schedules(&self) -> Result<Vec<StoredSchedule>, QueueError> {
        let rows = sqlx::query("SELECT * FROM schedulers ORDER BY next, id").fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|row| StoredSchedule {
                schedule: Schedule {
                    id: row.get("id"),
                    job_name: row.get("job_name"),
                    pattern: row.get("pattern"),
                    tz: row.get("tz"),
                    data: json(row.get("data")).unwrap_or_default(),
                },
                next: millis(row, "next"),
            })
            .collect())
    }

    async fn upsert_schedule(&self, schedule: &Schedule) -> Result<(), QueueError> {
        let next =
            next_occurrence(&schedule.pattern, &schedule.tz, now_ms()).map_err(QueueError::Schedule)?;
        sqlx::query(
            "INSERT INTO schedulers (id, job_name, pattern, tz, data, next) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET job_name = excluded.job_name, pattern = excluded.pattern,
                 tz = excluded.tz, data = excluded.data,
                 -- An unchanged timing keeps its due occurrence, even one not fired yet.
                 next = CASE WHEN schedulers.pattern = excluded.pattern AND schedulers.tz = excluded.tz
                             THEN schedulers.next ELSE excluded.next END",
        )
        .bind(&schedule.id)
        .bind(&schedule.job_name)
        .bind(&schedule.pattern)
        .bind(&schedule.tz)
        .bind(schedule.data.to_string())
        .bind(next as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_schedule(&self, id: &str) -> Result<(), QueueError> {
        sqlx::query("DELETE FROM schedulers WHERE id = ?1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self, timeout: Duration) -> Result<(), String> {
        match tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(&self.pool)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        }
    }

    fn mode(&self) -> Option<&'static str> {
        Some("embedded")
    }

    fn spawn_worker(&self, lifecycle: &Lifecycle, config: WorkerConfig, executor: Arc<Executor>) {
        worker::spawn(self.clone(), lifecycle, config, executor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrences_follow_the_pattern_in_its_time_zone() {
        // 2026-12-04 09:30 UTC; hourly at minute 0 → 10:00 UTC.
        let now = 1_796_376_600_000;
        assert_eq!(next_occurrence("0 * * * *", "UTC", now), Ok(now + 30 * 60_000));
        // 03:00 in Berlin (UTC+1 in December) is 02:00 UTC the next day.
        let next = next_occurrence("0 3 * * *", "Europe/Berlin", now).unwrap();
        assert_eq!(
            chrono::DateTime::from_timestamp_millis(next as i64).unwrap().to_rfc3339(),
            "2026-12-05T02:00:00+00:00"
        );
        assert!(next_occurrence("not cron", "UTC", now).is_err());
        assert!(next_occurrence("0 * * * *", "Mars/Olympus", now).is_err());
    }
}
