//! The queue for operators: counts, jobs by state, retrying a failed job, removing a job.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use serde_json::json;

use super::{error, record, unavailable};
use crate::http::AppState;
use crate::queue::{Retried, STATES};

pub async fn overview(State(state): State<AppState>) -> Response {
    match state.queue.overview().await {
        Ok(overview) => Json(overview).into_response(),
        Err(e) => unavailable(e),
    }
}

#[derive(serde::Deserialize)]
pub struct Activity {
    #[serde(default = "a_day")]
    hours: u32,
}

fn a_day() -> u32 {
    24
}

/// `GET /queue/activity?hours=24`: completed and failed jobs per hour, oldest hour first.
pub async fn activity(State(state): State<AppState>, Query(query): Query<Activity>) -> Response {
    if !(1..=168).contains(&query.hours) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "hours is 1-168".into());
    }
    let now = u64::try_from(state.clock.now().timestamp_millis()).unwrap_or_default();
    match state.queue.activity(now, query.hours).await {
        Ok(hours) => Json(json!({ "hours": hours })).into_response(),
        Err(e) => unavailable(e),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    #[serde(default = "failed")]
    state: String,
    #[serde(default = "first_page")]
    page: u32,
    #[serde(default = "page_size")]
    per_page: u32,
}

fn failed() -> String {
    "failed".into()
}

fn first_page() -> u32 {
    1
}

fn page_size() -> u32 {
    50
}

/// `GET /jobs?state=failed&page=1&perPage=50`, newest first.
pub async fn list(State(state): State<AppState>, Query(listing): Query<Listing>) -> Response {
    if !STATES.contains(&listing.state.as_str()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("state must be one of {}", STATES.join(", ")),
        );
    }
    if listing.page == 0 || !(1..=1000).contains(&listing.per_page) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "page counts from 1; perPage is 1-1000".into());
    }
    match state.queue.jobs(&listing.state, listing.page, listing.per_page).await {
        Ok(jobs) => {
            Json(json!({ "state": listing.state, "page": listing.page, "jobs": jobs })).into_response()
        }
        Err(e) => unavailable(e),
    }
}

pub async fn detail(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.queue.job(&id).await {
        Ok(Some(job)) => Json(job).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no job {id}")),
        Err(e) => unavailable(e),
    }
}

pub async fn retry(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.queue.retry(&id).await {
        Ok(Retried::Retried) => {
            record(
                &state,
                "job.retried",
                &format!("job:{id}"),
                "failed job retried through the admin API",
                json!({}),
            )
            .await;
            Json(json!({ "id": id, "retried": true })).into_response()
        }
        Ok(Retried::NotFound) => error(StatusCode::NOT_FOUND, format!("no job {id}")),
        Ok(Retried::NotFailed(job_state)) => {
            error(StatusCode::CONFLICT, format!("job {id} is {job_state}; only failed jobs are retried"))
        }
        Err(e) => unavailable(e),
    }
}

pub async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.queue.remove(&id).await {
        Ok(true) => {
            record(
                &state,
                "job.removed",
                &format!("job:{id}"),
                "job removed through the admin API",
                json!({}),
            )
            .await;
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => {
            error(StatusCode::NOT_FOUND, format!("no job {id} that can be removed (missing, or running)"))
        }
        Err(e) => unavailable(e),
    }
}
