//! Running one attempt of a job through the plugin executor, the same for every queue backend:
//! its span, its metrics, and what became of it.

use chrono::{DateTime, Utc};
use tracing::Instrument;

use crate::plugins::executor::{Executor, FailureKind, JobRequest};

/// Failure traces kept per job (the newest).
const KEEP_TRACES: usize = 10;

/// One attempt as a backend hands it over.
pub struct Attempt {
    pub id: String,
    pub name: String,
    pub data: String,
    /// Attempts that finished before this one.
    pub attempts_made: u32,
    /// Times the job was started, this one included.
    pub attempts_started: u32,
    /// Attempts allowed in all.
    pub attempts: u32,
    pub enqueued_at_ms: u64,
}

/// What became of an attempt.
pub enum Outcome {
    Completed(serde_json::Value),
    Failed {
        reason: String,
        /// A trace entry for the job's `stacktrace` (the reason, and the plugin's trace).
        trace: String,
        /// Whether another attempt may help (a retryable failure; attempts left or not).
        retryable: bool,
    },
}

/// Runs `attempt` in a span carrying the job's identity, counting it in the metrics.
pub async fn run(executor: &Executor, attempt: Attempt) -> Outcome {
    let request = JobRequest {
        id: attempt.id,
        name: attempt.name,
        data: attempt.data,
        attempt: attempt.attempts_made + 1,
        enqueued_at: DateTime::<Utc>::from_timestamp_millis(attempt.enqueued_at_ms as i64)
            .unwrap_or_else(Utc::now),
    };
    let started = std::time::Instant::now();
    crate::metrics::job_started(&request.name);
    // Each start counts in attempts_started, each finished attempt in attempts_made; starts
    // beyond those and this one never finished: a stalled check put the job back.
    let stalls = attempt.attempts_started.saturating_sub(attempt.attempts_made + 1);
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
    let outcome = match result {
        Ok(done) => {
            span.record("plugin_version", done.plugin_version.as_str());
            match serde_json::from_str(&done.output) {
                Ok(output) => Outcome::Completed(output),
                Err(e) => {
                    let reason = format!("the plugin's output is not JSON: {e}");
                    Outcome::Failed { trace: reason.clone(), reason, retryable: false }
                }
            }
        }
        Err(failure) => Outcome::Failed {
            trace: if failure.trace.is_empty() {
                failure.reason.clone()
            } else {
                format!("{}\n{}", failure.reason, failure.trace)
            },
            reason: failure.reason,
            retryable: failure.kind == FailureKind::Retryable,
        },
    };
    let label = match &outcome {
        Outcome::Completed(_) => "completed",
        Outcome::Failed { retryable: true, .. } if request.attempt < attempt.attempts => "retried",
        Outcome::Failed { .. } => "failed",
    };
    crate::metrics::job_finished(&request.name, label, started.elapsed());
    span.in_scope(|| match &outcome {
        Outcome::Completed(_) => tracing::debug!("job completed"),
        Outcome::Failed { reason, .. } => tracing::warn!(%reason, "job failed"),
    });
    outcome
}

/// `traces` (a job's `stacktrace`, newest last) with `trace` added, the oldest beyond the
/// newest ten dropped.
pub fn with_trace(mut traces: Vec<String>, trace: String) -> Vec<String> {
    traces.push(trace);
    let keep = traces.len().saturating_sub(KEEP_TRACES);
    traces.split_off(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_keeps_its_newest_ten_traces() {
        let traces = (1..=10).map(|n| n.to_string()).collect();
        let kept = with_trace(traces, "11".into());
        assert_eq!(kept.len(), KEEP_TRACES);
        assert_eq!((kept.first().unwrap().as_str(), kept.last().unwrap().as_str()), ("2", "11"));
        assert_eq!(with_trace(Vec::new(), "first".into()), ["first"]);
    }
}
