//! Write floh job plugins in Rust.
//!
//! A plugin is a `cdylib` crate that implements [`Plugin`] and calls [`export!`]:
//!
//! ```ignore
//! use floh_plugin_sdk::{Job, JobError, Outcome, Plugin, PluginInfo, log};
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("hello", env!("CARGO_PKG_VERSION"), "Says hello")
//!     }
//!
//!     fn run(job: Job) -> Result<Outcome, JobError> {
//!         log::info(&format!("hello from job {}", job.id));
//!         floh_plugin_sdk::outcome(&serde_json::json!({ "greeted": true }))
//!     }
//! }
//!
//! floh_plugin_sdk::export!(Hello);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the `.wasm` file under
//! `target/wasm32-wasip2/release/` is the plugin.

// Lets the generated code name this crate the same way from here and from plugins.
extern crate self as floh_plugin_sdk;

#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated code, shaped by the WIT
pub mod bindings {
    wit_bindgen::generate!({
        world: "job-plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_job_plugin",
        default_bindings_module: "floh_plugin_sdk::bindings",
        runtime_path: "floh_plugin_sdk::wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen;

pub use bindings::Guest as Plugin;
pub use bindings::floh::plugin::queue;
pub use bindings::floh::plugin::types::{
    Capability, HostError, Job, JobError, Outcome, PluginInfo, Timestamp, Value,
};

pub mod audit;
pub mod clock;
pub mod db;
pub mod http;
pub mod log;
pub mod mail;
pub mod settings;

/// Exports `$plugin` (a type implementing [`Plugin`]) as the component's `describe` and `run`.
#[macro_export]
macro_rules! export {
    ($plugin:ident) => {
        $crate::bindings::export_job_plugin!($plugin);
    };
}

impl PluginInfo {
    /// A plugin that needs no capability beyond `log` and `clock` and has no schedule.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            description: description.to_owned(),
            default_schedule: None,
            capabilities: Vec::new(),
        }
    }

    /// Sets the cron expression (UTC) the host schedules the job on by default.
    pub fn schedule(mut self, cron: &str) -> Self {
        self.default_schedule = Some(cron.to_owned());
        self
    }

    /// Declares the capabilities the plugin needs.
    pub fn needs(mut self, capabilities: &[Capability]) -> Self {
        self.capabilities = capabilities.to_vec();
        self
    }
}

/// A successful run returning `result` (serialised as JSON).
pub fn outcome(result: &impl serde::Serialize) -> Result<Outcome, JobError> {
    serde_json::to_string(result)
        .map(|output| Outcome { output })
        .map_err(|e| JobError::Permanent(format!("cannot encode the outcome: {e}")))
}

impl Job {
    /// The job's payload as `T`. A payload that does not fit fails the job permanently:
    /// retrying cannot fix it.
    pub fn data<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_str(&self.data).map_err(|e| JobError::Permanent(format!("malformed job data: {e}")))
    }

    /// The occurrence a scheduled job stands for: job schedulers give each occurrence the id
    /// `repeat:<scheduler>:<due ms>`. `None` for a job enqueued by hand.
    pub fn occurrence(&self) -> Option<Timestamp> {
        let rest = self.id.strip_prefix("repeat:")?;
        rest.rsplit_once(':')?.1.parse().ok()
    }

    /// When the job was due: its [`occurrence`](Self::occurrence), else `scheduledFor`
    /// (milliseconds) in its data, else when it was enqueued. Scheduled work keyed by this
    /// time is done once per occurrence, however often the job is delivered.
    pub fn due(&self) -> Timestamp {
        self.occurrence()
            .or_else(|| {
                serde_json::from_str::<serde_json::Value>(&self.data).ok()?.get("scheduledFor")?.as_i64()
            })
            .unwrap_or(self.enqueued_at)
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Capability::Log => "log",
            Capability::Clock => "clock",
            Capability::Settings => "settings",
            Capability::Db => "db",
            Capability::Queue => "queue",
            Capability::Mail => "mail",
            Capability::Audit => "audit",
            Capability::Http => "http",
        })
    }
}

/// Words for an operator reading a failed job's reason.
fn explain(error: &HostError) -> String {
    match error {
        HostError::NotGranted(capability) => format!(
            "capability `{capability}` is not granted to this plugin (grant it in floh.toml under [plugins.<name>] grants)"
        ),
        HostError::Invalid(why) => format!("invalid request: {why}"),
        HostError::Unavailable(why) => format!("unavailable: {why}"),
    }
}

/// Lets plugins use `?` on host calls: a missing grant or a bad request fails the job for
/// good, an unavailable dependency makes it retry.
impl From<HostError> for JobError {
    fn from(error: HostError) -> Self {
        match error {
            HostError::Unavailable(_) => JobError::Retryable(explain(&error)),
            HostError::NotGranted(_) | HostError::Invalid(_) => JobError::Permanent(explain(&error)),
        }
    }
}
