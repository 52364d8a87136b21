//! The worker: fetches `workflow-scheduler` jobs and runs each through the plugin executor.

use std::sync::Arc;
use std::time::Duration;

use bullmq::options::RedisConnectionOptions;
use bullmq::worker::CancellationToken;
use bullmq::{Job, QueueKeys, Worker, WorkerOptions};
use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::{QUEUE_NAME, QueueSettings};
use crate::plugins::executor::{Executor, FailureKind, JobRequest};
use crate::redis_conn::Redis;
use crate::shutdown::Lifecycle;

/// Pause between attempts to reach Redis when the worker cannot start.
const CONNECT_RETRY: Duration = Duration::from_secs(2);

pub fn connection(settings: &QueueSettings) -> RedisConnectionOptions {
    RedisConnectionOptions { url: settings.redis_url.clone(), ..RedisConnectionOptions::default() }
}

/// What the worker needs besides the queue's location.
pub struct WorkerConfig {
    pub concurrency: usize,
    /// Shutdown waits this long for active jobs; a job still running then keeps its lock
    /// until it expires, and another worker's stalled check re-runs it.
    pub drain_timeout: Duration,
    /// Shown by bull-board and `CLIENT LIST` (`bull:<queue>:w:<name>`).
    pub name: String,
}

/// Runs the worker as a task of `lifecycle` until shutdown, then drains it.
pub fn spawn(
    lifecycle: &Lifecycle,
    settings: QueueSettings,
    config: WorkerConfig,
    executor: Arc<Executor>,
    redis: Redis,
) {
    let stop = lifecycle.shutdown_started();
    lifecycle.spawn("queue worker", async move {
        tokio::pin!(stop);
        let keys = QueueKeys::new(QUEUE_NAME, Some(&settings.prefix));
        let options = WorkerOptions {
            connection: connection(&settings),
            prefix: settings.prefix.clone(),
            name: Some(config.name.clone()),
            concurrency: config.concurrency,
            lock_duration: settings.lock_duration.as_millis() as u64,
            stalled_interval: settings.stalled_interval.as_millis() as u64,
            ..WorkerOptions::default()
        };
        let worker = loop {
            let processor = processor(executor.clone(), redis.clone(), keys.clone());
            tokio::select! {
                _ = &mut stop => return,
                started = Worker::with_options(QUEUE_NAME, processor, options.clone()) => match started {
                    Ok(worker) => break worker,
                    Err(e) => {
                        tracing::warn!(error = %e, "queue worker cannot start yet; retrying");
                        tokio::select! {
                            _ = &mut stop => return,
                            _ = tokio::time::sleep(CONNECT_RETRY) => {}
                        }
                    }
                },
            }
        };
        tracing::info!(queue = QUEUE_NAME, concurrency = config.concurrency, name = %config.name, "queue worker started");
        // The worker reports every job on an unbounded channel (and logs its errors itself):
        // read it, or it grows for as long as the host runs.
        loop {
            tokio::select! {
                _ = &mut stop => break,
                event = worker.next_event() => if event.is_none() {
                    (&mut stop).await;
                    break;
                },
            }
        }
        tracing::info!("queue worker draining");
        if let Err(e) = worker.close(config.drain_timeout.as_millis() as u64).await {
            tracing::warn!(error = %e, "queue worker did not close cleanly");
        }
    });
}

type Processed = Result<serde_json::Value, bullmq::Error>;

fn processor(
    executor: Arc<Executor>,
    redis: Redis,
    keys: QueueKeys,
) -> impl Fn(Job, CancellationToken) -> std::pin::Pin<Box<dyn Future<Output = Processed> + Send>>
+ Send
+ Sync
+ 'static {
    move |job: Job, _cancel: CancellationToken| {
        let (executor, redis, keys) = (executor.clone(), redis.clone(), keys.clone());
        Box::pin(async move { process(&executor, &redis, &keys, job).await })
    }
}

async fn process(executor: &Executor, redis: &Redis, keys: &QueueKeys, job: Job) -> Processed {
    let request = JobRequest {
        id: job.id().to_owned(),
        name: job.name().to_owned(),
        data: job.data().to_string(),
        attempt: job.attempts_made() + 1,
        enqueued_at: DateTime::<Utc>::from_timestamp_millis(job.timestamp() as i64).unwrap_or_else(Utc::now),
    };
    let started = std::time::Instant::now();
    crate::metrics::job_started(&request.name);
    // Each start counts in attemptsStarted, each finished attempt in attemptsMade; starts beyond
    // those and this one never finished: BullMQ's stalled check put the job back.
    let stalls = job.attempts_started().saturating_sub(job.attempts_made() + 1);
    if stalls > 0 {
        crate::metrics::job_stalled(&request.name, stalls);
        tracing::warn!(job_id = %request.id, job_type = %request.name, stalls, "job runs again after stalling");
    }
    // One span per job, so its log lines (the plugin's too) carry the job's identity.
    let span = tracing::info_span!(
        "job",
        job_id = %request.id,
        job_type = %request.name,
        attempt = request.attempt,
        plugin_version = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::record_trace_id(&span);
    let result = executor.execute(&request).instrument(span.clone()).await;
    if let Ok(done) = &result {
        span.record("plugin_version", done.plugin_version.as_str());
    }
    let outcome = match &result {
        Ok(_) => "completed",
        Err(failure)
            if failure.kind == FailureKind::Retryable
                && request.attempt < job.opts().attempts.unwrap_or(1) =>
        {
            "retried"
        }
        Err(_) => "failed",
    };
    crate::metrics::job_finished(&request.name, outcome, started.elapsed());
    match result {
        Ok(done) => {
            span.in_scope(|| tracing::debug!("job completed"));
            Ok(serde_json::from_str(&done.output)?)
        }
        Err(failure) => {
            span.in_scope(|| tracing::warn!(reason = %failure.reason, "job failed"));
            save_stacktrace(redis, keys, &request.id, &failure.reason, &failure.trace).await;
            Err(match failure.kind {
                FailureKind::Permanent => bullmq::Error::Unrecoverable(failure.reason),
                FailureKind::Retryable => bullmq::Error::ProcessingError(failure.reason),
            })
        }
    }
}

/// BullMQ keeps a failure's trace in the job hash (`stacktrace`, a JSON array of strings, the
/// newest last). bullmq-official's worker records only `failedReason`, so floh adds the trace
/// itself while it still holds the job's lock.
async fn save_stacktrace(redis: &Redis, keys: &QueueKeys, job_id: &str, reason: &str, trace: &str) {
    let key = keys.job_key(job_id);
    let mut conn = redis.connection();
    let previous: Option<String> =
        redis::cmd("HGET").arg(&key).arg("stacktrace").query_async(&mut conn).await.unwrap_or(None);
    let mut traces: Vec<String> = previous.and_then(|p| serde_json::from_str(&p).ok()).unwrap_or_default();
    traces.push(if trace.is_empty() { reason.to_owned() } else { format!("{reason}\n{trace}") });
    let keep = traces.len().saturating_sub(10);
    let traces = serde_json::to_string(&traces[keep..]).unwrap_or_default();
    let saved: redis::RedisResult<()> =
        redis::cmd("HSET").arg(&key).arg("stacktrace").arg(traces).query_async(&mut conn).await;
    if let Err(e) = saved {
        tracing::warn!(job_id, error = %e, "could not save the failure trace");
    }
}
