//! The job queue: one BullMQ queue, `workflow-scheduler`, in BullMQ's own Redis layout, so the
//! Node services and dashboards of an existing deployment keep working against it.
//!
//! Built on `bullmq-official` (BullMQ's Rust port, which runs BullMQ's own Lua scripts). The
//! rest of the host sees only this module: [`Producer`] to enqueue, [`worker::spawn`] to run
//! jobs through the plugin executor.

pub mod inspect;
mod producer;
pub mod worker;

use std::time::Duration;

pub use producer::{NewJob, Producer, Schedule, StoredSchedule};

/// The runbook's one queue.
pub const QUEUE_NAME: &str = "workflow-scheduler";
/// Attempts in all: the first run and the runbook's 3 retries.
pub const ATTEMPTS: u32 = 4;
/// Failed jobs kept for inspection (newest first).
pub const KEEP_FAILED: usize = 5000;
/// Completed jobs kept (newest first); older ones are trimmed as jobs complete.
pub const KEEP_COMPLETED: usize = 1000;

/// Where the queue lives and how it retries.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    pub redis_url: String,
    /// BullMQ's key prefix (`bull` unless the deployment chose another).
    pub prefix: String,
    /// First retry delay; each further retry doubles it (5 s, 10 s, 20 s by default).
    pub retry_base_delay: Duration,
    /// How long a job's lock lasts without renewal (renewed at half of it). A worker that
    /// dies leaves its jobs to another worker's stalled check once this has passed.
    pub lock_duration: Duration,
    /// How often each worker checks for stalled jobs.
    pub stalled_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("job queue: {0}")]
    Bullmq(#[from] bullmq::Error),
    #[error("job queue: Redis did not answer within {0:?}")]
    Unreachable(Duration),
    #[error("job queue: {0}")]
    Redis(#[from] redis::RedisError),
}
