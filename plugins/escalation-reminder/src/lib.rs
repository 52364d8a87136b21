//! escalation-reminder: reminds the approver of a still-pending approval, then schedules the
//! next reminder.
//!
//! Data: `{"approvalId": "…", "reminder": n}` (n from 1). At run time the approval must still
//! be pending, not yet due, with fewer than n reminders sent and n within its
//! `max_reminders`; otherwise nothing happens (the outcome says why). The approver gets a mail,
//! `reminder_count` becomes n and `reminded_at` now, and reminder n+1 is enqueued
//! `reminder_interval_hours` later (job id `escalation-reminder:<id>:<n+1>`, so enqueueing twice
//! is harmless) unless that would be at or after the due date, when escalation-reassignment
//! takes over.

use floh_plugin_sdk::{Capability, Job, JobError, Outcome, Plugin, PluginInfo, clock, db, log, mail, queue};
use serde_json::json;

struct EscalationReminder;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    approval_id: String,
    #[serde(default = "first")]
    reminder: i64,
}

fn first() -> i64 {
    1
}

impl Plugin for EscalationReminder {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "escalation-reminder",
            env!("CARGO_PKG_VERSION"),
            "Reminds approvers of pending approvals",
        )
        .needs(&[Capability::Db, Capability::Mail, Capability::Queue])
    }

    fn run(job: Job) -> Result<Outcome, JobError> {
        let data: Data = job.data()?;
        let n = data.reminder;
        let skipped = |why: String| floh_plugin_sdk::outcome(&json!({ "reminded": false, "skipped": why }));
        let found = db::query(
            "SELECT a.status, a.subject, a.due_at, a.reminder_count, a.reminder_interval_hours, a.max_reminders,
                    u.email, u.display_name
             FROM approvals a JOIN users u ON u.id = a.approver_id WHERE a.id = $1",
            &[data.approval_id.as_str().into()],
        )?;
        let Some(approval) = found.iter().next() else {
            return skipped("approval not found".into());
        };
        let status = approval.required("status", db::Row::text)?;
        if status != "pending" {
            return skipped(format!("approval {status}"));
        }
        let now = clock::now();
        let due_at = approval.required("due_at", db::Row::timestamp)?;
        if now >= due_at {
            return skipped("overdue: escalation takes over".into());
        }
        if approval.required("reminder_count", db::Row::integer)? >= n {
            return skipped(format!("reminder {n} already sent"));
        }
        let max = approval.required("max_reminders", db::Row::integer)?;
        if n > max {
            return skipped(format!("no more reminders (at most {max})"));
        }
        let subject = approval.required("subject", db::Row::text)?;
        let email = approval.required("email", db::Row::text)?;
        let name = approval.required("display_name", db::Row::text)?;
        mail::send_text(
            &[email],
            &format!("Reminder: your approval is needed — {subject}"),
            &format!(
                "Hello {name},\n\n{subject} is waiting for your decision. It is due at {} (UTC); after that it is \
                 escalated.\n\nThis is reminder {n} of at most {max}.\n",
                clock::rfc3339(due_at)
            ),
        )?;
        db::execute(
            "UPDATE approvals SET reminder_count = $2, reminded_at = $3, updated_at = $3 WHERE id = $1",
            &[data.approval_id.as_str().into(), n.into(), db::at(now)],
        )?;
        let interval_ms = approval.required("reminder_interval_hours", db::Row::integer)? * 3_600_000;
        let next = (n < max && now + interval_ms < due_at)
            .then(|| {
                let id = format!("escalation-reminder:{}:{}", data.approval_id, n + 1);
                let next = json!({ "approvalId": data.approval_id, "reminder": n + 1 }).to_string();
                queue::enqueue("escalation-reminder", &next, Some(interval_ms as u64), Some(&id))
            })
            .transpose()?;
        log::with_fields(
            log::Level::Info,
            "approval reminder sent",
            &[("approval_id", &data.approval_id), ("reminder", &n.to_string())],
        );
        floh_plugin_sdk::outcome(&json!({ "reminded": true, "reminder": n, "next": next }))
    }
}

floh_plugin_sdk::export!(EscalationReminder);
