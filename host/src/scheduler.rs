//! Keeps the queue's job schedulers in line with what should run when:
//!
//! - each loaded plugin's default schedule (from `describe`), unless `floh.toml` overrides it
//!   (`[plugins.<name>] schedule = "…"`) or turns it off (`"off"`); `audit-checkpoint` follows
//!   AUDIT_CHECKPOINT_SCHEDULE;
//! - one scheduler per enabled `scheduled_reports` row (`deliver-scheduled-report`) and per
//!   enabled `workflow_schedules` row (`trigger-workflow`), with the row's cron and time zone
//!   and the row id in the job data.
//!
//! Every host reconciles at start, every minute, and on `POST /api/admin/schedules/sync`. Schedulers are
//! BullMQ job schedulers, so every occurrence is enqueued once however many hosts reconcile.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::config::{PluginPolicy, Settings, validate_cron};
use crate::plugins::registry::Registry;
use crate::queue::{JobQueue, QueueError, Schedule};
use crate::shutdown::Lifecycle;

pub const REPORT_JOB: &str = "deliver-scheduled-report";
pub const WORKFLOW_JOB: &str = "trigger-workflow";
pub const AUDIT_CHECKPOINT_JOB: &str = "audit-checkpoint";
const RESYNC_EVERY: Duration = Duration::from_secs(60);

/// A schedule floh wants, and where it comes from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Planned {
    #[serde(flatten)]
    pub schedule: Schedule,
    pub source: String,
}

/// What one reconciliation changed.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SyncReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    /// Rows or settings that could not be scheduled, and why.
    pub problems: Vec<String>,
}

pub struct Scheduler {
    producer: Arc<dyn JobQueue>,
    registry: Arc<Registry>,
    db: crate::database::Db,
    policies: BTreeMap<String, PluginPolicy>,
    audit_schedule: String,
    /// One reconciliation at a time per host (the loop and an admin sync may coincide).
    syncing: tokio::sync::Mutex<()>,
}

impl Scheduler {
    pub fn new(
        settings: &Settings,
        producer: Arc<dyn JobQueue>,
        registry: Arc<Registry>,
        db: crate::database::Db,
    ) -> Self {
        Self {
            producer,
            registry,
            db,
            policies: settings.plugin_policies.clone(),
            audit_schedule: settings.audit.schedule.clone(),
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    /// Every schedule floh wants now, with the problems that kept others out.
    pub async fn planned(&self) -> (Vec<Planned>, Vec<String>) {
        let mut planned = self.plugin_schedules();
        let mut problems = Vec::new();
        for (table, job, key) in [
            ("scheduled_reports", REPORT_JOB, "reportId"),
            ("workflow_schedules", WORKFLOW_JOB, "scheduleId"),
        ] {
            match row_schedules(&self.db, table, job, key).await {
                Ok((rows, bad)) => {
                    planned.extend(rows);
                    problems.extend(bad);
                }
                Err(e) => problems.push(format!("cannot read {table}: {e}")),
            }
        }
        (planned, problems)
    }

    fn plugin_schedules(&self) -> Vec<Planned> {
        self.registry
            .job_types()
            .into_iter()
            .filter_map(|job_type| {
                let plugin = self.registry.get(&job_type)?;
                let policy = self.policies.get(&job_type);
                if policy.is_some_and(|p| p.unscheduled || !p.enabled) {
                    return None;
                }
                let (pattern, source) = match policy.and_then(|p| p.schedule.clone()) {
                    Some(pattern) => (pattern, format!("floh.toml [plugins.{job_type}] schedule")),
                    None if job_type == AUDIT_CHECKPOINT_JOB => {
                        (self.audit_schedule.clone(), "AUDIT_CHECKPOINT_SCHEDULE".to_owned())
                    }
                    None => (
                        plugin.info.default_schedule.clone()?,
                        format!("default schedule of {}", plugin.file.display()),
                    ),
                };
                let schedule = Schedule {
                    id: job_type.clone(),
                    job_name: job_type,
                    pattern,
                    tz: "UTC".to_owned(),
                    data: json!({}),
                };
                Some(Planned { schedule, source })
            })
            .collect()
    }

    /// Brings the queue's schedulers in line with [`Scheduler::planned`].
    pub async fn sync(&self) -> Result<SyncReport, QueueError> {
        let _one_at_a_time = self.syncing.lock().await;
        let (planned, problems) = self.planned().await;
        let mut report = SyncReport { problems, ..SyncReport::default() };
        let stored: BTreeMap<String, Schedule> = self
            .producer
            .schedules()
            .await?
            .into_iter()
            .map(|s| (s.schedule.id.clone(), s.schedule))
            .collect();
        for plan in &planned {
            match stored.get(&plan.schedule.id) {
                Some(existing) if *existing == plan.schedule => {}
                existing => {
                    self.producer.upsert_schedule(&plan.schedule).await?;
                    let list = if existing.is_some() { &mut report.updated } else { &mut report.created };
                    list.push(plan.schedule.id.clone());
                }
            }
        }
        for (id, existing) in &stored {
            if is_floh_owned(existing) && !planned.iter().any(|p| &p.schedule.id == id) {
                self.producer.remove_schedule(id).await?;
                report.removed.push(id.clone());
            }
        }
        for problem in &report.problems {
            tracing::error!("{problem}");
        }
        if !(report.created.is_empty() && report.updated.is_empty() && report.removed.is_empty()) {
            tracing::info!(created = ?report.created, updated = ?report.updated, removed = ?report.removed, "job schedules reconciled");
        }
        Ok(report)
    }

    /// The schedulers the queue holds now, floh's and others'.
    pub async fn stored(&self) -> Result<Vec<crate::queue::StoredSchedule>, QueueError> {
        self.producer.schedules().await
    }

    /// Reconciles at start and every minute, until shutdown.
    pub fn spawn(self: &Arc<Self>, lifecycle: &Lifecycle) {
        let scheduler = self.clone();
        let stop = lifecycle.shutdown_started();
        lifecycle.spawn("scheduler", async move {
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    synced = scheduler.sync() => if let Err(e) = synced {
                        tracing::warn!(error = %e, "cannot reconcile job schedules now; retrying");
                    },
                }
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(RESYNC_EVERY) => {}
                }
            }
        });
    }
}

/// floh names its schedulers `<job type>` or `<job type>:<row id>`; schedulers of other
/// producers that follow another convention are left alone.
fn is_floh_owned(schedule: &Schedule) -> bool {
    schedule.id == schedule.job_name || schedule.id.starts_with(&format!("{}:", schedule.job_name))
}

/// The schedules of the enabled rows of `table` (id, cron, timezone, enabled).
async fn row_schedules(
    db: &crate::database::Db,
    table: &str,
    job: &str,
    key: &str,
) -> Result<(Vec<Planned>, Vec<String>), sqlx::Error> {
    let rows: Vec<(String, String, String)> = crate::on_db!(db, pool => {
        sqlx::query_as(&format!("SELECT id, cron, timezone FROM {table} WHERE enabled ORDER BY id"))
            .fetch_all(pool)
            .await
    })?;
    let mut planned = Vec::new();
    let mut problems = Vec::new();
    for (id, cron, tz) in rows {
        if let Err(why) = validate_cron(&cron) {
            problems.push(format!("{table} row {id}: cron {cron:?}: {why}"));
            continue;
        }
        if chrono_tz::Tz::from_str(&tz).is_err() {
            problems.push(format!(
                "{table} row {id}: timezone {tz:?}: expected an IANA time zone such as Europe/Berlin"
            ));
            continue;
        }
        let schedule = Schedule {
            id: format!("{job}:{id}"),
            job_name: job.to_owned(),
            pattern: cron,
            tz,
            data: json!({ key: id }),
        };
        planned.push(Planned { schedule, source: format!("{table} row") });
    }
    Ok((planned, problems))
}
