//! Running one job: find the plugin for its type, run it in a fresh sandbox under its limits,
//! and settle its database transaction by the outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use wasmtime::Trap;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::Capability;
use super::bindings::floh::plugin::types;
use super::capabilities::{Denial, JobContext, Services};
use super::registry::Registry;
use super::runtime::{OUTPUT_CAPTURE_BYTES, Runtime};
use crate::config::{PluginDefaults, PluginPolicy};
use crate::metrics;

/// One job, as the queue hands it over.
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub id: String,
    pub name: String,
    /// JSON text.
    pub data: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub enqueued_at: DateTime<Utc>,
}

/// A successful run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutput {
    /// JSON text, the job's return value.
    pub output: String,
    pub plugin_version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Worth another attempt under the retry policy.
    Retryable,
    /// Fail now, whatever attempts remain.
    Permanent,
}

/// A failed run: a reason for `failedReason`, and detail for the stack trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct JobFailure {
    pub kind: FailureKind,
    pub reason: String,
    pub trace: String,
}

impl JobFailure {
    fn permanent(reason: impl Into<String>) -> Self {
        Self { kind: FailureKind::Permanent, reason: reason.into(), trace: String::new() }
    }

    fn retryable(reason: impl Into<String>, trace: String) -> Self {
        Self { kind: FailureKind::Retryable, reason: reason.into(), trace }
    }
}

pub struct Executor {
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
    services: Arc<Services>,
    defaults: PluginDefaults,
    policies: BTreeMap<String, Arc<PluginPolicy>>,
}

impl Executor {
    pub fn new(
        runtime: Arc<Runtime>,
        registry: Arc<Registry>,
        services: Arc<Services>,
        defaults: PluginDefaults,
        policies: &BTreeMap<String, PluginPolicy>,
    ) -> Self {
        let policies =
            policies.iter().map(|(name, policy)| (name.clone(), Arc::new(policy.clone()))).collect();
        Self { runtime, registry, services, defaults, policies }
    }

    /// The operator's policy for `job_type` (the default policy when it has none).
    pub fn policy(&self, job_type: &str) -> Arc<PluginPolicy> {
        self.policies.get(job_type).cloned().unwrap_or_default()
    }

    /// Runs `job` to an outcome. Its database work commits if and only if this returns `Ok`;
    /// dropping the future (shutdown) rolls it back.
    #[tracing::instrument(skip_all, fields(job_id = %job.id, job_type = %job.name, attempt = job.attempt))]
    pub async fn execute(&self, job: &JobRequest) -> Result<JobOutput, JobFailure> {
        let plugin = self
            .registry
            .get(&job.name)
            .ok_or_else(|| JobFailure::permanent(format!("no plugin for job type {}", job.name)))?;
        let policy = self.policy(&job.name);
        if !policy.enabled {
            return Err(JobFailure::permanent(format!("plugin {} is disabled by configuration", job.name)));
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&job.data) {
            return Err(JobFailure::permanent(format!("malformed job data (not JSON): {e}")));
        }
        let timeout = policy.timeout.unwrap_or(self.defaults.timeout);
        let memory_mib = policy.memory_mib.unwrap_or(self.defaults.memory_mib);

        let context = JobContext::new(job.name.clone(), job.id.clone(), policy, self.services.clone());
        let output = MemoryOutputPipe::new(OUTPUT_CAPTURE_BYTES);
        let mut store = self.runtime.store(Some(context), memory_mib, &output).map_err(|e| {
            JobFailure::retryable(format!("could not prepare plugin {}: {e:#}", job.name), String::new())
        })?;
        let started_at = self.services.clock.now();
        let wit_job = types::Job {
            id: job.id.clone(),
            name: job.name.clone(),
            data: job.data.clone(),
            attempt: job.attempt,
            enqueued_at: job.enqueued_at.timestamp_millis(),
            started_at: started_at.timestamp_millis(),
        };

        let started = Instant::now();
        let instance = match plugin.pre.instantiate_async(&mut store).await {
            Ok(instance) => instance,
            Err(e) => {
                return Err(JobFailure::retryable(
                    format!("could not instantiate plugin {}: {e}", job.name),
                    format!("{e:?}"),
                ));
            }
        };
        let instantiated = started.elapsed();
        let result = tokio::time::timeout(timeout, instance.call_run(&mut store, &wit_job)).await;
        let ran = started.elapsed() - instantiated;
        tracing::debug!(
            instantiate_us = instantiated.as_micros() as u64,
            run_ms = ran.as_millis() as u64,
            "plugin ran"
        );
        metrics::plugin_instantiated(&job.name, instantiated);

        let state = store.data_mut();
        let mut context = state.job.take().expect("the job context stays in the store");
        let http_denials = std::mem::take(&mut state.http_gate.denied);
        let settled = match result {
            Ok(Ok(Ok(outcome))) => match serde_json::from_str::<serde_json::Value>(&outcome.output) {
                Ok(_) => match context.commit().await {
                    Ok(()) => {
                        Ok(JobOutput { output: outcome.output, plugin_version: plugin.info.version.clone() })
                    }
                    Err(e) => Err(JobFailure::retryable(
                        format!("committing the job's database work failed: {e}"),
                        String::new(),
                    )),
                },
                Err(e) => Err(JobFailure::permanent(format!(
                    "plugin {} returned an outcome that is not JSON: {e}",
                    job.name
                ))),
            },
            Ok(Ok(Err(types::JobError::Retryable(reason)))) => {
                Err(JobFailure::retryable(reason, captured(&output)))
            }
            Ok(Ok(Err(types::JobError::Permanent(reason)))) => {
                Err(JobFailure { kind: FailureKind::Permanent, reason, trace: captured(&output) })
            }
            Ok(Err(trap)) => Err(trap_failure(&trap, memory_mib, &output)),
            Err(_) => Err(JobFailure::retryable(
                format!("plugin {} timed out after {}", job.name, human(timeout)),
                captured(&output),
            )),
        };
        if settled.is_err() {
            context.rollback().await;
        }
        let outcome = match &settled {
            Ok(_) => "ok",
            Err(JobFailure { kind: FailureKind::Retryable, .. }) => "retryable",
            Err(JobFailure { kind: FailureKind::Permanent, .. }) => "permanent",
        };
        metrics::plugin_ran(&job.name, outcome, ran);
        settled.map_err(|failure| name_refusals(failure, &context, &http_denials))
    }
}

/// A failure of a plugin that was refused a capability says so, whatever the plugin reported.
/// Adds to a failure's reason what the host refused the plugin during the run, unless the
/// plugin already said so: capabilities not granted, hosts not in `http_allow`.
fn name_refusals(mut failure: JobFailure, context: &JobContext, http: &[Denial]) -> JobFailure {
    let plugin = &context.plugin;
    let http_not_granted = http.contains(&Denial::NotGranted).then_some(Capability::Http);
    // Each refusal is named once: a note already in the reason is not added again.
    let mut notes: Vec<(String, String)> = context
        .denied
        .iter()
        .chain(&http_not_granted)
        .map(|c| (format!("`{c}`"), format!("capability `{c}` is not granted to plugin {plugin}")))
        .collect();
    for denial in http {
        if let Denial::NotAllowed(host) = denial {
            notes.push((
                host.clone(),
                format!("outgoing HTTP to {host} is refused: not in http_allow of [plugins.{plugin}]"),
            ));
        }
    }
    for (mention, note) in notes {
        if !failure.reason.contains(&mention) {
            failure.reason.push_str(&format!(" ({note})"));
        }
    }
    failure
}

fn trap_failure(error: &wasmtime::Error, memory_mib: u32, output: &MemoryOutputPipe) -> JobFailure {
    let chain = format!("{error:#}");
    let reason = match error.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => "plugin trapped: stack overflow".to_owned(),
        Some(Trap::UnreachableCodeReached) => match panic_message(output) {
            Some(message) => format!("plugin trapped (panic): {message}"),
            None => "plugin trapped: unreachable code reached".to_owned(),
        },
        Some(trap) => format!("plugin trapped: {trap}"),
        None if chain.contains("forcing trap when growing memory") => {
            format!("plugin exceeded its memory limit of {memory_mib} MiB")
        }
        None => format!("plugin failed: {chain}"),
    };
    JobFailure::retryable(reason, format!("{error:?}\n{}", captured(output)))
}

/// The plugin's captured stdout and stderr.
fn captured(output: &MemoryOutputPipe) -> String {
    String::from_utf8_lossy(&output.contents()).into_owned()
}

/// The message of a Rust panic, which std prints to stderr as
/// `thread '…' panicked at src/lib.rs:1:2:` followed by the message.
fn panic_message(output: &MemoryOutputPipe) -> Option<String> {
    let text = captured(output);
    let mut lines = text.lines().skip_while(|line| !line.contains("panicked at"));
    lines.next()?;
    let message: Vec<&str> = lines.take_while(|line| !line.starts_with("note: ")).collect();
    Some(message.join(" ").trim().to_owned()).filter(|m| !m.is_empty())
}

fn human(duration: Duration) -> String {
    if duration.as_secs() > 0 && duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}
