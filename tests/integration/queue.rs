//! The queue against the real `bullmq` 6.7.0 npm client: interop both ways, the runbook's job
//! options, failures with their reasons and traces, and the retry schedule.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fixtures;
use crate::helpers::{InProcess, TestDb, run_floh, test_env, with};
use crate::node;
use crate::services::needs;

/// A key prefix of the test's own, removed when it ends.
pub struct TestQueue {
    pub prefix: String,
}

impl TestQueue {
    pub fn new() -> Self {
        Self { prefix: format!("floh-test-{}", TestDb::unique_name()) }
    }

    /// The variables a `floh` command needs to reach this queue.
    pub fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let redis = crate::services::redis_url();
        let queue = [("REDIS_URL", redis.as_str()), ("QUEUE_PREFIX", self.prefix.as_str())];
        crate::helpers::env_pairs(&[&queue[..], extra].concat())
    }

    fn redis() -> redis::Connection {
        crate::services::expect(crate::services::Service::Redis);
        redis::Client::open(crate::services::redis_url()).unwrap().get_connection().unwrap()
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
pub struct Host {
    pub db: TestDb,
    pub base: String,
    pub plugins: tempfile::TempDir,
    _config: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<Result<(), floh::shutdown::GraceExceeded>>,
}

impl Host {
    pub async fn start(queue: &TestQueue, plugins: &[&str], toml: &str, env: &[(&str, &str)]) -> Self {
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
            InProcess::start(with(test_env(&db.url(), &crate::services::redis_url()), &overrides), true)
                .await;
        let base = host.url("");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = host.app.router();
        let served = tokio::spawn(host.app.serve(router, async move {
            let _ = stopped.await;
        }));
        Self { db, base, plugins: dir, _config: config, stop: Some(stop), served }
    }

    /// Syncs and checks that the first problem reported starts with `problem`.
    async fn sync_expecting_problem(&self, problem: &str) {
        let report = self.sync_schedules().await;
        let first = report["problems"][0].as_str().unwrap_or_default();
        assert!(first.starts_with(problem), "{report}");
    }

    /// `POST /api/admin/schedules/sync`, as an operator would.
    async fn sync_schedules(&self) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}/api/admin/schedules/sync", self.base))
            .bearer_auth(floh::config::vars::DEV_ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.unwrap()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.served).await.unwrap().expect("drains in time");
    }
}

/// Adds a job with the Node client and waits until it finished; the job as Node sees it.
pub fn add_and_wait(queue: &TestQueue, name: &str, data: &str) -> Value {
    tokio::task::block_in_place(|| node::run("add-and-wait.mjs", &[name, data], &queue.prefix))
}

/// Job `id` and the queue's counts as the Node client sees them.
pub fn inspect(queue: &TestQueue, id: &str) -> Value {
    tokio::task::block_in_place(|| node::run("inspect.mjs", &[id], &queue.prefix))
}

/// Enqueues `total` jobs `doomed-0…` that no plugin handles, so each fails for good.
pub async fn enqueue_doomed(producer: &dyn floh::queue::JobQueue, total: usize) {
    for n in 0..total {
        let job = floh::queue::NewJob {
            name: "no-such-job".into(),
            data: json!({}),
            delay: None,
            job_id: Some(format!("doomed-{n}")),
        };
        producer.enqueue(job).await.unwrap();
    }
}

/// Polls the Node view of job `id` until `done` holds.
pub async fn wait_for(queue: &TestQueue, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let seen = inspect(queue, id);
        if done(&seen["job"]) {
            return seen;
        }
        assert!(Instant::now() < deadline, "job {id} never got there: {seen}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_producers_job_runs_in_floh_and_node_sees_the_result() {
    needs!(Postgres, Redis, Node);
    let queue = TestQueue::new();
    let host = Host::start(&queue, &["hello"], "", &[]).await;
    let job = add_and_wait(&queue, "hello", r#"{"name":"node"}"#);
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["returnvalue"], json!({ "greeting": "hello, node", "version": "1.0.0" }));
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_floh_enqueues_looks_right_to_node_and_a_node_worker_can_run_it() {
    needs!(Redis, Node);
    let queue = TestQueue::new();
    let env = queue.env(&[]);
    let (code, stdout, stderr) =
        run_floh(&env, &["jobs", "add", "hello", "--data", r#"{"name":"ops"}"#, "--job-id", "ops-1"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "ops-1");

    let seen = inspect(&queue, "ops-1");
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

    let (code, stdout, _) = run_floh(&env, &["jobs", "add", "hello", "--job-id", "ops-1"]);
    assert_eq!((code, stdout.trim()), (0, "ops-1"), "a duplicate id names the existing job");

    let processed = tokio::task::block_in_place(|| node::run("work-one.mjs", &[], &queue.prefix));
    assert_eq!(processed["id"], "ops-1");
    assert_eq!(processed["result"]["sawData"], json!({ "name": "ops" }));
    let done = wait_for(&queue, "ops-1", Duration::from_secs(10), |job| job["state"] == "completed").await;
    assert_eq!(done["job"]["returnvalue"]["processedBy"], "node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_fails_at_once_with_its_reason_and_trace() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let host = Host::start(&queue, &["hostile"], "", &[]).await;
    let job = add_and_wait(&queue, "hostile", r#"{"do":"query"}"#);
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attemptsMade"], 1, "no retries after a permanent error");
    assert!(job["failedReason"].as_str().unwrap().contains("capability `db` is not granted"), "{job}");
    let trace = job["stacktrace"].as_array().expect("a stacktrace array");
    assert_eq!(trace.len(), 1, "{job}");

    let unknown = add_and_wait(&queue, "no-such-job", "{}");
    assert_eq!((&unknown["state"], &unknown["attemptsMade"]), (&json!("failed"), &json!(1)));
    assert_eq!(unknown["failedReason"], "no plugin for job type no-such-job");
    host.stop().await;
}

/// Runs a `retryable` job to failure with retry base delay `base_ms`; checks 4 attempts with
/// gaps of base, 2×base and 4×base (±500 ms).
async fn retries_with_base_delay(base_ms: u64) {
    let queue = TestQueue::new();
    let base = base_ms.to_string();
    let env = [("QUEUE_RETRY_BASE_DELAY_MS", base.as_str())];
    let host = Host::start(&queue, &["hostile"], "", &env).await;
    let env = queue.env(&env);
    let (code, _, stderr) =
        run_floh(&env, &["jobs", "add", "hostile", "--data", r#"{"do":"retry"}"#, "--job-id", "flaky"]);
    assert_eq!(code, 0, "{stderr}");
    let limit = Duration::from_millis(7 * base_ms + 15_000);
    let seen = wait_for(&queue, "flaky", limit, |job| job["state"] == "failed").await;
    let job = &seen["job"];
    assert_eq!(job["attemptsMade"], 4);
    assert_eq!(job["failedReason"], "try again later");
    assert_eq!(job["stacktrace"].as_array().unwrap().len(), 4, "one trace per attempt: {job}");

    let starts = queue.attempt_starts("flaky");
    assert_eq!(starts.len(), 4, "{starts:?}");
    let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] as i64 - w[0] as i64).collect();
    let expected = [base_ms as i64, 2 * base_ms as i64, 4 * base_ms as i64];
    for (gap, expected) in gaps.iter().zip(expected) {
        assert!((gap - expected).abs() <= 500, "gaps {gaps:?}, expected {expected:?} ms ±500");
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_failure_is_attempted_four_times_with_doubling_gaps() {
    needs!(Postgres, Redis);
    retries_with_base_delay(400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_retry_policy_waits_5_10_and_20_seconds() {
    needs!(Postgres, Redis);
    retries_with_base_delay(5000).await;
}

/// The environment of a `floh serve` process on `queue`, running the hello plugin.
fn serve_env(
    queue: &TestQueue,
    db: &TestDb,
    plugins: &std::path::Path,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut overrides = vec![
        ("QUEUE_PREFIX", queue.prefix.as_str()),
        ("PLUGINS_DIR", plugins.to_str().unwrap()),
        ("QUEUE_LOCK_DURATION_MS", "2000"),
        ("QUEUE_STALLED_INTERVAL_MS", "1000"),
    ];
    overrides.extend_from_slice(extra);
    let cache = fixtures::cache_dir();
    let mut env = with(test_env(&db.url(), &crate::services::redis_url()), &overrides);
    env.push(("PLUGIN_CACHE_DIR".to_owned(), cache.display().to_string()));
    env
}

fn plugins_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fixtures::install(dir.path(), "hello.wasm", &fixtures::bytes("hello"));
    dir
}

/// Adds a hello job that keeps busy for `busy_ms` and waits until a worker has taken it.
async fn start_busy_job(queue: &TestQueue, id: &str, busy_ms: u32) {
    let env = queue.env(&[]);
    let data = format!(r#"{{"name":"{id}","busy_ms":{busy_ms}}}"#);
    let (code, _, stderr) = run_floh(&env, &["jobs", "add", "hello", "--data", &data, "--job-id", id]);
    assert_eq!(code, 0, "{stderr}");
    wait_for(queue, id, Duration::from_secs(20), |job| job["state"] == "active").await;
}

/// A listening `floh serve` process with `env`, on a port of its own.
fn replica(env: &[(String, String)]) -> crate::helpers::FlohProcess {
    let env = with(env.to_vec(), &[("PORT", &crate::helpers::free_port().to_string())]);
    let mut floh = crate::helpers::FlohProcess::spawn(&env, &["serve"]);
    floh.wait_listening();
    floh
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_was_killed_is_run_again_by_another() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let db = TestDb::create().await;
    let plugins = plugins_dir();
    let env = serve_env(&queue, &db, plugins.path(), &[]);
    let mut first = replica(&env);
    start_busy_job(&queue, "orphaned", 4000).await;
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(5));

    let mut second = replica(&env);
    let seen = wait_for(&queue, "orphaned", Duration::from_secs(30), |job| job["state"] == "completed").await;
    assert_eq!(seen["job"]["returnvalue"]["greeting"], "hello, orphaned");
    let metrics = reqwest::get(second.url("/metrics")).await.unwrap().text().await.unwrap();
    assert_eq!(sample(&metrics, r#"floh_jobs_stalled_total{job="hello"}"#), 1.0, "{metrics}");
    second.signal("TERM");
    assert_eq!(second.wait_exit(Duration::from_secs(15)).code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_running_job_finish_then_exits_zero() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let db = TestDb::create().await;
    let plugins = plugins_dir();
    let env = serve_env(&queue, &db, plugins.path(), &[("SHUTDOWN_GRACE_SECONDS", "15")]);
    let mut floh = replica(&env);
    start_busy_job(&queue, "short", 3000).await;
    floh.signal("TERM");
    assert_eq!(floh.wait_exit(Duration::from_secs(15)).code(), Some(0), "{}", floh.stderr());
    let seen = inspect(&queue, "short");
    assert_eq!(seen["job"]["state"], "completed", "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_longer_than_the_grace_period_is_left_to_another_worker() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let db = TestDb::create().await;
    let plugins = plugins_dir();
    let env = serve_env(&queue, &db, plugins.path(), &[("SHUTDOWN_GRACE_SECONDS", "2")]);
    let mut first = replica(&env);
    start_busy_job(&queue, "long", 6000).await;
    let signalled = Instant::now();
    first.signal("TERM");
    first.wait_exit(Duration::from_secs(5));
    assert!(signalled.elapsed() < Duration::from_secs(4), "exited at the deadline, not after the job");
    let left = inspect(&queue, "long");
    assert_eq!(left["job"]["state"], "active", "not marked failed by the shutdown: {left}");

    let mut second = replica(&env);
    let seen = wait_for(&queue, "long", Duration::from_secs(40), |job| job["state"] == "completed").await;
    assert_eq!(seen["job"]["returnvalue"]["greeting"], "hello, long");
    second.signal("TERM");
    second.wait_exit(Duration::from_secs(15));
}

fn schedulers(queue: &TestQueue) -> Vec<Value> {
    let listed = tokio::task::block_in_place(|| node::run("schedulers.mjs", &[], &queue.prefix));
    listed.as_array().unwrap().clone()
}

fn scheduler<'a>(listed: &'a [Value], key: &str) -> Option<&'a Value> {
    listed.iter().find(|s| s["key"] == key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_default_schedules_become_job_schedulers_unless_configured_otherwise() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let host = Host::start(
        &queue,
        &["stuck-run-recovery", "hello"],
        "[plugins.hello]\nschedule = \"0 3 * * *\"\n",
        &[],
    )
    .await;
    host.sync_schedules().await;
    let listed = schedulers(&queue);
    let stuck = scheduler(&listed, "stuck-run-recovery").expect("scheduled from describe()");
    assert_eq!((&stuck["name"], &stuck["pattern"]), (&json!("stuck-run-recovery"), &json!("*/15 * * * *")));
    assert!(stuck["next"].as_u64().is_some(), "{stuck}");
    assert_eq!(scheduler(&listed, "hello").expect("scheduled from floh.toml")["pattern"], "0 3 * * *");
    host.stop().await;

    let again = Host::start(
        &queue,
        &["stuck-run-recovery", "hello"],
        "[plugins.stuck-run-recovery]\nschedule = \"off\"\n",
        &[],
    )
    .await;
    // Its own start-up reconciliation may already have removed them; either way, both are gone.
    again.sync_schedules().await;
    assert!(schedulers(&queue).is_empty(), "{:?}", schedulers(&queue));
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_report_rows_create_change_and_remove_their_schedulers() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let host = Host::start(&queue, &[], "", &[]).await;
    let mut conn = host.db.connect().await;
    let now = chrono::Utc::now();
    sqlx::query(
        "INSERT INTO scheduled_reports (id, name, report_type, cron, timezone, recipients, created_at, updated_at)
         VALUES ('r1', 'Weekly access review', 'access', '0 8 * * 1', 'Europe/Berlin', '[\"a@example.com\"]', $1, $1),
                ('r2', 'Broken', 'access', '0 8 * * 1', 'Mars/Olympus', '[]', $1, $1)",
    )
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();

    // The host's own start-up reconciliation may pick the rows up first; the state is what counts.
    host.sync_expecting_problem("scheduled_reports row r2: timezone \"Mars/Olympus\"").await;
    let listed = schedulers(&queue);
    let r1 = scheduler(&listed, "deliver-scheduled-report:r1").unwrap();
    assert_eq!(
        (&r1["name"], &r1["pattern"], &r1["tz"]),
        (&json!("deliver-scheduled-report"), &json!("0 8 * * 1"), &json!("Europe/Berlin"))
    );
    assert_eq!(r1["data"], json!({ "reportId": "r1" }));

    sqlx::query("UPDATE scheduled_reports SET cron = '30 7 * * *' WHERE id = 'r1'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(host.sync_schedules().await["updated"], json!(["deliver-scheduled-report:r1"]));
    assert_eq!(
        scheduler(&schedulers(&queue), "deliver-scheduled-report:r1").unwrap()["pattern"],
        "30 7 * * *"
    );
    let unchanged = host.sync_schedules().await;
    assert_eq!(
        (&unchanged["created"], &unchanged["updated"]),
        (&json!([]), &json!([])),
        "a sync without changes touches nothing"
    );

    sqlx::query("UPDATE scheduled_reports SET enabled = FALSE WHERE id = 'r1'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(host.sync_schedules().await["removed"], json!(["deliver-scheduled-report:r1"]));
    assert!(scheduler(&schedulers(&queue), "deliver-scheduled-report:r1").is_none());
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_run_every_occurrence_exactly_once() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let db = TestDb::create().await;
    let plugins = plugins_dir();
    let config = tempfile::tempdir().unwrap();
    let toml = config.path().join("floh.toml");
    std::fs::write(&toml, "[plugins.hello]\nschedule = \"*/2 * * * * *\"\n").unwrap();
    let env = with(serve_env(&queue, &db, plugins.path(), &[]), &[("FLOH_CONFIG", toml.to_str().unwrap())]);
    let mut replicas: Vec<_> = (0..3).map(|_| replica(&env)).collect();
    tokio::time::sleep(Duration::from_secs(62)).await;
    for floh in &replicas {
        floh.signal("TERM");
    }
    for floh in &mut replicas {
        assert_eq!(floh.wait_exit(Duration::from_secs(20)).code(), Some(0));
    }

    let completed: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{}:workflow-scheduler:completed", queue.prefix))
        .arg(0)
        .arg(-1)
        .query(&mut TestQueue::redis())
        .unwrap();
    let mut occurrences: Vec<u64> = completed
        .iter()
        .map(|id| {
            id.strip_prefix("repeat:hello:").unwrap_or_else(|| panic!("unexpected job {id}")).parse().unwrap()
        })
        .collect();
    occurrences.sort();
    assert!(occurrences.len() >= 28, "only {} occurrences in 62 s: {occurrences:?}", occurrences.len());
    let gaps: Vec<u64> = occurrences.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|gap| *gap == 2000), "an occurrence is missing: gaps {gaps:?}");

    // Each run logs once into system_log with its job id: no occurrence ran twice.
    let runs: Vec<(String, i64)> = sqlx::query_as(
        "SELECT fields::json->>'job', count(*) FROM system_log WHERE source = 'plugin:hello' GROUP BY 1",
    )
    .fetch_all(&mut db.connect().await)
    .await
    .unwrap();
    assert_eq!(runs.len(), occurrences.len(), "{runs:?}");
    assert!(runs.iter().all(|(_, n)| *n == 1), "an occurrence ran twice: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_resumes_by_itself_after_redis_restarts() {
    needs!(Postgres, RedisServer);
    let queue = TestQueue::new();
    let mut redis = crate::helpers::RedisServer::start();
    let url = redis.url();
    let host = Host::start(&queue, &["hello"], "", &[("REDIS_URL", &url)]).await;
    let env = crate::helpers::env_pairs(&[("QUEUE_PREFIX", &queue.prefix), ("REDIS_URL", &url)]);
    let completed = |id: &str| -> bool {
        let mut conn = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
        redis::cmd("ZSCORE")
            .arg(format!("{}:workflow-scheduler:completed", queue.prefix))
            .arg(id)
            .query::<Option<f64>>(&mut conn)
            .unwrap()
            .is_some()
    };
    let wait_completed = |id: &'static str| async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !completed(id) {
            assert!(Instant::now() < deadline, "job {id} did not complete");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };

    assert_eq!(run_floh(&env, &["jobs", "add", "hello", "--job-id", "before"]).0, 0);
    wait_completed("before").await;

    redis.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart();
    assert_eq!(run_floh(&env, &["jobs", "add", "hello", "--job-id", "after"]).0, 0);
    wait_completed("after").await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failed_set_keeps_the_newest_5000() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let host = Host::start(&queue, &[], "", &[("WORKER_CONCURRENCY", "16")]).await;
    let settings = floh::config::Settings::load_from(queue.env(&[])).unwrap();
    let producer = floh::queue::open(&settings).await.unwrap();
    let total = floh::queue::KEEP_FAILED + 10;
    enqueue_doomed(producer.as_ref(), total).await;
    let failed_key = format!("{}:workflow-scheduler:failed", queue.prefix);
    let count = |key: &str| -> (u64, u64) {
        let mut conn = TestQueue::redis();
        let failed: u64 = redis::cmd("ZCARD").arg(key).query(&mut conn).unwrap();
        let waiting: u64 = redis::cmd("LLEN").arg(key.replace(":failed", ":wait")).query(&mut conn).unwrap();
        (failed, waiting)
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, waiting) = count(&failed_key);
        let active: u64 = redis::cmd("LLEN")
            .arg(failed_key.replace(":failed", ":active"))
            .query(&mut TestQueue::redis())
            .unwrap();
        if waiting == 0 && active == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{waiting} jobs still waiting");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(count(&failed_key).0, floh::queue::KEEP_FAILED as u64);

    let mut conn = TestQueue::redis();
    let gone: Vec<usize> = (0..total)
        .filter(|n| {
            !redis::cmd("EXISTS")
                .arg(format!("{}:workflow-scheduler:doomed-{n}", queue.prefix))
                .query::<bool>(&mut conn)
                .unwrap()
        })
        .collect();
    assert_eq!(gone.len(), 10, "exactly the 10 oldest failures are removed, hash and all: {gone:?}");
    assert!(gone.iter().all(|n| *n < 100), "the removed ones are among the oldest: {gone:?}");
    let reason: String = redis::cmd("HGET")
        .arg(format!("{}:workflow-scheduler:doomed-{}", queue.prefix, total - 1))
        .arg("failedReason")
        .query(&mut conn)
        .unwrap();
    assert_eq!(reason, "no plugin for job type no-such-job");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bull_board_lists_floh_jobs_failures_schedulers_and_workers() {
    needs!(Postgres, Redis, Node);
    let queue = TestQueue::new();
    let host = Host::start(&queue, &["hostile", "stuck-run-recovery"], "", &[]).await;
    host.sync_schedules().await;
    let env = queue.env(&[]);
    assert_eq!(
        run_floh(&env, &["jobs", "add", "hostile", "--data", r#"{"do":"query"}"#, "--job-id", "denied"]).0,
        0
    );
    wait_for(&queue, "denied", Duration::from_secs(20), |job| job["state"] == "failed").await;

    let board = tokio::task::block_in_place(|| node::run("board.mjs", &[], &queue.prefix));
    let ours = board["failed"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "workflow-scheduler")
        .expect("queue listed");
    assert_eq!(ours["counts"]["failed"], 1, "{ours}");
    let job =
        ours["jobs"].as_array().unwrap().iter().find(|j| j["id"] == "denied").expect("failed job listed");
    assert!(job["failedReason"].as_str().unwrap().contains("capability `db` is not granted"), "{job}");
    assert_eq!(job["stacktrace"].as_array().map(Vec::len), Some(1), "{job}");

    let schedulers = board["schedulers"]["schedulers"].as_array().unwrap();
    assert!(
        schedulers.iter().any(|s| s["id"] == "stuck-run-recovery" && s["pattern"] == "*/15 * * * *"),
        "{schedulers:?}"
    );
    let workers = board["workers"].to_string();
    assert!(workers.contains("floh@"), "the floh worker is listed by name: {workers}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_adds_jobs_through_the_same_producer() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let host = Host::start(&queue, &[], "", &[]).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/admin/jobs", host.base);
    let body = json!({ "name": "escalation-reminder", "data": { "approvalId": "a1" }, "delay": 60000, "jobId": "remind-a1" });
    let anonymous = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    let added =
        client.post(&url).bearer_auth(floh::config::vars::DEV_ADMIN_TOKEN).json(&body).send().await.unwrap();
    assert_eq!(added.status().as_u16(), 201);
    assert_eq!(
        added.json::<Value>().await.unwrap(),
        json!({ "id": "remind-a1", "name": "escalation-reminder" })
    );
    let seen = inspect(&queue, "remind-a1");
    let job = &seen["job"];
    assert_eq!(
        (&job["state"], &job["data"], &job["opts"]["delay"]),
        (&json!("delayed"), &json!({ "approvalId": "a1" }), &json!(60000))
    );
    assert_eq!(job["opts"]["attempts"], 4);

    let nameless = client
        .post(&url)
        .bearer_auth(floh::config::vars::DEV_ADMIN_TOKEN)
        .json(&json!({ "name": " " }))
        .send()
        .await
        .unwrap();
    assert_eq!(nameless.status().as_u16(), 422);

    let purge = client
        .post(format!("{}/api/admin/logging/purge", host.base))
        .bearer_auth(floh::config::vars::DEV_ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(purge.status().as_u16(), 409, "no log-retention plugin is loaded");
    let error = purge.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
    assert!(error.starts_with("no plugin handles log-retention: put log-retention.wasm into"), "{error}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_now_runs_log_retention_at_once() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let grants = "[plugins.log-retention]\ngrants = [\"db\", \"settings\", \"audit\"]\n";
    let host = Host::start(&queue, &["log-retention"], grants, &[("LOG_RETENTION_DAYS", "30")]).await;
    let mut conn = host.db.connect().await;
    let now = chrono::Utc::now();
    for (id, age_days) in [("old", 45), ("recent", 2)] {
        sqlx::query("INSERT INTO system_log (id, created_at, level, source, message) VALUES ($1, $2, 'info', 'test', $1)")
            .bind(id)
            .bind(now - chrono::Duration::days(age_days))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let url = format!("{}/api/admin/logging/purge", host.base);
    let client = reqwest::Client::new();
    assert_eq!(client.post(&url).send().await.unwrap().status().as_u16(), 401);

    let purge = client.post(&url).bearer_auth(floh::config::vars::DEV_ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(purge.status().as_u16(), 201);
    let body: Value = purge.json().await.unwrap();
    assert_eq!(body["name"], "log-retention");
    let id = body["id"].as_str().unwrap();
    let done = wait_for(&queue, id, Duration::from_secs(20), |job| job["state"] == "completed").await;
    assert_eq!(done["job"]["returnvalue"], json!({ "deleted": 1, "retentionDays": 30 }));
    let left: Vec<String> = sqlx::query_scalar("SELECT id FROM system_log WHERE source = 'test'")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, ["recent"]);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_schedule_rows_get_trigger_workflow_schedulers() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let host = Host::start(&queue, &[], "", &[]).await;
    let mut conn = host.db.connect().await;
    let now = chrono::Utc::now();
    sqlx::query(
        "INSERT INTO workflows (id, name, created_at, updated_at) VALUES ('wf', 'quarterly review', $1, $1)",
    )
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO workflow_schedules (id, workflow_id, cron, timezone, created_at, updated_at)
         VALUES ('s1', 'wf', '0 9 1 */3 *', 'America/New_York', $1, $1),
                ('s2', 'wf', 'every quarter', 'UTC', $1, $1)",
    )
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();
    host.sync_expecting_problem("workflow_schedules row s2: cron \"every quarter\"").await;
    let listed = schedulers(&queue);
    let s1 = scheduler(&listed, "trigger-workflow:s1").expect("scheduler for row s1");
    assert_eq!(
        (&s1["name"], &s1["pattern"], &s1["tz"]),
        (&json!("trigger-workflow"), &json!("0 9 1 */3 *"), &json!("America/New_York"))
    );
    assert_eq!(s1["data"], json!({ "scheduleId": "s1" }));
    assert!(scheduler(&listed, "trigger-workflow:s2").is_none());

    sqlx::query("DELETE FROM workflow_schedules WHERE id = 's1'").execute(&mut conn).await.unwrap();
    host.sync_schedules().await;
    assert!(
        scheduler(&schedulers(&queue), "trigger-workflow:s1").is_none(),
        "a deleted row loses its scheduler"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_added_from_the_command_line_act_on_the_demo_data() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let jobs = ["role-expiry-check", "document-expiry-check", "stuck-run-recovery"];
    let host = Host::start(&queue, &jobs, &fixtures::example_toml(), &[]).await;
    let pool = sqlx::PgPool::connect(&host.db.url()).await.unwrap();
    floh::seed::demo(&floh::database::Either::Postgres(pool.clone()), chrono::Utc::now()).await.unwrap();
    let env = queue.env(&[]);
    for (job, key, changed) in [
        ("role-expiry-check", "revoked", 2),
        ("document-expiry-check", "revoked", 2),
        ("stuck-run-recovery", "failed", 1),
    ] {
        let (code, stdout, stderr) = run_floh(&env, &["jobs", "add", job]);
        assert_eq!(code, 0, "{stderr}");
        let done =
            wait_for(&queue, stdout.trim(), Duration::from_secs(20), |job| job["state"] == "completed").await;
        assert_eq!(done["job"]["returnvalue"][key], changed, "{job}: {done}");
    }
    let revoked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM role_assignments WHERE status = 'revoked' AND id LIKE 'demo-%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(revoked, 5, "four revoked by the jobs, one revoked in the demo data already");
    host.stop().await;
}

/// The value of the sample `name{labels}` in a Prometheus scrape, 0 when absent.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
}

async fn scrape(host: &Host) -> String {
    let response = reqwest::get(format!("{}/metrics", host.base)).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_jobs_plugin_runs_requests_and_health_checks() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let host = Host::start(&queue, &["hello", "hostile"], "", &[]).await;
    let ok = r#"floh_plugin_run_seconds_count{plugin="hello",outcome="ok"}"#;
    let permanent = r#"floh_plugin_run_seconds_count{plugin="hostile",outcome="permanent"}"#;
    let instantiated = r#"floh_plugin_instantiation_seconds_count{plugin="hello"}"#;
    let before = scrape(&host).await;

    assert_eq!(add_and_wait(&queue, "hello", "{}")["state"], "completed");
    assert_eq!(add_and_wait(&queue, "hostile", r#"{"do":"query"}"#)["state"], "failed");
    let after = scrape(&host).await;
    assert!(sample(&after, ok) >= sample(&before, ok) + 1.0, "{after}");
    assert!(sample(&after, permanent) >= sample(&before, permanent) + 1.0, "{after}");
    assert!(sample(&after, instantiated) >= sample(&before, instantiated) + 1.0, "{after}");
    assert!(after.contains("# TYPE floh_plugin_run_seconds histogram"), "{after}");
    assert!(
        after.contains(r#"floh_plugin_instantiation_seconds_bucket{plugin="hello",le="0.001"}"#),
        "{after}"
    );
    let completed = r#"floh_jobs_total{job="hello",outcome="completed"}"#;
    let failed = r#"floh_jobs_total{job="hostile",outcome="failed"}"#;
    assert!(sample(&after, completed) >= sample(&before, completed) + 1.0, "{after}");
    assert!(sample(&after, failed) >= sample(&before, failed) + 1.0, "{after}");
    assert!(after.contains(r#"floh_job_duration_seconds_count{job="hello",outcome="completed"}"#), "{after}");

    reqwest::get(format!("{}/api/health", host.base)).await.unwrap();
    let later = scrape(&host).await;
    assert!(
        sample(&later, r#"floh_health_check_seconds_count{check="database",result="ok"}"#) >= 1.0,
        "{later}"
    );
    assert!(
        sample(&later, r#"floh_http_requests_total{method="GET",route="/api/health",status="200"}"#) >= 1.0
    );
    assert!(sample(&later, r#"floh_http_requests_total{method="GET",route="/metrics",status="200"}"#) >= 1.0);
    for gauge in [
        r#"floh_queue_jobs{state="completed"}"#,
        r#"floh_plugins{status="loaded"}"#,
        r#"floh_db_pool_connections{state="idle"}"#,
    ] {
        assert!(later.lines().any(|line| line.starts_with(gauge)), "{gauge} missing: {later}");
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_schedules_an_approvals_reminder_and_escalation() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let host = Host::start(&queue, &[], "", &[]).await;
    let mut conn = host.db.connect().await;
    let now = chrono::Utc::now();
    sqlx::query("INSERT INTO users (id, email, display_name, created_at, updated_at) VALUES ('u1', 'u1@example.com', 'U1', $1, $1)")
        .bind(now)
        .execute(&mut conn)
        .await
        .unwrap();
    for (id, status) in [("a1", "pending"), ("a2", "approved")] {
        sqlx::query(
            "INSERT INTO approvals (id, subject, approver_id, status, due_at, created_at, updated_at)
             VALUES ($1, 'Access', 'u1', $2, $3, $4, $4)",
        )
        .bind(id)
        .bind(status)
        .bind(now + chrono::Duration::hours(72))
        .bind(now)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let client = reqwest::Client::new();
    let url = |id: &str| format!("{}/api/admin/approvals/{id}/escalations", host.base);
    let post = |id: &str| client.post(url(id)).bearer_auth(floh::config::vars::DEV_ADMIN_TOKEN).send();
    assert_eq!(client.post(url("a1")).send().await.unwrap().status().as_u16(), 401);

    let scheduled = post("a1").await.unwrap();
    assert_eq!(scheduled.status().as_u16(), 201);
    let scheduled: Value = scheduled.json().await.unwrap();
    assert_eq!(scheduled["reminder"], "escalation-reminder:a1:1");
    let reassignment = scheduled["reassignment"].as_str().unwrap().to_owned();
    assert!(reassignment.starts_with("escalation-reassignment:a1:"), "{scheduled}");

    let reminder = inspect(&queue, "escalation-reminder:a1:1")["job"].clone();
    assert_eq!((&reminder["state"], &reminder["opts"]["delay"]), (&json!("delayed"), &json!(24 * 3_600_000)));
    let escalation = inspect(&queue, &reassignment)["job"].clone();
    let delay = escalation["opts"]["delay"].as_u64().unwrap();
    assert!((71 * 3_600_000..=72 * 3_600_000).contains(&delay), "due in 72 hours: {delay}");
    assert_eq!(escalation["data"], json!({ "approvalId": "a1" }));

    assert_eq!(
        post("a1").await.unwrap().json::<Value>().await.unwrap(),
        scheduled,
        "scheduling twice is harmless"
    );
    assert_eq!(inspect(&queue, "x")["counts"]["delayed"], 2);
    assert_eq!(post("a2").await.unwrap().status().as_u16(), 409);
    assert_eq!(post("nope").await.unwrap().status().as_u16(), 404);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_runs_checkpoints_and_report_deliveries_on_their_own() {
    needs!(Postgres, Redis, Node);
    let queue = TestQueue::new();
    let sink = crate::smtp::SmtpSink::start();
    let checkpoints = tempfile::tempdir().unwrap();
    let path = checkpoints.path().display().to_string();
    let host = Host::start(
        &queue,
        &["audit-checkpoint", "deliver-scheduled-report"],
        &fixtures::example_toml(),
        &[
            ("AUDIT_CHECKPOINT_SCHEDULE", "*/2 * * * * *"),
            ("AUDIT_CHECKPOINT_PATH", &path),
            ("SMTP_URL", &sink.url()),
            ("MAIL_FROM", "floh@example.com"),
        ],
    )
    .await;
    let pool = sqlx::PgPool::connect(&host.db.url()).await.unwrap();
    let now = chrono::Utc::now();
    let mut tx = floh::database::Either::Postgres(pool.begin().await.unwrap());
    let event = floh::audit::AuditEvent {
        actor: "system:test".into(),
        action: "thing.changed".into(),
        target: "thing:1".into(),
        reason: "because".into(),
        details: "{}".into(),
    };
    floh::audit::append(&mut tx, &event, now).await.unwrap();
    tx.commit().await.unwrap();
    sqlx::query(
        "INSERT INTO scheduled_reports (id, name, report_type, cron, recipients, created_at, updated_at)
         VALUES ('every-2s', 'Access', 'active-assignments', '*/2 * * * * *', '[\"ops@example.com\"]', $1, $1)",
    )
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(host.sync_schedules().await["created"], json!(["deliver-scheduled-report:every-2s"]));

    let delivered = tokio::task::block_in_place(|| sink.next());
    assert_eq!(delivered["rcptTo"], json!(["ops@example.com"]));
    let file = checkpoints.path().join("checkpoint-000000000001.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !file.exists() {
        assert!(Instant::now() < deadline, "no checkpoint was written by the scheduled job");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The delivery is recorded just after the mail leaves.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (deliveries, occurrences): (i64, i64) =
            sqlx::query_as("SELECT count(*), count(DISTINCT scheduled_for) FROM report_deliveries")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(deliveries, occurrences, "one delivery per occurrence");
        if deliveries >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the delivery was never recorded");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    host.stop().await;
}
