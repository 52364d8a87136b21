//! `just bench`: jobs/s through floh's worker and the `hello` plugin at concurrency 1, 8 and
//! 64, with the worker's CPU µs per job, next to a Node `bullmq` 6.7.0 worker running no-op
//! jobs on the same Redis, and on the embedded queue (a SQLite file). Needs PostgreSQL and Redis at the defaults, `plugins-dist/hello.wasm`
//! (`just plugins`) and `tests/node/node_modules` (`npm ci` there).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floh::clock::SystemClock;
use floh::config::Settings;
use floh::plugins::PluginHost;
use floh::queue::{NewJob, WorkerConfig};
use floh::redis_conn::Redis;
use floh::shutdown::Lifecycle;

const JOBS: usize = 2_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    anyhow::ensure!(root.join("plugins-dist/hello.wasm").is_file(), "run `just plugins` first");
    println!("{JOBS} jobs per run");
    for concurrency in [1usize, 8, 64] {
        let (floh_rate, floh_cpu) = floh_run("redis", concurrency).await?;
        let node = node_run(&root, concurrency)?;
        let node_rate = node["jobsPerSecond"].as_f64().unwrap_or(0.0);
        let node_cpu = node["cpuMicrosPerJob"].as_f64().unwrap_or(0.0);
        println!(
            "concurrency {concurrency:>2}: floh {floh_rate:>7.0} jobs/s, {floh_cpu:>6.0} CPU µs/job | node bullmq {node_rate:>7.0} jobs/s, {node_cpu:>6.0} CPU µs/job | floh/node throughput {:.2}",
            floh_rate / node_rate.max(f64::MIN_POSITIVE)
        );
        let (embedded_rate, embedded_cpu) = floh_run("embedded", concurrency).await?;
        println!(
            "concurrency {concurrency:>2}: floh on the embedded queue {embedded_rate:>7.0} jobs/s, {embedded_cpu:>6.0} CPU µs/job"
        );
    }
    Ok(())
}

/// Jobs/s and CPU µs per job of floh's worker on `backend` (`redis` or `embedded`).
async fn floh_run(backend: &str, concurrency: usize) -> anyhow::Result<(f64, f64)> {
    let prefix = format!("floh-bench-{}", std::process::id());
    let scratch = tempfile::tempdir()?;
    let settings = Settings::load_from([
        ("PLUGINS_DIR".to_owned(), "../plugins-dist".to_owned()),
        ("PLUGIN_CACHE_DIR".to_owned(), "../target/bench-plugin-cache".to_owned()),
        ("DATABASE_URL".to_owned(), "postgres://postgres@127.0.0.1:5432/floh_bench".to_owned()),
        ("REDIS_URL".to_owned(), "redis://127.0.0.1:6379".to_owned()),
        ("QUEUE_BACKEND".to_owned(), backend.to_owned()),
        ("QUEUE_PATH".to_owned(), scratch.path().join("queue.db").display().to_string()),
        ("QUEUE_PREFIX".to_owned(), prefix.clone()),
        ("LOG_LEVEL".to_owned(), "warn".to_owned()),
    ])?;
    let pool = floh::database::connect_lazy(&settings.database)?;
    floh::database::migrate(&settings.database, &pool).await?;
    let producer = floh::queue::open(&settings).await?;
    let plugins = PluginHost::start(&settings, pool, Arc::new(SystemClock), producer.clone()).await?;
    for _ in 0..JOBS {
        let job = NewJob { name: "hello".into(), data: serde_json::json!({}), delay: None, job_id: None };
        producer.enqueue(job).await?;
    }
    let lifecycle = Lifecycle::new();
    let cpu_before = cpu_micros();
    let started = Instant::now();
    let config = WorkerConfig { concurrency, drain_timeout: Duration::from_secs(5), name: "bench".into() };
    producer.spawn_worker(&lifecycle, config, plugins.executor.clone());
    loop {
        let counts = producer.overview().await?.counts;
        if counts["waiting"] + counts["active"] == 0 {
            anyhow::ensure!(
                counts["completed"] as usize >= JOBS.min(1000),
                "jobs did not complete: {counts:?}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_micros() - cpu_before) as f64 / JOBS as f64;
    lifecycle.drain(Duration::from_secs(10)).await?;
    if backend == "redis" {
        let redis = Redis::connect_lazy(&settings.queue().redis_url, Duration::from_secs(1))?;
        let mut conn = redis.connection();
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut conn).await?;
        if !keys.is_empty() {
            redis::cmd("DEL").arg(keys).query_async::<()>(&mut conn).await?;
        }
    }
    Ok((JOBS as f64 / elapsed, cpu))
}

fn node_run(root: &Path, concurrency: usize) -> anyhow::Result<serde_json::Value> {
    let output = Command::new("node")
        .args(["bench-worker.mjs", &JOBS.to_string(), &concurrency.to_string()])
        .env("QUEUE_PREFIX", format!("node-bench-{}", std::process::id()))
        .current_dir(root.join("tests/node"))
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "node bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or("{}"))?)
}

/// User + system CPU time of this process, µs (`/proc/self/stat` counts in USER_HZ, 100/s on Linux).
fn cpu_micros() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    ticks * 1_000_000 / 100
}
