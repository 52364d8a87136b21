//! The worker on Redis: fetches `workflow-scheduler` jobs and runs each through the plugin
//! executor.

use std::sync::Arc;
use std::time::Duration;

use bullmq::options::RedisConnectionOptions;
use bullmq::worker::CancellationToken;
use bullmq::{Job, QueueKeys, Worker, WorkerOptions};

use crate::plugins::executor::Executor;
use crate::queue::run::{Attempt, Outcome, run, with_trace};
use crate::queue::{QUEUE_NAME, QueueSettings, WorkerConfig};
use crate::redis_conn::Redis;
use crate::shutdown::Lifecycle;

/// Pause between attempts to reach Redis when the worker cannot start.
const CONNECT_RETRY: Duration = Duration::from_secs(2);

pub(super) fn connection(settings: &QueueSettings) -> RedisConnectionOptions {
    RedisConnectionOptions { url: settings.redis_url.clone(), ..RedisConnectionOptions::default() }
}

/// Runs the worker as a task of `lifecycle` until shutdown, then drains it.
pub(super) fn spawn(
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
    let attempt = Attempt {
        id: job.id().to_owned(),
        name: job.name().to_owned(),
        data: job.data().to_string(),
        attempts_made: job.attempts_made(),
        attempts_started: job.attempts_started(),
        attempts: job.opts().attempts.unwrap_or(1),
        enqueued_at_ms: job.timestamp(),
    };
    match run(executor, attempt).await {
        Outcome::Completed(output) => Ok(output),
        Outcome::Failed { reason, trace, retryable } => {
            save_stacktrace(redis, keys, job.id(), trace).await;
            Err(if retryable {
                bullmq::Error::ProcessingError(reason)
            } else {
                bullmq::Error::Unrecoverable(reason)
            })
        }
    }
}

/// BullMQ keeps a failure's trace in the job hash (`stacktrace`, a JSON array of strings, the
/// newest last). bullmq-official's worker records only `failedReason`, so floh adds the trace
/// itself while it still holds the job's lock.
async fn save_stacktrace(redis: &Redis, keys: &QueueKeys, job_id: &str, trace: String) {
    let key = keys.job_key(job_id);
    let mut conn = redis.connection();
    let previous: Option<String> =
        redis::cmd("HGET").arg(&key).arg("stacktrace").query_async(&mut conn).await.unwrap_or(None);
    let traces = with_trace(previous.and_then(|p| serde_json::from_str(&p).ok()).unwrap_or_default(), trace);
    let traces = serde_json::to_string(&traces).unwrap_or_default();
    let saved: redis::RedisResult<()> =
        redis::cmd("HSET").arg(&key).arg("stacktrace").arg(traces).query_async(&mut conn).await;
    if let Err(e) = saved {
        tracing::warn!(job_id, error = %e, "could not save the failure trace");
    }
}
