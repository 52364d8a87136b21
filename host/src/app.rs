//! Start-up and shutdown of `floh serve`: builds every part from [`Settings`], runs them
//! under one [`Lifecycle`], and takes them down in the runbook's order.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::audit::Signer;
use crate::audit::store::Store;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::database;
use crate::http::{self, AppState};
use crate::plugins::PluginHost;
use crate::queue::{self, WorkerConfig};
use crate::runtime_settings::RuntimeSettings;
use crate::scheduler::Scheduler;
use crate::shutdown::{GraceExceeded, Lifecycle};

const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// The worker stops waiting for active jobs this long before the grace period ends, so it
/// closes its connections before the process exits.
const WORKER_DRAIN_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

pub struct App {
    settings: Settings,
    state: AppState,
    plugins: PluginHost,
    listener: TcpListener,
}

impl App {
    /// Connects (lazily) to PostgreSQL and Redis, applies migrations unless told not to, and
    /// binds the HTTP listener on `settings.listen`.
    pub async fn start(settings: Settings, migrate: bool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {} (BIND_ADDRESS / PORT)", settings.listen))?;
        Self::with_listener(settings, listener, migrate).await
    }

    /// Like [`App::start`] on an already bound listener.
    pub async fn with_listener(
        settings: Settings,
        listener: TcpListener,
        migrate: bool,
    ) -> anyhow::Result<Self> {
        crate::metrics::init();
        let db = database::connect_lazy(&settings.database)?;
        if migrate {
            database::migrate(&settings.database, &db).await?;
            tracing::info!("database migrations applied");
        }
        let warm = db.clone();
        let min = settings.database.pool_min;
        tokio::spawn(async move { database::warm_up(&warm, min).await });
        let producer = queue::open(&settings).await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let plugins = PluginHost::start(&settings, db.clone(), clock.clone(), producer.clone()).await?;
        let scheduler =
            Arc::new(Scheduler::new(&settings, producer.clone(), plugins.registry.clone(), db.clone()));
        let state = AppState {
            runtime_settings: RuntimeSettings::new(db.clone(), &settings),
            plugin_policies: Arc::new(settings.plugin_policies.clone()),
            checkpoints: Store::new(&settings.audit.store),
            clock,
            db,
            lifecycle: Lifecycle::new(),
            started: Instant::now(),
            health_check_timeout: settings.health_check_timeout,
            plugins: plugins.registry.clone(),
            scheduler,
            queue: producer,
            admin: crate::admin::auth::AdminAuth::new(settings.admin_token.clone()),
            signer: Signer::new(settings.audit.signing_key.expose()),
        };
        Ok(Self { settings, state, plugins, listener })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The host's routes.
    pub fn router(&self) -> Router {
        http::routes(self.state.clone())
    }

    /// Serves `router` until `stop` resolves, then shuts down in order: health answers 503,
    /// the listener closes, in-flight requests and background tasks finish (bounded by
    /// SHUTDOWN_GRACE_SECONDS), and the database connections close.
    pub async fn serve(self, router: Router, stop: impl Future<Output = ()>) -> Result<(), GraceExceeded> {
        let Self { settings, state, plugins, listener } = self;
        plugins.watch(&state.lifecycle);
        let worker = WorkerConfig {
            concurrency: settings.worker_concurrency,
            drain_timeout: settings.shutdown_grace.saturating_sub(WORKER_DRAIN_MARGIN),
            name: worker_name(),
        };
        state.queue.spawn_worker(&state.lifecycle, worker, plugins.executor.clone());
        state.scheduler.spawn(&state.lifecycle);
        tracing::info!(address = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "listening");
        http::spawn_server(&state.lifecycle, listener, router);

        stop.await;
        tracing::info!(grace = ?settings.shutdown_grace, "shutting down");
        let drained = state.lifecycle.drain(settings.shutdown_grace).await;
        // A task that outlived the grace period may still hold a connection; do not wait on it.
        if tokio::time::timeout(CLOSE_TIMEOUT, state.db.close()).await.is_err() {
            tracing::warn!("database pool did not close within {CLOSE_TIMEOUT:?}");
        }
        match &drained {
            Ok(()) => tracing::info!("shutdown complete"),
            Err(e) => tracing::error!("{e}"),
        }
        drained
    }
}

/// `floh@<host>:<pid>`: how this worker appears in bull-board and `CLIENT LIST`.
fn worker_name() -> String {
    let host = crate::telemetry::host_name().unwrap_or_else(|| "unknown".to_owned());
    format!("floh@{host}:{}", std::process::id())
}
