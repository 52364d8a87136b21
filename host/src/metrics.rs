//! Prometheus metrics: one recorder per process, rendered at `GET /metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const PLUGIN_INSTANTIATION: &str = "floh_plugin_instantiation_seconds";
const PLUGIN_RUN: &str = "floh_plugin_run_seconds";

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
}

/// Starts collecting; call before work is done whose metrics should count.
pub fn init() {
    handle();
}

/// `GET /metrics`, in the Prometheus text format.
pub async fn scrape() -> impl IntoResponse {
    let body = match handle() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => "# metrics are not collected in this process\n".to_owned(),
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

pub fn plugin_instantiated(plugin: &str, took: Duration) {
    metrics::histogram!(PLUGIN_INSTANTIATION, "plugin" => plugin.to_owned()).record(took.as_secs_f64());
}

/// `outcome` is `ok`, `retryable` or `permanent`.
pub fn plugin_ran(plugin: &str, outcome: &'static str, took: Duration) {
    metrics::histogram!(PLUGIN_RUN, "plugin" => plugin.to_owned(), "outcome" => outcome)
        .record(took.as_secs_f64());
}
