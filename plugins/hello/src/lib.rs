//! The smallest floh job: logs a greeting and returns it. The walk-through of docs/plugins.md.

use floh_plugin_sdk::{Job, JobError, Outcome, Plugin, PluginInfo, clock, log};

struct Hello;

const VERSION: &str = if cfg!(feature = "v2") { "2.0.0" } else { env!("CARGO_PKG_VERSION") };

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Data {
    /// Whom to greet.
    name: Option<String>,
    /// Simulated work: keep busy this long before answering (shows an in-flight job finishing
    /// on its version while a new one is swapped in).
    busy_ms: Option<u32>,
}

impl Plugin for Hello {
    fn describe() -> PluginInfo {
        PluginInfo::new("hello", VERSION, "Logs a greeting and returns it")
    }

    fn run(job: Job) -> Result<Outcome, JobError> {
        let data: Data = job.data()?;
        if let Some(ms) = data.busy_ms {
            let until = clock::now() + i64::from(ms);
            while clock::now() < until {}
        }
        let greeting = format!("hello, {}", data.name.as_deref().unwrap_or("world"));
        log::with_fields(log::Level::Info, &greeting, &[("job", &job.id)]);
        floh_plugin_sdk::outcome(&serde_json::json!({ "greeting": greeting, "version": VERSION }))
    }
}

floh_plugin_sdk::export!(Hello);
