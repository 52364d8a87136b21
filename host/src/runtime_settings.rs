//! Runtime settings: values changed through the admin API (the `settings` table), falling back
//! to the host's configuration.

use std::collections::BTreeMap;

use crate::config::Settings;
use crate::database::Db;

/// Setting keys that have a configured fallback, with their values as JSON text.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    db: Db,
    fallbacks: BTreeMap<&'static str, String>,
}

impl RuntimeSettings {
    pub fn new(db: Db, settings: &Settings) -> Self {
        let fallbacks = BTreeMap::from([
            ("stuck_run_timeout_minutes", settings.stuck_run_timeout_minutes.to_string()),
            ("log_retention_days", settings.log_retention_days.to_string()),
            ("run_artifact_retention_days", settings.run_artifact_retention_days.to_string()),
        ]);
        Self { db, fallbacks }
    }

    /// The value of `key` as JSON text: the stored setting, else the configured fallback.
    pub async fn get(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        Ok(self.stored(key).await?.or_else(|| self.fallback(key).map(str::to_owned)))
    }

    /// The value set through the admin API, if any.
    pub async fn stored(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        crate::on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(pool).await
        })
    }

    /// The configured value the setting falls back to.
    pub fn fallback(&self, key: &str) -> Option<&str> {
        self.fallbacks.get(key).map(String::as_str)
    }
}
