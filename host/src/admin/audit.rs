//! Admin > Audit: the log's size, the last checkpoint, and on request a full verification.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::unavailable;
use crate::audit::verify::{self, VerifyError};
use crate::http::AppState;

/// How many of the newest checkpoints the status lists.
const RECENT_CHECKPOINTS: i64 = 20;

/// first_seq, last_seq, store, location, created_at of a checkpoint.
type CheckpointRow = (i64, i64, String, String, DateTime<Utc>);

#[derive(serde::Deserialize)]
pub struct Status {
    #[serde(default)]
    verify: bool,
}

/// `GET /audit[?verify=true]`.
pub async fn status(State(state): State<AppState>, Query(query): Query<Status>) -> Response {
    let entries: Result<Option<i64>, _> = crate::on_db!(&state.db, pool => sqlx::query_scalar("SELECT max(seq) FROM audit_log").fetch_one(pool).await);
    let recent: Result<Vec<CheckpointRow>, _> = crate::on_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT first_seq, last_seq, store, location, created_at FROM audit_checkpoints
             ORDER BY last_seq DESC LIMIT $1",
        )
        .bind(RECENT_CHECKPOINTS)
        .fetch_all(pool)
        .await
    });
    let (entries, recent) = match (entries, recent) {
        (Ok(entries), Ok(recent)) => (entries.unwrap_or(0), recent),
        (Err(e), _) | (_, Err(e)) => return unavailable(e),
    };
    let checkpoints: Vec<_> = recent
        .iter()
        .map(|(first, last, store, location, created_at)| {
            json!({ "firstSeq": first, "lastSeq": last, "store": store, "location": location, "createdAt": created_at })
        })
        .collect();
    let covered = recent.first().map_or(0, |(_, last, ..)| *last);
    let verification = if query.verify {
        match verify::verify(&state.db, &state.checkpoints, &state.signer).await {
            Ok(summary) => json!({ "intact": true, "summary": summary.to_string() }),
            Err(VerifyError::Tampered(problem)) => json!({ "intact": false, "problem": problem }),
            Err(e) => return unavailable(e),
        }
    } else {
        serde_json::Value::Null
    };
    Json(json!({
        "entries": entries,
        "entriesSinceCheckpoint": entries - covered,
        "lastCheckpoint": checkpoints.first(),
        "checkpoints": checkpoints,
        "store": state.checkpoints.describe(),
        "keyId": state.signer.key_id(),
        "verification": verification,
    }))
    .into_response()
}
