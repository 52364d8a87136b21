//! The plugin runtime against real components: sandbox limits, grants, transactions, loading,
//! hot swap and the compiled-plugin cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use floh::clock::{ManualClock, SystemClock};
use floh::plugins::executor::{FailureKind, JobRequest};
use floh::shutdown::Lifecycle;
use serde_json::Value;

use crate::database::{Backend, Database, on_both_databases, params};
use crate::fixtures;
use crate::helpers::TestDb;
use crate::job_host::{Host, now};
use crate::services::needs;

const HOSTILE_LIMITS: &str = "[plugins.hostile]\ntimeout_seconds = 1\nmemory_mib = 32\n";

on_both_databases!(
    hello_runs_and_logs_into_system_log,
    an_ungranted_capability_is_refused_and_named,
    a_failed_job_rolls_its_database_work_back,
    stuck_run_recovery_fails_only_stuck_runs_and_is_idempotent,
    stuck_run_timeout_falls_back_to_the_environment,
    values_cross_the_db_capability_with_their_types,
    a_job_that_writes_then_logs_keeps_both,
);

async fn hello_runs_and_logs_into_system_log(backend: Backend) {
    let host = Host::start_on(backend, &[("hello", "hello.wasm")], "", &[]).await;
    let output = host.output("hello", serde_json::json!({ "name": "operator" })).await;
    assert_eq!(output, serde_json::json!({ "greeting": "hello, operator", "version": "1.0.0" }));

    let logged: Vec<(String, String, DateTime<Utc>)> =
        host.db.rows("SELECT source, message, created_at FROM system_log", vec![]).await;
    assert_eq!(logged, [("plugin:hello".to_owned(), "hello, operator".to_owned(), now())]);
}

#[tokio::test]
async fn an_unknown_job_type_or_malformed_data_fails_permanently() {
    let host = Host::start(&[("hello", "hello.wasm")], "", &[]).await;
    let failure = host.run("nobody-handles-this", serde_json::json!({})).await.unwrap_err();
    assert_eq!(
        (failure.kind, failure.reason.as_str()),
        (FailureKind::Permanent, "no plugin for job type nobody-handles-this")
    );

    let job = JobRequest {
        id: "1".into(),
        name: "hello".into(),
        data: "{not json".into(),
        attempt: 1,
        enqueued_at: now(),
    };
    let failure = host.plugins.executor.execute(&job).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Permanent);
    assert!(failure.reason.starts_with("malformed job data"), "{}", failure.reason);

    let failure = host.run("hello", serde_json::json!({ "name": 42 })).await.unwrap_err();
    assert_eq!(
        failure.kind,
        FailureKind::Permanent,
        "the plugin rejects data of the wrong shape: {failure:?}"
    );
}

#[tokio::test]
async fn an_infinite_loop_times_out_and_the_next_job_runs() {
    let host = Host::start(&[("hostile", "hostile.wasm")], HOSTILE_LIMITS, &[]).await;
    let started = Instant::now();
    let failure = host.run("hostile", serde_json::json!({ "do": "loop" })).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(failure.kind, FailureKind::Retryable);
    assert_eq!(failure.reason, "plugin hostile timed out after 1 s");
    // The runbook's contract for a runaway job: stopped within its deadline plus a second.
    assert!(took < Duration::from_secs(2), "stopped after {took:?}");
    assert_eq!(host.output("hostile", serde_json::json!({ "do": "ok" })).await["ok"], true);
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let host = Host::start(&[("hostile", "hostile.wasm")], HOSTILE_LIMITS, &[]).await;
    let failure = host.run("hostile", serde_json::json!({ "do": "oom" })).await.unwrap_err();
    assert_eq!(failure.reason, "plugin exceeded its memory limit of 32 MiB");
    assert_eq!(host.output("hostile", serde_json::json!({ "do": "ok" })).await["ok"], true);
}

#[tokio::test]
async fn a_panic_fails_with_its_message_and_deep_recursion_with_stack_overflow() {
    let host = Host::start(&[("hostile", "hostile.wasm")], HOSTILE_LIMITS, &[]).await;
    let failure = host.run("hostile", serde_json::json!({ "do": "panic" })).await.unwrap_err();
    assert!(failure.reason.starts_with("plugin trapped (panic): "), "{}", failure.reason);
    assert!(failure.reason.contains("hostile plugin panics on purpose"), "{}", failure.reason);
    assert!(
        failure.trace.contains("wasm backtrace"),
        "the trace keeps the wasm backtrace: {}",
        failure.trace
    );

    let failure = host.run("hostile", serde_json::json!({ "do": "recurse" })).await.unwrap_err();
    assert_eq!(failure.reason, "plugin trapped: stack overflow");
    assert_eq!(host.output("hostile", serde_json::json!({ "do": "ok" })).await["ok"], true);
}

async fn an_ungranted_capability_is_refused_and_named(backend: Backend) {
    let host = Host::start_on(backend, &[("hostile", "hostile.wasm")], HOSTILE_LIMITS, &[]).await;
    let failure = host.run("hostile", serde_json::json!({ "do": "query" })).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Permanent);
    assert!(failure.reason.contains("capability `db` is not granted"), "{}", failure.reason);

    let granted = hostile_with_db(backend, &[]).await;
    assert_eq!(granted.output("hostile", serde_json::json!({ "do": "query" })).await["rows"], 1);
}

#[tokio::test]
async fn plugins_see_no_host_files_and_no_environment() {
    let host = Host::start(&[("hostile", "hostile.wasm")], HOSTILE_LIMITS, &[]).await;
    let output = host.output("hostile", serde_json::json!({ "do": "read-file" })).await;
    assert_eq!(output["read"], false, "{output}");
    assert!(output["error"].is_string());
    let output = host.output("hostile", serde_json::json!({ "do": "env" })).await;
    assert_eq!(output["vars"], 0);
}

async fn a_failed_job_rolls_its_database_work_back(backend: Backend) {
    let host = hostile_with_db(backend, &[]).await;
    let db = &host.db;
    seed_workflow(db).await;
    seed_run(db, "run-1", "running", now()).await;

    let failure = host.run("hostile", serde_json::json!({ "do": "write-then-fail" })).await.unwrap_err();
    assert_eq!(failure.reason, "changed 1 rows, then failed on purpose");
    let status: String = db.scalar("SELECT status FROM workflow_runs WHERE id = 'run-1'", vec![]).await;
    assert_eq!(status, "running", "the plugin's update was rolled back");
}

/// The hostile plugin, granted `db`.
async fn hostile_with_db(backend: Backend, env: &[(&str, &str)]) -> Host {
    Host::start_on(backend, &[("hostile", "hostile.wasm")], "[plugins.hostile]\ngrants = [\"db\"]\n", env)
        .await
}

async fn seed_workflow(db: &Database) {
    db.exec(
        "INSERT INTO workflows (id, name, created_at, updated_at) VALUES ('wf', 'onboarding', $1, $1)",
        params![now()],
    )
    .await;
}

async fn seed_run(db: &Database, id: &str, status: &str, updated_at: DateTime<Utc>) {
    db.exec("INSERT INTO workflow_runs (id, workflow_id, status, created_at, updated_at) VALUES ($1, 'wf', $2, $3, $3)", params![id, status, updated_at]).await;
}

async fn run_state(db: &Database, id: &str) -> (String, Option<String>, DateTime<Utc>) {
    db.one("SELECT status, failure_reason, updated_at FROM workflow_runs WHERE id = $1", params![id]).await
}

/// A log line written while the job holds its transaction is stored outside it: on SQLite,
/// where that transaction holds the file's write lock, once the transaction ends.
async fn a_job_that_writes_then_logs_keeps_both(backend: Backend) {
    let host = hostile_with_db(backend, &[]).await;
    seed_workflow(&host.db).await;
    seed_run(&host.db, "r1", "running", now()).await;
    let run = host.run("hostile", serde_json::json!({ "do": "write-then-log" }));
    let done = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("the log line does not wait for the job's own transaction")
        .unwrap();
    assert_eq!(done.output, r#"{"changed":1}"#);
    assert_eq!(run_state(&host.db, "r1").await.0, "cancelled");
    let logged: Vec<String> =
        host.db.column("SELECT message FROM system_log WHERE source = 'plugin:hostile'", vec![]).await;
    assert_eq!(logged, ["cancelled 1 runs"]);
}

/// Runs `sql` with `params` (tagged values) through the hostile plugin's `db` grant.
async fn sql(host: &Host, sql: &str, params: serde_json::Value) -> Result<serde_json::Value, String> {
    let data = serde_json::json!({ "do": "sql", "sql": sql, "params": params });
    match host.run("hostile", data).await {
        Ok(done) => Ok(serde_json::from_str(&done.output).unwrap()),
        Err(failure) => Err(failure.reason),
    }
}

async fn values_cross_the_db_capability_with_their_types(backend: Backend) {
    let host = hostile_with_db(backend, &[]).await;
    seed_workflow(&host.db).await;
    seed_run(&host.db, "r1", "running", now()).await;
    let at = now().timestamp_millis();
    let inserted = sql(
        &host,
        "INSERT INTO run_artifacts (id, run_id, name, size_bytes, storage, content, created_at)
         VALUES ($1, 'r1', 'a.csv', $2, 'inline', $3, $4) RETURNING id",
        serde_json::json!([{ "text": "a1" }, { "integer": 3 }, { "bytes": [1, 2, 3] }, { "timestamp": at }]),
    )
    .await;
    assert_eq!(inserted.unwrap()["rows"], serde_json::json!([[{ "text": "a1" }]]));

    let read = sql(
        &host,
        "SELECT a.id, a.size_bytes, a.content, a.created_at, w.enabled, r.finished_at, $1 AS ratio,
                (SELECT count(*) FROM run_artifacts) AS artifacts
         FROM run_artifacts a JOIN workflow_runs r ON r.id = a.run_id JOIN workflows w ON w.id = r.workflow_id
         WHERE a.created_at <= $2",
        serde_json::json!([{ "float": 0.5 }, { "timestamp": at }]),
    )
    .await
    .unwrap();
    assert_eq!(
        read["columns"],
        serde_json::json!([
            "id",
            "size_bytes",
            "content",
            "created_at",
            "enabled",
            "finished_at",
            "ratio",
            "artifacts"
        ])
    );
    assert_eq!(
        read["rows"],
        serde_json::json!([[
            { "text": "a1" }, { "integer": 3 }, { "bytes": [1, 2, 3] }, { "timestamp": at },
            { "boolean": true }, "null", { "float": 0.5 }, { "integer": 1 }
        ]])
    );

    let missing =
        sql(&host, "SELECT id FROM run_artifacts WHERE id = $2", serde_json::json!([{ "text": "a1" }]));
    let reason = missing.await.unwrap_err();
    assert!(reason.contains("the statement uses $2 but 1 parameters were given"), "{reason}");
    let broken = sql(&host, "SELECT nope FROM run_artifacts", serde_json::json!([])).await.unwrap_err();
    assert!(broken.starts_with("invalid request:") && broken.contains("nope"), "{broken}");
}

/// SQLite has one writer at a time: a job's write waits for the lock as long as the job holding
/// it may run (its plugin timeout), not merely DB_POOL_CONNECTION_TIMEOUT_MS, so it is not failed
/// for another job's sake.
#[tokio::test]
async fn on_sqlite_a_job_waits_for_the_write_lock_another_writer_holds() {
    let host = hostile_with_db(Backend::Sqlite, &[("DB_POOL_CONNECTION_TIMEOUT_MS", "1000")]).await;
    seed_workflow(&host.db).await;
    let mut holder = host.db.pool.begin().await.unwrap();
    holder.execute("UPDATE workflows SET name = 'held' WHERE id = 'wf'", vec![]).await.unwrap();
    let job =
        sql(&host, "UPDATE workflows SET name = 'job' WHERE id = 'wf' RETURNING name", serde_json::json!([]));
    let release = async {
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
        holder.commit().await.unwrap();
    };
    let (done, ()) = tokio::join!(job, release);
    assert_eq!(done.unwrap()["rows"], serde_json::json!([[{ "text": "job" }]]));
}

const STUCK_RUN_GRANTS: &str = "[plugins.stuck-run-recovery]\ngrants = [\"db\", \"settings\"]\n";

async fn stuck_run_recovery_fails_only_stuck_runs_and_is_idempotent(backend: Backend) {
    let clock = Arc::new(ManualClock::new(now()));
    let host = Host::start_with(
        backend,
        &[("stuck-run-recovery", "stuck-run-recovery.wasm")],
        STUCK_RUN_GRANTS,
        &[],
        clock.clone(),
    )
    .await;
    let db = &host.db;
    seed_workflow(db).await;
    let minutes_ago = |m: i64| now() - chrono::Duration::minutes(m);
    seed_run(db, "stuck", "running", minutes_ago(31)).await;
    seed_run(db, "fresh", "running", minutes_ago(10)).await;
    seed_run(db, "done", "completed", minutes_ago(600)).await;
    seed_run(db, "waiting", "pending", minutes_ago(600)).await;

    let output = host.output("stuck-run-recovery", serde_json::json!({})).await;
    assert_eq!(output, serde_json::json!({ "failed": 1, "timeoutMinutes": 30 }));
    assert_eq!(
        run_state(db, "stuck").await,
        ("failed".to_owned(), Some("Run timed out (no progress for 30 minutes)".to_owned()), now())
    );
    assert_eq!(run_state(db, "fresh").await, ("running".to_owned(), None, minutes_ago(10)));
    assert_eq!(run_state(db, "done").await.0, "completed");
    assert_eq!(run_state(db, "waiting").await.0, "pending");

    let again = host.output("stuck-run-recovery", serde_json::json!({})).await;
    assert_eq!(again["failed"], 0, "a second run changes nothing");
    assert_eq!(run_state(db, "stuck").await.2, now());

    // The admin setting overrides STUCK_RUN_TIMEOUT_MINUTES, without a restart.
    db.exec("INSERT INTO settings (key, value, updated_at, updated_by) VALUES ('stuck_run_timeout_minutes', '5', $1, 'test')", params![now()]).await;
    clock.set(now() + chrono::Duration::minutes(1));
    assert_eq!(host.output("stuck-run-recovery", serde_json::json!({})).await["failed"], 1);
    assert_eq!(run_state(db, "fresh").await.1.as_deref(), Some("Run timed out (no progress for 5 minutes)"));
}

async fn stuck_run_timeout_falls_back_to_the_environment(backend: Backend) {
    let host = Host::start_on(
        backend,
        &[("stuck-run-recovery", "stuck-run-recovery.wasm")],
        STUCK_RUN_GRANTS,
        &[("STUCK_RUN_TIMEOUT_MINUTES", "20")],
    )
    .await;
    let db = &host.db;
    seed_workflow(db).await;
    seed_run(db, "r", "running", now() - chrono::Duration::minutes(25)).await;
    assert_eq!(host.output("stuck-run-recovery", serde_json::json!({})).await["timeoutMinutes"], 20);
    assert_eq!(run_state(db, "r").await.1.as_deref(), Some("Run timed out (no progress for 20 minutes)"));
}

#[tokio::test]
async fn bad_files_are_refused_with_their_reason() {
    let truncated = &fixtures::bytes("hello")[..60_000];
    let host = Host::start(
        &[
            ("hello", "hello.wasm"),
            ("hello", "second-hello.wasm"),
            ("wrong-world", "wrong-world.wasm"),
            ("future-wit", "future-wit.wasm"),
            ("describe-panics", "describe-panics.wasm"),
        ],
        "",
        &[],
    )
    .await;
    for (file, bytes) in [
        ("random.wasm", &b"this is not webassembly at all"[..]),
        ("empty.wasm", &b""[..]),
        ("core-module.wasm", &b"\0asm\x01\0\0\0"[..]),
        ("truncated.wasm", truncated),
    ] {
        fixtures::install(host.dir.path(), file, bytes);
    }
    host.plugins.registry.sync().await;

    let expect = [
        ("random.wasm", "not a WebAssembly file"),
        ("empty.wasm", "not a WebAssembly file"),
        ("core-module.wasm", "this is a core WebAssembly module, not a component"),
        ("truncated.wasm", "not a valid WebAssembly component"),
        (
            "wrong-world.wasm",
            "does not export the floh:plugin@0.1.1 job-plugin world: type-checking export func `describe`",
        ),
        ("future-wit.wasm", "component imports instance `floh:plugin/log@0.2.0`"),
        ("describe-panics.wasm", "describe() failed"),
        ("second-hello.wasm", "duplicate job type `hello`: already provided by hello.wasm"),
    ];
    for (file, reason) in expect {
        let status = host.status(file);
        assert_eq!(status.status, "failed", "{file}: {status:?}");
        assert!(status.error.as_deref().unwrap_or_default().contains(reason), "{file}: {status:?}");
    }
    assert_eq!(host.status("hello.wasm").status, "loaded");
    assert_eq!(host.plugins.registry.job_types(), ["hello"]);
    assert_eq!(
        host.output("hello", serde_json::json!({})).await["version"],
        "1.0.0",
        "the host keeps serving"
    );
}

#[tokio::test]
async fn a_bad_replacement_keeps_the_previous_version_serving() {
    let host = Host::start(&[("hello", "hello.wasm")], "", &[]).await;
    fixtures::install(host.dir.path(), "hello.wasm", b"\0asm garbage");
    host.plugins.registry.sync().await;
    let status = host.status("hello.wasm");
    assert_eq!(status.status, "failed");
    assert_eq!(status.version.as_deref(), Some("1.0.0"), "the old version is still named as serving");
    assert_eq!(host.output("hello", serde_json::json!({})).await["version"], "1.0.0");

    std::fs::remove_file(host.dir.path().join("hello.wasm")).unwrap();
    host.plugins.registry.sync().await;
    let failure = host.run("hello", serde_json::json!({})).await.unwrap_err();
    assert_eq!(failure.reason, "no plugin for job type hello", "a removed file unregisters its job type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_lets_running_jobs_finish_on_their_version() {
    // Compile v2 into the shared cache first, so the swap itself takes milliseconds.
    drop(Host::start(&[("hello-v2", "hello.wasm")], "", &[]).await);
    // Real time: the in-flight job keeps busy for 3 s of it.
    let host = Arc::new(
        Host::start_with(Backend::Sqlite, &[("hello", "hello.wasm")], "", &[], Arc::new(SystemClock)).await,
    );
    let lifecycle = Lifecycle::new();
    host.plugins.watch(&lifecycle);

    let in_flight = {
        let host = host.clone();
        tokio::spawn(async move { host.output("hello", serde_json::json!({ "busy_ms": 3000 })).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    fixtures::install(host.dir.path(), "hello.wasm", &fixtures::bytes("hello-v2"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while host.status("hello.wasm").version.as_deref() != Some("2.0.0") {
        assert!(Instant::now() < deadline, "v2 was not picked up: {:?}", host.status("hello.wasm"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!in_flight.is_finished(), "the swap happened while the v1 job was running");
    assert_eq!(host.output("hello", serde_json::json!({})).await["version"], "2.0.0");
    assert_eq!(in_flight.await.unwrap()["version"], "1.0.0", "the in-flight job finished on v1");
    lifecycle.drain(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_second_start_loads_from_the_compiled_plugin_cache() {
    let cache = tempfile::tempdir().unwrap();
    let cache_env = cache.path().display().to_string();
    let env = [("PLUGIN_CACHE_DIR", cache_env.as_str())];
    let first = Host::start(&[("hello", "hello.wasm")], "", &env).await;
    assert_eq!(first.status("hello.wasm").from_cache, Some(false));
    let second = Host::start(&[("hello", "hello.wasm")], "", &env).await;
    assert_eq!(second.status("hello.wasm").from_cache, Some(true));
    assert_eq!(second.output("hello", serde_json::json!({})).await["version"], "1.0.0");

    fixtures::install(second.dir.path(), "hello.wasm", &fixtures::bytes("hello-v2"));
    second.plugins.registry.sync().await;
    assert_eq!(second.status("hello.wasm").from_cache, Some(false), "changed content is compiled afresh");
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 2);
}

#[test]
fn plugins_check_accepts_the_bundled_plugins_and_refuses_the_hostile_ones() {
    for (fixture, job_type) in [("hello", "hello"), ("stuck-run-recovery", "stuck-run-recovery")] {
        let path = fixtures::path(fixture);
        let (code, stdout, stderr) =
            crate::helpers::run_floh(&[], &["plugins", "check", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains(&format!("job type:     {job_type}")), "{stdout}");
    }
    let path = fixtures::path("stuck-run-recovery");
    let (_, stdout, _) = crate::helpers::run_floh(&[], &["plugins", "check", path.to_str().unwrap()]);
    assert!(stdout.contains("not granted:  db, settings"), "{stdout}");

    for (fixture, reason) in [
        ("wrong-world", "does not export the floh:plugin@0.1.1 job-plugin world"),
        ("future-wit", "floh:plugin/log@0.2.0"),
        ("describe-panics", "describe() failed"),
    ] {
        let path = fixtures::path(fixture);
        let (code, stdout, _) = crate::helpers::run_floh(&[], &["plugins", "check", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{stdout}");
        assert!(stdout.contains("refused") && stdout.contains(reason), "{fixture}: {stdout}");
    }
}

#[tokio::test]
async fn a_running_host_picks_up_a_dropped_in_plugin_and_lists_it() {
    needs!(Postgres, Redis);
    let db = TestDb::create().await;
    let plugins_dir = tempfile::tempdir().unwrap();
    let env = crate::helpers::with(
        crate::helpers::test_env(&db.url(), &crate::services::redis_url()),
        &[
            ("PLUGINS_DIR", plugins_dir.path().to_str().unwrap()),
            ("PLUGIN_CACHE_DIR", fixtures::cache_dir().to_str().unwrap()),
            ("ADMIN_TOKEN", "test-admin-token-0123456789"),
        ],
    );
    let mut floh = crate::helpers::FlohProcess::spawn(&env, &["serve"]);
    floh.wait_listening();
    let client = reqwest::Client::new();
    let plugins_url = floh.url("/api/admin/plugins");

    let anonymous = client.get(&plugins_url).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let wrong = client.get(&plugins_url).bearer_auth("test-admin-token-0123456780").send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    fixtures::install(plugins_dir.path(), "hello.wasm", &fixtures::bytes("hello"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listing: Value = client
            .get(&plugins_url)
            .bearer_auth("test-admin-token-0123456789")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if listing["plugins"][0]["status"] == "loaded" {
            assert_eq!(listing["plugins"][0]["name"], "hello");
            assert_eq!(listing["plugins"][0]["version"], "1.0.0");
            assert_eq!(listing["plugins"][0]["grants"], serde_json::json!(["log", "clock"]));
            break;
        }
        assert!(Instant::now() < deadline, "hello.wasm was not picked up: {listing}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let list_env = crate::helpers::with(env.clone(), &[]);
    let (code, stdout, stderr) = crate::helpers::run_floh(&list_env, &["plugins", "list"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("hello") && stdout.contains("1.0.0") && stdout.contains("loaded"), "{stdout}");
    assert!(stdout.contains("grants: log, clock"), "{stdout}");
    floh.signal("TERM");
    assert_eq!(floh.wait_exit(Duration::from_secs(10)).code(), Some(0));
}

const MAILER_GRANTS: &str = "[plugins.mailer]\ngrants = [\"mail\"]\n";

async fn mailer(env: &[(&str, &str)]) -> Host {
    Host::start(&[("mailer", "mailer.wasm")], MAILER_GRANTS, env).await
}

fn mail_to(to: &[&str]) -> Value {
    serde_json::json!({ "to": to, "subject": "Weekly access report", "body": "3 assignments expire this week." })
}

#[tokio::test]
async fn mail_reaches_a_real_smtp_server_with_its_attachment() {
    needs!(Node);
    let sink = crate::smtp::SmtpSink::start();
    let host = mailer(&[("SMTP_URL", &sink.url()), ("MAIL_FROM", "Floh <floh@example.com>")]).await;
    let csv = "id,user,expires\nra-1,alice,2027-01-20\n";
    let mut data = mail_to(&["ops@example.com", "Audit Team <audit@example.com>"]);
    data["attachments"] =
        serde_json::json!([{ "filename": "report.csv", "content_type": "text/csv", "text": csv }]);
    assert_eq!(host.output("mailer", data).await, serde_json::json!({ "sent": true }));

    let message = sink.next();
    assert_eq!(message["mailFrom"], "floh@example.com");
    assert_eq!(message["rcptTo"], serde_json::json!(["ops@example.com", "audit@example.com"]));
    assert_eq!(message["from"], "\"Floh\" <floh@example.com>");
    assert_eq!(message["subject"], "Weekly access report");
    assert_eq!(message["text"].as_str().unwrap().trim_end(), "3 assignments expire this week.");
    let attachment = &message["attachments"][0];
    assert_eq!(
        (&attachment["filename"], &attachment["contentType"]),
        (&"report.csv".into(), &"text/csv".into())
    );
    assert_eq!(attachment["content"], serde_json::json!(csv.as_bytes()));
}

#[tokio::test]
async fn mail_failures_say_whether_retrying_helps() {
    needs!(Node);
    let sink = crate::smtp::SmtpSink::start();
    let host = mailer(&[("SMTP_URL", &sink.url()), ("MAIL_FROM", "floh@example.com")]).await;
    let refused = host.run("mailer", mail_to(&["nobody@reject.example"])).await.unwrap_err();
    assert_eq!(refused.kind, FailureKind::Permanent);
    assert!(refused.reason.contains("the mail server refused the message"), "{}", refused.reason);
    let malformed = host.run("mailer", mail_to(&["not an address"])).await.unwrap_err();
    assert_eq!(malformed.kind, FailureKind::Permanent);
    assert!(malformed.reason.contains("recipient \"not an address\""), "{}", malformed.reason);
    assert!(sink.nothing_within(Duration::from_millis(300)), "nothing was delivered");

    let down = format!("smtp://127.0.0.1:{}", crate::helpers::free_port());
    let host = mailer(&[("SMTP_URL", &down), ("MAIL_FROM", "floh@example.com")]).await;
    let unreachable = host.run("mailer", mail_to(&["ops@example.com"])).await.unwrap_err();
    assert_eq!(unreachable.kind, FailureKind::Retryable);
    assert!(unreachable.reason.contains("cannot send mail now"), "{}", unreachable.reason);

    let host = mailer(&[]).await;
    let unconfigured = host.run("mailer", mail_to(&["ops@example.com"])).await.unwrap_err();
    assert_eq!(unconfigured.kind, FailureKind::Permanent);
    assert!(
        unconfigured.reason.contains("this host sends no mail: set SMTP_URL and MAIL_FROM"),
        "{unconfigured:?}"
    );
}

/// A real HTTP server on 127.0.0.1 standing in for a connected system; counts the requests
/// that reach it.
struct Connector {
    port: u16,
    requests: Arc<std::sync::atomic::AtomicUsize>,
}

impl Connector {
    async fn start() -> Self {
        use axum::routing::{get, post};
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = requests.clone();
        let app = axum::Router::new()
            .route("/hello", get(|| async { "hello from the connector" }))
            .route("/echo", post(|body: String| async move { body }))
            .route("/busy", get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "try later") }))
            .layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                next.run(request)
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn fetcher(allow: &str) -> Host {
    let toml = format!("[plugins.fetcher]\ngrants = [\"http\"]\nhttp_allow = [{allow:?}]\n");
    Host::start(&[("fetcher", "fetcher.wasm")], &toml, &[]).await
}

#[tokio::test]
async fn outgoing_http_reaches_allowed_hosts() {
    let connector = Connector::start().await;
    let host = fetcher(&format!("127.0.0.1:{}", connector.port)).await;
    let got = host.output("fetcher", serde_json::json!({ "url": connector.url("/hello") })).await;
    assert_eq!(
        got,
        serde_json::json!({ "status": 200, "contentType": "text/plain; charset=utf-8", "body": "hello from the connector" })
    );
    let posted = serde_json::json!({ "url": connector.url("/echo"), "post": { "members": ["u1", "u2"] } });
    assert_eq!(host.output("fetcher", posted).await["body"], r#"{"members":["u1","u2"]}"#);

    let busy = host.run("fetcher", serde_json::json!({ "url": connector.url("/busy") })).await.unwrap_err();
    assert_eq!((busy.kind, busy.reason.as_str()), (FailureKind::Retryable, "HTTP 503: try later"));
    assert_eq!(connector.requests(), 3);

    let closed = format!("http://127.0.0.1:{}/", crate::helpers::free_port());
    let host = fetcher(closed.trim_start_matches("http://").trim_end_matches('/')).await;
    let refused = host.run("fetcher", serde_json::json!({ "url": closed })).await.unwrap_err();
    assert_eq!(refused.kind, FailureKind::Retryable);
    assert!(refused.reason.starts_with("HTTP request failed: ConnectionRefused"), "{}", refused.reason);
}

#[tokio::test]
async fn outgoing_http_to_other_hosts_or_without_the_grant_is_refused() {
    let connector = Connector::start().await;
    let host = fetcher("127.0.0.1:1").await;
    let denied =
        host.run("fetcher", serde_json::json!({ "url": connector.url("/hello") })).await.unwrap_err();
    assert_eq!(denied.kind, FailureKind::Permanent);
    assert!(denied.reason.starts_with("outgoing HTTP refused by the host"), "{}", denied.reason);
    let named = format!(
        "outgoing HTTP to 127.0.0.1:{} is refused: not in http_allow of [plugins.fetcher]",
        connector.port
    );
    assert!(denied.reason.contains(&named), "{}", denied.reason);

    let ungranted = Host::start(&[("fetcher", "fetcher.wasm"), ("hello", "hello.wasm")], "", &[]).await;
    let denied =
        ungranted.run("fetcher", serde_json::json!({ "url": connector.url("/hello") })).await.unwrap_err();
    assert!(
        denied.reason.contains("capability `http` is not granted to plugin fetcher"),
        "{}",
        denied.reason
    );
    assert_eq!(connector.requests(), 0, "no refused request reached the server");
    assert_eq!(
        ungranted.output("hello", serde_json::json!({})).await["greeting"],
        "hello, world",
        "the host carries on"
    );
}

#[tokio::test]
async fn a_plugin_built_against_the_previous_contract_release_still_runs() {
    let host = Host::start(&[("previous-wit", "previous-wit.wasm")], "", &[]).await;
    assert_eq!(host.status("previous-wit.wasm").status, "loaded");
    let output = host.output("previous-wit", serde_json::json!({})).await;
    assert!(output["job"].as_str().unwrap().starts_with("job-"), "{output}");
}
