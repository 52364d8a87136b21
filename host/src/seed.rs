//! `floh seed --demo`: a small, realistic data set to watch the bundled jobs act on.
//!
//! Every demo row has an id starting with `demo-`. Seeding deletes those rows and inserts them
//! afresh (times relative to now) in one transaction, so it can be repeated to start over;
//! other rows are never touched.

use crate::database::{Db, StatementError, Tx};
use chrono::{DateTime, Duration, Utc};

/// Row counts of what was seeded, by table.
pub type Seeded = Vec<(&'static str, u64)>;

/// Tables holding demo rows, children before parents (the order deletes must go in).
const TABLES: [&str; 10] = [
    "system_log",
    "run_artifacts",
    "workflow_runs",
    "workflow_schedules",
    "workflows",
    "documents",
    "role_assignments",
    "role_document_requirements",
    "roles",
    "users",
];

pub async fn demo(db: &Db, now: DateTime<Utc>) -> Result<Seeded, StatementError> {
    let mut tx = db.begin().await?;
    for table in TABLES {
        let key = if table == "role_document_requirements" { "role_id" } else { "id" };
        tx.execute(&format!("DELETE FROM {table} WHERE {key} LIKE 'demo-%'"), vec![]).await?;
    }
    let at = |hours: i64| now + Duration::hours(hours);
    let mut seeded = Seeded::new();

    let users = [
        ("demo-alice", "alice@example.com", "Alice Example"),
        ("demo-bob", "bob@example.com", "Bob Example"),
        ("demo-carol", "carol@example.com", "Carol Example"),
        ("demo-dave", "dave@example.com", "Dave Example"),
        ("demo-erin", "erin@example.com", "Erin Example"),
    ];
    for (id, email, name) in users {
        tx.execute(
            "INSERT INTO users (id, email, display_name, status, created_at, updated_at)
             VALUES ($1, $2, $3, 'active', $4, $4)",
            vec![id.into(), email.into(), name.into(), at(-24 * 400).into()],
        )
        .await?;
    }
    seeded.push(("users", users.len() as u64));

    let roles = [
        ("demo-finance-approver", "Finance approver", None),
        ("demo-payroll-admin", "Payroll administrator", Some("background-check")),
        ("demo-contractor", "Contractor access", Some("nda")),
    ];
    for (id, name, document) in roles {
        tx.execute(
            "INSERT INTO roles (id, name, description, created_at) VALUES ($1, $2, '', $3)",
            vec![id.into(), name.into(), at(-24 * 400).into()],
        )
        .await?;
        if let Some(document) = document {
            tx.execute(
                "INSERT INTO role_document_requirements (role_id, document_type) VALUES ($1, $2)",
                vec![id.into(), document.into()],
            )
            .await?;
        }
    }
    seeded.push(("roles", roles.len() as u64));

    // (id, user, role, status, expires in hours) — role-expiry-check revokes the first two.
    let assignments = [
        ("demo-ra-alice-finance", "demo-alice", "demo-finance-approver", "active", Some(-2)),
        ("demo-ra-bob-finance", "demo-bob", "demo-finance-approver", "active", Some(-24 * 3)),
        ("demo-ra-carol-finance", "demo-carol", "demo-finance-approver", "active", Some(24 * 30)),
        ("demo-ra-dave-finance", "demo-dave", "demo-finance-approver", "active", None),
        ("demo-ra-erin-finance", "demo-erin", "demo-finance-approver", "revoked", Some(-24 * 10)),
        // document-expiry-check revokes bob's (check expired) and erin's (NDA expired).
        ("demo-ra-bob-payroll", "demo-bob", "demo-payroll-admin", "active", None),
        ("demo-ra-carol-payroll", "demo-carol", "demo-payroll-admin", "active", None),
        ("demo-ra-dave-contractor", "demo-dave", "demo-contractor", "active", None),
        ("demo-ra-erin-contractor", "demo-erin", "demo-contractor", "active", None),
    ];
    for (id, user, role, status, expires) in assignments {
        tx.execute(
            "INSERT INTO role_assignments (id, user_id, role_id, status, granted_at, granted_by, expires_at,
                                           revoked_at, reason, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'demo-alice', $6, $7, $8, $5)",
            vec![
                id.into(),
                user.into(),
                role.into(),
                status.into(),
                at(-24 * 90).into(),
                expires.map(at).into(),
                (status == "revoked").then(|| at(-24 * 10)).into(),
                (status == "revoked").then_some("Role assignment expired").into(),
            ],
        )
        .await?;
    }
    seeded.push(("role_assignments", assignments.len() as u64));

    // (id, user, type, expires in hours); carol's expired check was renewed.
    let documents = [
        ("demo-doc-bob-check", "demo-bob", "background-check", Some(-24)),
        ("demo-doc-carol-check-old", "demo-carol", "background-check", Some(-24 * 30)),
        ("demo-doc-carol-check", "demo-carol", "background-check", Some(24 * 335)),
        ("demo-doc-dave-nda", "demo-dave", "nda", None),
        ("demo-doc-erin-nda", "demo-erin", "nda", Some(-5)),
    ];
    for (id, user, kind, expires) in documents {
        tx.execute(
            "INSERT INTO documents (id, user_id, document_type, issued_at, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $4)",
            vec![id.into(), user.into(), kind.into(), at(-24 * 365).into(), expires.map(at).into()],
        )
        .await?;
    }
    seeded.push(("documents", documents.len() as u64));

    seed_workflows(&mut tx, now, &mut seeded).await?;

    let logs = [(-24 * 45, "an entry past the default 30-day retention"), (-1, "a recent entry")];
    for (n, (hours, message)) in logs.into_iter().enumerate() {
        tx.execute(
            "INSERT INTO system_log (id, created_at, level, source, message, fields)
             VALUES ($1, $2, 'info', 'demo', $3, '{}')",
            vec![format!("demo-log-{n}").into(), at(hours).into(), message.into()],
        )
        .await?;
    }
    seeded.push(("system_log", logs.len() as u64));
    tx.commit().await?;
    Ok(seeded)
}

async fn seed_workflows(tx: &mut Tx, now: DateTime<Utc>, seeded: &mut Seeded) -> Result<(), StatementError> {
    let at = |hours: i64| now + Duration::hours(hours);
    for (id, name) in [("demo-wf-review", "Quarterly access review"), ("demo-wf-onboarding", "Onboarding")] {
        tx.execute(
            "INSERT INTO workflows (id, name, enabled, created_at, updated_at) VALUES ($1, $2, TRUE, $3, $3)",
            vec![id.into(), name.into(), at(-24 * 100).into()],
        )
        .await?;
    }
    seeded.push(("workflows", 2));
    // The enabled schedule gets a trigger-workflow scheduler every five minutes.
    for (id, workflow, cron, enabled) in [
        ("demo-sched-review", "demo-wf-review", "*/5 * * * *", true),
        ("demo-sched-paused", "demo-wf-onboarding", "0 9 * * 1", false),
    ] {
        tx.execute(
"INSERT INTO workflow_schedules (id, workflow_id, cron, timezone, enabled, created_at, updated_at)
             VALUES ($1, $2, $3, 'UTC', $4, $5, $5)", vec![id.into(), workflow.into(), cron.into(), enabled.into(), at(-24 * 100).into()]).await?;
    }
    seeded.push(("workflow_schedules", 2));

    // (id, status, updated hours ago, finished hours ago): stuck-run-recovery fails the first;
    // run-orphan-cleanup deletes the artifacts of the third and of a run that is gone.
    let runs = [
        ("demo-run-stuck", "running", -3, None),
        ("demo-run-busy", "running", 0, None),
        ("demo-run-old", "completed", -24 * 40, Some(-24 * 40)),
        ("demo-run-recent", "completed", -24 * 2, Some(-24 * 2)),
    ];
    for (id, status, updated, finished) in runs {
        tx.execute(
            "INSERT INTO workflow_runs (id, workflow_id, status, triggered_by, started_at, finished_at,
                                        created_at, updated_at)
             VALUES ($1, 'demo-wf-review', $2, 'manual', $3, $4, $3, $5)",
            vec![
                id.into(),
                status.into(),
                at(updated - 1).into(),
                finished.map(at).into(),
                at(updated).into(),
            ],
        )
        .await?;
    }
    seeded.push(("workflow_runs", runs.len() as u64));
    let artifacts = [
        ("demo-artifact-old", "demo-run-old", "review.csv"),
        ("demo-artifact-recent", "demo-run-recent", "review.csv"),
        ("demo-artifact-orphan", "demo-run-deleted", "evidence.pdf"),
    ];
    for (id, run, name) in artifacts {
        let content = format!("demo artifact {id}\n").into_bytes();
        tx.execute(
            "INSERT INTO run_artifacts (id, run_id, name, size_bytes, storage, content, created_at)
             VALUES ($1, $2, $3, $4, 'inline', $5, $6)",
            vec![
                id.into(),
                run.into(),
                name.into(),
                (content.len() as i64).into(),
                content.into(),
                at(-24 * 40).into(),
            ],
        )
        .await?;
    }
    seeded.push(("run_artifacts", artifacts.len() as u64));
    Ok(())
}
