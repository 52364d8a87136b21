//! stuck-run-recovery: fails workflow runs that stay `running` without progress.
//!
//! A run is stuck when its `updated_at` is older than the timeout: the admin setting
//! `stuck_run_timeout_minutes`, else STUCK_RUN_TIMEOUT_MINUTES (default 30). It is marked
//! `failed` with reason "Run timed out (no progress for N minutes)". Idempotent: the state is
//! re-read at run time, and a failed run no longer matches.

use floh_plugin_sdk::{Capability, Job, JobError, Outcome, Plugin, PluginInfo, clock, db, log, settings};

struct StuckRunRecovery;

const DEFAULT_TIMEOUT_MINUTES: u32 = 30;

impl Plugin for StuckRunRecovery {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "stuck-run-recovery",
            env!("CARGO_PKG_VERSION"),
            "Fails workflow runs stuck in running state",
        )
        .schedule("*/15 * * * *")
        .needs(&[Capability::Db, Capability::Settings])
    }

    fn run(_job: Job) -> Result<Outcome, JobError> {
        let minutes = settings::get_u32("stuck_run_timeout_minutes")?.unwrap_or(DEFAULT_TIMEOUT_MINUTES);
        let now = clock::now();
        let cutoff = clock::minutes_before(now, minutes);
        let reason = format!("Run timed out (no progress for {minutes} minutes)");
        let failed = db::in_batches(|batch| {
            Ok(db::execute(
                "UPDATE workflow_runs SET status = 'failed', failure_reason = $1, finished_at = $2, updated_at = $2
                 WHERE id IN (SELECT id FROM workflow_runs WHERE status = 'running' AND updated_at < $3
                              ORDER BY updated_at LIMIT $4)",
                &[reason.as_str().into(), db::at(now), db::at(cutoff), batch.into()],
            )?)
        })?;
        if failed > 0 {
            log::with_fields(
                log::Level::Warn,
                "failed stuck workflow runs",
                &[("failed", &failed.to_string()), ("timeout_minutes", &minutes.to_string())],
            );
        }
        floh_plugin_sdk::outcome(&serde_json::json!({ "failed": failed, "timeoutMinutes": minutes }))
    }
}

floh_plugin_sdk::export!(StuckRunRecovery);
