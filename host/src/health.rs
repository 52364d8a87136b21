//! Health probes: `/api/health` in the runbook's shape, plus `live` and `ready` for
//! container orchestrators.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::http::AppState;

#[derive(Debug, Serialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Degraded,
    ShuttingDown,
}

#[derive(Debug, Serialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Down,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub status: CheckStatus,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set when the check stands for something other than the runbook's PostgreSQL and Redis:
    /// `sqlite` for the `database` check of a host on a database file, `embedded` for the
    /// `redis` check of a host whose queue is its own SQLite file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
}

impl Check {
    /// Times `probe` of dependency `name`, which bounds itself by the health check timeout.
    async fn run(name: &'static str, probe: impl Future<Output = Result<(), String>>) -> Self {
        let started = Instant::now();
        let outcome = probe.await;
        crate::metrics::health_checked(name, outcome.is_ok(), started.elapsed());
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(()) => Check { status: CheckStatus::Ok, latency_ms, error: None, mode: None },
            Err(error) => Check { status: CheckStatus::Down, latency_ms, error: Some(error), mode: None },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Checks {
    pub database: Check,
    pub redis: Check,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub status: Status,
    pub version: &'static str,
    /// Seconds since the host started.
    pub uptime: f64,
    pub checks: Checks,
}

async fn check_database(state: &AppState, timeout: Duration) -> Check {
    let mut check = Check::run("database", crate::database::ping(&state.db, timeout)).await;
    check.mode = state.db.mode();
    check
}

/// `GET /api/health`: 200 whether ok or degraded (the process serves either way), 503 once
/// shutdown has begun, so load balancers stop sending traffic.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Report>) {
    let timeout = state.health_check_timeout;
    let (database, mut redis) =
        tokio::join!(check_database(&state, timeout), Check::run("redis", state.queue.ping(timeout)));
    redis.mode = state.queue.mode();
    let status = if state.lifecycle.is_shutting_down() {
        Status::ShuttingDown
    } else if database.status == CheckStatus::Ok && redis.status == CheckStatus::Ok {
        Status::Ok
    } else {
        Status::Degraded
    };
    let code = if status == Status::ShuttingDown { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let report = Report {
        status,
        version: env!("CARGO_PKG_VERSION"),
        uptime: state.started.elapsed().as_secs_f64(),
        checks: Checks { database, redis },
    };
    (code, Json(report))
}

/// `GET /api/health/live`: the process is up and serving. Never depends on the database or
/// Redis, so an outage of either does not get healthy pods restarted.
pub async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /api/health/ready`: 200 while the database answers and shutdown has not begun.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    if state.lifecycle.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "shutting_down" })));
    }
    let database = check_database(&state, state.health_check_timeout).await;
    match database.status {
        CheckStatus::Ok => (StatusCode::OK, Json(serde_json::json!({ "status": "ok" }))),
        CheckStatus::Down => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "not_ready", "checks": { "database": database } })),
        ),
    }
}
