use super::HostState;
use crate::database::Db;
use crate::plugins::Capability;
use crate::plugins::bindings::floh::plugin::log::{Host, Level};

/// Longer messages are cut, so a chatty plugin cannot flood the log table.
const MAX_MESSAGE: usize = 8 * 1024;
const MAX_FIELDS: usize = 32;

impl Host for HostState {
    async fn write(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        let Ok(job) = self.granted(Capability::Log) else { return };
        let message = truncate(message, MAX_MESSAGE);
        let fields: serde_json::Map<String, serde_json::Value> = fields
            .into_iter()
            .take(MAX_FIELDS)
            .map(|(k, v)| (truncate(k, 128), serde_json::Value::String(truncate(v, 1024))))
            .collect();
        let fields = serde_json::Value::Object(fields).to_string();
        let (plugin, job_id) = (job.plugin.as_str(), job.job_id.as_str());
        match level {
            Level::Trace => tracing::trace!(plugin, job = job_id, fields, "{message}"),
            Level::Debug => tracing::debug!(plugin, job = job_id, fields, "{message}"),
            Level::Info => tracing::info!(plugin, job = job_id, fields, "{message}"),
            Level::Warn => tracing::warn!(plugin, job = job_id, fields, "{message}"),
            Level::Error => tracing::error!(plugin, job = job_id, fields, "{message}"),
        }
        if matches!(level, Level::Trace | Level::Debug) {
            return;
        }
        let line = LogLine {
            at: job.services.clock.now(),
            level: level_name(level),
            source: format!("plugin:{plugin}"),
            message,
            fields,
        };
        job.store_log(line).await;
    }
}

/// A row of system_log.
pub struct LogLine {
    at: chrono::DateTime<chrono::Utc>,
    level: &'static str,
    source: String,
    message: String,
    /// JSON object text.
    fields: String,
}

impl LogLine {
    pub async fn store(&self, db: &Db) {
        let stored = crate::on_db!(db, pool => {
            sqlx::query(
                "INSERT INTO system_log (id, created_at, level, source, message, fields)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(self.at)
            .bind(self.level)
            .bind(&self.source)
            .bind(&self.message)
            .bind(&self.fields)
            .execute(pool)
            .await
            .map(drop)
        });
        if let Err(e) = stored {
            tracing::warn!(source = %self.source, error = %e, "could not store a plugin log line in system_log");
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}
