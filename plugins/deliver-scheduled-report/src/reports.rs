//! The report types a `scheduled_reports` row can name, each a query rendered as a table.

use floh_plugin_sdk::{JobError, Timestamp, Value, clock, db};

/// Rows read per query.
const PAGE: i64 = 5000;

pub const TYPES: [&str; 4] = ["active-assignments", "expiring-assignments", "failed-runs", "drift-findings"];

/// A rendered report: a title line for the mail and its table.
pub struct Table {
    pub title: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

/// `days` from the row's parameters, for the report types that look ahead or back.
fn days(parameters: &serde_json::Value) -> Result<i64, JobError> {
    match parameters.get("days") {
        None => Ok(7),
        Some(days) => days
            .as_i64()
            .filter(|d| (1..=3650).contains(d))
            .ok_or_else(|| JobError::Permanent(format!("report parameter days is {days}, expected 1-3650"))),
    }
}

pub fn render(report_type: &str, parameters: &serde_json::Value, now: Timestamp) -> Result<Table, JobError> {
    let (title, columns, sql, params): (String, Vec<&str>, &str, Vec<Value>) = match report_type {
        "active-assignments" => (
            "Active role assignments".into(),
            vec!["assignment", "user", "email", "role", "granted_at", "expires_at"],
            "SELECT a.id, u.display_name, u.email, r.name, a.granted_at, a.expires_at
             FROM role_assignments a JOIN users u ON u.id = a.user_id JOIN roles r ON r.id = a.role_id
             WHERE a.status = 'active' AND a.id > $1 ORDER BY a.id LIMIT $2",
            vec![],
        ),
        "expiring-assignments" => {
            let days = days(parameters)?;
            (
                format!("Role assignments expiring in the next {days} days"),
                vec!["assignment", "user", "email", "role", "granted_at", "expires_at"],
                "SELECT a.id, u.display_name, u.email, r.name, a.granted_at, a.expires_at
                 FROM role_assignments a JOIN users u ON u.id = a.user_id JOIN roles r ON r.id = a.role_id
                 WHERE a.status = 'active' AND a.expires_at > $3 AND a.expires_at <= $4 AND a.id > $1
                 ORDER BY a.id LIMIT $2",
                vec![db::at(now), db::at(now + days * 86_400_000)],
            )
        }
        "failed-runs" => {
            let days = days(parameters)?;
            (
                format!("Workflow runs failed in the last {days} days"),
                vec!["run", "workflow", "failure_reason", "started_at", "finished_at"],
                "SELECT r.id, w.name, r.failure_reason, r.started_at, r.finished_at
                 FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id
                 WHERE r.status = 'failed' AND r.finished_at > $3 AND r.id > $1 ORDER BY r.id LIMIT $2",
                vec![db::at(clock::days_before(now, days as u32))],
            )
        }
        "drift-findings" => (
            "Open entitlement drift findings".into(),
            vec!["finding", "connector", "kind", "user", "entitlement", "detail", "detected_at"],
            "SELECT f.id, c.name, f.kind, u.email, e.name, f.detail, f.detected_at
             FROM drift_findings f JOIN connectors c ON c.id = f.connector_id
             LEFT JOIN users u ON u.id = f.user_id LEFT JOIN entitlements e ON e.id = f.entitlement_id
             WHERE f.status = 'open' AND f.id > $1 ORDER BY f.id LIMIT $2",
            vec![],
        ),
        other => {
            return Err(JobError::Permanent(format!(
                "unknown report type {other:?}; expected one of {}",
                TYPES.join(", ")
            )));
        }
    };
    let mut rows = Vec::new();
    let mut after = String::new();
    loop {
        let mut page_params: Vec<Value> = vec![after.as_str().into(), PAGE.into()];
        page_params.extend(params.iter().cloned());
        let page = db::query(sql, &page_params)?;
        for row in &page.rows {
            let cells: Vec<String> = row.iter().map(cell).collect();
            after = cells[0].clone();
            rows.push(cells);
        }
        if page.rows.len() < PAGE as usize {
            break;
        }
    }
    // Sorted for people: by the second column (user, workflow or connector), then the first.
    rows.sort_by(|a, b| (&a[1], &a[0]).cmp(&(&b[1], &b[0])));
    Ok(Table { title, columns, rows })
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(n) => n.to_string(),
        Value::Float(x) => x.to_string(),
        Value::Text(text) | Value::Json(text) => text.clone(),
        Value::Bytes(bytes) => format!("{} bytes", bytes.len()),
        Value::Timestamp(at) => clock::rfc3339(*at),
    }
}
