//! escalation-reassignment: at its due date, reassigns a still-pending approval to its
//! escalation target and tells both people.
//!
//! Data: `{"approvalId": "…"}`. The target is the approval's `escalation_target_id`, else the
//! approver's manager (`users.manager_id`), else the runtime setting
//! `escalation_fallback_approver` (a user id). A decided approval, or one already escalated,
//! is left alone. One that is not yet due (its due date moved) is looked at again then: the job
//! enqueues itself for the new due date. The reassignment records the previous approver and
//! `escalated_at`, and is an audit event.

use floh_plugin_sdk::audit::{self, Event};
use floh_plugin_sdk::{
    Capability, Job, JobError, Outcome, Plugin, PluginInfo, clock, db, log, mail, queue, settings,
};
use serde_json::json;

struct EscalationReassignment;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    approval_id: String,
}

impl Plugin for EscalationReassignment {
    fn describe() -> PluginInfo {
        PluginInfo::new("escalation-reassignment", env!("CARGO_PKG_VERSION"), "Reassigns overdue approvals")
            .needs(&[
                Capability::Db,
                Capability::Mail,
                Capability::Queue,
                Capability::Settings,
                Capability::Audit,
            ])
    }

    fn run(job: Job) -> Result<Outcome, JobError> {
        let data: Data = job.data()?;
        let id = data.approval_id.as_str();
        let skipped = |why: String| floh_plugin_sdk::outcome(&json!({ "escalated": false, "skipped": why }));
        let found = db::query(
            "SELECT a.status, a.subject, a.due_at, a.escalated_at, a.approver_id, a.escalation_target_id, u.manager_id
             FROM approvals a JOIN users u ON u.id = a.approver_id WHERE a.id = $1",
            &[id.into()],
        )?;
        let Some(approval) = found.iter().next() else {
            return skipped("approval not found".into());
        };
        let status = approval.required("status", db::Row::text)?;
        if status != "pending" {
            return skipped(format!("approval {status}"));
        }
        if approval.timestamp("escalated_at")?.is_some() {
            return skipped("already escalated".into());
        }
        let now = clock::now();
        let due_at = approval.required("due_at", db::Row::timestamp)?;
        if now < due_at {
            let again = format!("escalation-reassignment:{id}:{due_at}");
            let data = json!({ "approvalId": id }).to_string();
            queue::enqueue("escalation-reassignment", &data, Some((due_at - now) as u64), Some(&again))?;
            return skipped(format!("not due until {}; looked at again then", clock::rfc3339(due_at)));
        }
        let from = approval.required("approver_id", db::Row::text)?.to_owned();
        let target = match approval.text("escalation_target_id")?.or(approval.text("manager_id")?) {
            Some(target) => target.to_owned(),
            None => settings::get("escalation_fallback_approver")?
                .map(|value| value.trim().trim_matches('"').to_owned())
                .filter(|value| !value.is_empty())
                .ok_or_else(|| {
                    JobError::Permanent(format!(
                        "approval {id} has no escalation target: set its escalation_target_id, the approver's \
                         manager_id, or the setting escalation_fallback_approver"
                    ))
                })?,
        };
        if target == from {
            return skipped("the escalation target is the approver already".into());
        }
        let people = db::query(
            "SELECT id, email, display_name FROM users WHERE id IN ($1, $2)",
            &[from.as_str().into(), target.as_str().into()],
        )?;
        let person = |who: &str| -> Result<(String, String), JobError> {
            let row = people
                .iter()
                .find(|row| row.text("id").ok().flatten() == Some(who))
                .ok_or_else(|| JobError::Permanent(format!("user {who} does not exist")))?;
            Ok((
                row.required("email", db::Row::text)?.to_owned(),
                row.required("display_name", db::Row::text)?.to_owned(),
            ))
        };
        let ((from_email, from_name), (to_email, to_name)) = (person(&from)?, person(&target)?);
        let changed = db::execute(
            "UPDATE approvals SET previous_approver_id = approver_id, approver_id = $2, escalated_at = $3, updated_at = $3
             WHERE id = $1 AND status = 'pending' AND escalated_at IS NULL",
            &[id.into(), target.as_str().into(), db::at(now)],
        )?;
        if changed == 0 {
            return skipped("changed meanwhile".into());
        }
        let subject = approval.required("subject", db::Row::text)?;
        let due = clock::rfc3339(due_at);
        mail::send_text(
            &[&to_email],
            &format!("Escalated to you: {subject}"),
            &format!(
                "Hello {to_name},\n\n{subject} was due at {due} (UTC) and is overdue. It has been reassigned to you \
                 from {from_name}; please decide it.\n"
            ),
        )?;
        mail::send_text(
            &[&from_email],
            &format!("Reassigned: {subject}"),
            &format!(
                "Hello {from_name},\n\n{subject} was due at {due} (UTC) and has been reassigned to {to_name}.\n"
            ),
        )?;
        let reason = format!("Approval overdue since {due}; reassigned from {from} to {target}");
        audit::append(
            &Event::new(
                "system:escalation-reassignment",
                "approval.escalated",
                &format!("approval:{id}"),
                &reason,
            )
            .details(&json!({ "from": from, "to": target, "dueAt": due })),
        )?;
        log::with_fields(
            log::Level::Info,
            "overdue approval escalated",
            &[("approval_id", id), ("to", &target)],
        );
        floh_plugin_sdk::outcome(&json!({ "escalated": true, "from": from, "to": target }))
    }
}

floh_plugin_sdk::export!(EscalationReassignment);
