//! The loaded plugins, by job type, kept in step with the files of PLUGINS_DIR.
//!
//! A new or changed file is loaded and validated before it replaces anything; a file that
//! fails to load is reported and the version loaded before keeps serving. Jobs hold an `Arc`
//! of the plugin they started on, so a swap never disturbs a running job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use super::loader::{self, LoadedPlugin};
use super::runtime::Runtime;
use crate::audit::sha256_hex;

/// What one file in PLUGINS_DIR amounts to.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PluginStatus {
    pub file: String,
    pub sha256: String,
    /// `loaded`, or `failed` (see `error`; `name` and `version` then describe the older
    /// version that keeps serving, if there is one).
    pub status: String,
    pub error: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    pub loaded_at: Option<DateTime<Utc>>,
    pub from_cache: Option<bool>,
}

struct FileEntry {
    sha256: String,
    error: Option<String>,
    /// The version of this file that serves its job type, if any.
    serving: Option<Arc<LoadedPlugin>>,
}

#[derive(Default)]
struct State {
    by_name: BTreeMap<String, Arc<LoadedPlugin>>,
    files: BTreeMap<PathBuf, FileEntry>,
}

pub struct Registry {
    runtime: Arc<Runtime>,
    dir: PathBuf,
    state: RwLock<State>,
    /// Serialises `sync`, so two rescans never race on the same file.
    syncing: tokio::sync::Mutex<()>,
}

impl Registry {
    pub fn new(runtime: Arc<Runtime>, dir: PathBuf) -> Self {
        Self { runtime, dir, state: RwLock::default(), syncing: tokio::sync::Mutex::new(()) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The plugin serving `job_type`.
    pub fn get(&self, job_type: &str) -> Option<Arc<LoadedPlugin>> {
        self.state.read().expect("registry lock").by_name.get(job_type).cloned()
    }

    /// The job types currently served.
    pub fn job_types(&self) -> Vec<String> {
        self.state.read().expect("registry lock").by_name.keys().cloned().collect()
    }

    pub fn statuses(&self) -> Vec<PluginStatus> {
        let state = self.state.read().expect("registry lock");
        state
            .files
            .iter()
            .map(|(path, entry)| {
                let serving = entry.serving.as_deref();
                PluginStatus {
                    file: path
                        .file_name()
                        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
                    sha256: entry.sha256.clone(),
                    status: if entry.error.is_some() { "failed" } else { "loaded" }.to_owned(),
                    error: entry.error.clone(),
                    name: serving.map(|p| p.info.name.clone()),
                    version: serving.map(|p| p.info.version.clone()),
                    loaded_at: serving.map(|p| p.loaded_at),
                    from_cache: serving.map(|p| p.from_cache),
                }
            })
            .collect()
    }

    /// Brings the registry in line with the folder: loads new and changed `.wasm` files,
    /// unloads removed ones.
    pub async fn sync(&self) {
        let _one_at_a_time = self.syncing.lock().await;
        let present = match wasm_files(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot list PLUGINS_DIR");
                return;
            }
        };
        self.unload_missing(&present);
        for path in present {
            let bytes = match tokio::fs::read(&path).await {
                Ok(bytes) => bytes,
                // Removed or renamed since the listing; the next sync sees it.
                Err(e) => {
                    tracing::debug!(file = %path.display(), error = %e, "plugin file vanished while syncing");
                    continue;
                }
            };
            let sha256 = sha256_hex(&bytes);
            let unchanged = self
                .state
                .read()
                .expect("registry lock")
                .files
                .get(&path)
                .is_some_and(|e| e.sha256 == sha256);
            if unchanged {
                continue;
            }
            let loaded = loader::load_bytes(&self.runtime, &path, bytes).await;
            self.record(path, sha256, loaded);
        }
    }

    fn unload_missing(&self, present: &[PathBuf]) {
        let mut state = self.state.write().expect("registry lock");
        let gone: Vec<PathBuf> = state.files.keys().filter(|path| !present.contains(path)).cloned().collect();
        for path in gone {
            let entry = state.files.remove(&path).expect("listed above");
            if let Some(plugin) = entry.serving {
                state.by_name.remove(&plugin.info.name);
                tracing::warn!(file = %path.display(), plugin = %plugin.info.name, "plugin file removed; its job type is no longer served");
            }
        }
    }

    fn record(&self, path: PathBuf, sha256: String, loaded: Result<LoadedPlugin, loader::LoadError>) {
        let mut state = self.state.write().expect("registry lock");
        let previous = state.files.get(&path).and_then(|entry| entry.serving.clone());
        let outcome = loaded.map_err(|e| e.0).and_then(|plugin| match state.by_name.get(&plugin.info.name) {
            Some(other) if other.file != path => Err(format!(
                "duplicate job type `{}`: already provided by {}",
                plugin.info.name,
                other.file.file_name().unwrap_or_default().to_string_lossy()
            )),
            _ => Ok(Arc::new(plugin)),
        });
        let entry = match outcome {
            Ok(plugin) => {
                if let Some(previous) = &previous
                    && previous.info.name != plugin.info.name
                {
                    state.by_name.remove(&previous.info.name);
                }
                state.by_name.insert(plugin.info.name.clone(), plugin.clone());
                FileEntry { sha256, error: None, serving: Some(plugin) }
            }
            Err(error) => {
                match &previous {
                    Some(old) => {
                        tracing::error!(file = %path.display(), %error, "plugin refused; version {} keeps serving", old.info.version)
                    }
                    None => tracing::error!(file = %path.display(), %error, "plugin refused"),
                }
                FileEntry { sha256, error: Some(error), serving: previous }
            }
        };
        state.files.insert(path, entry);
    }
}

/// The `.wasm` files of `dir`, sorted; hidden files (temporary names of writers) are skipped.
fn wasm_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden && path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
