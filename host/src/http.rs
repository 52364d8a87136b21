//! The HTTP surface: routes, and serving them until shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::audit::Signer;
use crate::audit::store::Store;
use crate::clock::Clock;
use crate::plugins::registry::Registry;
use crate::queue::JobQueue;
use crate::runtime_settings::RuntimeSettings;
use crate::scheduler::Scheduler;
use crate::shutdown::Lifecycle;
use crate::{admin, health};

/// What every handler may use.
#[derive(Clone)]
pub struct AppState {
    pub db: crate::database::Db,
    pub lifecycle: Lifecycle,
    pub started: Instant,
    pub health_check_timeout: Duration,
    pub plugins: Arc<Registry>,
    pub scheduler: Arc<Scheduler>,
    pub queue: Arc<dyn JobQueue>,
    /// The admin token, and the key console sessions are signed with.
    pub admin: crate::admin::auth::AdminAuth,
    /// Publishes its public key; signs nothing here.
    pub signer: Signer,
    /// Where checkpoints are published, for the admin API's audit status.
    pub checkpoints: Store,
    pub runtime_settings: RuntimeSettings,
    pub clock: Arc<dyn Clock>,
    /// `[plugins.<name>]` of floh.toml, for the grants the admin API shows.
    pub plugin_policies: Arc<std::collections::BTreeMap<String, crate::config::PluginPolicy>>,
}

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/api/health", get(health::health))
        .route("/api/health/live", get(health::live))
        .route("/api/health/ready", get(health::ready))
        .route("/metrics", get(crate::metrics::scrape))
        .route("/api/audit/public-key", get(audit_public_key))
        .route("/api/openapi.json", get(openapi))
        .nest("/api/admin", admin::routes(state.clone()))
        .merge(crate::console::routes())
        .route_layer(axum::middleware::from_fn(crate::metrics::track_http))
        .with_state(state)
}

/// Serves `router` on `listener` as a task of `lifecycle`. When shutdown begins the listener
/// closes (new connections are refused) and the task ends once in-flight requests are answered.
pub fn spawn_server(lifecycle: &Lifecycle, listener: TcpListener, router: Router) {
    let router =
        router.layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let span = tracing::info_span!(
                "http",
                method = %request.method(),
                path = %request.uri().path(),
                trace_id = tracing::field::Empty,
            );
            crate::telemetry::record_trace_id(&span);
            span
        }));
    let stop = lifecycle.shutdown_started();
    lifecycle.spawn("http server", async move {
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
            tracing::error!(error = %e, "http server failed");
        }
    });
}

/// The key audit checkpoints are signed with, to verify them anywhere.
async fn audit_public_key(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::Json<serde_json::Value> {
    axum::Json(crate::audit::checkpoint::public_key(&state.signer))
}

/// The OpenAPI document of every route (kept true by a test).
async fn openapi() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], include_str!("openapi.json"))
}
