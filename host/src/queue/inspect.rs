//! Looking into the queue for operators: counts, jobs by state, retrying and removing jobs.

use std::collections::BTreeMap;

use bullmq::types::{JobState, RetryOptions};
use bullmq::{Job, JobOptions, QueueKeys};

use super::{Producer, QUEUE_NAME, QueueError};
use crate::redis_conn::Redis;

/// The states a job can be listed by.
pub const STATES: [&str; 7] =
    ["waiting", "active", "delayed", "prioritized", "completed", "failed", "waiting-children"];

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub counts: BTreeMap<&'static str, u64>,
    pub workers: usize,
    pub paused: bool,
}

/// A job as the admin API lists it; times in ms since the epoch.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub id: String,
    pub name: String,
    pub data: serde_json::Value,
    pub attempts_made: u32,
    pub failed_reason: Option<String>,
    pub returnvalue: Option<serde_json::Value>,
    pub timestamp: u64,
    pub processed_on: Option<u64>,
    pub finished_on: Option<u64>,
}

/// One job in full: its summary, options, state and failure traces (newest last).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDetail {
    #[serde(flatten)]
    pub summary: JobSummary,
    pub state: String,
    pub opts: JobOptions,
    pub stacktrace: Vec<String>,
}

fn summary(job: &Job) -> JobSummary {
    JobSummary {
        id: job.id().to_owned(),
        name: job.name().to_owned(),
        data: job.data().clone(),
        attempts_made: job.attempts_made(),
        failed_reason: Some(job.failed_reason().to_owned()).filter(|r| !r.is_empty()),
        returnvalue: serde_json::from_str(job.returnvalue()).ok(),
        timestamp: job.timestamp(),
        processed_on: job.processed_on(),
        finished_on: job.finished_on(),
    }
}

/// Jobs that finished in one hour, by outcome, as far as the queue still holds them.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct HourOfActivity {
    /// The hour's start, ms since the epoch.
    pub start: u64,
    pub completed: u64,
    pub failed: u64,
}

const HOUR_MS: u64 = 3_600_000;

/// What retrying a job came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Retried {
    Retried,
    NotFound,
    /// Only failed jobs are retried; this is its state.
    NotFailed(String),
}

impl Producer {
    pub async fn overview(&self) -> Result<Overview, QueueError> {
        let queue = self.queue().await?;
        let counts = queue.get_job_counts().await?;
        let counts = BTreeMap::from([
            ("waiting", counts.waiting),
            ("active", counts.active),
            ("delayed", counts.delayed),
            ("prioritized", counts.prioritized),
            ("completed", counts.completed),
            ("failed", counts.failed),
            ("waiting-children", counts.waiting_children),
        ]);
        Ok(Overview { counts, workers: queue.get_workers_count().await?, paused: queue.is_paused().await? })
    }

    /// Jobs in `state`, newest first, `per_page` from page `page` (from 1).
    pub async fn jobs(&self, state: &str, page: u32, per_page: u32) -> Result<Vec<JobSummary>, QueueError> {
        let start = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        let jobs =
            self.queue().await?.get_jobs(&[state], start, start + i64::from(per_page) - 1, false).await?;
        Ok(jobs.iter().map(summary).collect())
    }

    /// Job `id` in full. The traces floh's worker keeps in the job hash are read through
    /// `redis`.
    pub async fn job(&self, id: &str, redis: &Redis) -> Result<Option<JobDetail>, QueueError> {
        let queue = self.queue().await?;
        // The hash and the state are two reads; a job that finishes between them would show
        // as completed without its result, so read until the state is the same on both sides.
        let mut state = queue.get_job_state(id).await?;
        let job = loop {
            let Some(job) = queue.get_job(id).await? else {
                return Ok(None);
            };
            let after = queue.get_job_state(id).await?;
            if after == state {
                break job;
            }
            state = after;
        };
        let state = state.to_string();
        let key = QueueKeys::new(QUEUE_NAME, Some(&self.settings.prefix)).job_key(id);
        let traces: Option<String> = redis::cmd("HGET")
            .arg(key)
            .arg("stacktrace")
            .query_async(&mut redis.connection())
            .await
            .unwrap_or(None);
        let stacktrace = traces.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        Ok(Some(JobDetail { summary: summary(&job), state, opts: job.opts().clone(), stacktrace }))
    }

    /// Completed and failed jobs per hour for the `hours` hours up to the one holding `now_ms`,
    /// oldest first. The finished sets are scored by finish time, so each hour is a `ZCOUNT`;
    /// jobs already trimmed by the retention counts are not in them.
    pub async fn activity(
        &self,
        redis: &Redis,
        now_ms: u64,
        hours: u32,
    ) -> Result<Vec<HourOfActivity>, QueueError> {
        let keys = QueueKeys::new(QUEUE_NAME, Some(&self.settings.prefix));
        let first = (now_ms / HOUR_MS + 1).saturating_sub(u64::from(hours)) * HOUR_MS;
        let starts: Vec<u64> = (0..u64::from(hours)).map(|h| first + h * HOUR_MS).collect();
        let mut pipe = redis::pipe();
        for start in &starts {
            let last = start + HOUR_MS - 1;
            pipe.zcount(keys.completed(), start, last).zcount(keys.failed(), start, last);
        }
        let counts: Vec<u64> = pipe.query_async(&mut redis.connection()).await?;
        Ok(starts
            .iter()
            .zip(counts.chunks(2))
            .map(|(&start, pair)| HourOfActivity { start, completed: pair[0], failed: pair[1] })
            .collect())
    }

    /// Moves a failed job back to waiting, its attempts counted afresh.
    pub async fn retry(&self, id: &str) -> Result<Retried, QueueError> {
        let queue = self.queue().await?;
        let Some(mut job) = queue.get_job(id).await? else {
            return Ok(Retried::NotFound);
        };
        match queue.get_job_state(id).await? {
            JobState::Failed => {}
            other => return Ok(Retried::NotFailed(other.to_string())),
        }
        let options = RetryOptions { reset_attempts_made: true, reset_attempts_started: true };
        job.retry("failed", Some(options)).await?;
        Ok(Retried::Retried)
    }

    /// Removes a job that is not running; false if there is none (or it is locked by a worker).
    pub async fn remove(&self, id: &str) -> Result<bool, QueueError> {
        let queue = self.queue().await?;
        // The removal script reports success for an id that does not exist.
        if queue.get_job(id).await?.is_none() {
            return Ok(false);
        }
        Ok(queue.remove(id).await?)
    }
}
