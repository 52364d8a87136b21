//! `/api/admin/*`: operator endpoints behind the bearer token ADMIN_TOKEN.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};

use crate::http::AppState;
use crate::plugins::registry::PluginStatus;
use crate::queue::NewJob;

/// The job type that purges `system_log`.
const LOG_RETENTION_JOB: &str = "log-retention";

mod audit;
pub mod auth;
mod jobs;
mod settings;

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/settings/security", get(settings::get_security).put(settings::put_security))
        .route("/settings/logging", get(settings::get_logging).put(settings::put_logging))
        .route("/queue", get(jobs::overview))
        .route("/queue/activity", get(jobs::activity))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}/retry", post(jobs::retry))
        .route("/jobs/{id}", get(jobs::detail).delete(jobs::remove))
        .route("/audit", get(audit::status))
        .route("/plugins", get(list_plugins))
        .route("/plugins/reload", post(reload_plugins))
        .route("/jobs", post(add_job))
        .route("/logging/purge", post(purge_logs))
        .route("/approvals/{id}/escalations", post(schedule_escalations))
        .route("/schedules", get(list_schedules))
        .route("/schedules/sync", post(sync_schedules))
        .route_layer(middleware::from_fn_with_state(state, auth::require_admin))
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct PluginListing {
    pub dir: String,
    pub plugins: Vec<ListedPlugin>,
}

/// A plugin file's status, with the capabilities its job type is granted (always-granted ones
/// included).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ListedPlugin {
    #[serde(flatten)]
    pub status: PluginStatus,
    pub grants: Vec<String>,
}

fn listing(state: &AppState) -> Json<PluginListing> {
    let plugins = state
        .plugins
        .statuses()
        .into_iter()
        .map(|status| {
            let policy = status.name.as_ref().and_then(|name| state.plugin_policies.get(name));
            let grants = crate::plugins::Capability::ALWAYS_GRANTED
                .iter()
                .chain(policy.into_iter().flat_map(|p| p.grants.iter()))
                .map(ToString::to_string)
                .collect();
            ListedPlugin { status, grants }
        })
        .collect();
    Json(PluginListing { dir: state.plugins.dir().display().to_string(), plugins })
}

async fn list_plugins(State(state): State<AppState>) -> Json<PluginListing> {
    listing(&state)
}

async fn reload_plugins(State(state): State<AppState>) -> Json<PluginListing> {
    state.plugins.sync().await;
    listing(&state)
}

/// What floh plans to schedule, and what the queue holds (with each scheduler's next run).
async fn list_schedules(State(state): State<AppState>) -> Response {
    let (planned, problems) = state.scheduler.planned().await;
    match state.scheduler.stored().await {
        Ok(stored) => Json(serde_json::json!({ "planned": planned, "stored": stored, "problems": problems }))
            .into_response(),
        Err(e) => unavailable(e),
    }
}

async fn sync_schedules(State(state): State<AppState>) -> Response {
    match state.scheduler.sync().await {
        Ok(report) => Json(report).into_response(),
        Err(e) => unavailable(e),
    }
}

/// Appends an audit event for a change made through the admin API (actor `admin`). The change
/// is already done (in Redis, outside the database), so a failure to record it is logged
/// rather than undoing it.
async fn record(state: &AppState, action: &str, target: &str, reason: &str, details: serde_json::Value) {
    let event = crate::audit::AuditEvent {
        actor: "admin".into(),
        action: action.into(),
        target: target.into(),
        reason: reason.into(),
        details: details.to_string(),
    };
    let appended = async {
        let mut tx = state.db.begin().await?;
        crate::audit::append(&mut tx, &event, state.clock.now()).await?;
        tx.commit().await?;
        Ok::<_, crate::audit::AuditError>(())
    };
    if let Err(e) = appended.await {
        tracing::error!(action, target, error = %e, "an admin change could not be recorded in the audit log");
    }
}

/// An error answer: `{"error": message}` with `status`.
pub(crate) fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

fn unavailable(error: impl std::fmt::Display) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "error": error.to_string() }))).into_response()
}

/// The body of `POST /api/admin/jobs`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AddJob {
    name: String,
    #[serde(default = "empty_object")]
    data: serde_json::Value,
    /// Milliseconds from now.
    delay: Option<u64>,
    job_id: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// Enqueues a job through the host's one producer, with the runbook's options.
async fn add_job(State(state): State<AppState>, Json(job): Json<AddJob>) -> Response {
    if job.name.trim().is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "`name` (the job type) must not be empty".into());
    }
    let new = NewJob {
        name: job.name,
        data: job.data,
        delay: job.delay.map(std::time::Duration::from_millis),
        job_id: job.job_id,
    };
    enqueue(&state, new).await
}

/// Admin > Logging > Purge Now: a `log-retention` job, right away.
async fn purge_logs(State(state): State<AppState>) -> Response {
    if state.plugins.get(LOG_RETENTION_JOB).is_none() {
        let message = format!(
            "no plugin handles {LOG_RETENTION_JOB}: put {LOG_RETENTION_JOB}.wasm into {}",
            state.plugins.dir().display()
        );
        return error(StatusCode::CONFLICT, message);
    }
    let job = NewJob {
        name: LOG_RETENTION_JOB.to_owned(),
        data: serde_json::json!({ "trigger": "purge-now" }),
        delay: None,
        job_id: None,
    };
    enqueue(&state, job).await
}

/// An approval's status, due date, reminder interval (hours) and most reminders.
type EscalationPolicy = (String, DateTime<Utc>, i32, i32);

/// Schedules the escalation of a pending approval: its first reminder one reminder interval
/// from now (if that is before the due date and it may have reminders), and its reassignment
/// at the due date. Job ids derive from the approval, so scheduling twice changes nothing.
async fn schedule_escalations(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if id.contains(':') {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "an approval id for escalation must not contain `:`".into(),
        );
    }
    let approval: Result<Option<EscalationPolicy>, _> = crate::on_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT status, due_at, reminder_interval_hours, max_reminders FROM approvals WHERE id = $1",
        )
        .bind(&id)
        .fetch_optional(pool)
        .await
    });
    let (status, due_at, interval_hours, max_reminders) = match approval {
        Ok(Some(approval)) => approval,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no approval {id}")),
        Err(e) => return unavailable(e),
    };
    if status != "pending" {
        return error(StatusCode::CONFLICT, format!("approval {id} is {status}, not pending"));
    }
    let until_due = (due_at - Utc::now()).to_std().unwrap_or_default();
    let interval = std::time::Duration::from_secs(interval_hours as u64 * 3600);
    let mut scheduled = serde_json::Map::new();
    if max_reminders > 0 && interval < until_due {
        let reminder = NewJob {
            name: "escalation-reminder".into(),
            data: serde_json::json!({ "approvalId": id, "reminder": 1 }),
            delay: Some(interval),
            job_id: Some(format!("escalation-reminder:{id}:1")),
        };
        match state.queue.enqueue(reminder).await {
            Ok(job) => scheduled.insert("reminder".into(), job.into()),
            Err(e) => return unavailable(e),
        };
    } else {
        scheduled.insert("reminder".into(), serde_json::Value::Null);
    }
    let reassignment = NewJob {
        name: "escalation-reassignment".into(),
        data: serde_json::json!({ "approvalId": id }),
        delay: Some(until_due),
        job_id: Some(format!("escalation-reassignment:{id}:{}", due_at.timestamp_millis())),
    };
    match state.queue.enqueue(reassignment).await {
        Ok(job) => scheduled.insert("reassignment".into(), job.into()),
        Err(e) => return unavailable(e),
    };
    let reason = "escalation scheduled through the admin API";
    record(
        &state,
        "approval.escalation_scheduled",
        &format!("approval:{id}"),
        reason,
        scheduled.clone().into(),
    )
    .await;
    (StatusCode::CREATED, Json(serde_json::Value::Object(scheduled))).into_response()
}

async fn enqueue(state: &AppState, job: NewJob) -> Response {
    let name = job.name.clone();
    let data = job.data.clone();
    match state.queue.enqueue(job).await {
        Ok(id) => {
            let reason = format!("{name} job added through the admin API");
            record(
                state,
                "job.added",
                &format!("job:{id}"),
                &reason,
                serde_json::json!({ "name": name, "data": data }),
            )
            .await;
            (StatusCode::CREATED, Json(serde_json::json!({ "id": id, "name": name }))).into_response()
        }
        Err(e) => unavailable(e),
    }
}
