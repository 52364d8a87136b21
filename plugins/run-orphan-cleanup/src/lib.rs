//! run-orphan-cleanup: deletes run artifacts whose workflow run no longer exists, and those of
//! runs that finished (completed, failed or cancelled) more than the retention period ago.
//!
//! The period is the runtime setting `run_artifact_retention_days`, else
//! RUN_ARTIFACT_RETENTION_DAYS (default 30). Inline artifacts live in the row. File artifacts
//! name a path relative to the artifacts folder, which the operator grants as the guest
//! directory `/artifacts` (floh.toml `directories`); the file goes first, then the row. Without
//! that folder, or when a file cannot be deleted (e.g. its path leads outside the folder), the
//! artifact is left alone and counted as skipped, so no file is orphaned.
//! Each deletion is an audit event; the outcome reports rows, files and bytes freed.

use std::io::ErrorKind;
use std::path::Path;

use floh_plugin_sdk::audit::{self, Event};
use floh_plugin_sdk::{
    Capability, Job, JobError, Outcome, Plugin, PluginInfo, Value, clock, db, log, settings,
};
use serde_json::json;

struct RunOrphanCleanup;

const DEFAULT_RETENTION_DAYS: u32 = 30;
/// Where the host mounts the artifacts folder inside the sandbox.
const ARTIFACTS: &str = "/artifacts";

#[derive(Default)]
struct Freed {
    rows: u64,
    files: u64,
    bytes: i64,
    files_skipped: u64,
}

impl Plugin for RunOrphanCleanup {
    fn describe() -> PluginInfo {
        PluginInfo::new("run-orphan-cleanup", env!("CARGO_PKG_VERSION"), "Cleans up orphaned run artifacts")
            .schedule("30 2 * * *")
            .needs(&[Capability::Db, Capability::Settings, Capability::Audit])
    }

    fn run(_job: Job) -> Result<Outcome, JobError> {
        let days = settings::get_u32("run_artifact_retention_days")?.unwrap_or(DEFAULT_RETENTION_DAYS);
        let cutoff = clock::days_before(clock::now(), days);
        let folder = Path::new(ARTIFACTS);
        let have_folder = folder.is_dir();
        let mut freed = Freed::default();
        // Keyset paging: skipped file artifacts stay behind, so each batch starts after the last.
        let mut after = String::new();
        loop {
            let batch = db::query(
                "SELECT a.id, a.run_id, a.name, a.storage, a.path, a.size_bytes,
                        CASE WHEN r.id IS NULL THEN 'run deleted' ELSE 'run finished' END AS why
                 FROM run_artifacts a LEFT JOIN workflow_runs r ON r.id = a.run_id
                 WHERE a.id > $1
                   AND (r.id IS NULL OR (r.status IN ('completed', 'failed', 'cancelled') AND r.finished_at < $2))
                 ORDER BY a.id LIMIT $3",
                &[after.as_str().into(), db::at(cutoff), db::BATCH.into()],
            )?;
            let mut doomed = Vec::new();
            for row in batch.iter() {
                let id = row.required("id", db::Row::text)?;
                after = id.to_owned();
                if row.text("storage")? == Some("file") {
                    if !have_folder {
                        freed.files_skipped += 1;
                        continue;
                    }
                    if let Some(path) = row.text("path")? {
                        let file = folder.join(path.trim_start_matches('/'));
                        if let Err(e) = remove(&file) {
                            log::with_fields(
                                log::Level::Warn,
                                "cannot delete a file artifact; row kept",
                                &[
                                    ("artifact_id", id),
                                    ("path", &file.display().to_string()),
                                    ("error", &e.to_string()),
                                ],
                            );
                            freed.files_skipped += 1;
                            continue;
                        }
                        freed.files += 1;
                    }
                }
                let why = row.required("why", db::Row::text)?;
                let reason = if why == "run deleted" {
                    "Artifact of a deleted run".to_owned()
                } else {
                    format!("Artifact of a run finished more than {days} days ago")
                };
                audit::append(
                    &Event::new(
                        "system:run-orphan-cleanup",
                        "run_artifact.deleted",
                        &format!("run_artifact:{id}"),
                        &reason,
                    )
                    .details(&json!({
                        "runId": row.text("run_id")?,
                        "name": row.text("name")?,
                        "storage": row.text("storage")?,
                        "path": row.text("path")?,
                    })),
                )?;
                freed.bytes += row.integer("size_bytes")?.unwrap_or(0);
                doomed.push(Value::from(id));
            }
            if !doomed.is_empty() {
                let placeholders: Vec<String> = (1..=doomed.len()).map(|n| format!("${n}")).collect();
                let sql = format!("DELETE FROM run_artifacts WHERE id IN ({})", placeholders.join(", "));
                freed.rows += db::execute(&sql, &doomed)?;
            }
            db::commit()?;
            if batch.len() < db::BATCH as usize {
                break;
            }
        }
        if freed.files_skipped > 0 {
            log::with_fields(
                log::Level::Warn,
                "file artifacts kept: the artifacts folder is not granted (floh.toml directories)",
                &[("skipped", &freed.files_skipped.to_string())],
            );
        }
        if freed.rows > 0 {
            log::with_fields(
                log::Level::Info,
                "deleted orphaned run artifacts",
                &[("rows", &freed.rows.to_string()), ("bytes", &freed.bytes.to_string())],
            );
        }
        floh_plugin_sdk::outcome(&json!({
            "rows": freed.rows,
            "files": freed.files,
            "bytes": freed.bytes,
            "filesSkipped": freed.files_skipped,
            "retentionDays": days,
        }))
    }
}

/// Deletes a file; one already gone is fine (an earlier run deleted it, then failed to commit).
fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        done => done,
    }
}

floh_plugin_sdk::export!(RunOrphanCleanup);
