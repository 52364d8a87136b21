//! Turning a `.wasm` file into a ready-to-run plugin: compile (or load from cache), link
//! against the host's imports, type-check the exports, and ask it to describe itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use wasmtime::component::types::ComponentItem;

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::Capability;
use wasmtime::Store;

use super::bindings::{JobPlugin, JobPluginPre};
use super::capabilities::HostState;
use super::runtime::{OUTPUT_CAPTURE_BYTES, Runtime};
use crate::audit::sha256_hex;

/// A describe() that takes longer than this is refused.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
const DESCRIBE_MEMORY_MIB: u32 = 64;
/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = "floh:plugin@0.1.1";

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub default_schedule: Option<String>,
    pub capabilities: Vec<Capability>,
}

/// A validated plugin, ready to instantiate.
pub struct LoadedPlugin {
    pub info: PluginInfo,
    pub file: PathBuf,
    pub sha256: String,
    pub loaded_at: DateTime<Utc>,
    /// Whether the compiled code came from the cache rather than a fresh compilation.
    pub from_cache: bool,
    /// The interfaces the component imports (`floh:plugin/db@0.1.0`, `wasi:cli/…`).
    pub imports: Vec<String>,
    pub(super) pre: JobPluginPre<HostState>,
}

/// Why a file was refused, in words for an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

pub async fn load(runtime: &Arc<Runtime>, file: &Path) -> Result<LoadedPlugin, LoadError> {
    let bytes =
        tokio::fs::read(file).await.map_err(|e| LoadError(format!("cannot read {}: {e}", file.display())))?;
    load_bytes(runtime, file, bytes).await
}

pub async fn load_bytes(
    runtime: &Arc<Runtime>,
    file: &Path,
    bytes: Vec<u8>,
) -> Result<LoadedPlugin, LoadError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError(
            "not a WebAssembly file (it does not begin with the `\\0asm` magic number)".to_owned(),
        ));
    }
    if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        return Err(LoadError(
            "this is a core WebAssembly module, not a component; build the plugin with \
             `cargo build --target wasm32-wasip2` (or `cargo component build`)"
                .to_owned(),
        ));
    }
    let sha256 = sha256_hex(&bytes);
    let started = Instant::now();
    let compiling = runtime.clone();
    let digest = sha256.clone();
    let (component, from_cache) = tokio::task::spawn_blocking(move || compiling.compile(&bytes, &digest))
        .await
        .map_err(|e| LoadError(format!("compilation was interrupted: {e}")))?
        .map_err(|e| LoadError(format!("not a valid WebAssembly component: {e}")))?;
    let compiled_in = started.elapsed();

    let instance_pre = runtime.linker().instantiate_pre(&component).map_err(|e| {
        LoadError(format!("its imports do not fit this host ({WIT_PACKAGE} and WASI 0.2): {e:#}"))
    })?;
    let pre = JobPluginPre::new(instance_pre)
        .map_err(|e| LoadError(format!("it does not export the {WIT_PACKAGE} job-plugin world: {e:#}")))?;
    let info = describe(runtime, &pre).await?;
    validate(&info)?;

    let imports = component
        .component_type()
        .imports(runtime.engine())
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .map(|(name, _)| name.to_owned())
        .collect();
    tracing::info!(
        file = %file.display(), plugin = %info.name, version = %info.version, from_cache,
        compile_ms = compiled_in.as_millis() as u64, "plugin loaded"
    );
    Ok(LoadedPlugin { info, file: file.to_owned(), sha256, loaded_at: Utc::now(), from_cache, imports, pre })
}

async fn describe(runtime: &Runtime, pre: &JobPluginPre<HostState>) -> Result<PluginInfo, LoadError> {
    let call = async { Sandbox::new(runtime, pre).await?.describe().await };
    match tokio::time::timeout(DESCRIBE_TIMEOUT, call).await {
        Ok(Ok(info)) => Ok(info),
        Ok(Err(e)) => Err(LoadError(format!("describe() failed: {e:#}"))),
        Err(_) => Err(LoadError(format!("describe() did not return within {DESCRIBE_TIMEOUT:?}"))),
    }
}

/// A live instance of a plugin outside any job: its own store, no host calls.
pub struct Sandbox {
    store: Store<HostState>,
    instance: JobPlugin,
}

impl Sandbox {
    async fn new(runtime: &Runtime, pre: &JobPluginPre<HostState>) -> wasmtime::Result<Self> {
        let mut store =
            runtime.store(None, DESCRIBE_MEMORY_MIB, &MemoryOutputPipe::new(OUTPUT_CAPTURE_BYTES))?;
        let instance = pre.instantiate_async(&mut store).await?;
        Ok(Self { store, instance })
    }

    pub async fn describe(&mut self) -> wasmtime::Result<PluginInfo> {
        let info = self.instance.call_describe(&mut self.store).await?;
        Ok(PluginInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            default_schedule: info.default_schedule,
            capabilities: info.capabilities.into_iter().map(Capability::from).collect(),
        })
    }
}

impl LoadedPlugin {
    /// A fresh instance of this plugin, for `describe` (the benchmark measures with it).
    pub async fn sandbox(&self, runtime: &Runtime) -> wasmtime::Result<Sandbox> {
        Sandbox::new(runtime, &self.pre).await
    }
}

fn validate(info: &PluginInfo) -> Result<(), LoadError> {
    let name_ok = !info.name.is_empty()
        && info.name.len() <= 64
        && info.name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && info.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        return Err(LoadError(format!(
            "describe() names the job type {:?}; expected lower-case letters, digits and `-`",
            info.name
        )));
    }
    let core = info.version.split(['-', '+']).next().unwrap_or_default();
    if core.split('.').count() != 3
        || !core.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(LoadError(format!(
            "describe() gives version {:?}; expected semver such as 1.2.0",
            info.version
        )));
    }
    if let Some(schedule) = &info.default_schedule {
        crate::config::validate_cron(schedule)
            .map_err(|why| LoadError(format!("describe() gives the schedule {schedule:?}: {why}")))?;
    }
    Ok(())
}
