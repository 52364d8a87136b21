//! Assembles the plugin runtime from the settings: engine, registry, executor, watcher.

use std::sync::Arc;

use super::executor::Executor;
use super::registry::Registry;
use super::runtime::{Runtime, RuntimeError, RuntimeOptions};
use super::{Services, watcher};
use crate::audit::Signer;
use crate::audit::store::Store;
use crate::clock::Clock;
use crate::config::Settings;
use crate::mail::Mailer;
use crate::queue::JobQueue;
use crate::runtime_settings::RuntimeSettings;
use crate::shutdown::Lifecycle;

/// Instances beyond the job slots, for load-time validation during a hot swap.
const SPARE_INSTANCES: u32 = 8;

pub struct PluginHost {
    pub registry: Arc<Registry>,
    pub executor: Arc<Executor>,
}

impl PluginHost {
    /// Loads every plugin in PLUGINS_DIR (creating the folder if it is missing). Plugins
    /// enqueue through `queue`.
    pub async fn start(
        settings: &Settings,
        db: crate::database::Db,
        clock: Arc<dyn Clock>,
        queue: Arc<dyn JobQueue>,
    ) -> Result<Self, RuntimeError> {
        if let Err(e) = std::fs::create_dir_all(&settings.plugins_dir) {
            tracing::warn!(dir = %settings.plugins_dir.display(), error = %e, "cannot create PLUGINS_DIR");
        }
        let runtime = Arc::new(start_runtime(&runtime_options(settings))?);
        let registry = Arc::new(Registry::new(runtime.clone(), settings.plugins_dir.clone()));
        registry.sync().await;
        for job_type in settings.plugin_policies.keys() {
            if registry.get(job_type).is_none() {
                tracing::warn!(plugin = %job_type, "floh.toml configures [plugins.{job_type}], but no loaded plugin handles that job type");
            }
        }
        let mailer = settings.mail.as_ref().map(Mailer::new).transpose().map_err(RuntimeError::config)?;
        let services = Arc::new(Services {
            settings: RuntimeSettings::new(db.clone(), settings),
            db,
            clock,
            signer: Signer::new(settings.audit.signing_key.expose()),
            queue,
            mailer,
            checkpoints: Store::new(&settings.audit.store),
        });
        let executor = Arc::new(Executor::new(
            runtime,
            registry.clone(),
            services,
            settings.plugin_defaults.clone(),
            &settings.plugin_policies,
        ));
        Ok(Self { registry, executor })
    }

    /// Reloads plugins whenever PLUGINS_DIR changes, until shutdown.
    pub fn watch(&self, lifecycle: &Lifecycle) {
        watcher::spawn(lifecycle, self.registry.clone());
    }
}

/// The engine settings for this host: pooled instances for every job slot.
pub fn runtime_options(settings: &Settings) -> RuntimeOptions {
    let largest_memory = settings.plugin_policies.values().filter_map(|p| p.memory_mib).max().unwrap_or(0);
    RuntimeOptions {
        pooling: true,
        max_instances: settings.worker_concurrency as u32 + SPARE_INSTANCES,
        max_memory_mib: largest_memory.max(settings.plugin_defaults.memory_mib),
        cache_dir: Some(settings.plugin_defaults.cache_dir.clone()),
    }
}

/// The pooling allocator reserves address space up front; where the system refuses that
/// (a tight `ulimit -v`), fall back to allocating instances on demand.
fn start_runtime(options: &RuntimeOptions) -> Result<Runtime, RuntimeError> {
    match Runtime::new(options) {
        Ok(runtime) => Ok(runtime),
        Err(e) if options.pooling => {
            tracing::warn!(error = %e, "pooling allocator unavailable; allocating plugin instances on demand");
            Runtime::new(&RuntimeOptions { pooling: false, ..options.clone() })
        }
        Err(e) => Err(e),
    }
}
