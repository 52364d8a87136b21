//! Prometheus metrics: one recorder per process, rendered at `GET /metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::http::AppState;

const PLUGIN_INSTANTIATION: &str = "floh_plugin_instantiation_seconds";
const PLUGIN_RUN: &str = "floh_plugin_run_seconds";
const JOBS_STARTED: &str = "floh_jobs_started_total";
const JOBS: &str = "floh_jobs_total";
const JOBS_STALLED: &str = "floh_jobs_stalled_total";
const JOB_DURATION: &str = "floh_job_duration_seconds";
const QUEUE_JOBS: &str = "floh_queue_jobs";
const PLUGINS: &str = "floh_plugins";
const DB_POOL: &str = "floh_db_pool_connections";
const HTTP_REQUESTS: &str = "floh_http_requests_total";
const HTTP_DURATION: &str = "floh_http_request_duration_seconds";
const HEALTH_CHECK: &str = "floh_health_check_seconds";

/// Histogram buckets in seconds, from a pooled instantiation (tens of µs) to a job that runs
/// into the default 5-minute deadline.
const BUCKETS: [f64; 14] =
    [0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 300.0];

/// Installs the recorder on first use. `None` if another recorder was installed first (then
/// metrics are not collected and `/metrics` says so).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics are not collected");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    metrics::describe_histogram!(
        PLUGIN_INSTANTIATION,
        metrics::Unit::Seconds,
        "Time to instantiate a plugin for one job run"
    );
    metrics::describe_histogram!(
        PLUGIN_RUN,
        metrics::Unit::Seconds,
        "Time a plugin's run() took, by how it ended (ok, retryable, permanent)"
    );
    metrics::describe_counter!(JOBS_STARTED, "Jobs this host's worker started, by job type");
    metrics::describe_counter!(
        JOBS_STALLED,
        "Stalled runs recovered: runs a worker lost (it died or its lock expired) that this host's \
         worker ran again, by job type"
    );
    metrics::describe_counter!(
        JOBS,
        "Jobs this host's worker finished, by job type and outcome (completed, retried, failed)"
    );
    metrics::describe_histogram!(
        JOB_DURATION,
        metrics::Unit::Seconds,
        "Time a job took, by job type and outcome"
    );
    metrics::describe_gauge!(QUEUE_JOBS, "Jobs in the workflow-scheduler queue, by state, at scrape time");
    metrics::describe_gauge!(PLUGINS, "Plugin files in PLUGINS_DIR, by status (loaded, failed)");
    metrics::describe_gauge!(DB_POOL, "Database pool connections, by state (in_use, idle)");
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests, by method, route and status");
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request time, by method and route"
    );
    metrics::describe_histogram!(
        HEALTH_CHECK,
        metrics::Unit::Seconds,
        "Health check time, by dependency and result"
    );
}

/// Starts collecting; call before work is done whose metrics should count.
pub fn init() {
    handle();
}

/// `GET /metrics`, in the Prometheus text format. Gauges of the queue, the plugins and the
/// pool are read at scrape time.
pub async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    let body = match handle() {
        Some(handle) => {
            sample(&state).await;
            handle.run_upkeep();
            handle.render()
        }
        None => "# metrics are not collected in this process\n".to_owned(),
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

async fn sample(state: &AppState) {
    // A queue that cannot be read now keeps its last values.
    if let Ok(overview) = state.queue.overview().await {
        for (queue_state, count) in overview.counts {
            metrics::gauge!(QUEUE_JOBS, "state" => queue_state).set(count as f64);
        }
    }
    let statuses = state.plugins.statuses();
    let loaded = statuses.iter().filter(|s| s.status == "loaded").count();
    metrics::gauge!(PLUGINS, "status" => "loaded").set(loaded as f64);
    metrics::gauge!(PLUGINS, "status" => "failed").set((statuses.len() - loaded) as f64);
    let (size, idle) = state.db.connections();
    metrics::gauge!(DB_POOL, "state" => "in_use").set(size.saturating_sub(idle) as f64);
    metrics::gauge!(DB_POOL, "state" => "idle").set(f64::from(idle));
}

/// Counts every request by method, route (the matched pattern, not the raw path) and status.
pub async fn track_http(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

pub fn job_started(job: &str) {
    metrics::counter!(JOBS_STARTED, "job" => job.to_owned()).increment(1);
}

/// Job `job` starts again after `stalls` runs that never finished.
pub fn job_stalled(job: &str, stalls: u32) {
    metrics::counter!(JOBS_STALLED, "job" => job.to_owned()).increment(u64::from(stalls));
}

/// `outcome` is `completed`, `retried` (a retryable failure with attempts left) or `failed`.
pub fn job_finished(job: &str, outcome: &'static str, took: Duration) {
    metrics::counter!(JOBS, "job" => job.to_owned(), "outcome" => outcome).increment(1);
    metrics::histogram!(JOB_DURATION, "job" => job.to_owned(), "outcome" => outcome)
        .record(took.as_secs_f64());
}

pub fn health_checked(check: &'static str, ok: bool, took: Duration) {
    let result = if ok { "ok" } else { "down" };
    metrics::histogram!(HEALTH_CHECK, "check" => check, "result" => result).record(took.as_secs_f64());
}

pub fn plugin_instantiated(plugin: &str, took: Duration) {
    metrics::histogram!(PLUGIN_INSTANTIATION, "plugin" => plugin.to_owned()).record(took.as_secs_f64());
}

/// `outcome` is `ok`, `retryable` or `permanent`.
pub fn plugin_ran(plugin: &str, outcome: &'static str, took: Duration) {
    metrics::histogram!(PLUGIN_RUN, "plugin" => plugin.to_owned(), "outcome" => outcome)
        .record(took.as_secs_f64());
}
