//! Configuration: built-in defaults, then an optional `floh.toml`, then environment variables.
//!
//! Every value is read as text and validated here, so one run reports every bad value at once
//! (one line each, naming the variable) instead of stopping at the first.

mod parse;
mod plugin_policy;
mod secrets;
pub mod vars;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};

pub use plugin_policy::PluginPolicy;
pub use secrets::Secret;
use vars::Var;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where signed audit checkpoints are published (AUDIT_CHECKPOINT_STORE).
#[derive(Debug, Clone)]
pub enum CheckpointStore {
    /// One JSON file per checkpoint in this folder (AUDIT_CHECKPOINT_PATH).
    File(PathBuf),
    /// One object per checkpoint in an S3-compatible bucket.
    S3(S3Settings),
    /// One event per checkpoint to a SIEM collector (AUDIT_CHECKPOINT_SIEM_URL): RFC 5424
    /// syslog over TCP (`syslog+tcp://`) or JSON over HTTP (`http://`, `https://`).
    Siem(url::Url),
}

#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    /// Path-style base URL, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`.
    pub endpoint: url::Url,
    pub access_key_id: String,
    pub secret_access_key: Secret<String>,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: Secret<String>,
    pub pool_max: u32,
    pub pool_min: u32,
    pub idle_timeout: Duration,
    pub connection_timeout: Duration,
    /// How long a writer waits for a SQLite file's write lock: as long as a job may hold it
    /// (the longest plugin timeout, since a job's transaction ends with its run), and at least
    /// the connection timeout.
    pub lock_wait: Duration,
}

#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub store: CheckpointStore,
    pub schedule: String,
    pub signing_key: Secret<[u8; 32]>,
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub smtp_url: Secret<String>,
    pub from: String,
}

/// Where the job queue lives: Redis in BullMQ's layout, or a SQLite file of the host's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueBackend {
    Redis,
    Embedded,
}

/// The validated configuration of one host process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub listen: SocketAddr,
    pub health_check_timeout: Duration,
    pub database: DatabaseSettings,
    /// Set whenever the queue backend is Redis.
    pub redis_url: Option<Secret<String>>,
    pub stuck_run_timeout_minutes: u32,
    pub log_retention_days: u32,
    pub run_artifact_retention_days: u32,
    pub audit: AuditSettings,
    pub admin_token: Secret<String>,
    pub mail: Option<MailSettings>,
    pub plugins_dir: PathBuf,
    pub worker_concurrency: usize,
    pub shutdown_grace: Duration,
    pub log_level: String,
    pub log_format: LogFormat,
    /// OTLP/HTTP collector spans are exported to (`<endpoint>/v1/traces`), if any.
    pub otlp_endpoint: Option<url::Url>,
    pub plugin_defaults: PluginDefaults,
    /// Where the job queue lives.
    pub queue_backend: QueueBackend,
    /// The embedded queue's SQLite file.
    pub queue_path: PathBuf,
    /// BullMQ's key prefix of the queue.
    pub queue_prefix: String,
    /// The first retry's delay; each further retry doubles it.
    pub retry_base_delay: Duration,
    /// How long a job's lock lasts without renewal.
    pub lock_duration: Duration,
    /// How often workers look for jobs whose lock expired.
    pub stalled_interval: Duration,
    /// `[plugins.<job-name>]` tables of `floh.toml`, by job name.
    pub plugin_policies: BTreeMap<String, PluginPolicy>,
    /// The merged raw values, kept for `floh check-config`.
    /// Kept behind `Secret` so that `Debug` output of the settings cannot leak a raw value.
    effective: Secret<BTreeMap<&'static str, String>>,
}

/// Limits and storage for every plugin; `[plugins.<name>]` may override the limits.
#[derive(Debug, Clone)]
pub struct PluginDefaults {
    pub timeout: Duration,
    pub memory_mib: u32,
    pub cache_dir: PathBuf,
}

impl Settings {
    /// Where the job queue lives and how it retries.
    pub fn queue(&self) -> crate::queue::QueueSettings {
        crate::queue::QueueSettings {
            backend: self.queue_backend,
            redis_url: self.redis_url.as_ref().map(|url| url.expose().clone()).unwrap_or_default(),
            path: self.queue_path.clone(),
            prefix: self.queue_prefix.clone(),
            retry_base_delay: self.retry_base_delay,
            lock_duration: self.lock_duration,
            stalled_interval: self.stalled_interval,
        }
    }
}

/// Checks a cron expression as the scheduler will read it.
pub fn validate_cron(expression: &str) -> Result<String, String> {
    parse::cron(expression)
}

/// One bad value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong, led by the variable (or file) it concerns.
    pub message: String,
}

/// Everything wrong with a configuration, one problem per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", lines(.problems))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

fn lines(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  {}", p.message)).collect::<Vec<_>>().join("\n")
}

impl Settings {
    /// Loads from this process's environment and the file it names.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::vars())
    }

    /// Loads from the given environment (and the `floh.toml` it names), for callers that
    /// must not read or change the process environment.
    pub fn load_from(env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let (raw, policies) = merge_sources(&env)?;
        Validator::new(raw).finish(policies)
    }

    /// `NAME=value` lines of the effective configuration, secrets masked.
    pub fn redacted_lines(&self) -> Vec<String> {
        vars::ALL
            .iter()
            .map(|var| match self.effective.expose().get(var.name) {
                Some(value) => format!("{}={}", var.name, secrets::redact(var, value)),
                None => format!("{}= (unset)", var.name),
            })
            .collect()
    }
}

/// The key of the `[plugins.<name>]` tables in `floh.toml`.
const PLUGINS_TABLE: &str = "plugins";

type RawValues = BTreeMap<&'static str, String>;
type RawPolicies = BTreeMap<String, plugin_policy::RawPolicy>;

/// Reads defaults, the TOML file and the environment into one map of raw text values, plus the
/// file's plugin tables.
fn merge_sources(env: &BTreeMap<String, String>) -> Result<(RawValues, RawPolicies), ConfigError> {
    let problem = |message: String| ConfigError { problems: vec![Problem { message }] };

    let explicit_file = env.get(vars::FLOH_CONFIG.name);
    let default_file = vars::FLOH_CONFIG.default.unwrap_or_default();
    let file = PathBuf::from(explicit_file.map_or(default_file, |s| s.as_str()));
    if explicit_file.is_some() && !file.is_file() {
        return Err(problem(format!(
            "{}={}: file not found; point it at a readable floh.toml or unset it",
            vars::FLOH_CONFIG.name,
            file.display()
        )));
    }

    let defaults: BTreeMap<String, String> =
        vars::ALL.iter().filter_map(|var| Some((var.key(), var.default?.to_owned()))).collect();
    let from_env: BTreeMap<String, String> = vars::ALL
        .iter()
        .filter(|var| var.name != vars::FLOH_CONFIG.name)
        .filter_map(|var| Some((var.key(), env.get(var.name)?.clone())))
        .collect();

    let mut figment = Figment::from(Serialized::defaults(defaults));
    if file.is_file() {
        figment = figment.merge(Toml::file_exact(&file));
        check_file_keys(&file)?;
    }
    let figment = figment.merge(Serialized::globals(from_env));
    let in_file = |e: figment::Error| problem(format!("{}: {e}", file.display()));
    let policies: RawPolicies = if figment.contains(PLUGINS_TABLE) {
        figment.extract_inner(PLUGINS_TABLE).map_err(in_file)?
    } else {
        RawPolicies::new()
    };
    let merged: BTreeMap<String, figment::value::Value> = figment.extract().map_err(in_file)?;

    let mut raw = RawValues::new();
    let mut problems = Vec::new();
    for var in vars::ALL {
        let Some(value) = merged.get(&var.key()) else { continue };
        match value.deserialize::<Scalar>() {
            Ok(scalar) => {
                raw.insert(var.name, scalar.to_string());
            }
            Err(_) => problems.push(Problem {
                message: format!("{}: expected a single value, not a table or list", var.name),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    raw.insert(vars::FLOH_CONFIG.name, file.display().to_string());
    Ok((raw, policies))
}

/// A misspelt key in the file would otherwise be ignored without a word.
fn check_file_keys(file: &Path) -> Result<(), ConfigError> {
    let known: Vec<String> = vars::ALL
        .iter()
        .filter(|var| var.name != vars::FLOH_CONFIG.name)
        .map(|var| var.key())
        .chain([PLUGINS_TABLE.to_owned()])
        .collect();
    let keys: BTreeMap<String, figment::value::Value> =
        Figment::from(Toml::file_exact(file)).extract().map_err(|e| ConfigError {
            problems: vec![Problem { message: format!("{}: {e}", file.display()) }],
        })?;
    let problems: Vec<Problem> = keys
        .keys()
        .filter(|key| !known.contains(key))
        .map(|key| Problem {
            message: format!(
                "{}: unknown setting `{key}` (settings are the variable names in lower case)",
                file.display()
            ),
        })
        .collect();
    if problems.is_empty() { Ok(()) } else { Err(ConfigError { problems }) }
}

/// A scalar from TOML or the environment, kept as the text an operator wrote.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Bool(v) => write!(f, "{v}"),
            Scalar::Int(v) => write!(f, "{v}"),
            Scalar::Float(v) => write!(f, "{v}"),
            Scalar::Text(v) => f.write_str(v),
        }
    }
}

/// Parses raw values one variable at a time, collecting every problem.
struct Validator {
    raw: BTreeMap<&'static str, String>,
    problems: Vec<Problem>,
}

impl Validator {
    fn new(raw: BTreeMap<&'static str, String>) -> Self {
        Self { raw, problems: Vec::new() }
    }

    fn report(&mut self, var: &Var, why: impl std::fmt::Display) {
        // A value still at its default is not shown: it reads as what it is, a variable not set.
        let shown = self
            .raw
            .get(var.name)
            .filter(|value| Some(value.as_str()) != var.default)
            .map(|value| secrets::redact(var, value));
        let message = match shown {
            Some(value) => format!("{}={value}: {why}", var.name),
            None => format!("{}: {why}", var.name),
        };
        self.problems.push(Problem { message });
    }

    /// The parsed value of `var`, or `None` (with the problem recorded).
    fn get<T>(&mut self, var: &Var, parse: impl FnOnce(&str) -> Result<T, parse::Expected>) -> Option<T> {
        let raw = self.raw.get(var.name)?.clone();
        parse(&raw).map_err(|why| self.report(var, why)).ok()
    }

    /// Like `get`, for variables without a default: `None` when unset.
    fn optional<T>(
        &mut self,
        var: &Var,
        parse: impl FnOnce(&str) -> Result<T, parse::Expected>,
    ) -> Option<Option<T>> {
        if self.raw.get(var.name).is_none_or(|raw| raw.trim().is_empty()) {
            return Some(None);
        }
        self.get(var, parse).map(Some)
    }

    /// AUDIT_CHECKPOINT_STORE and the variables of the store it names.
    fn checkpoint_store(&mut self) -> Option<CheckpointStore> {
        use vars::*;
        #[derive(Clone, Copy)]
        enum Kind {
            File,
            S3,
            Siem,
        }
        let kind = self.get(&AUDIT_CHECKPOINT_STORE, |s| {
            parse::one_of(s, &[("file", Kind::File), ("s3", Kind::S3), ("siem", Kind::Siem)])
        })?;
        let mut required = |var: &Var, parse: fn(&str) -> Result<String, parse::Expected>| match self
            .optional(var, parse)?
        {
            Some(value) => Some(value),
            None => {
                self.report(var, "must be set when AUDIT_CHECKPOINT_STORE names this store");
                None
            }
        };
        match kind {
            Kind::File => self
                .get(&AUDIT_CHECKPOINT_PATH, parse::non_empty)
                .map(|path| CheckpointStore::File(path.into())),
            Kind::S3 => {
                let bucket = required(&AUDIT_CHECKPOINT_S3_BUCKET, parse::non_empty);
                let access_key_id = required(&AUDIT_CHECKPOINT_S3_ACCESS_KEY_ID, parse::non_empty);
                let secret = required(&AUDIT_CHECKPOINT_S3_SECRET_ACCESS_KEY, parse::non_empty);
                let prefix = self.get(&AUDIT_CHECKPOINT_S3_PREFIX, |s| Ok(s.trim().to_owned()));
                let region = self.get(&AUDIT_CHECKPOINT_S3_REGION, parse::non_empty);
                let endpoint = self.optional(&AUDIT_CHECKPOINT_S3_ENDPOINT, |s| {
                    parse::url_with_scheme(s, &["http", "https"])
                });
                let region = region?;
                let endpoint = match endpoint? {
                    Some(endpoint) => endpoint,
                    None => url::Url::parse(&format!("https://s3.{region}.amazonaws.com")).ok()?,
                };
                Some(CheckpointStore::S3(S3Settings {
                    bucket: bucket?,
                    prefix: prefix?,
                    region,
                    endpoint,
                    access_key_id: access_key_id?,
                    secret_access_key: Secret::new(secret?),
                }))
            }
            Kind::Siem => {
                let url = self.optional(&AUDIT_CHECKPOINT_SIEM_URL, |s| {
                    parse::url_with_scheme(s, &["syslog+tcp", "http", "https"])
                })?;
                match url {
                    Some(url) if url.scheme() != "syslog+tcp" || url.port().is_some() => {
                        Some(CheckpointStore::Siem(url))
                    }
                    Some(_) => {
                        self.report(
                            &AUDIT_CHECKPOINT_SIEM_URL,
                            "a syslog+tcp:// URL needs a port, e.g. :6514",
                        );
                        None
                    }
                    None => {
                        self.report(
                            &AUDIT_CHECKPOINT_SIEM_URL,
                            "must be set when AUDIT_CHECKPOINT_STORE=siem",
                        );
                        None
                    }
                }
            }
        }
    }

    fn finish(mut self, policies: RawPolicies) -> Result<Settings, ConfigError> {
        use vars::*;
        let environment = self.get(&FLOH_ENV, |s| {
            parse::one_of(
                s,
                &[("development", Environment::Development), ("production", Environment::Production)],
            )
        });
        let bind = self.get(&BIND_ADDRESS, parse::ip_addr);
        let port = self.get(&PORT, |s| parse::int_in(s, 1u16, 65535));
        let health_check_timeout = self.get(&HEALTH_CHECK_TIMEOUT_MS, parse::millis);
        let database_url = self.get(&DATABASE_URL, parse::database_url);
        let pool_max = self.get(&DB_POOL_MAX, |s| parse::int_in(s, 1u32, 1000));
        let pool_min = self.get(&DB_POOL_MIN, |s| parse::int_in(s, 0u32, 1000));
        if let (Some(min), Some(max)) = (pool_min, pool_max)
            && min > max
        {
            self.report(&DB_POOL_MIN, format!("must not exceed DB_POOL_MAX ({max})"));
        }
        let idle_timeout = self.get(&DB_POOL_IDLE_TIMEOUT_MS, parse::millis);
        let connection_timeout = self.get(&DB_POOL_CONNECTION_TIMEOUT_MS, parse::millis);
        let redis_url = self.optional(&REDIS_URL, |s| parse::url_with_scheme(s, &["redis", "rediss"]));
        let stuck_run_timeout_minutes =
            self.get(&STUCK_RUN_TIMEOUT_MINUTES, |s| parse::int_in(s, 1u32, 1440));
        let log_retention_days = self.get(&LOG_RETENTION_DAYS, |s| parse::int_in(s, 1u32, 36_500));
        let run_artifact_retention_days =
            self.get(&RUN_ARTIFACT_RETENTION_DAYS, |s| parse::int_in(s, 1u32, 36_500));
        let store = self.checkpoint_store();
        let schedule = self.get(&AUDIT_CHECKPOINT_SCHEDULE, parse::cron);
        let signing_key = self.get(&AUDIT_SIGNING_KEY, parse::ed25519_seed);
        let admin_token = self.get(&ADMIN_TOKEN, parse::non_empty);
        let smtp_url = self.optional(&SMTP_URL, parse::smtp_url);
        let mail_from = self.optional(&MAIL_FROM, parse::mailbox);
        let mail = match (smtp_url, mail_from) {
            (Some(Some(url)), Some(Some(from))) => {
                Some(Some(MailSettings { smtp_url: Secret::new(url), from }))
            }
            (Some(Some(_)), Some(None)) => {
                self.report(
                    &MAIL_FROM,
                    "must be set when SMTP_URL is set (the sender address of every mail)",
                );
                None
            }
            (Some(None), Some(Some(_))) => {
                self.report(&SMTP_URL, "must be set when MAIL_FROM is set");
                None
            }
            (Some(None), Some(None)) => Some(None),
            _ => None,
        };
        let plugins_dir = self.get(&PLUGINS_DIR, parse::non_empty).map(PathBuf::from);
        let worker_concurrency = self.get(&WORKER_CONCURRENCY, |s| parse::int_in(s, 1usize, 1024));
        let shutdown_grace = self.get(&SHUTDOWN_GRACE_SECONDS, |s| parse::seconds(s, 3600));
        let log_level = self.get(&LOG_LEVEL, |s| {
            tracing_subscriber::EnvFilter::try_new(s).map(|_| s.trim().to_owned()).map_err(|e| {
                format!("expected a level (error, warn, info, debug, trace) or filter directives ({e})")
            })
        });
        let log_format = self.get(&LOG_FORMAT, |s| {
            parse::one_of(
                s,
                &[("auto", None), ("text", Some(LogFormat::Text)), ("json", Some(LogFormat::Json))],
            )
        });

        let otlp_endpoint =
            self.optional(&OTEL_EXPORTER_OTLP_ENDPOINT, |s| parse::url_with_scheme(s, &["http", "https"]));
        let plugin_timeout = self.get(&PLUGIN_TIMEOUT_SECONDS, |s| parse::seconds(s, 86_400));
        let plugin_memory_mib = self.get(&PLUGIN_MEMORY_LIMIT_MIB, |s| parse::int_in(s, 1u32, 65_536));
        let plugin_cache_dir = self.get(&PLUGIN_CACHE_DIR, parse::non_empty).map(PathBuf::from);
        let queue_prefix = self.get(&QUEUE_PREFIX, |s| {
            let prefix = parse::non_empty(s)?;
            if prefix.contains(':') {
                Err("expected a key prefix without `:` (BullMQ adds the separators)".to_owned())
            } else {
                Ok(prefix)
            }
        });
        let chosen_backend = self.optional(&QUEUE_BACKEND, |s| {
            parse::one_of(s, &[("redis", QueueBackend::Redis), ("embedded", QueueBackend::Embedded)])
        });
        let queue_backend = match (chosen_backend, &redis_url) {
            (Some(Some(backend)), _) => Some(backend),
            (Some(None), Some(Some(_))) => Some(QueueBackend::Redis),
            (Some(None), Some(None)) => Some(QueueBackend::Embedded),
            _ => None,
        };
        let redis_wanted = queue_backend == Some(QueueBackend::Redis);
        if redis_wanted && matches!(redis_url, Some(None)) {
            self.report(&REDIS_URL, "not set; QUEUE_BACKEND=redis needs it (e.g. redis://127.0.0.1:6379)");
        }
        // Production has no default queue: Redis, or the embedded queue chosen by name.
        let production = environment == Some(Environment::Production);
        if production && matches!(chosen_backend, Some(None)) && matches!(redis_url, Some(None)) {
            self.report(
                &REDIS_URL,
                "not set; production has no default queue: set REDIS_URL, or QUEUE_BACKEND=embedded for \
                 a single host with its own queue file (FLOH_ENV=production)",
            );
        }
        let queue_path = self.get(&QUEUE_PATH, parse::non_empty).map(PathBuf::from);
        let retry_base_delay = self.get(&QUEUE_RETRY_BASE_DELAY_MS, parse::millis);
        let lock_duration = self.get(&QUEUE_LOCK_DURATION_MS, parse::millis);
        let stalled_interval = self.get(&QUEUE_STALLED_INTERVAL_MS, parse::millis);
        let (plugin_policies, policy_problems) = plugin_policy::validate(policies);
        self.problems.extend(policy_problems.into_iter().map(|message| Problem { message }));

        if environment == Some(Environment::Production) {
            // The embedded queue does not use Redis, so its URL needs no production value.
            let unused = |var: &Var| var.name == REDIS_URL.name && !redis_wanted;
            for var in vars::ALL.into_iter().filter(|var| !unused(var)) {
                if let Some(value) = self.raw.get(var.name).cloned()
                    && let Some(why) = secrets::production_objection(var, &value)
                {
                    self.report(var, format!("{why} (FLOH_ENV=production)"));
                }
            }
        }

        let settings = (|| {
            let environment = environment?;
            Some(Settings {
                environment,
                listen: SocketAddr::new(bind?, port?),
                health_check_timeout: health_check_timeout?,
                database: DatabaseSettings {
                    url: Secret::new(database_url?),
                    pool_max: pool_max?,
                    pool_min: pool_min?,
                    idle_timeout: idle_timeout?,
                    connection_timeout: connection_timeout?,
                    lock_wait: plugin_policies
                        .values()
                        .filter_map(|policy| policy.timeout)
                        .chain([plugin_timeout?, connection_timeout?])
                        .max()
                        .expect("two timeouts at least"),
                },
                redis_url: redis_url?.map(|url| Secret::new(url.into())),
                stuck_run_timeout_minutes: stuck_run_timeout_minutes?,
                log_retention_days: log_retention_days?,
                run_artifact_retention_days: run_artifact_retention_days?,
                audit: AuditSettings {
                    store: store?,
                    schedule: schedule?,
                    signing_key: Secret::new(signing_key?),
                },
                admin_token: Secret::new(admin_token?),
                mail: mail?,
                plugins_dir: plugins_dir?,
                worker_concurrency: worker_concurrency?,
                shutdown_grace: shutdown_grace?,
                log_level: log_level?,
                otlp_endpoint: otlp_endpoint?,
                log_format: log_format?.unwrap_or(match environment {
                    Environment::Development => LogFormat::Text,
                    Environment::Production => LogFormat::Json,
                }),
                plugin_defaults: PluginDefaults {
                    timeout: plugin_timeout?,
                    memory_mib: plugin_memory_mib?,
                    cache_dir: plugin_cache_dir?,
                },
                plugin_policies,
                queue_backend: queue_backend?,
                queue_path: queue_path?,
                queue_prefix: queue_prefix?,
                retry_base_delay: retry_base_delay?,
                lock_duration: lock_duration?,
                stalled_interval: stalled_interval?,
                effective: Secret::new(std::mem::take(&mut self.raw)),
            })
        })();
        match settings {
            Some(settings) if self.problems.is_empty() => Ok(settings),
            _ => Err(ConfigError { problems: self.problems }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load_from(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([("FLOH_CONFIG".to_owned(), "/nonexistent-dir-for-floh-tests/floh.toml".to_owned())]),
        )
    }

    fn messages(pairs: &[(&str, &str)]) -> Vec<String> {
        Settings::load_from(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let settings = Settings::load_from(Vec::new()).expect("defaults validate");
        assert_eq!(settings.listen.port(), 3000);
        assert_eq!(settings.database.pool_max, 10);
        assert_eq!(settings.database.pool_min, 2);
        assert_eq!(settings.database.idle_timeout, Duration::from_millis(30_000));
        assert_eq!(settings.database.connection_timeout, Duration::from_millis(5_000));
        assert_eq!(settings.shutdown_grace, Duration::from_secs(25));
        assert_eq!(settings.log_format, LogFormat::Text);
        assert!(settings.mail.is_none());
    }

    #[test]
    fn an_explicit_missing_file_is_an_error() {
        let err = load(&[]).unwrap_err();
        assert!(
            err.problems[0]
                .message
                .starts_with("FLOH_CONFIG=/nonexistent-dir-for-floh-tests/floh.toml: file not found")
        );
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let problems = messages(&[
            ("PORT", "abc"),
            ("DB_POOL_MAX", "0"),
            ("DB_POOL_IDLE_TIMEOUT_MS", "soon"),
            ("DB_POOL_CONNECTION_TIMEOUT_MS", "0"),
            ("STUCK_RUN_TIMEOUT_MINUTES", "0"),
            ("LOG_RETENTION_DAYS", "-1"),
            ("AUDIT_CHECKPOINT_STORE", "ftp"),
            ("DATABASE_URL", "mysql://db/floh"),
            ("REDIS_URL", "localhost:6379"),
            ("AUDIT_CHECKPOINT_SCHEDULE", "every 6 hours"),
        ]);
        let expected_starts = [
            "PORT=abc: expected an integer 1-65535",
            "DB_POOL_MAX=0: expected an integer 1-1000",
            "DB_POOL_IDLE_TIMEOUT_MS=soon: expected an integer",
            "DB_POOL_CONNECTION_TIMEOUT_MS=0: expected an integer",
            "STUCK_RUN_TIMEOUT_MINUTES=0: expected an integer 1-1440",
            "LOG_RETENTION_DAYS=-1: expected an integer 1-36500",
            "AUDIT_CHECKPOINT_STORE=ftp: expected one of: file, s3, siem",
            "DATABASE_URL=mysql://db/floh: expected a URL like postgres://",
            "REDIS_URL=localhost:6379: expected a URL like redis://",
            "AUDIT_CHECKPOINT_SCHEDULE=every 6 hours: expected a cron expression",
        ];
        for start in expected_starts {
            assert!(
                problems.iter().any(|p| p.starts_with(start)),
                "no problem starting {start:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected_starts.len(), "{problems:#?}");
    }

    #[test]
    fn pool_min_may_not_exceed_max() {
        assert_eq!(
            messages(&[("DB_POOL_MAX", "3"), ("DB_POOL_MIN", "5")]),
            ["DB_POOL_MIN=5: must not exceed DB_POOL_MAX (3)"]
        );
    }

    #[test]
    fn mail_needs_both_halves() {
        assert_eq!(
            messages(&[("SMTP_URL", "smtp://127.0.0.1:2525")]),
            ["MAIL_FROM: must be set when SMTP_URL is set (the sender address of every mail)"]
        );
    }

    #[test]
    fn each_checkpoint_store_needs_its_variables() {
        assert_eq!(
            messages(&[("AUDIT_CHECKPOINT_STORE", "s3")]),
            [
                "AUDIT_CHECKPOINT_S3_BUCKET: must be set when AUDIT_CHECKPOINT_STORE names this store",
                "AUDIT_CHECKPOINT_S3_ACCESS_KEY_ID: must be set when AUDIT_CHECKPOINT_STORE names this store",
                "AUDIT_CHECKPOINT_S3_SECRET_ACCESS_KEY: must be set when AUDIT_CHECKPOINT_STORE names this store",
            ]
        );
        assert_eq!(
            messages(&[
                ("AUDIT_CHECKPOINT_STORE", "siem"),
                ("AUDIT_CHECKPOINT_SIEM_URL", "syslog+tcp://siem.example")
            ]),
            [
                "AUDIT_CHECKPOINT_SIEM_URL=syslog+tcp://siem.example: a syslog+tcp:// URL needs a port, e.g. :6514"
            ]
        );
        let settings = Settings::load_from(
            [
                ("AUDIT_CHECKPOINT_STORE", "s3"),
                ("AUDIT_CHECKPOINT_S3_BUCKET", "audit"),
                ("AUDIT_CHECKPOINT_S3_REGION", "eu-west-1"),
                ("AUDIT_CHECKPOINT_S3_ACCESS_KEY_ID", "AKIA"),
                ("AUDIT_CHECKPOINT_S3_SECRET_ACCESS_KEY", "secret"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .unwrap();
        match settings.audit.store {
            CheckpointStore::S3(s3) => {
                assert_eq!(s3.endpoint.as_str(), "https://s3.eu-west-1.amazonaws.com/");
                assert_eq!(s3.prefix, "audit-checkpoints/");
            }
            other => panic!("expected the s3 store, got {other:?}"),
        }
    }

    #[test]
    fn production_names_every_default_secret() {
        let problems = messages(&[("FLOH_ENV", "production")]);
        for name in ["DATABASE_URL", "REDIS_URL", "AUDIT_SIGNING_KEY", "ADMIN_TOKEN"] {
            assert!(
                problems.iter().any(|p| p.starts_with(name) && p.ends_with("(FLOH_ENV=production)")),
                "{name} not named in {problems:#?}"
            );
        }
        assert!(
            !problems.iter().any(|p| p.contains(vars::DEV_ADMIN_TOKEN)),
            "a secret leaked: {problems:#?}"
        );
    }

    #[test]
    fn production_with_the_embedded_queue_needs_no_redis_url() {
        let settings = Settings::load_from(
            [
                ("FLOH_ENV", "production"),
                ("QUEUE_BACKEND", "embedded"),
                ("DATABASE_URL", "postgres://floh:Xk9-2vQ-83nd@db:5432/floh"),
                ("AUDIT_SIGNING_KEY", &"4f".repeat(32)),
                ("ADMIN_TOKEN", "b0c1b4a9e2f84e1f9a7d6c5b4a3f2e1d"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .expect("production settings validate");
        assert_eq!(settings.queue_backend, QueueBackend::Embedded);
        let problems = messages(&[("FLOH_ENV", "production")]);
        assert!(
            problems.iter().any(|p| p.starts_with("DATABASE_URL") && p.contains("not set")),
            "{problems:#?}"
        );
    }

    #[test]
    fn a_single_production_host_may_run_on_files_named_explicitly() {
        let settings = Settings::load_from(
            [
                ("FLOH_ENV", "production"),
                ("QUEUE_BACKEND", "embedded"),
                ("DATABASE_URL", "sqlite:///var/lib/floh/floh.db"),
                ("AUDIT_SIGNING_KEY", &"4f".repeat(32)),
                ("ADMIN_TOKEN", "b0c1b4a9e2f84e1f9a7d6c5b4a3f2e1d"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .expect("production on files validates");
        assert_eq!(settings.database.url.expose(), "sqlite:///var/lib/floh/floh.db");
        // The development default is a file too, but production does not take it silently.
        let problems = messages(&[("FLOH_ENV", "production")]);
        assert!(
            problems.iter().any(|p| p.starts_with("DATABASE_URL: not set")
                && p.contains("or at sqlite://<file> for a single host")),
            "{problems:#?}"
        );
    }

    #[test]
    fn the_sqlite_lock_wait_covers_the_longest_job() {
        let load = |pairs: &[(&str, &str)]| {
            Settings::load_from(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .unwrap()
                .database
                .lock_wait
        };
        assert_eq!(load(&[]), Duration::from_secs(300), "PLUGIN_TIMEOUT_SECONDS");
        assert_eq!(
            load(&[("PLUGIN_TIMEOUT_SECONDS", "1")]),
            Duration::from_secs(5),
            "the connection timeout"
        );
    }

    #[test]
    fn the_queue_is_redis_when_redis_url_is_set_and_embedded_otherwise() {
        let load = |pairs: &[(&str, &str)]| {
            Settings::load_from(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .map(|s| s.queue_backend)
        };
        assert_eq!(load(&[]).unwrap(), QueueBackend::Embedded);
        assert_eq!(load(&[("REDIS_URL", "redis://127.0.0.1:6379")]).unwrap(), QueueBackend::Redis);
        let chosen = [("REDIS_URL", "redis://127.0.0.1:6379"), ("QUEUE_BACKEND", "embedded")];
        assert_eq!(load(&chosen).unwrap(), QueueBackend::Embedded);
        let problems = messages(&[("QUEUE_BACKEND", "redis")]);
        assert!(
            problems.iter().any(|p| p.starts_with("REDIS_URL: not set; QUEUE_BACKEND=redis")),
            "{problems:#?}"
        );
        let problems = messages(&[("FLOH_ENV", "production")]);
        assert!(
            problems.iter().any(|p| p.starts_with("REDIS_URL: not set; production has no default queue")),
            "{problems:#?}"
        );
    }

    #[test]
    fn an_unknown_queue_backend_is_refused_with_the_choices() {
        let problems = messages(&[("QUEUE_BACKEND", "kafka")]);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("QUEUE_BACKEND") && p.contains("redis") && p.contains("embedded")),
            "{problems:#?}"
        );
    }

    #[test]
    fn production_accepts_real_secrets() {
        let settings = Settings::load_from(
            [
                ("FLOH_ENV", "production"),
                ("DATABASE_URL", "postgres://floh:Xk9-2vQ-83nd@db:5432/floh"),
                ("REDIS_URL", "redis://:Qw7-ee81-aa@redis:6379"),
                ("AUDIT_SIGNING_KEY", &"4f".repeat(32)),
                ("ADMIN_TOKEN", "b0c1b4a9e2f84e1f9a7d6c5b4a3f2e1d"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .expect("production settings validate");
        assert_eq!(settings.log_format, LogFormat::Json);
    }

    #[test]
    fn secrets_are_masked_in_check_config_and_debug_output() {
        let settings = Settings::load_from(
            [("DATABASE_URL", "postgres://floh:hunter2@db/floh"), ("ADMIN_TOKEN", "tok-ultra-secret")]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("tok-ultra-secret"), "{debug}");
        let text = settings.redacted_lines().join("\n");
        assert!(text.contains("DATABASE_URL=postgres://floh:***@db/floh"), "{text}");
        assert!(text.contains("ADMIN_TOKEN=<redacted>"), "{text}");
        assert!(!text.contains("hunter2") && !text.contains("tok-ultra-secret"), "{text}");
    }
}
