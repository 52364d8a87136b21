//! The admin API against a serving host: the OpenAPI document kept true, runtime settings,
//! failed-job handling and the audit status.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fixtures;
use crate::helpers::AdminApi;
use crate::queue::{Host, TestQueue, add_and_wait, wait_for};
use crate::services::needs;

struct Admin {
    host: Host,
    api: AdminApi,
}

impl Admin {
    async fn start(queue: &TestQueue, plugins: &[&str]) -> Self {
        let host = Host::start(queue, plugins, &fixtures::example_toml(), &[]).await;
        let api = AdminApi::new(&host.base);
        Self { host, api }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api.call(method, path, body).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.api.get(path).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn post(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, None).await
    }
}

/// The `.route("…")` paths written in a source file.
fn routes_in(file: &str, prefix: &str) -> BTreeSet<String> {
    let source = std::fs::read_to_string(format!("{}/src/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    source
        .split(".route(\"")
        .skip(1)
        .map(|rest| format!("{prefix}{}", &rest[..rest.find('"').unwrap()]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_and_each_one_exists() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let admin = Admin::start(&queue, &[]).await;
    let document: Value =
        reqwest::get(format!("{}/api/openapi.json", admin.host.base)).await.unwrap().json().await.unwrap();
    let documented: BTreeSet<String> = document["paths"].as_object().unwrap().keys().cloned().collect();
    let mut written = routes_in("http.rs", "");
    written.extend(routes_in("admin/mod.rs", "/api/admin"));
    written.remove("/api/admin");
    assert_eq!(documented, written, "routes in the code and in host/src/openapi.json");

    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let url = format!("{}{}", admin.host.base, path.replace("{id}", "x"));
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let status =
                reqwest::Client::new().request(method.clone(), &url).send().await.unwrap().status().as_u16();
            if operation.get("security").is_some() {
                assert_eq!(status, 401, "{method} {path} without the token");
            } else {
                assert!(status == 200 || status == 503, "{method} {path}: {status}");
            }
        }
    }
    admin.host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stuck_run_timeout_set_through_the_api_is_the_one_used_next() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let admin = Admin::start(&queue, &["stuck-run-recovery"]).await;
    let (status, settings) = admin.get("/api/admin/settings/security").await;
    assert_eq!(status, 200);
    assert_eq!(settings, json!({ "stuck_run_timeout_minutes": { "value": 30, "source": "configuration" } }));

    for (body, message) in [
        (
            json!({ "stuck_run_timeout_minutes": 0 }),
            "stuck_run_timeout_minutes must be an integer 1-1440, not 0",
        ),
        (
            json!({ "stuck_run_timeout_minutes": 1441 }),
            "stuck_run_timeout_minutes must be an integer 1-1440, not 1441",
        ),
        (
            json!({ "stuck_run_timeout_minutes": "abc" }),
            "stuck_run_timeout_minutes must be an integer 1-1440, not \"abc\"",
        ),
        (
            json!({ "log_retention_days": 3 }),
            "unknown setting log_retention_days; expected stuck_run_timeout_minutes",
        ),
    ] {
        assert_eq!(admin.put("/api/admin/settings/security", body).await, (422, json!({ "error": message })));
    }
    let (status, changed) =
        admin.put("/api/admin/settings/security", json!({ "stuck_run_timeout_minutes": 45 })).await;
    assert_eq!(
        (status, &changed["stuck_run_timeout_minutes"]),
        (200, &json!({ "value": 45, "source": "admin" }))
    );
    let (status, logging) =
        admin.put("/api/admin/settings/logging", json!({ "log_retention_days": 7 })).await;
    assert_eq!((status, &logging["log_retention_days"]["value"]), (200, &json!(7)));

    let mut conn = admin.host.db.connect().await;
    let audited: Vec<(String, String, String)> =
        sqlx::query_as("SELECT actor, target, reason FROM audit_log ORDER BY seq")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        audited,
        [
            (
                "admin".into(),
                "setting:stuck_run_timeout_minutes".into(),
                "stuck_run_timeout_minutes changed from 30 to 45".into()
            ),
            (
                "admin".into(),
                "setting:log_retention_days".into(),
                "log_retention_days changed from 30 to 7".into()
            ),
        ]
    );

    // The next run uses 45 minutes: a run quiet for 50 fails, one quiet for 40 stays.
    let now = chrono::Utc::now();
    sqlx::query("INSERT INTO workflows (id, name, created_at, updated_at) VALUES ('w', 'w', $1, $1)")
        .bind(now)
        .execute(&mut conn)
        .await
        .unwrap();
    for (id, minutes) in [("quiet-50", 50), ("quiet-40", 40)] {
        sqlx::query(
            "INSERT INTO workflow_runs (id, workflow_id, status, created_at, updated_at) VALUES ($1, 'w', 'running', $2, $2)",
        )
        .bind(id)
        .bind(now - chrono::Duration::minutes(minutes))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let done = add_and_wait(&queue, "stuck-run-recovery", "{}");
    assert_eq!(done["returnvalue"], json!({ "failed": 1, "timeoutMinutes": 45 }));
    let reason: Option<String> =
        sqlx::query_scalar("SELECT failure_reason FROM workflow_runs WHERE id = 'quiet-50'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("Run timed out (no progress for 45 minutes)"));
    admin.host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_is_listed_retried_and_runs_or_is_removed() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let admin = Admin::start(&queue, &[]).await;
    // No plugin handles hello yet: the job fails for good.
    let failed = add_and_wait(&queue, "hello", r#"{"name":"retry"}"#);
    assert_eq!(failed["state"], "failed");
    let id = failed["id"].as_str().unwrap().to_owned();

    let (status, listed) = admin.get("/api/admin/jobs?state=failed").await;
    assert_eq!(status, 200);
    let job = &listed["jobs"][0];
    assert_eq!((&job["id"], &job["name"]), (&json!(id), &json!("hello")));
    assert_eq!(job["failedReason"], "no plugin for job type hello");
    assert_eq!(job["data"], json!({ "name": "retry" }));
    let (status, detail) = admin.get(&format!("/api/admin/jobs/{id}")).await;
    assert_eq!(
        (status, &detail["state"], &detail["data"]),
        (200, &json!("failed"), &json!({ "name": "retry" }))
    );
    assert!(detail["opts"].is_object(), "{detail}");
    let traces = detail["stacktrace"].as_array().unwrap();
    assert!(traces[0].as_str().unwrap().starts_with("no plugin for job type hello"), "{detail}");
    assert_eq!(admin.get("/api/admin/jobs/nope").await.0, 404);
    let (_, overview) = admin.get("/api/admin/queue").await;
    assert_eq!((overview["counts"]["failed"].clone(), overview["paused"].clone()), (json!(1), json!(false)));
    assert_eq!(overview["workers"], 1);

    fixtures::install(admin.host.plugins.path(), "hello.wasm", &fixtures::bytes("hello"));
    assert_eq!(admin.post("/api/admin/plugins/reload").await.0, 200);
    assert_eq!(
        admin.post(&format!("/api/admin/jobs/{id}/retry")).await,
        (200, json!({ "id": id, "retried": true }))
    );
    let done = wait_for(&queue, &id, Duration::from_secs(15), |job| job["state"] == "completed").await;
    assert_eq!(done["job"]["returnvalue"]["greeting"], "hello, retry");
    let (status, refused) = admin.post(&format!("/api/admin/jobs/{id}/retry")).await;
    assert_eq!(
        (status, refused["error"].as_str().unwrap()),
        (409, format!("job {id} is completed; only failed jobs are retried").as_str())
    );
    assert_eq!(admin.post("/api/admin/jobs/nope/retry").await.0, 404);

    let path = format!("/api/admin/jobs/{id}");
    assert_eq!(admin.call(reqwest::Method::DELETE, &path, None).await.0, 204);
    assert_eq!(admin.call(reqwest::Method::DELETE, &path, None).await.0, 404);
    assert_eq!(admin.get("/api/admin/jobs?state=everything").await.0, 422);
    let audited: Vec<(String, String, String)> =
        sqlx::query_as("SELECT actor, action, target FROM audit_log ORDER BY seq")
            .fetch_all(&mut admin.host.db.connect().await)
            .await
            .unwrap();
    let target = format!("job:{id}");
    assert_eq!(
        audited,
        [
            ("admin".into(), "job.retried".into(), target.clone()),
            ("admin".into(), "job.removed".into(), target)
        ]
    );
    admin.host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_status_reports_the_log_and_verifies_on_request() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let admin = Admin::start(&queue, &[]).await;
    admin.put("/api/admin/settings/logging", json!({ "log_retention_days": 10 })).await;
    let (status, audit) = admin.get("/api/admin/audit").await;
    assert_eq!(status, 200);
    assert_eq!((&audit["entries"], &audit["entriesSinceCheckpoint"]), (&json!(1), &json!(1)));
    assert_eq!((&audit["lastCheckpoint"], &audit["verification"]), (&Value::Null, &Value::Null));
    let (_, verified) = admin.get("/api/admin/audit?verify=true").await;
    assert_eq!(verified["verification"]["intact"], true, "{verified}");

    let mut conn = admin.host.db.connect().await;
    sqlx::query("UPDATE audit_log SET reason = 'nothing' WHERE seq = 1").execute(&mut conn).await.unwrap();
    let (_, tampered) = admin.get("/api/admin/audit?verify=true").await;
    assert_eq!(
        tampered["verification"],
        json!({ "intact": false, "problem": "audit_log seq 1: the row does not match its hash (edited)" })
    );
    admin.host.stop().await;
}
