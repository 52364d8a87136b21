//! `floh jobs add`.

use std::time::Duration;

use anyhow::Context;

use crate::config::{QueueBackend, Settings};
use crate::queue::NewJob;

/// Enqueues one job with the runbook's options and prints its id.
pub async fn add(
    settings: &Settings,
    name: String,
    data: &str,
    delay_ms: Option<u64>,
    job_id: Option<String>,
) -> anyhow::Result<()> {
    let data: serde_json::Value =
        serde_json::from_str(data).with_context(|| format!("--data is not JSON: {data}"))?;
    let producer = crate::queue::open(settings).await?;
    let job = NewJob { name: name.clone(), data, delay: delay_ms.map(Duration::from_millis), job_id };
    let id = producer.enqueue(job).await.context("cannot add the job")?;
    println!("{id}");
    // A relative QUEUE_PATH is a different file from another folder: say which one.
    let queue = match settings.queue_backend {
        QueueBackend::Redis => "redis".to_owned(),
        QueueBackend::Embedded => std::path::absolute(&settings.queue_path)
            .unwrap_or_else(|_| settings.queue_path.clone())
            .display()
            .to_string(),
    };
    tracing::info!(job_id = %id, job_type = %name, %queue, "job added");
    Ok(())
}
