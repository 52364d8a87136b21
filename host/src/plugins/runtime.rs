//! The narrow wrapper around wasmtime: one engine for the process, its linker, the epoch
//! ticker that enforces deadlines, and the on-disk cache of compiled plugins.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::error::Context as _;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::bindings::JobPlugin;
use super::capabilities::{HostState, JobContext};

/// How often the epoch advances. A running plugin yields to the async runtime at every tick,
/// so a CPU-bound plugin never monopolises a worker thread, and its deadline is checked then.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Bytes of a plugin's stdout and stderr kept for the failure trace (panic messages land
/// there). Writing beyond it traps the plugin, so it is generous.
pub const OUTPUT_CAPTURE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Use the pooling instance allocator (faster instantiation; reserves address space for
    /// `max_instances` instances up front). Off, instances are allocated on demand.
    pub pooling: bool,
    /// Instances alive at once (concurrent jobs plus load-time validation).
    pub max_instances: u32,
    /// The largest memory any plugin may be given, MiB.
    pub max_memory_mib: u32,
    /// Where compiled plugins are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct RuntimeError(wasmtime::Error);

impl RuntimeError {
    /// A setting the plugin host cannot work with, e.g. an SMTP_URL its transport refuses.
    pub fn config(message: String) -> Self {
        Self(wasmtime::Error::msg(message))
    }
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    pub fn new(options: &RuntimeOptions) -> Result<Self, RuntimeError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        if options.pooling {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(options)));
        }
        let engine = Engine::new(&config).map_err(RuntimeError)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(RuntimeError)?;
        JobPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(RuntimeError)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticking, stop) = (engine.clone(), ticker_stop.clone());
        std::thread::Builder::new()
            .name("floh-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| RuntimeError(wasmtime::Error::msg(format!("cannot start the epoch ticker: {e}"))))?;
        Ok(Self { engine, linker, cache_dir: options.cache_dir.clone(), ticker_stop })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// Compiles `bytes` (whose SHA-256 is `sha256`), or loads the compiled artifact from the
    /// cache. Returns whether it came from the cache. Blocking: call off the async threads.
    pub fn compile(&self, bytes: &[u8], sha256: &str) -> Result<(Component, bool), RuntimeError> {
        let Some(cached) = self.cache_path(sha256) else {
            return Component::new(&self.engine, bytes).map(|c| (c, false)).map_err(RuntimeError);
        };
        if cached.is_file() {
            // SAFETY: cache files are written only by `store_in_cache` below: complete, renamed
            // into place, never modified afterwards; the key covers the wasmtime version and
            // engine configuration, and a mismatch is rejected by wasmtime as an error.
            match unsafe { Component::deserialize_file(&self.engine, &cached) } {
                Ok(component) => return Ok((component, true)),
                Err(e) => {
                    tracing::warn!(path = %cached.display(), error = %e, "ignoring unusable compiled-plugin cache entry")
                }
            }
        }
        let component = Component::new(&self.engine, bytes).map_err(RuntimeError)?;
        if let Err(e) = store_in_cache(&component, &cached) {
            tracing::warn!(path = %cached.display(), error = %e, "could not cache the compiled plugin");
        }
        Ok((component, false))
    }

    /// `<cache>/<sha256 of the .wasm>-<engine hash>.cwasm`. wasmtime's compatibility hash
    /// covers its own version, the target and every setting that affects compiled code.
    fn cache_path(&self, sha256: &str) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut hasher);
        Some(dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish())))
    }

    /// A fresh store for one run (or one `describe`), capped at `memory_mib`, with no
    /// environment, no sockets, stdout/stderr captured into `output`, and no files beyond the
    /// folders the job's policy grants.
    pub fn store(
        &self,
        job: Option<JobContext>,
        memory_mib: u32,
        output: &MemoryOutputPipe,
    ) -> wasmtime::Result<Store<HostState>> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(output.clone()).stderr(output.clone());
        for (guest, host) in job.iter().flat_map(|job| &job.policy.directories) {
            wasi.preopened_dir(host, guest, FsPerms::ReadWrite)
                .with_context(|| format!("cannot open {} for the plugin", host.display()))?;
        }
        let wasi = wasi.build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_mib as usize * 1024 * 1024)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&self.engine, HostState::new(wasi, limits, job));
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        Ok(store)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

fn pooling_config(options: &RuntimeOptions) -> PoolingAllocationConfig {
    let instances = options.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    // A component built by wasm-component-ld has three core instances (the program and two
    // small adapter shims) and one memory; leave room for plugins with more.
    pool.total_component_instances(instances)
        .total_core_instances(instances * 8)
        .total_memories(instances * 2)
        .total_tables(instances * 8)
        .total_stacks(instances)
        .max_memories_per_component(4)
        .max_memory_size(options.max_memory_mib as usize * 1024 * 1024);
    pool
}

fn store_in_cache(component: &Component, path: &Path) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Write a new file and rename it over: a loaded entry is memory-mapped and must never
    // change under the process using it.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = WRITES.fetch_add(1, Ordering::Relaxed);
    let temporary = path.with_extension(format!("tmp.{}.{unique}", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}
