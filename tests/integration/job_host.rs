//! A plugin host over a fresh database, for running real components through the executor.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use floh::clock::{Clock, ManualClock};
use floh::config::Settings;
use floh::plugins::PluginHost;
use floh::plugins::executor::{JobFailure, JobOutput, JobRequest};
use serde_json::Value;

use crate::database::{Backend, Database};
use crate::{fixtures, services};

pub const NOW: i64 = 1_800_000_000_000;

pub fn now() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(NOW).unwrap()
}

pub struct Host {
    pub plugins: PluginHost,
    pub db: Database,
    pub dir: tempfile::TempDir,
    _config: tempfile::TempDir,
}

impl Host {
    /// A plugin host over a fresh SQLite database (with the embedded queue: nothing to
    /// install) and a PLUGINS_DIR holding `files` (fixture name, file name), with `toml` as
    /// floh.toml. For what does not depend on the database.
    pub async fn start(files: &[(&str, &str)], toml: &str, env: &[(&str, &str)]) -> Self {
        Self::start_on(Backend::Sqlite, files, toml, env).await
    }

    /// Like [`Host::start`] on the database `backend`.
    pub async fn start_on(
        backend: Backend,
        files: &[(&str, &str)],
        toml: &str,
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_with(backend, files, toml, env, Arc::new(ManualClock::new(now()))).await
    }

    pub async fn start_with(
        backend: Backend,
        files: &[(&str, &str)],
        toml: &str,
        env: &[(&str, &str)],
        clock: Arc<dyn Clock>,
    ) -> Self {
        let db = Database::migrated(backend).await;
        let dir = tempfile::tempdir().unwrap();
        for (fixture, file) in files {
            fixtures::install(dir.path(), file, &fixtures::bytes(fixture));
        }
        let config = tempfile::tempdir().unwrap();
        std::fs::write(config.path().join("floh.toml"), toml).unwrap();
        // PostgreSQL with Redis, as in production; SQLite with the embedded queue, as on a laptop.
        let queue = match backend {
            Backend::Postgres => ("REDIS_URL", services::redis_url()),
            Backend::Sqlite => ("QUEUE_PATH", config.path().join("queue.db").display().to_string()),
        };
        let mut pairs = vec![
            ("DATABASE_URL", db.url()),
            queue,
            ("PLUGINS_DIR", dir.path().display().to_string()),
            ("PLUGIN_CACHE_DIR", fixtures::cache_dir().display().to_string()),
            ("FLOH_CONFIG", config.path().join("floh.toml").display().to_string()),
        ];
        pairs.extend(env.iter().map(|(k, v)| (*k, v.to_string())));
        let settings = Settings::load_from(pairs.into_iter().map(|(k, v)| (k.to_owned(), v))).unwrap();
        let plugins =
            PluginHost::start(&settings, db.pool.clone(), clock, floh::queue::open(&settings).await.unwrap())
                .await
                .unwrap();
        Self { plugins, db, dir, _config: config }
    }

    pub async fn run(&self, name: &str, data: Value) -> Result<JobOutput, JobFailure> {
        let job = JobRequest {
            id: format!("job-{}", uuid()),
            name: name.to_owned(),
            data: data.to_string(),
            attempt: 1,
            enqueued_at: now(),
        };
        self.plugins.executor.execute(&job).await
    }

    pub async fn output(&self, name: &str, data: Value) -> Value {
        let done = self.run(name, data).await.expect("the job succeeds");
        serde_json::from_str(&done.output).unwrap()
    }

    pub fn status(&self, file: &str) -> floh::plugins::registry::PluginStatus {
        self.plugins.registry.statuses().into_iter().find(|s| s.file == file).expect("file is listed")
    }
}

pub fn uuid() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string()
}
