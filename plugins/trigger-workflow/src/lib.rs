//! trigger-workflow: starts the workflow run of one occurrence of a workflow schedule.
//!
//! The host schedules one job per enabled `workflow_schedules` row, with `{"scheduleId": …}`
//! as data. A run inserts a `pending` `workflow_runs` row (triggered by `schedule`, with the
//! schedule id and the occurrence time) and sets the schedule's `last_triggered_at`. The
//! occurrence is the one in the scheduler's job id, else `scheduledFor` (ms) in the data, else
//! the time the job was enqueued. `UNIQUE (schedule_id, scheduled_for)` makes a second delivery
//! of the same occurrence start nothing. A disabled or deleted schedule, or a disabled
//! workflow, starts nothing either; the outcome says why.

use floh_plugin_sdk::audit::{self, Event};
use floh_plugin_sdk::{Capability, Job, JobError, Outcome, Plugin, PluginInfo, clock, db, log};
use serde_json::json;

struct TriggerWorkflow;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    schedule_id: String,
}

impl Plugin for TriggerWorkflow {
    fn describe() -> PluginInfo {
        PluginInfo::new("trigger-workflow", env!("CARGO_PKG_VERSION"), "Starts scheduled workflow runs")
            .needs(&[Capability::Db, Capability::Audit])
    }

    fn run(job: Job) -> Result<Outcome, JobError> {
        let data: Data = job.data()?;
        let occurrence = job.due();
        let skipped = |why: &str| {
            log::with_fields(
                log::Level::Info,
                "workflow schedule starts nothing",
                &[("schedule_id", &data.schedule_id), ("why", why)],
            );
            floh_plugin_sdk::outcome(&json!({ "started": false, "skipped": why }))
        };
        let found = db::query(
            "SELECT s.workflow_id, s.input, s.enabled AS schedule_enabled, w.enabled AS workflow_enabled
             FROM workflow_schedules s JOIN workflows w ON w.id = s.workflow_id WHERE s.id = $1",
            &[data.schedule_id.as_str().into()],
        )?;
        let Some(schedule) = found.iter().next() else {
            return skipped("schedule not found");
        };
        if schedule.boolean("schedule_enabled")? != Some(true) {
            return skipped("schedule disabled");
        }
        if schedule.boolean("workflow_enabled")? != Some(true) {
            return skipped("workflow disabled");
        }
        let workflow_id = schedule.required("workflow_id", db::Row::text)?;
        let run_id = uuid::Uuid::new_v4().to_string();
        let now = clock::now();
        let inserted = db::execute(
            "INSERT INTO workflow_runs (id, workflow_id, schedule_id, scheduled_for, status, triggered_by, input,
                                        created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'pending', 'schedule', $5, $6, $6)
             ON CONFLICT (schedule_id, scheduled_for) DO NOTHING",
            &[
                run_id.as_str().into(),
                workflow_id.into(),
                data.schedule_id.as_str().into(),
                db::at(occurrence),
                schedule.text("input")?.unwrap_or("{}").into(),
                db::at(now),
            ],
        )?;
        if inserted == 0 {
            return skipped("occurrence already started");
        }
        db::execute(
            "UPDATE workflow_schedules SET last_triggered_at = $2, updated_at = $3
             WHERE id = $1 AND (last_triggered_at IS NULL OR last_triggered_at < $2)",
            &[data.schedule_id.as_str().into(), db::at(occurrence), db::at(now)],
        )?;
        let target = format!("workflow_run:{run_id}");
        audit::append(
            &Event::new("system:trigger-workflow", "workflow_run.started", &target, "Workflow schedule due")
                .details(&json!({
                    "workflowId": workflow_id,
                    "scheduleId": data.schedule_id,
                    "scheduledFor": clock::rfc3339(occurrence),
                })),
        )?;
        floh_plugin_sdk::outcome(&json!({
            "started": true,
            "runId": run_id,
            "scheduledFor": clock::rfc3339(occurrence),
        }))
    }
}

floh_plugin_sdk::export!(TriggerWorkflow);
