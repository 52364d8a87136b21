//! The embedded queue (QUEUE_BACKEND=embedded): the Redis queue's semantics in a SQLite file of
//! the host's own, seen through the admin API the way operators see either backend.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::database::{Database, params};
use crate::fixtures;
use crate::helpers::{AdminApi, FlohProcess, TestDb, free_port, run_floh, run_floh_in, test_env, with};
use crate::queue::{Host, TestQueue};
use crate::services::needs;

/// The variables that put a host's queue into `dir`.
fn embedded(dir: &tempfile::TempDir) -> [(&'static str, String); 2] {
    [("QUEUE_BACKEND", "embedded".into()), ("QUEUE_PATH", dir.path().join("queue.db").display().to_string())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_retry_with_backoff_fail_with_their_traces_and_wait_when_delayed() {
    needs!(Postgres);
    let dir = tempfile::tempdir().unwrap();
    let [backend, path] = embedded(&dir);
    let env =
        [(backend.0, backend.1.as_str()), (path.0, path.1.as_str()), ("QUEUE_RETRY_BASE_DELAY_MS", "300")];
    let host = Host::start(&TestQueue::new(), &["hello", "hostile"], "", &env).await;
    let admin = AdminApi::new(&host.base);
    let (_, health) = admin.get("/api/health").await;
    assert_eq!(health["checks"]["redis"]["mode"], "embedded", "{health}");
    assert_eq!(health["status"], "ok", "{health}");

    let hello = admin.add(json!({ "name": "hello", "data": { "name": "embedded" } })).await;
    let done = admin.wait(&hello, "completed", Duration::from_secs(15)).await;
    assert_eq!(
        (&done["returnvalue"]["greeting"], &done["attemptsMade"]),
        (&json!("hello, embedded"), &json!(1))
    );
    assert_eq!(done["opts"]["attempts"], 4);

    // A retryable failure runs 4 times, 300, 600 and 1200 ms apart, then fails for good.
    let flaky = admin.add(json!({ "name": "hostile", "data": { "do": "retry" } })).await;
    let failed = admin.wait(&flaky, "failed", Duration::from_secs(20)).await;
    assert_eq!((&failed["attemptsMade"], &failed["failedReason"]), (&json!(4), &json!("try again later")));
    assert_eq!(failed["stacktrace"].as_array().unwrap().len(), 4, "{failed}");
    let took = failed["finishedOn"].as_u64().unwrap() - failed["timestamp"].as_u64().unwrap();
    assert!(took >= 2100, "the backoff delays add up to 2.1 s, not {took} ms");

    // A permanent failure is not retried; retried by the operator it runs again, afresh.
    let broken = admin.add(json!({ "name": "hostile", "data": { "do": "query" } })).await;
    assert_eq!(admin.wait(&broken, "failed", Duration::from_secs(15)).await["attemptsMade"], 1);
    assert_eq!(
        admin.call(reqwest::Method::POST, &format!("/api/admin/jobs/{broken}/retry"), None).await.0,
        200
    );
    let again = admin.wait(&broken, "failed", Duration::from_secs(15)).await;
    assert_eq!((&again["attemptsMade"], again["stacktrace"].as_array().unwrap().len()), (&json!(1), 2));

    // A delayed job waits; a custom id is added once.
    let later = admin.add(json!({ "name": "hello", "data": {}, "delay": 1500, "jobId": "later" })).await;
    assert_eq!(later, "later");
    assert_eq!(admin.add(json!({ "name": "hello", "data": {}, "jobId": "later" })).await, "later");
    assert_eq!(admin.job("later").await["state"], "delayed");
    let ran = admin.wait("later", "completed", Duration::from_secs(15)).await;
    let waited = ran["processedOn"].as_u64().unwrap() - ran["timestamp"].as_u64().unwrap();
    assert!(waited >= 1500, "ran {waited} ms after it was added");

    let (_, overview) = admin.get("/api/admin/queue").await;
    assert_eq!(overview["counts"]["completed"], 2, "{overview}");
    assert_eq!(overview["counts"]["failed"], 2, "{overview}");
    assert_eq!(overview["workers"], 1, "{overview}");
    let (_, listed) = admin.get("/api/admin/jobs?state=failed").await;
    let ids: Vec<&str> =
        listed["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [broken.as_str(), flaky.as_str()], "newest first");
    let (_, activity) = admin.get("/api/admin/queue/activity?hours=2").await;
    assert_eq!(
        activity["hours"][1],
        json!({ "start": activity["hours"][1]["start"], "completed": 2, "failed": 2 })
    );
    assert_eq!(admin.call(reqwest::Method::DELETE, &format!("/api/admin/jobs/{hello}"), None).await.0, 204);
    assert_eq!(admin.get(&format!("/api/admin/jobs/{hello}")).await.0, 404);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedulers_fire_each_occurrence_once_into_the_embedded_queue() {
    needs!(Postgres);
    let dir = tempfile::tempdir().unwrap();
    let [backend, path] = embedded(&dir);
    let toml = "[plugins.hello]\nschedule = \"*/2 * * * * *\"\n";
    let env = [(backend.0, backend.1.as_str()), (path.0, path.1.as_str())];
    let host = Host::start(&TestQueue::new(), &["hello"], toml, &env).await;
    let admin = AdminApi::new(&host.base);
    assert_eq!(admin.call(reqwest::Method::POST, "/api/admin/schedules/sync", None).await.0, 200);
    let (_, schedules) = admin.get("/api/admin/schedules").await;
    let stored = schedules["stored"].as_array().unwrap();
    let hello = stored.iter().find(|s| s["id"] == "hello").expect("the hello scheduler is stored");
    assert_eq!(hello["pattern"], "*/2 * * * * *");
    assert!(hello["next"].as_u64().unwrap() % 2000 == 0, "{hello}");

    let deadline = Instant::now() + Duration::from_secs(20);
    let ids = loop {
        let (_, listed) = admin.get("/api/admin/jobs?state=completed").await;
        let ids: Vec<String> =
            listed["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect();
        if ids.len() >= 2 {
            break ids;
        }
        assert!(Instant::now() < deadline, "the scheduler fired {ids:?} only");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for id in &ids {
        let occurrence: u64 = id.strip_prefix("repeat:hello:").expect("a scheduler's id").parse().unwrap();
        assert_eq!(occurrence % 2000, 0, "{id}");
    }
    host.stop().await;
}

/// A `floh serve` process on the embedded queue in `dir`, with short locks.
fn serve_env(db: &TestDb, dir: &tempfile::TempDir, plugins: &std::path::Path) -> Vec<(String, String)> {
    let [backend, path] = embedded(dir);
    let cache = fixtures::cache_dir().display().to_string();
    with(
        test_env(&db.url(), &crate::services::redis_url()),
        &[
            (backend.0, &backend.1),
            (path.0, &path.1),
            ("PLUGINS_DIR", plugins.to_str().unwrap()),
            ("PLUGIN_CACHE_DIR", &cache),
            ("QUEUE_LOCK_DURATION_MS", "2000"),
            ("QUEUE_STALLED_INTERVAL_MS", "1000"),
        ],
    )
}

fn replica(env: &[(String, String)]) -> FlohProcess {
    let env = with(env.to_vec(), &[("PORT", &crate::helpers::free_port().to_string())]);
    let mut floh = FlohProcess::spawn(&env, &["serve"]);
    floh.wait_listening();
    floh
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_jobs_outlive_the_host_and_a_killed_hosts_job_runs_again() {
    needs!(Postgres);
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    fixtures::install(plugins.path(), "hello.wasm", &fixtures::bytes("hello"));
    let env = serve_env(&db, &dir, plugins.path());
    let add = |args: &[&str]| {
        let (code, _, stderr) = run_floh(&env, &[&["jobs", "add", "hello"], args].concat());
        assert_eq!(code, 0, "{stderr}");
    };
    // Added while no host runs: they wait in the file.
    add(&["--job-id", "queued", "--data", r#"{"name":"queued"}"#]);
    add(&["--job-id", "delayed", "--delay", "1000"]);

    let mut first = replica(&env);
    let admin = AdminApi::new(&first.url(""));
    let queued = admin.wait("queued", "completed", Duration::from_secs(15)).await;
    assert_eq!(queued["returnvalue"]["greeting"], "hello, queued");
    admin.wait("delayed", "completed", Duration::from_secs(15)).await;

    // A job running when its host is killed keeps its lock until it expires; then the next
    // host's stalled check puts it back and it runs to the end.
    add(&["--job-id", "orphaned", "--data", r#"{"name":"orphaned","busy_ms":4000}"#]);
    admin.wait("orphaned", "active", Duration::from_secs(15)).await;
    add(&["--job-id", "pending", "--delay", "60000"]);
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(5));

    let mut second = replica(&env);
    let admin = AdminApi::new(&second.url(""));
    let orphaned = admin.wait("orphaned", "completed", Duration::from_secs(30)).await;
    assert_eq!(orphaned["returnvalue"]["greeting"], "hello, orphaned");
    assert_eq!(admin.job("pending").await["state"], "delayed", "a delayed job survives the kill");
    let metrics = reqwest::get(second.url("/metrics")).await.unwrap().text().await.unwrap();
    let stalled = metrics.lines().find(|l| l.starts_with(r#"floh_jobs_stalled_total{job="hello"}"#));
    assert_eq!(stalled.and_then(|l| l.split_whitespace().last()), Some("1"), "{metrics}");
    second.signal("TERM");
    assert_eq!(second.wait_exit(Duration::from_secs(15)).code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failed_jobs_kept_are_the_newest_5000() {
    needs!(Postgres);
    let dir = tempfile::tempdir().unwrap();
    let [backend, path] = embedded(&dir);
    let env = [(backend.0, backend.1.as_str()), (path.0, path.1.as_str()), ("WORKER_CONCURRENCY", "16")];
    let host = Host::start(&TestQueue::new(), &[], "", &env).await;
    let settings = floh::config::Settings::load_from(crate::helpers::env_pairs(&[
        (backend.0, &backend.1),
        (path.0, &path.1),
    ]))
    .unwrap();
    let producer = floh::queue::open(&settings).await.unwrap();
    let total = floh::queue::KEEP_FAILED + 10;
    crate::queue::enqueue_doomed(producer.as_ref(), total).await;
    let admin = AdminApi::new(&host.base);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, overview) = admin.get("/api/admin/queue").await;
        if overview["counts"]["waiting"] == 0 && overview["counts"]["active"] == 0 {
            assert_eq!(overview["counts"]["failed"], floh::queue::KEEP_FAILED, "{overview}");
            break;
        }
        assert!(Instant::now() < deadline, "{overview}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut gone = Vec::new();
    for n in 0..total {
        if admin.get(&format!("/api/admin/jobs/doomed-{n}")).await.0 == 404 {
            gone.push(n);
        }
    }
    assert_eq!(gone.len(), 10, "exactly 10 failures are removed: {gone:?}");
    assert!(gone.iter().all(|n| *n < 100), "the removed ones are among the oldest: {gone:?}");
    let newest = admin.job(&format!("doomed-{}", total - 1)).await;
    assert_eq!(newest["failedReason"], "no plugin for job type no-such-job");
    host.stop().await;
}

/// No environment at all: the database and the queue are SQLite files under ./data, and the
/// host serves, schedules and runs the bundled jobs. floh.toml holds only the example grants and
/// where to listen (a free port, as tests run side by side).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_any_environment_runs_on_files_under_data() {
    let cwd = tempfile::tempdir().unwrap();
    let plugins = cwd.path().join("plugins-dist");
    std::fs::create_dir(&plugins).unwrap();
    for plugin in fixtures::bundled() {
        fixtures::install(&plugins, &format!("{plugin}.wasm"), &fixtures::bytes(plugin));
    }
    let port = free_port();
    let listen = format!(
        "bind_address = \"127.0.0.1\"\nport = {port}\nplugin_cache_dir = {:?}\n",
        fixtures::cache_dir().display().to_string()
    );
    std::fs::write(cwd.path().join("floh.toml"), listen + &fixtures::example_toml()).unwrap();

    let (code, stdout, stderr) = run_floh_in(&[], &["seed", "--demo"], cwd.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("workflow_schedules: 2 demo rows"), "{stdout}");
    let file = cwd.path().join("data").join("floh.db");
    assert!(file.exists(), "the database is ./data/floh.db");
    // The demo's review schedule, due every 2 seconds instead of every 5 minutes.
    let db = Database::at(&format!("sqlite://{}", file.display())).await;
    db.exec(
        "UPDATE workflow_schedules SET cron = '*/2 * * * * *' WHERE id = $1",
        params!["demo-sched-review"],
    )
    .await;

    let data = cwd.path().join("data");
    let mut host = FlohProcess::spawn_in(cwd, port, &[], &[]);
    host.wait_listening();
    let admin = AdminApi::new(&host.url(""));
    let (status, health) = admin.get("/api/health").await;
    assert_eq!((status, &health["status"]), (200, &json!("ok")), "{health}");
    assert_eq!(health["checks"]["database"]["mode"], "sqlite", "{health}");
    assert_eq!(health["checks"]["redis"]["mode"], "embedded", "{health}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let started = loop {
        let runs: Vec<(String, String)> = db
            .rows(
                "SELECT status, triggered_by FROM workflow_runs WHERE schedule_id = $1",
                params!["demo-sched-review"],
            )
            .await;
        if !runs.is_empty() {
            break runs;
        }
        assert!(Instant::now() < deadline, "no scheduled run started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(started[0], ("pending".to_owned(), "schedule".to_owned()));
    assert!(data.join("queue.db").exists(), "the queue is ./data/queue.db");
    host.signal("TERM");
    assert!(host.wait_exit(Duration::from_secs(20)).success());
}
