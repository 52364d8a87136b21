//! deliver-scheduled-report: renders one occurrence of a `scheduled_reports` row as CSV and
//! mails it, as an attachment with a short summary, to the row's recipients.
//!
//! The host schedules one job per enabled row, with `{"reportId": …}` as data. Each
//! occurrence (the scheduler's due time, else `scheduledFor` in the data, else the enqueue
//! time) is recorded in `report_deliveries`, unique per report and occurrence: once an
//! occurrence is recorded as sent (or skipped), a retry or a second delivery mails nothing.
//! A mail that went out just before its record failed to commit is sent again by the retry:
//! at least once, never again once recorded. A report with `skip_if_empty` and no rows is
//! recorded as skipped without a mail. Each delivery is an audit event naming the recipients.

mod csv;
mod reports;

use floh_plugin_sdk::audit::{self, Event};
use floh_plugin_sdk::mail::{self, Attachment, Message};
use floh_plugin_sdk::{Capability, Job, JobError, Outcome, Plugin, PluginInfo, clock, db, log};
use serde_json::json;

struct DeliverScheduledReport;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    report_id: String,
}

impl Plugin for DeliverScheduledReport {
    fn describe() -> PluginInfo {
        PluginInfo::new("deliver-scheduled-report", env!("CARGO_PKG_VERSION"), "E-mails scheduled reports")
            .needs(&[Capability::Db, Capability::Mail, Capability::Audit])
    }

    fn run(job: Job) -> Result<Outcome, JobError> {
        let data: Data = job.data()?;
        let occurrence = job.due();
        let skipped = |why: &str| floh_plugin_sdk::outcome(&json!({ "sent": false, "skipped": why }));

        let done = db::query(
            "SELECT status FROM report_deliveries WHERE report_id = $1 AND scheduled_for = $2",
            &[data.report_id.as_str().into(), db::at(occurrence)],
        )?;
        if !done.is_empty() {
            return skipped("occurrence already delivered");
        }
        let found = db::query(
            "SELECT name, report_type, recipients, parameters, enabled, skip_if_empty FROM scheduled_reports WHERE id = $1",
            &[data.report_id.as_str().into()],
        )?;
        let Some(report) = found.iter().next() else {
            return skipped("report not found");
        };
        if report.boolean("enabled")? != Some(true) {
            return skipped("report disabled");
        }
        let name = report.required("name", db::Row::text)?.to_owned();
        let report_type = report.required("report_type", db::Row::text)?;
        let recipients: Vec<String> = json_column(&report, "recipients")?;
        if recipients.is_empty() {
            return Err(JobError::Permanent(format!("report {} has no recipients", data.report_id)));
        }
        let parameters: serde_json::Value = json_column(&report, "parameters")?;

        let now = clock::now();
        let table = reports::render(report_type, &parameters, now)?;
        let rows = table.rows.len() as i64;
        let empty = rows == 0 && report.boolean("skip_if_empty")? == Some(true);
        if !empty {
            let date = &clock::rfc3339(occurrence)[..10];
            mail::send(&Message {
                to: recipients.clone(),
                subject: format!("{name} — {date}"),
                body: format!(
                    "{}: {rows} rows as of {} (UTC).\n\nThe CSV file is attached.\n\n-- \nfloh scheduled report {}\n",
                    table.title,
                    clock::rfc3339(now),
                    data.report_id
                ),
                attachments: vec![Attachment {
                    filename: format!("{report_type}-{date}.csv"),
                    content_type: "text/csv; charset=utf-8".into(),
                    content: csv::render(&table.columns, &table.rows).into_bytes(),
                }],
            })?;
        }
        let status = if empty { "skipped" } else { "sent" };
        db::execute(
            "INSERT INTO report_deliveries (id, report_id, scheduled_for, status, row_count, recipients, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (report_id, scheduled_for) DO NOTHING",
            &[
                uuid::Uuid::new_v4().to_string().into(),
                data.report_id.as_str().into(),
                db::at(occurrence),
                status.into(),
                rows.into(),
                json!(recipients).to_string().into(),
                db::at(now),
            ],
        )?;
        if empty {
            return skipped("empty");
        }
        db::execute(
            "UPDATE scheduled_reports SET last_sent_at = $2 WHERE id = $1",
            &[data.report_id.as_str().into(), db::at(now)],
        )?;
        audit::append(
            &Event::new(
                "system:deliver-scheduled-report",
                "report.delivered",
                &format!("scheduled_report:{}", data.report_id),
                &format!("Scheduled report {name} sent"),
            )
            .details(&json!({ "recipients": recipients, "rows": rows, "scheduledFor": clock::rfc3339(occurrence) })),
        )?;
        log::with_fields(
            log::Level::Info,
            "scheduled report sent",
            &[
                ("report_id", &data.report_id),
                ("rows", &rows.to_string()),
                ("recipients", &recipients.len().to_string()),
            ],
        );
        floh_plugin_sdk::outcome(&json!({ "sent": true, "rows": rows, "recipients": recipients.len() }))
    }
}

/// A JSON text column parsed as `T`; a malformed one fails the job for good.
fn json_column<T: serde::de::DeserializeOwned>(row: &db::Row<'_>, column: &str) -> Result<T, JobError> {
    let text = row.text(column)?.unwrap_or("null");
    serde_json::from_str(text).map_err(|e| JobError::Permanent(format!("scheduled_reports.{column}: {e}")))
}

floh_plugin_sdk::export!(DeliverScheduledReport);
