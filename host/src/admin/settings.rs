//! Admin > Security Settings and Admin > Logging: runtime settings operators change without a
//! restart, each change an audit event.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{error, unavailable};
use crate::audit::{self, AuditEvent};
use crate::http::AppState;

/// A setting the admin API may change, and its bounds.
pub struct Editable {
    pub key: &'static str,
    pub min: i64,
    pub max: i64,
}

pub const SECURITY: &[Editable] = &[Editable { key: "stuck_run_timeout_minutes", min: 1, max: 1440 }];
pub const LOGGING: &[Editable] = &[Editable { key: "log_retention_days", min: 1, max: 36_500 }];

pub async fn get_security(State(state): State<AppState>) -> Response {
    show(&state, SECURITY).await
}

pub async fn put_security(State(state): State<AppState>, Json(body): Json<Value>) -> Response {
    change(&state, SECURITY, body).await
}

pub async fn get_logging(State(state): State<AppState>) -> Response {
    show(&state, LOGGING).await
}

pub async fn put_logging(State(state): State<AppState>, Json(body): Json<Value>) -> Response {
    change(&state, LOGGING, body).await
}

/// `{"<key>": {"value": 30, "source": "admin" | "configuration"}}`.
async fn show(state: &AppState, group: &[Editable]) -> Response {
    let mut shown = Map::new();
    for setting in group {
        let (value, source) = match state.runtime_settings.stored(setting.key).await {
            Ok(Some(stored)) => (stored, "admin"),
            Ok(None) => {
                (state.runtime_settings.fallback(setting.key).unwrap_or("null").to_owned(), "configuration")
            }
            Err(e) => return unavailable(e),
        };
        let value: Value = serde_json::from_str(&value).unwrap_or(Value::String(value));
        shown.insert(setting.key.to_owned(), json!({ "value": value, "source": source }));
    }
    Json(Value::Object(shown)).into_response()
}

/// Validates every field of `body` first, then stores them in one transaction with one audit
/// event each.
async fn change(state: &AppState, group: &[Editable], body: Value) -> Response {
    let Value::Object(fields) = body else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "expected a JSON object of settings".into());
    };
    let mut changes = Vec::new();
    for (key, value) in &fields {
        let Some(setting) = group.iter().find(|s| s.key == key) else {
            let known: Vec<&str> = group.iter().map(|s| s.key).collect();
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("unknown setting {key}; expected {}", known.join(", ")),
            );
        };
        match value.as_i64().filter(|n| (setting.min..=setting.max).contains(n)) {
            Some(n) => changes.push((setting.key, n)),
            None => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{key} must be an integer {}-{}, not {value}", setting.min, setting.max),
                );
            }
        }
    }
    if let Err(e) = store(state, &changes).await {
        return unavailable(e);
    }
    show(state, group).await
}

async fn store(state: &AppState, changes: &[(&str, i64)]) -> Result<(), audit::AuditError> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    for (key, value) in changes {
        let before = state.runtime_settings.get(key).await?.unwrap_or_else(|| "unset".into());
        crate::on_db!(&mut tx, tx => {
            sqlx::query(
                "INSERT INTO settings (key, value, updated_at, updated_by) VALUES ($1, $2, $3, 'admin')
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
                                                 updated_by = excluded.updated_by",
            )
            .bind(key)
            .bind(value.to_string())
            .bind(now)
            .execute(&mut **tx)
            .await
            .map(drop)
        })?;
        let event = AuditEvent {
            actor: "admin".into(),
            action: "setting.changed".into(),
            target: format!("setting:{key}"),
            reason: format!("{key} changed from {before} to {value}"),
            details: json!({ "from": before, "to": value }).to_string(),
        };
        audit::append(&mut tx, &event, now).await?;
    }
    tx.commit().await?;
    Ok(())
}
