//! The schema: applied to a fresh database, idempotent, complete.

use crate::helpers::{TestDb, env_pairs, run_floh};
use crate::services::needs;

const TABLES: &[&str] = &[
    "approvals",
    "audit_checkpoints",
    "audit_log",
    "connector_accounts",
    "connectors",
    "desired_entitlements",
    "documents",
    "drift_findings",
    "entitlements",
    "observed_entitlements",
    "report_deliveries",
    "role_assignments",
    "role_document_requirements",
    "roles",
    "run_artifacts",
    "scheduled_reports",
    "settings",
    "system_log",
    "users",
    "workflow_runs",
    "workflow_schedules",
    "workflows",
];

async fn tables(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(&mut db.connect().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn floh_migrate_creates_the_database_and_every_table_idempotently() {
    needs!(Postgres);
    let db = TestDb::reserve();
    assert!(!TestDb::exists(&db.name).await);
    let env = env_pairs(&[("DATABASE_URL", &db.url())]);

    let (code, _, stderr) = run_floh(&env, &["migrate"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(TestDb::exists(&db.name).await, "the database was created");
    assert_eq!(tables(&db).await, TABLES);

    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut db.connect().await)
        .await
        .unwrap();
    let (code, _, stderr) = run_floh(&env, &["migrate"]);
    assert_eq!(code, 0, "a second run succeeds: {stderr}");
    let again: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut db.connect().await)
        .await
        .unwrap();
    assert_eq!(applied, again, "nothing is applied twice");
    assert_eq!(applied, floh::database::MIGRATOR.iter().count() as i64);
}

#[tokio::test]
async fn migrate_fails_clearly_when_the_database_is_unreachable() {
    let env = env_pairs(&[
        ("DATABASE_URL", &format!("postgres://postgres@127.0.0.1:{}/floh", crate::helpers::free_port())),
        ("DB_POOL_CONNECTION_TIMEOUT_MS", "1000"),
    ]);
    let (code, _, stderr) = run_floh(&env, &["migrate"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("could not create the database named in DATABASE_URL"), "{stderr}");
}

#[tokio::test]
async fn the_schema_keeps_governance_invariants() {
    needs!(Postgres);
    let db = TestDb::create().await;
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    floh::database::MIGRATOR.run(&pool).await.unwrap();
    let now = "2026-01-01T00:00:00Z";
    sqlx::query("INSERT INTO users (id, email, display_name, created_at, updated_at) VALUES ('u1', 'a@example.com', 'A', $1::timestamptz, $1::timestamptz)")
        .bind(now)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO roles (id, name, created_at) VALUES ('r1', 'admin', $1::timestamptz)")
        .bind(now)
        .execute(&pool)
        .await
        .unwrap();
    let bad_status = sqlx::query(
        "INSERT INTO role_assignments (id, user_id, role_id, status, granted_at, updated_at)
         VALUES ('a1', 'u1', 'r1', 'sort-of', $1::timestamptz, $1::timestamptz)",
    )
    .bind(now)
    .execute(&pool)
    .await;
    assert!(bad_status.is_err(), "unknown assignment status rejected");

    // Artifacts may outlive their run: that is what run-orphan-cleanup is for.
    sqlx::query("INSERT INTO run_artifacts (id, run_id, name, created_at) VALUES ('x1', 'gone', 'log', $1::timestamptz)")
        .bind(now)
        .execute(&pool)
        .await
        .expect("an artifact of a missing run can be stored");
    pool.close().await;
}

/// Every table's columns in order: name, type (in words both databases share) and whether it
/// may be NULL.
type Columns = std::collections::BTreeMap<String, Vec<(String, String, bool)>>;

fn type_family(declared: &str) -> String {
    match declared.to_ascii_lowercase().as_str() {
        "timestamp with time zone" | "datetime" => "timestamp",
        "bytea" | "blob" => "bytes",
        other => return other.to_owned(),
    }
    .to_owned()
}

fn by_table(rows: Vec<(String, String, String, bool)>) -> Columns {
    let mut columns = Columns::new();
    for (table, column, declared, nullable) in rows {
        columns.entry(table).or_default().push((column, type_family(&declared), nullable));
    }
    columns
}

#[tokio::test]
async fn the_sqlite_migrations_build_the_same_tables_and_columns() {
    needs!(Postgres);
    let db = TestDb::create().await;
    floh::database::MIGRATOR.run(&mut db.connect().await).await.unwrap();
    let postgres = by_table(
        sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'YES'
             FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'
             ORDER BY table_name, ordinal_position",
        )
        .fetch_all(&mut db.connect().await)
        .await
        .unwrap(),
    );

    let mut sqlite: sqlx::SqliteConnection = sqlx::Connection::connect("sqlite::memory:").await.unwrap();
    floh::database::SQLITE_MIGRATOR.run(&mut sqlite).await.unwrap();
    let sqlite = by_table(
        sqlx::query_as(
            "SELECT m.name, p.name, p.type, p.\"notnull\" = 0
             FROM sqlite_schema AS m JOIN pragma_table_info(m.name) AS p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'
             ORDER BY m.name, p.cid",
        )
        .fetch_all(&mut sqlite)
        .await
        .unwrap(),
    );
    assert_eq!(postgres.keys().collect::<Vec<_>>(), TABLES.iter().collect::<Vec<_>>());
    for table in TABLES {
        assert_eq!(sqlite[*table], postgres[*table], "columns of {table}");
    }
    assert_eq!(sqlite.len(), postgres.len());

    let versions = |set: &sqlx::migrate::Migrator| -> Vec<(i64, String)> {
        set.iter().map(|m| (m.version, m.description.to_string())).collect()
    };
    assert_eq!(
        versions(&floh::database::SQLITE_MIGRATOR),
        versions(&floh::database::MIGRATOR),
        "one SQLite migration per version"
    );
}
