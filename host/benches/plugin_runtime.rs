//! `just bench`: what running a job in a fresh sandbox costs.
//!
//! 1. Per-job sandbox overhead: instantiate `hello` and call it (`describe`, which touches no
//!    host capability), p50/p99 in µs, with and without the pooling allocator.
//! 2. A whole `hello` job through the executor, including its `system_log` insert, against the
//!    PostgreSQL at DATABASE_URL (default: database `floh_bench` on 127.0.0.1; skipped when
//!    unreachable).
//! 3. Resident memory with 1,000 live instances.
//!
//! Expects `plugins-dist/hello.wasm` (`just plugins` builds it).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floh::clock::SystemClock;
use floh::config::Settings;
use floh::plugins::executor::JobRequest;
use floh::plugins::loader;
use floh::plugins::runtime::{Runtime, RuntimeOptions};

const RUNS: usize = 5_000;
const LIVE: usize = 1_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins-dist/hello.wasm");
    anyhow::ensure!(hello.is_file(), "{} is missing; run `just plugins` first", hello.display());

    for pooling in [true, false] {
        let runtime = Arc::new(Runtime::new(&options(pooling, LIVE as u32 + 8))?);
        let plugin = loader::load(&runtime, &hello).await?;
        let mut samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            wasm(wasm(plugin.sandbox(&runtime).await)?.describe().await)?;
            samples.push(started.elapsed());
        }
        report(&format!("instantiate + call, {}", allocator(pooling)), &mut samples);

        let before = rss_kib();
        let mut live = Vec::with_capacity(LIVE);
        for _ in 0..LIVE {
            live.push(wasm(plugin.sandbox(&runtime).await)?);
        }
        let after = rss_kib();
        println!(
            "{LIVE} live instances, {}: RSS {} MiB -> {} MiB (+{} KiB per instance)",
            allocator(pooling),
            before / 1024,
            after / 1024,
            after.saturating_sub(before) / LIVE as u64
        );
    }

    whole_jobs().await
}

async fn whole_jobs() -> anyhow::Result<()> {
    let database_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/floh_bench".to_owned());
    let settings = Settings::load_from([
        ("PLUGINS_DIR".to_owned(), "../plugins-dist".to_owned()),
        ("PLUGIN_CACHE_DIR".to_owned(), "../target/bench-plugin-cache".to_owned()),
        ("DATABASE_URL".to_owned(), database_url),
    ])?;
    let pool = floh::database::connect_lazy(&settings.database)?;
    if let Err(e) = floh::database::migrate(&settings.database, &pool).await {
        println!("whole hello jobs: skipped, no database ({e})");
        return Ok(());
    }
    let plugins = floh::plugins::PluginHost::start(
        &settings,
        pool,
        Arc::new(SystemClock),
        floh::queue::open(&settings).await?,
    )
    .await?;
    let mut samples = Vec::with_capacity(RUNS / 5);
    for n in 0..RUNS / 5 {
        let job = JobRequest {
            id: format!("bench-{n}"),
            name: "hello".into(),
            data: "{}".into(),
            attempt: 1,
            enqueued_at: chrono::Utc::now(),
        };
        let started = Instant::now();
        plugins.executor.execute(&job).await.map_err(|e| anyhow::anyhow!(e))?;
        samples.push(started.elapsed());
    }
    report("whole hello job via the executor (incl. system_log insert)", &mut samples);
    Ok(())
}

/// wasmtime's error type is not `std::error::Error`.
fn wasm<T>(result: wasmtime::Result<T>) -> anyhow::Result<T> {
    result.map_err(|e| anyhow::anyhow!("{e:#}"))
}

fn options(pooling: bool, max_instances: u32) -> RuntimeOptions {
    RuntimeOptions { pooling, max_instances, max_memory_mib: 64, cache_dir: None }
}

fn allocator(pooling: bool) -> &'static str {
    if pooling { "pooling allocator" } else { "on-demand allocator" }
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_micros();
    println!("{what}: p50 {} µs, p99 {} µs ({} runs)", at(0.50), at(0.99), samples.len());
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        })
        .unwrap_or(0)
}
