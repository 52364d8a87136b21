//! Revoking role assignments the way every access-lifecycle job does: in bounded batches, one
//! audit event per assignment, counts in the outcome and the log.

use floh_plugin_sdk::audit::{self, Event};
use floh_plugin_sdk::{JobError, Outcome, Value, clock, db, log};
use serde_json::json;

/// One kind of revocation.
pub struct Revocation<'a> {
    /// The audit actor, `system:<job>`.
    pub actor: &'a str,
    /// An `UPDATE role_assignments … RETURNING id, user_id, role_id, reason, detail` revoking at
    /// most `$2` assignments with `revoked_at = $1` (now). It must re-check
    /// `status = 'active'` on the updated row, so a concurrent run's revocation is skipped.
    pub sql: &'a str,
    /// The name, in the audit details, of the statement's `detail` column.
    pub detail: &'a str,
    /// The log message when anything was revoked.
    pub message: &'a str,
}

impl Revocation<'_> {
    /// Runs the statement until nothing is left; returns `{"revoked": n}`.
    pub fn run(&self) -> Result<Outcome, JobError> {
        let now = clock::now();
        let revoked = db::in_batches(|batch| {
            let rows = db::query(self.sql, &[db::at(now), batch.into()])?;
            for row in rows.iter() {
                let id = row.required("id", db::Row::text)?;
                let reason = row.required("reason", db::Row::text)?;
                let detail = match row.get("detail")? {
                    Value::Timestamp(at) => json!(clock::rfc3339(*at)),
                    _ => json!(row.text("detail")?),
                };
                let details = json!({
                    "userId": row.text("user_id")?,
                    "roleId": row.text("role_id")?,
                    self.detail: detail,
                });
                let target = format!("role_assignment:{id}");
                audit::append(
                    &Event::new(self.actor, "role_assignment.revoked", &target, reason).details(&details),
                )?;
            }
            Ok(rows.len() as u64)
        })?;
        if revoked > 0 {
            log::with_fields(log::Level::Info, self.message, &[("revoked", &revoked.to_string())]);
        }
        floh_plugin_sdk::outcome(&json!({ "revoked": revoked }))
    }
}
