//! log-retention: deletes `system_log` rows older than the retention period.
//!
//! The period is the runtime setting `log_retention_days`, else LOG_RETENTION_DAYS (default
//! 30). Rows go in batches, each its own transaction; one audit event records a purge that
//! deleted anything. Admin > Logging > Purge Now enqueues this job.

use floh_plugin_sdk::audit::{self, Event};
use floh_plugin_sdk::{Capability, Job, JobError, Outcome, Plugin, PluginInfo, clock, db, log, settings};
use serde_json::json;

struct LogRetention;

const DEFAULT_RETENTION_DAYS: u32 = 30;

impl Plugin for LogRetention {
    fn describe() -> PluginInfo {
        PluginInfo::new("log-retention", env!("CARGO_PKG_VERSION"), "Purges old system_log rows")
            .schedule("0 3 * * *")
            .needs(&[Capability::Db, Capability::Settings, Capability::Audit])
    }

    fn run(job: Job) -> Result<Outcome, JobError> {
        let days = settings::get_u32("log_retention_days")?.unwrap_or(DEFAULT_RETENTION_DAYS);
        let cutoff = clock::days_before(clock::now(), days);
        let deleted = db::in_batches(|batch| {
            Ok(db::execute(
                "DELETE FROM system_log WHERE id IN
                   (SELECT id FROM system_log WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
                &[db::at(cutoff), batch.into()],
            )?)
        })?;
        if deleted > 0 {
            let reason = format!("Log entries older than {days} days purged");
            audit::append(
                &Event::new("system:log-retention", "system_log.purged", "system_log", &reason).details(
                    &json!({
                        "deleted": deleted,
                        "before": clock::rfc3339(cutoff),
                        "jobId": job.id,
                    }),
                ),
            )?;
            db::commit()?;
            log::with_fields(
                log::Level::Info,
                "purged old system_log rows",
                &[("deleted", &deleted.to_string()), ("retention_days", &days.to_string())],
            );
        }
        floh_plugin_sdk::outcome(&json!({ "deleted": deleted, "retentionDays": days }))
    }
}

floh_plugin_sdk::export!(LogRetention);
