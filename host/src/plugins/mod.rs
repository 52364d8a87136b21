//! The plugin runtime: every job type is a WebAssembly component from PLUGINS_DIR.
//!
//! - [`runtime`]: the wasmtime engine, linker, epoch ticker and compiled-plugin cache.
//! - [`loader`]: validating a file into a [`loader::LoadedPlugin`].
//! - [`registry`]: the loaded plugins by job type, kept in step with the folder.
//! - [`watcher`]: reloads on changes to the folder.
//! - [`executor`]: runs one job in a fresh sandbox.
//! - [`PluginHost`]: all of the above, assembled from the settings.
//! - `capabilities`: the host side of each WIT import, checked against the grants.

mod bindings;
mod capabilities;
mod capability;
pub mod executor;
mod host;
pub mod loader;
pub mod registry;
pub mod runtime;
pub mod watcher;

pub use capabilities::Services;
pub use capability::Capability;
pub use host::{PluginHost, runtime_options};
