//! The catalogue of configuration variables: the one place where each name, default and
//! secrecy lives. Loading, `check-config`, and the documentation test all read this table.

/// How a variable's value is shown by `floh check-config` and in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    /// Printed as is.
    Public,
    /// Never printed.
    Secret,
    /// A URL whose password (if any) is masked.
    UrlWithPassword,
}

/// One configuration variable.
#[derive(Debug)]
pub struct Var {
    /// The environment variable name; in `floh.toml` the same name in lower case.
    pub name: &'static str,
    /// The built-in default, or `None` when the variable is optional and unset by default.
    pub default: Option<&'static str>,
    pub secrecy: Secrecy,
}

impl Var {
    /// The key in `floh.toml` (and in figment's merged dictionary).
    pub fn key(&self) -> String {
        self.name.to_ascii_lowercase()
    }
}

const fn public(name: &'static str, default: &'static str) -> Var {
    Var { name, default: Some(default), secrecy: Secrecy::Public }
}

const fn optional(name: &'static str) -> Var {
    Var { name, default: None, secrecy: Secrecy::Public }
}

/// The development fallback for `ADMIN_TOKEN`; production refuses to start with it.
pub const DEV_ADMIN_TOKEN: &str = "floh-dev-admin-token";
/// The development fallback for `AUDIT_SIGNING_KEY` (hex of a well-known 32-byte seed);
/// production refuses to start with it.
pub const DEV_AUDIT_SIGNING_KEY: &str = "666c6f6820646576656c6f706d656e74206175646974206b6579203030303031";

pub const FLOH_ENV: Var = public("FLOH_ENV", "development");
pub const BIND_ADDRESS: Var = public("BIND_ADDRESS", "0.0.0.0");
pub const PORT: Var = public("PORT", "3000");
/// The development default is a SQLite file, so a host runs with nothing else installed.
pub const DATABASE_URL: Var =
    Var { name: "DATABASE_URL", default: Some("sqlite://./data/floh.db"), secrecy: Secrecy::UrlWithPassword };
/// Unset by default: then the queue is the embedded one (see QUEUE_BACKEND).
pub const REDIS_URL: Var = Var { name: "REDIS_URL", default: None, secrecy: Secrecy::UrlWithPassword };
pub const DB_POOL_MAX: Var = public("DB_POOL_MAX", "10");
pub const DB_POOL_MIN: Var = public("DB_POOL_MIN", "2");
pub const DB_POOL_IDLE_TIMEOUT_MS: Var = public("DB_POOL_IDLE_TIMEOUT_MS", "30000");
pub const DB_POOL_CONNECTION_TIMEOUT_MS: Var = public("DB_POOL_CONNECTION_TIMEOUT_MS", "5000");
pub const HEALTH_CHECK_TIMEOUT_MS: Var = public("HEALTH_CHECK_TIMEOUT_MS", "1000");
pub const STUCK_RUN_TIMEOUT_MINUTES: Var = public("STUCK_RUN_TIMEOUT_MINUTES", "30");
pub const LOG_RETENTION_DAYS: Var = public("LOG_RETENTION_DAYS", "30");
pub const RUN_ARTIFACT_RETENTION_DAYS: Var = public("RUN_ARTIFACT_RETENTION_DAYS", "30");
pub const AUDIT_CHECKPOINT_STORE: Var = public("AUDIT_CHECKPOINT_STORE", "file");
pub const AUDIT_CHECKPOINT_PATH: Var = public("AUDIT_CHECKPOINT_PATH", "./data/audit-checkpoints");
pub const AUDIT_CHECKPOINT_S3_BUCKET: Var = optional("AUDIT_CHECKPOINT_S3_BUCKET");
pub const AUDIT_CHECKPOINT_S3_PREFIX: Var = public("AUDIT_CHECKPOINT_S3_PREFIX", "audit-checkpoints/");
pub const AUDIT_CHECKPOINT_S3_REGION: Var = public("AUDIT_CHECKPOINT_S3_REGION", "us-east-1");
pub const AUDIT_CHECKPOINT_S3_ENDPOINT: Var = optional("AUDIT_CHECKPOINT_S3_ENDPOINT");
pub const AUDIT_CHECKPOINT_S3_ACCESS_KEY_ID: Var = optional("AUDIT_CHECKPOINT_S3_ACCESS_KEY_ID");
pub const AUDIT_CHECKPOINT_S3_SECRET_ACCESS_KEY: Var =
    Var { name: "AUDIT_CHECKPOINT_S3_SECRET_ACCESS_KEY", default: None, secrecy: Secrecy::Secret };
pub const AUDIT_CHECKPOINT_SIEM_URL: Var = optional("AUDIT_CHECKPOINT_SIEM_URL");
pub const AUDIT_CHECKPOINT_SCHEDULE: Var = public("AUDIT_CHECKPOINT_SCHEDULE", "0 */6 * * *");
pub const AUDIT_SIGNING_KEY: Var =
    Var { name: "AUDIT_SIGNING_KEY", default: Some(DEV_AUDIT_SIGNING_KEY), secrecy: Secrecy::Secret };
pub const ADMIN_TOKEN: Var =
    Var { name: "ADMIN_TOKEN", default: Some(DEV_ADMIN_TOKEN), secrecy: Secrecy::Secret };
pub const SMTP_URL: Var = Var { name: "SMTP_URL", default: None, secrecy: Secrecy::UrlWithPassword };
pub const MAIL_FROM: Var = optional("MAIL_FROM");
pub const PLUGINS_DIR: Var = public("PLUGINS_DIR", "./plugins-dist");
pub const PLUGIN_CACHE_DIR: Var = public("PLUGIN_CACHE_DIR", "./data/plugin-cache");
pub const PLUGIN_TIMEOUT_SECONDS: Var = public("PLUGIN_TIMEOUT_SECONDS", "300");
pub const PLUGIN_MEMORY_LIMIT_MIB: Var = public("PLUGIN_MEMORY_LIMIT_MIB", "256");
/// Unset by default: then `redis` when REDIS_URL is set, else `embedded`.
pub const QUEUE_BACKEND: Var = optional("QUEUE_BACKEND");
pub const QUEUE_PATH: Var = public("QUEUE_PATH", "./data/queue.db");
pub const QUEUE_PREFIX: Var = public("QUEUE_PREFIX", "bull");
pub const QUEUE_RETRY_BASE_DELAY_MS: Var = public("QUEUE_RETRY_BASE_DELAY_MS", "5000");
pub const QUEUE_LOCK_DURATION_MS: Var = public("QUEUE_LOCK_DURATION_MS", "30000");
pub const QUEUE_STALLED_INTERVAL_MS: Var = public("QUEUE_STALLED_INTERVAL_MS", "30000");
pub const WORKER_CONCURRENCY: Var = public("WORKER_CONCURRENCY", "4");
pub const SHUTDOWN_GRACE_SECONDS: Var = public("SHUTDOWN_GRACE_SECONDS", "25");
pub const LOG_LEVEL: Var = public("LOG_LEVEL", "info");
pub const LOG_FORMAT: Var = public("LOG_FORMAT", "auto");
pub const OTEL_EXPORTER_OTLP_ENDPOINT: Var = optional("OTEL_EXPORTER_OTLP_ENDPOINT");

/// Every variable, in the order `check-config` prints them.
pub const ALL: [&Var; 43] = [
    &FLOH_ENV,
    &BIND_ADDRESS,
    &PORT,
    &DATABASE_URL,
    &REDIS_URL,
    &DB_POOL_MAX,
    &DB_POOL_MIN,
    &DB_POOL_IDLE_TIMEOUT_MS,
    &DB_POOL_CONNECTION_TIMEOUT_MS,
    &HEALTH_CHECK_TIMEOUT_MS,
    &STUCK_RUN_TIMEOUT_MINUTES,
    &LOG_RETENTION_DAYS,
    &RUN_ARTIFACT_RETENTION_DAYS,
    &AUDIT_CHECKPOINT_STORE,
    &AUDIT_CHECKPOINT_PATH,
    &AUDIT_CHECKPOINT_S3_BUCKET,
    &AUDIT_CHECKPOINT_S3_PREFIX,
    &AUDIT_CHECKPOINT_S3_REGION,
    &AUDIT_CHECKPOINT_S3_ENDPOINT,
    &AUDIT_CHECKPOINT_S3_ACCESS_KEY_ID,
    &AUDIT_CHECKPOINT_S3_SECRET_ACCESS_KEY,
    &AUDIT_CHECKPOINT_SIEM_URL,
    &AUDIT_CHECKPOINT_SCHEDULE,
    &AUDIT_SIGNING_KEY,
    &ADMIN_TOKEN,
    &SMTP_URL,
    &MAIL_FROM,
    &PLUGINS_DIR,
    &PLUGIN_CACHE_DIR,
    &PLUGIN_TIMEOUT_SECONDS,
    &PLUGIN_MEMORY_LIMIT_MIB,
    &QUEUE_BACKEND,
    &QUEUE_PATH,
    &QUEUE_PREFIX,
    &QUEUE_RETRY_BASE_DELAY_MS,
    &QUEUE_LOCK_DURATION_MS,
    &QUEUE_STALLED_INTERVAL_MS,
    &WORKER_CONCURRENCY,
    &SHUTDOWN_GRACE_SECONDS,
    &LOG_LEVEL,
    &LOG_FORMAT,
    &OTEL_EXPORTER_OTLP_ENDPOINT,
    &FLOH_CONFIG,
];

/// Path of the optional TOML file. Read from the environment only; it cannot name itself.
pub const FLOH_CONFIG: Var = public("FLOH_CONFIG", "floh.toml");
