//! The bundled job plugins, built as components and run through the real executor against
//! the real schema, with the grants of `floh.example.toml` and time moved by a manual clock.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use floh::clock::ManualClock;
use floh::plugins::executor::{JobOutput, JobRequest};
use serde_json::{Value, json};

use crate::database::{Backend, Database, on_both_databases, params};
use crate::fixtures::example_toml;
use crate::job_host::{Host, now};
use crate::services::needs;

async fn host_for(backend: Backend, job: &str) -> Host {
    host_with(backend, job, "", &[]).await
}

async fn host_with(backend: Backend, job: &str, extra_toml: &str, env: &[(&str, &str)]) -> Host {
    let toml = format!("{}\n{extra_toml}", example_toml());
    Host::start_on(backend, &[(job, &format!("{job}.wasm"))], &toml, env).await
}

fn hours(n: i64) -> DateTime<Utc> {
    now() + Duration::hours(n)
}

/// Users `u1`..`u<n>` and the roles `plain`, `needs-check` (a background check) and
/// `needs-both` (a background check and an NDA).
async fn seed_people(db: &Database, users: usize) {
    for n in 1..=users {
        db.exec(
            "INSERT INTO users (id, email, display_name, created_at, updated_at) VALUES ($1, $2, $1, $3, $3)",
            params![format!("u{n}"), format!("u{n}@example.com"), hours(-1000)],
        )
        .await;
    }
    db.exec(
        "INSERT INTO roles (id, name, created_at) VALUES
           ('plain', 'Plain', $1), ('needs-check', 'Needs check', $1), ('needs-both', 'Needs both', $1)",
        params![hours(-1000)],
    )
    .await;
    db.exec(
        "INSERT INTO role_document_requirements (role_id, document_type) VALUES
           ('needs-check', 'background-check'), ('needs-both', 'background-check'), ('needs-both', 'nda')",
        vec![],
    )
    .await;
}

async fn assign(
    db: &Database,
    id: &str,
    user: &str,
    role: &str,
    status: &str,
    expires: Option<DateTime<Utc>>,
) {
    db.exec("INSERT INTO role_assignments (id, user_id, role_id, status, granted_at, expires_at, reason, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $5)", params![id, user, role, status, hours(-500), expires, (status == "revoked").then_some("Revoked by an administrator")]).await;
}

async fn document(
    db: &Database,
    id: &str,
    user: &str,
    kind: &str,
    expires: Option<DateTime<Utc>>,
    revoked: bool,
) {
    db.exec(
        "INSERT INTO documents (id, user_id, document_type, issued_at, expires_at, revoked_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $4)",
        params![id, user, kind, hours(-2000), expires, revoked.then(|| hours(-1))],
    )
    .await;
}

/// (status, reason, revoked_at, updated_at) of an assignment.
type AssignmentState = (String, Option<String>, Option<DateTime<Utc>>, DateTime<Utc>);

async fn assignment(db: &Database, id: &str) -> AssignmentState {
    db.one("SELECT status, reason, revoked_at, updated_at FROM role_assignments WHERE id = $1", params![id])
        .await
}

fn revoked(reason: &str) -> AssignmentState {
    ("revoked".to_owned(), Some(reason.to_owned()), Some(now()), now())
}

fn untouched(status: &str) -> AssignmentState {
    let reason = (status == "revoked").then(|| "Revoked by an administrator".to_owned());
    (status.to_owned(), reason, None, hours(-500))
}

/// (actor, action, target, reason) of every audit event, in order.
async fn audit_events(db: &Database) -> Vec<(String, String, String, String)> {
    db.rows("SELECT actor, action, target, reason FROM audit_log ORDER BY seq", vec![]).await
}

/// The details of the first audit event.
async fn first_details(db: &Database) -> Value {
    let details: String = db.scalar("SELECT details FROM audit_log ORDER BY seq LIMIT 1", vec![]).await;
    serde_json::from_str(&details).unwrap()
}

on_both_databases!(
    role_expiry_check_revokes_exactly_the_expired_assignments,
    role_expiry_check_works_through_a_backlog_in_bounded_transactions,
    document_expiry_check_revokes_only_assignments_without_a_valid_document,
    log_retention_purges_rows_older_than_the_retention_period,
    trigger_workflow_starts_one_run_per_occurrence,
    trigger_workflow_starts_nothing_for_disabled_or_missing_schedules,
    trigger_workflow_added_by_hand_starts_a_run_at_its_enqueue_time,
    run_orphan_cleanup_deletes_artifacts_of_gone_and_long_finished_runs,
    run_orphan_cleanup_without_the_folder_keeps_file_artifacts,
    the_demo_data_shows_every_job_at_work,
);

async fn role_expiry_check_revokes_exactly_the_expired_assignments(backend: Backend) {
    let host = host_for(backend, "role-expiry-check").await;
    let db = &host.db;
    seed_people(db, 1).await;
    assign(db, "expired", "u1", "plain", "active", Some(hours(-1))).await;
    assign(db, "expires-now", "u1", "plain", "active", Some(now())).await;
    assign(db, "later", "u1", "plain", "active", Some(hours(1))).await;
    assign(db, "no-expiry", "u1", "plain", "active", None).await;
    assign(db, "already-revoked", "u1", "plain", "revoked", Some(hours(-5))).await;
    assign(db, "pending", "u1", "plain", "pending", Some(hours(-5))).await;

    assert_eq!(host.output("role-expiry-check", json!({})).await, json!({ "revoked": 2 }));
    for id in ["expired", "expires-now"] {
        assert_eq!(assignment(db, id).await, revoked("Role assignment expired"), "{id}");
    }
    assert_eq!(assignment(db, "later").await, untouched("active"));
    assert_eq!(assignment(db, "no-expiry").await, untouched("active"));
    assert_eq!(assignment(db, "already-revoked").await, untouched("revoked"));
    assert_eq!(assignment(db, "pending").await, untouched("pending"));

    let event = |target: &str| {
        (
            "system:role-expiry-check".to_owned(),
            "role_assignment.revoked".to_owned(),
            format!("role_assignment:{target}"),
            "Role assignment expired".to_owned(),
        )
    };
    assert_eq!(audit_events(db).await, [event("expired"), event("expires-now")]);
    assert_eq!(
        first_details(db).await,
        json!({ "userId": "u1", "roleId": "plain", "expiresAt": "2027-01-15T07:00:00.000Z" })
    );

    assert_eq!(host.output("role-expiry-check", json!({})).await, json!({ "revoked": 0 }));
    assert_eq!(audit_events(db).await.len(), 2, "a second run changes nothing");
}

async fn role_expiry_check_works_through_a_backlog_in_bounded_transactions(backend: Backend) {
    let host = host_for(backend, "role-expiry-check").await;
    let db = &host.db;
    seed_people(db, 1).await;
    db.exec(
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
         INSERT INTO role_assignments (id, user_id, role_id, status, granted_at, expires_at, updated_at)
         SELECT 'a' || i, 'u1', 'plain', 'active', $1, $1, $1 FROM n",
        params![hours(-10)],
    )
    .await;

    assert_eq!(host.output("role-expiry-check", json!({})).await, json!({ "revoked": 10000 }));
    if backend == Backend::Postgres {
        // xmin is the transaction that wrote a row: one per batch of 500.
        let (transactions, largest): (i64, i64) = db
            .one(
                "SELECT count(*), max(rows) FROM (SELECT count(*) AS rows FROM role_assignments
                                                  WHERE status = 'revoked' GROUP BY xmin::text) AS batches",
                vec![],
            )
            .await;
        assert_eq!((transactions, largest), (20, 500));
    }
    let events: i64 = db.scalar("SELECT count(*) FROM audit_log", vec![]).await;
    assert_eq!(events, 10000);
}

async fn document_expiry_check_revokes_only_assignments_without_a_valid_document(backend: Backend) {
    let host = host_for(backend, "document-expiry-check").await;
    let db = &host.db;
    seed_people(db, 7).await;
    // u1: the check expired yesterday. u2: expired, then renewed. u3: expires exactly now.
    // u4: revoked though unexpired. u5: valid without expiry. u6: check valid, no NDA.
    // u7: a role without requirements, and no documents at all.
    document(db, "d1", "u1", "background-check", Some(hours(-24)), false).await;
    document(db, "d2-old", "u2", "background-check", Some(hours(-24 * 30)), false).await;
    document(db, "d2-new", "u2", "background-check", Some(hours(24 * 300)), false).await;
    document(db, "d3", "u3", "background-check", Some(now()), false).await;
    document(db, "d4", "u4", "background-check", Some(hours(24)), true).await;
    document(db, "d5", "u5", "background-check", None, false).await;
    document(db, "d6", "u6", "background-check", None, false).await;
    for n in 1..=5 {
        assign(db, &format!("a{n}"), &format!("u{n}"), "needs-check", "active", None).await;
    }
    assign(db, "a1-revoked", "u1", "needs-check", "revoked", None).await;
    assign(db, "a6", "u6", "needs-both", "active", None).await;
    assign(db, "a7", "u7", "plain", "active", None).await;

    assert_eq!(host.output("document-expiry-check", json!({})).await, json!({ "revoked": 4 }));
    let check = "Required document background-check expired";
    assert_eq!(assignment(db, "a1").await, revoked(check));
    assert_eq!(assignment(db, "a2").await, untouched("active"), "a renewed document keeps the role");
    assert_eq!(assignment(db, "a3").await, revoked(check));
    assert_eq!(assignment(db, "a4").await, revoked(check));
    assert_eq!(assignment(db, "a5").await, untouched("active"));
    assert_eq!(assignment(db, "a6").await, revoked("Required document nda expired"));
    assert_eq!(assignment(db, "a7").await, untouched("active"));
    assert_eq!(assignment(db, "a1-revoked").await, untouched("revoked"));

    let events = audit_events(db).await;
    let targets: Vec<&str> = events.iter().map(|(_, _, target, _)| target.as_str()).collect();
    assert_eq!(
        targets,
        ["role_assignment:a1", "role_assignment:a3", "role_assignment:a4", "role_assignment:a6"]
    );
    assert!(events.iter().all(|(actor, action, _, _)| actor == "system:document-expiry-check"
        && action == "role_assignment.revoked"));
    assert_eq!(events[3].3, "Required document nda expired");
    assert_eq!(
        first_details(db).await,
        json!({ "userId": "u1", "roleId": "needs-check", "documentType": "background-check" })
    );

    assert_eq!(host.output("document-expiry-check", json!({})).await, json!({ "revoked": 0 }));
    assert_eq!(audit_events(db).await.len(), 4, "a second run changes nothing");
}

async fn seed_log(db: &Database, id: &str, at: DateTime<Utc>) {
    db.exec(
        "INSERT INTO system_log (id, created_at, level, source, message) VALUES ($1, $2, 'info', 'test', $1)",
        params![id, at],
    )
    .await;
}

async fn log_ids(db: &Database) -> Vec<String> {
    db.column("SELECT id FROM system_log WHERE source = 'test' ORDER BY id", vec![]).await
}

async fn log_retention_purges_rows_older_than_the_retention_period(backend: Backend) {
    let host = host_with(backend, "log-retention", "", &[("LOG_RETENTION_DAYS", "30")]).await;
    let db = &host.db;
    seed_log(db, "a-31-days", hours(-24 * 31)).await;
    seed_log(db, "b-30-days", hours(-24 * 30)).await;
    seed_log(db, "c-2-days", hours(-24 * 2)).await;
    seed_log(db, "d-now", now()).await;

    assert_eq!(host.output("log-retention", json!({})).await, json!({ "deleted": 1, "retentionDays": 30 }));
    assert_eq!(log_ids(db).await, ["b-30-days", "c-2-days", "d-now"], "exactly 30 days old is kept");
    assert_eq!(
        audit_events(db).await,
        [(
            "system:log-retention".to_owned(),
            "system_log.purged".to_owned(),
            "system_log".to_owned(),
            "Log entries older than 30 days purged".to_owned()
        )]
    );
    assert_eq!(host.output("log-retention", json!({})).await["deleted"], 0);
    assert_eq!(audit_events(db).await.len(), 1, "an empty purge is not an event");

    // The admin setting overrides LOG_RETENTION_DAYS.
    db.exec("INSERT INTO settings (key, value, updated_at, updated_by) VALUES ('log_retention_days', '1', $1, 'test')", params![now()]).await;
    assert_eq!(host.output("log-retention", json!({})).await, json!({ "deleted": 2, "retentionDays": 1 }));
    assert_eq!(log_ids(db).await, ["d-now"]);
}

async fn seed_workflow(db: &Database, id: &str, enabled: bool) {
    db.exec(
        "INSERT INTO workflows (id, name, enabled, created_at, updated_at) VALUES ($1, $1, $2, $3, $3)",
        params![id, enabled, hours(-100)],
    )
    .await;
}

async fn seed_schedule(db: &Database, id: &str, workflow: &str, enabled: bool) {
    db.exec(
        "INSERT INTO workflow_schedules (id, workflow_id, cron, input, enabled, created_at, updated_at)
         VALUES ($1, $2, '*/5 * * * *', '{\"scope\":\"all\"}', $3, $4, $4)",
        params![id, workflow, enabled, hours(-100)],
    )
    .await;
}

/// The delivery of one scheduled occurrence, as the queue hands it to the executor.
fn occurrence(schedule: &str, due: DateTime<Utc>, attempt: u32) -> JobRequest {
    JobRequest {
        id: format!("repeat:trigger-workflow:{schedule}:{}", due.timestamp_millis()),
        name: "trigger-workflow".to_owned(),
        data: json!({ "scheduleId": schedule }).to_string(),
        attempt,
        enqueued_at: due - Duration::minutes(5),
    }
}

fn output(done: JobOutput) -> Value {
    serde_json::from_str(&done.output).unwrap()
}

type RunRow = (String, Option<String>, Option<DateTime<Utc>>, String, String, String);

async fn runs(db: &Database) -> Vec<RunRow> {
    db.rows(
        "SELECT workflow_id, schedule_id, scheduled_for, status, triggered_by, input FROM workflow_runs
         ORDER BY scheduled_for",
        vec![],
    )
    .await
}

async fn trigger_workflow_starts_one_run_per_occurrence(backend: Backend) {
    let host = host_for(backend, "trigger-workflow").await;
    let db = &host.db;
    seed_workflow(db, "review", true).await;
    seed_schedule(db, "s1", "review", true).await;
    let due = hours(-1);

    // Two deliveries of the same occurrence at once, as two replicas would get them.
    let (delivery, redelivery) = (occurrence("s1", due, 1), occurrence("s1", due, 2));
    let (first, second) =
        tokio::join!(host.plugins.executor.execute(&delivery), host.plugins.executor.execute(&redelivery));
    let mut outputs = [output(first.unwrap()), output(second.unwrap())];
    outputs.sort_by_key(|o| o["started"].as_bool());
    assert_eq!(outputs[0], json!({ "started": false, "skipped": "occurrence already started" }));
    assert_eq!(outputs[1]["started"], true);
    assert_eq!(outputs[1]["scheduledFor"], "2027-01-15T07:00:00.000Z");
    let run = |at| {
        (
            "review".to_owned(),
            Some("s1".to_owned()),
            Some(at),
            "pending".to_owned(),
            "schedule".to_owned(),
            "{\"scope\":\"all\"}".to_owned(),
        )
    };
    assert_eq!(runs(db).await, [run(due)]);
    let last: Option<DateTime<Utc>> =
        db.scalar("SELECT last_triggered_at FROM workflow_schedules WHERE id = 's1'", vec![]).await;
    assert_eq!(last, Some(due));
    let events = audit_events(db).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].0.as_str(), events[0].1.as_str()),
        ("system:trigger-workflow", "workflow_run.started")
    );

    // The next occurrence is a run of its own.
    let next = due + Duration::minutes(5);
    assert_eq!(
        output(host.plugins.executor.execute(&occurrence("s1", next, 1)).await.unwrap())["started"],
        true
    );
    assert_eq!(runs(db).await, [run(due), run(next)]);
}

async fn trigger_workflow_starts_nothing_for_disabled_or_missing_schedules(backend: Backend) {
    let host = host_for(backend, "trigger-workflow").await;
    let db = &host.db;
    seed_workflow(db, "on", true).await;
    seed_workflow(db, "off", false).await;
    seed_schedule(db, "paused", "on", false).await;
    seed_schedule(db, "of-disabled-workflow", "off", true).await;

    for (schedule, why) in [
        ("paused", "schedule disabled"),
        ("of-disabled-workflow", "workflow disabled"),
        ("deleted", "schedule not found"),
    ] {
        let done = host.plugins.executor.execute(&occurrence(schedule, now(), 1)).await.unwrap();
        assert_eq!(output(done), json!({ "started": false, "skipped": why }), "{schedule}");
    }
    assert!(runs(db).await.is_empty());
    assert!(audit_events(db).await.is_empty());

    let failure = host.run("trigger-workflow", json!({})).await.unwrap_err();
    assert!(failure.reason.starts_with("malformed job data: missing field `scheduleId`"), "{failure:?}");
}

async fn trigger_workflow_added_by_hand_starts_a_run_at_its_enqueue_time(backend: Backend) {
    let host = host_for(backend, "trigger-workflow").await;
    let db = &host.db;
    seed_workflow(db, "review", true).await;
    seed_schedule(db, "s1", "review", true).await;
    let output = host.output("trigger-workflow", json!({ "scheduleId": "s1" })).await;
    assert_eq!(output["started"], true);
    assert_eq!(runs(db).await[0].2, Some(now()));
}

async fn seed_run(db: &Database, id: &str, status: &str, finished: Option<DateTime<Utc>>) {
    db.exec(
        "INSERT INTO workflow_runs (id, workflow_id, status, finished_at, created_at, updated_at)
         VALUES ($1, 'review', $2, $3, $4, $4)",
        params![id, status, finished, hours(-24 * 100)],
    )
    .await;
}

async fn seed_artifact(db: &Database, id: &str, run: &str, file: Option<&str>, size: i64) {
    db.exec(
        "INSERT INTO run_artifacts (id, run_id, name, size_bytes, storage, path, content, created_at)
         VALUES ($1, $2, $1, $3, $4, $5, $6, $7)",
        params![
            id,
            run,
            size,
            if file.is_some() { "file" } else { "inline" },
            file,
            file.is_none().then(|| vec![0u8; size as usize]),
            hours(-24 * 100)
        ],
    )
    .await;
}

async fn artifact_ids(db: &Database) -> Vec<String> {
    db.column("SELECT id FROM run_artifacts ORDER BY id", vec![]).await
}

/// Runs of every kind, each with an inline artifact; the orphans and the old runs' go.
async fn seed_artifacts(db: &Database) {
    seed_workflow(db, "review", true).await;
    seed_run(db, "old-completed", "completed", Some(hours(-24 * 31))).await;
    seed_run(db, "old-failed", "failed", Some(hours(-24 * 40))).await;
    seed_run(db, "old-cancelled", "cancelled", Some(hours(-24 * 31))).await;
    seed_run(db, "recent", "completed", Some(hours(-24 * 29))).await;
    seed_run(db, "running", "running", None).await;
    for (id, run) in [
        ("i-orphan", "gone"),
        ("i-old-completed", "old-completed"),
        ("i-old-failed", "old-failed"),
        ("i-old-cancelled", "old-cancelled"),
        ("i-recent", "recent"),
        ("i-running", "running"),
    ] {
        seed_artifact(db, id, run, None, 100).await;
    }
}

const KEPT_INLINE: [&str; 2] = ["i-recent", "i-running"];

async fn run_orphan_cleanup_deletes_artifacts_of_gone_and_long_finished_runs(backend: Backend) {
    let folder = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir(folder.path().join("runs")).unwrap();
    for file in ["runs/orphan.csv", "runs/recent.csv"] {
        std::fs::write(folder.path().join(file), "x".repeat(1000)).unwrap();
    }
    std::fs::write(outside.path().join("secret.txt"), "not the plugin's").unwrap();
    let grant = format!(
        "[plugins.run-orphan-cleanup.directories]\n\"/artifacts\" = {:?}\n",
        folder.path().display().to_string()
    );
    let host = host_with(backend, "run-orphan-cleanup", &grant, &[]).await;
    let db = &host.db;
    seed_artifacts(db).await;
    seed_artifact(db, "f-orphan", "gone", Some("runs/orphan.csv"), 1000).await;
    seed_artifact(db, "f-already-gone", "gone", Some("runs/vanished.csv"), 10).await;
    seed_artifact(db, "f-recent", "recent", Some("runs/recent.csv"), 1000).await;
    let escape = format!("../{}/secret.txt", outside.path().file_name().unwrap().to_str().unwrap());
    seed_artifact(db, "f-escape", "gone", Some(&escape), 5).await;

    let output = host.output("run-orphan-cleanup", json!({})).await;
    assert_eq!(
        output,
        json!({ "rows": 6, "files": 2, "bytes": 4 * 100 + 1000 + 10, "filesSkipped": 1, "retentionDays": 30 })
    );
    assert_eq!(artifact_ids(db).await, ["f-escape", "f-recent", "i-recent", "i-running"]);
    assert!(!folder.path().join("runs/orphan.csv").exists());
    assert!(folder.path().join("runs/recent.csv").exists());
    assert!(outside.path().join("secret.txt").exists(), "the plugin cannot reach outside its folder");

    let events = audit_events(db).await;
    assert_eq!(events.len(), 6);
    assert!(events.contains(&(
        "system:run-orphan-cleanup".to_owned(),
        "run_artifact.deleted".to_owned(),
        "run_artifact:i-orphan".to_owned(),
        "Artifact of a deleted run".to_owned()
    )));
    assert!(
        events.iter().any(|e| e.2 == "run_artifact:i-old-failed"
            && e.3 == "Artifact of a run finished more than 30 days ago")
    );

    let again = host.output("run-orphan-cleanup", json!({})).await;
    assert_eq!(
        (again["rows"].clone(), again["files"].clone()),
        (json!(0), json!(0)),
        "a second run changes nothing"
    );
}

async fn run_orphan_cleanup_without_the_folder_keeps_file_artifacts(backend: Backend) {
    let host = host_with(backend, "run-orphan-cleanup", "", &[("RUN_ARTIFACT_RETENTION_DAYS", "35")]).await;
    let db = &host.db;
    seed_artifacts(db).await;
    seed_artifact(db, "f-orphan", "gone", Some("runs/orphan.csv"), 1000).await;

    let output = host.output("run-orphan-cleanup", json!({})).await;
    assert_eq!(
        output,
        json!({ "rows": 2, "files": 0, "bytes": 200, "filesSkipped": 1, "retentionDays": 35 })
    );
    let mut kept = vec!["f-orphan", "i-old-cancelled", "i-old-completed"];
    kept.extend(KEPT_INLINE);
    kept.sort();
    assert_eq!(artifact_ids(db).await, kept);
}

async fn the_demo_data_shows_every_job_at_work(backend: Backend) {
    let clock = Arc::new(ManualClock::new(now()));
    let files: Vec<(String, String)> = [
        "role-expiry-check",
        "document-expiry-check",
        "stuck-run-recovery",
        "run-orphan-cleanup",
        "log-retention",
        "trigger-workflow",
    ]
    .iter()
    .map(|job| (job.to_string(), format!("{job}.wasm")))
    .collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let host = Host::start_with(backend, &files, &example_toml(), &[], clock).await;
    floh::seed::demo(&host.db.pool, now()).await.unwrap();
    // Seeding again starts over instead of failing on the rows already there.
    let seeded = floh::seed::demo(&host.db.pool, now()).await.unwrap();
    assert!(seeded.contains(&("role_assignments", 9)), "{seeded:?}");

    assert_eq!(host.output("role-expiry-check", json!({})).await["revoked"], 2);
    assert_eq!(host.output("document-expiry-check", json!({})).await["revoked"], 2);
    assert_eq!(host.output("stuck-run-recovery", json!({})).await["failed"], 1);
    assert_eq!(host.output("run-orphan-cleanup", json!({})).await["rows"], 2);
    assert_eq!(host.output("log-retention", json!({})).await["deleted"], 1);
    let started = host.output("trigger-workflow", json!({ "scheduleId": "demo-sched-review" })).await;
    assert_eq!(started["started"], true);
    let paused = host.output("trigger-workflow", json!({ "scheduleId": "demo-sched-paused" })).await;
    assert_eq!(paused["skipped"], "schedule disabled");

    let db = &host.db;
    let revoked: Vec<String> = db
        .column(
            "SELECT id FROM role_assignments WHERE status = 'revoked' AND revoked_at = $1 ORDER BY id",
            params![now()],
        )
        .await;
    assert_eq!(
        revoked,
        ["demo-ra-alice-finance", "demo-ra-bob-finance", "demo-ra-bob-payroll", "demo-ra-erin-contractor"]
    );
}

#[tokio::test]
async fn floh_seed_demo_migrates_then_seeds_and_can_be_repeated() {
    needs!(Postgres);
    let db = crate::helpers::TestDb::reserve();
    let env = crate::helpers::env_pairs(&[("DATABASE_URL", &db.url())]);
    for round in ["first", "second"] {
        let (code, stdout, stderr) = crate::helpers::run_floh(&env, &["seed", "--demo"]);
        assert_eq!(code, 0, "{round} run: {stderr}");
        assert!(stdout.contains("role_assignments: 9 demo rows"), "{round} run: {stdout}");
    }
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE id LIKE 'demo-%'")
        .fetch_one(&mut db.connect().await)
        .await
        .unwrap();
    assert_eq!(users, 5);

    let (code, _, stderr) = crate::helpers::run_floh(&env, &["seed"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--demo"), "{stderr}");
}
