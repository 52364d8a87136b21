//! The queue against the real `bullmq` 6.7.0 npm client: interop both ways, the runbook's job
//! options, failures with their reasons and traces, and the retry schedule.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fixtures;
use crate::helpers::{InProcess, TestDb, run_floh, test_env, with};
use crate::node;

/// A key prefix of the test's own, removed when it ends.
struct TestQueue {
    prefix: String,
}

impl TestQueue {
    fn new() -> Self {
        Self { prefix: format!("floh-test-{}", TestDb::unique_name()) }
    }

    fn redis() -> redis::Connection {
        redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection().unwrap()
    }

    /// Stream timestamps (ms) of the `active` events of job `id`: when each attempt began.
    fn attempt_starts(&self, id: &str) -> Vec<u64> {
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(format!("{}:workflow-scheduler:events", self.prefix))
            .arg("-")
            .arg("+")
            .query::<redis::streams::StreamRangeReply>(&mut Self::redis())
            .unwrap()
            .ids
            .into_iter()
            .map(|entry| {
                let fields = entry
                    .map
                    .iter()
                    .flat_map(|(k, v)| {
                        [k.clone(), redis::from_redis_value::<String>(v.clone()).unwrap_or_default()]
                    })
                    .collect();
                (entry.id, fields)
            })
            .collect();
        entries
            .into_iter()
            .filter(|(_, fields)| {
                fields.windows(2).any(|w| w == ["event", "active"])
                    && fields.windows(2).any(|w| w[0] == "jobId" && w[1] == id)
            })
            .map(|(stream_id, _)| stream_id.split('-').next().unwrap().parse().unwrap())
            .collect()
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        let mut redis = Self::redis();
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}:*", self.prefix)).query(&mut redis).unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut redis);
        }
    }
}

/// A serving host over a fresh database, with the given plugins and floh.toml.
struct Host {
    _db: TestDb,
    _plugins: tempfile::TempDir,
    _config: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<Result<(), floh::shutdown::GraceExceeded>>,
}

impl Host {
    async fn start(queue: &TestQueue, plugins: &[&str], toml: &str, env: &[(&str, &str)]) -> Self {
        let db = TestDb::create().await;
        let dir = tempfile::tempdir().unwrap();
        for plugin in plugins {
            fixtures::install(dir.path(), &format!("{plugin}.wasm"), &fixtures::bytes(plugin));
        }
        let config = tempfile::tempdir().unwrap();
        std::fs::write(config.path().join("floh.toml"), toml).unwrap();
        let mut overrides = vec![
            ("QUEUE_PREFIX", queue.prefix.clone()),
            ("PLUGINS_DIR", dir.path().display().to_string()),
            ("PLUGIN_CACHE_DIR", fixtures::cache_dir().display().to_string()),
            ("FLOH_CONFIG", config.path().join("floh.toml").display().to_string()),
        ];
        overrides.extend(env.iter().map(|(k, v)| (*k, v.to_string())));
        let overrides: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let host =
            InProcess::start(with(test_env(&db.url(), "redis://127.0.0.1:6379"), &overrides), true).await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = host.app.router();
        let served = tokio::spawn(host.app.serve(router, async move {
            let _ = stopped.await;
        }));
        Self { _db: db, _plugins: dir, _config: config, stop: Some(stop), served }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.served).await.unwrap().expect("drains in time");
    }
}

/// Polls the Node view of job `id` until `done` holds.
async fn wait_for(queue: &TestQueue, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let seen = tokio::task::block_in_place(|| node::run("inspect.mjs", &[id], &queue.prefix));
        if done(&seen["job"]) {
            return seen;
        }
        assert!(Instant::now() < deadline, "job {id} never got there: {seen}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_producers_job_runs_in_floh_and_node_sees_the_result() {
    let queue = TestQueue::new();
    let host = Host::start(&queue, &["hello"], "", &[]).await;
    let job = tokio::task::block_in_place(|| {
        node::run("add-and-wait.mjs", &["hello", r#"{"name":"node"}"#], &queue.prefix)
    });
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["returnvalue"], json!({ "greeting": "hello, node", "version": "1.0.0" }));
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_floh_enqueues_looks_right_to_node_and_a_node_worker_can_run_it() {
    let queue = TestQueue::new();
    let env = [("QUEUE_PREFIX", queue.prefix.as_str())];
    let (code, stdout, stderr) = run_floh(
        &crate::helpers::env_pairs(&env),
        &["jobs", "add", "hello", "--data", r#"{"name":"ops"}"#, "--job-id", "ops-1"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "ops-1");

    let seen = tokio::task::block_in_place(|| node::run("inspect.mjs", &["ops-1"], &queue.prefix));
    let job = &seen["job"];
    assert_eq!(
        (&job["name"], &job["data"], &job["state"]),
        (&json!("hello"), &json!({ "name": "ops" }), &json!("waiting"))
    );
    assert_eq!(job["opts"]["attempts"], 4);
    assert_eq!(job["opts"]["backoff"], json!({ "type": "exponential", "delay": 5000 }));
    assert_eq!(job["opts"]["removeOnFail"], 5000);
    assert_eq!(job["opts"]["removeOnComplete"], 1000);
    assert_eq!(seen["counts"]["waiting"], 1);
    assert_eq!(seen["listed"], json!(["ops-1"]));

    let (code, stdout, _) =
        run_floh(&crate::helpers::env_pairs(&env), &["jobs", "add", "hello", "--job-id", "ops-1"]);
    assert_eq!((code, stdout.trim()), (0, "ops-1"), "a duplicate id names the existing job");

    let processed = tokio::task::block_in_place(|| node::run("work-one.mjs", &[], &queue.prefix));
    assert_eq!(processed["id"], "ops-1");
    assert_eq!(processed["result"]["sawData"], json!({ "name": "ops" }));
    let done = wait_for(&queue, "ops-1", Duration::from_secs(10), |job| job["state"] == "completed").await;
    assert_eq!(done["job"]["returnvalue"]["processedBy"], "node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_fails_at_once_with_its_reason_and_trace() {
    let queue = TestQueue::new();
    let host = Host::start(&queue, &["hostile"], "", &[]).await;
    let job = tokio::task::block_in_place(|| {
        node::run("add-and-wait.mjs", &["hostile", r#"{"do":"query"}"#], &queue.prefix)
    });
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attemptsMade"], 1, "no retries after a permanent error");
    assert!(job["failedReason"].as_str().unwrap().contains("capability `db` is not granted"), "{job}");
    let trace = job["stacktrace"].as_array().expect("a stacktrace array");
    assert_eq!(trace.len(), 1, "{job}");

    let unknown =
        tokio::task::block_in_place(|| node::run("add-and-wait.mjs", &["no-such-job", "{}"], &queue.prefix));
    assert_eq!((&unknown["state"], &unknown["attemptsMade"]), (&json!("failed"), &json!(1)));
    assert_eq!(unknown["failedReason"], "no plugin for job type no-such-job");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_failure_is_attempted_four_times_with_doubling_gaps() {
    let queue = TestQueue::new();
    // The runbook's 5 s base would make this test take 35 s; the doubling is what it checks.
    let env = [("QUEUE_RETRY_BASE_DELAY_MS", "400")];
    let host = Host::start(&queue, &["hostile"], "", &env).await;
    let env = crate::helpers::env_pairs(&[env[0], ("QUEUE_PREFIX", &queue.prefix)]);
    let (code, _, stderr) =
        run_floh(&env, &["jobs", "add", "hostile", "--data", r#"{"do":"retry"}"#, "--job-id", "flaky"]);
    assert_eq!(code, 0, "{stderr}");
    let seen = wait_for(&queue, "flaky", Duration::from_secs(20), |job| job["state"] == "failed").await;
    let job = &seen["job"];
    assert_eq!(job["attemptsMade"], 4);
    assert_eq!(job["failedReason"], "try again later");
    assert_eq!(job["stacktrace"].as_array().unwrap().len(), 4, "one trace per attempt: {job}");

    let starts = queue.attempt_starts(job["id"].as_str().unwrap());
    assert_eq!(starts.len(), 4, "{starts:?}");
    let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] as i64 - w[0] as i64).collect();
    for (gap, expected) in gaps.iter().zip([400, 800, 1600]) {
        assert!((gap - expected).abs() <= 500, "gaps {gaps:?}, expected 400, 800, 1600 ms ±500");
    }
    host.stop().await;
}

/// The environment of a `floh serve` process on `queue`, running the hello plugin.
fn serve_env(queue: &TestQueue, db: &TestDb, plugins: &std::path::Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut overrides = vec![
        ("QUEUE_PREFIX", queue.prefix.as_str()),
        ("PLUGINS_DIR", plugins.to_str().unwrap()),
        ("QUEUE_LOCK_DURATION_MS", "2000"),
        ("QUEUE_STALLED_INTERVAL_MS", "1000"),
    ];
    overrides.extend_from_slice(extra);
    let cache = fixtures::cache_dir();
    let mut env = with(test_env(&db.url(), "redis://127.0.0.1:6379"), &overrides);
    env.push(("PLUGIN_CACHE_DIR".to_owned(), cache.display().to_string()));
    env
}

fn plugins_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fixtures::install(dir.path(), "hello.wasm", &fixtures::bytes("hello"));
    dir
}

fn add_busy_job(queue: &TestQueue, id: &str, busy_ms: u32) {
    let env = crate::helpers::env_pairs(&[("QUEUE_PREFIX", &queue.prefix)]);
    let data = format!(r#"{{"name":"{id}","busy_ms":{busy_ms}}}"#);
    let (code, _, stderr) = run_floh(&env, &["jobs", "add", "hello", "--data", &data, "--job-id", id]);
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_was_killed_is_run_again_by_another() {
    let queue = TestQueue::new();
    let db = TestDb::create().await;
    let plugins = plugins_dir();
    let env = serve_env(&queue, &db, plugins.path(), &[]);
    let mut first = crate::helpers::FlohProcess::spawn(&env, &["serve"]);
    first.wait_listening();
    add_busy_job(&queue, "orphaned", 4000);
    wait_for(&queue, "orphaned", Duration::from_secs(20), |job| job["state"] == "active").await;
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(5));

    let second_env = with(env, &[("PORT", &crate::helpers::free_port().to_string())]);
    let mut second = crate::helpers::FlohProcess::spawn(&second_env, &["serve"]);
    second.wait_listening();
    let seen = wait_for(&queue, "orphaned", Duration::from_secs(30), |job| job["state"] == "completed").await;
    assert_eq!(seen["job"]["returnvalue"]["greeting"], "hello, orphaned");
    second.signal("TERM");
    assert_eq!(second.wait_exit(Duration::from_secs(15)).code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_running_job_finish_then_exits_zero() {
    let queue = TestQueue::new();
    let db = TestDb::create().await;
    let plugins = plugins_dir();
    let env = serve_env(&queue, &db, plugins.path(), &[("SHUTDOWN_GRACE_SECONDS", "15")]);
    let mut floh = crate::helpers::FlohProcess::spawn(&env, &["serve"]);
    floh.wait_listening();
    add_busy_job(&queue, "short", 3000);
    wait_for(&queue, "short", Duration::from_secs(20), |job| job["state"] == "active").await;
    floh.signal("TERM");
    assert_eq!(floh.wait_exit(Duration::from_secs(15)).code(), Some(0), "{}", floh.stderr());
    let seen = tokio::task::block_in_place(|| node::run("inspect.mjs", &["short"], &queue.prefix));
    assert_eq!(seen["job"]["state"], "completed", "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_longer_than_the_grace_period_is_left_to_another_worker() {
    let queue = TestQueue::new();
    let db = TestDb::create().await;
    let plugins = plugins_dir();
    let env = serve_env(&queue, &db, plugins.path(), &[("SHUTDOWN_GRACE_SECONDS", "2")]);
    let mut first = crate::helpers::FlohProcess::spawn(&env, &["serve"]);
    first.wait_listening();
    add_busy_job(&queue, "long", 6000);
    wait_for(&queue, "long", Duration::from_secs(20), |job| job["state"] == "active").await;
    let signalled = Instant::now();
    first.signal("TERM");
    first.wait_exit(Duration::from_secs(5));
    assert!(signalled.elapsed() < Duration::from_secs(4), "exited at the deadline, not after the job");
    let left = tokio::task::block_in_place(|| node::run("inspect.mjs", &["long"], &queue.prefix));
    assert_eq!(left["job"]["state"], "active", "not marked failed by the shutdown: {left}");

    let second_env = with(env, &[("PORT", &crate::helpers::free_port().to_string())]);
    let mut second = crate::helpers::FlohProcess::spawn(&second_env, &["serve"]);
    second.wait_listening();
    let seen = wait_for(&queue, "long", Duration::from_secs(40), |job| job["state"] == "completed").await;
    assert_eq!(seen["job"]["returnvalue"]["greeting"], "hello, long");
    second.signal("TERM");
    second.wait_exit(Duration::from_secs(15));
}
