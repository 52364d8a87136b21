//! The operator's policy for each plugin: `[plugins.<job-name>]` tables in `floh.toml`.
//!
//! ```toml
//! [plugins.stuck-run-recovery]
//! grants = ["db", "settings"]
//! timeout_seconds = 60
//!
//! [plugins.entitlement-reconciliation]
//! grants = ["db", "audit", "http"]
//! http_allow = ["scim.example.com"]
//! schedule = "0 2 * * *"
//!
//! [plugins.run-orphan-cleanup]
//! grants = ["db", "settings", "audit"]
//! directories = { "/artifacts" = "/var/lib/floh/artifacts" }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use super::parse;
use crate::plugins::Capability;

/// What one plugin may do, and how it is scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginPolicy {
    /// A disabled plugin is not loaded; its jobs fail with that reason.
    pub enabled: bool,
    /// Overrides the plugin's own default schedule; `Some("off")` is not used, see `unscheduled`.
    pub schedule: Option<String>,
    /// Turns the plugin's default schedule off (`schedule = "off"`).
    pub unscheduled: bool,
    /// Capabilities granted beyond those every plugin has.
    pub grants: BTreeSet<Capability>,
    /// Host names (optionally `host:port`) outgoing HTTP may reach.
    pub http_allow: Vec<String>,
    /// Overrides PLUGIN_TIMEOUT_SECONDS.
    pub timeout: Option<Duration>,
    /// Overrides PLUGIN_MEMORY_LIMIT_MIB.
    pub memory_mib: Option<u32>,
    /// Host folders the plugin may read and write, by the absolute path it sees them at.
    pub directories: BTreeMap<String, PathBuf>,
}

impl Default for PluginPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            schedule: None,
            unscheduled: false,
            grants: BTreeSet::new(),
            http_allow: Vec::new(),
            timeout: None,
            memory_mib: None,
            directories: BTreeMap::new(),
        }
    }
}

impl PluginPolicy {
    pub fn allows(&self, capability: Capability) -> bool {
        Capability::ALWAYS_GRANTED.contains(&capability) || self.grants.contains(&capability)
    }
}

/// A `[plugins.<name>]` table as written.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    enabled: Option<bool>,
    schedule: Option<String>,
    grants: Option<Vec<String>>,
    http_allow: Option<Vec<String>>,
    timeout_seconds: Option<u64>,
    memory_mib: Option<u32>,
    directories: Option<BTreeMap<String, PathBuf>>,
}

/// Validates every table, returning the policies and one message per problem.
pub fn validate(raw: BTreeMap<String, RawPolicy>) -> (BTreeMap<String, PluginPolicy>, Vec<String>) {
    let mut problems = Vec::new();
    let mut policies = BTreeMap::new();
    for (name, raw) in raw {
        let mut problem =
            |what: &str, why: String| problems.push(format!("floh.toml [plugins.{name}] {what}: {why}"));
        let mut policy = PluginPolicy { enabled: raw.enabled.unwrap_or(true), ..PluginPolicy::default() };
        match raw.schedule.as_deref().map(str::trim) {
            None => {}
            Some("off") => policy.unscheduled = true,
            Some(cron) => match parse::cron(cron) {
                Ok(cron) => policy.schedule = Some(cron),
                Err(why) => problem("schedule", format!("{cron:?}: {why}, or \"off\"")),
            },
        }
        for grant in raw.grants.unwrap_or_default() {
            match grant.parse::<Capability>() {
                Ok(capability) => {
                    policy.grants.insert(capability);
                }
                Err(why) => problem("grants", why),
            }
        }
        policy.http_allow = raw.http_allow.unwrap_or_default();
        if !policy.http_allow.is_empty() && !policy.grants.contains(&Capability::Http) {
            problem("http_allow", "has no effect without \"http\" in grants".to_owned());
        }
        match raw.timeout_seconds {
            Some(0) | Some(86_401..) => problem("timeout_seconds", "expected an integer 1-86400".to_owned()),
            Some(seconds) => policy.timeout = Some(Duration::from_secs(seconds)),
            None => {}
        }
        match raw.memory_mib {
            Some(0) | Some(65_537..) => problem("memory_mib", "expected an integer 1-65536".to_owned()),
            memory => policy.memory_mib = memory,
        }
        for (guest, host) in raw.directories.unwrap_or_default() {
            if !guest.starts_with('/') || guest.split('/').any(|part| part == "..") {
                problem(
                    "directories",
                    format!("{guest:?}: the plugin's path must be absolute, without `..`"),
                );
            } else if !host.is_dir() {
                problem("directories", format!("{}: not a folder (create it first)", host.display()));
            } else {
                policy.directories.insert(guest, host);
            }
        }
        policies.insert(name, policy);
    }
    (policies, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml: &str) -> BTreeMap<String, RawPolicy> {
        use figment::providers::Format;
        figment::Figment::from(figment::providers::Toml::string(toml)).extract().unwrap()
    }

    #[test]
    fn grants_and_limits_are_read() {
        let (policies, problems) = validate(raw(
            "[stuck-run-recovery]\ngrants = [\"db\", \"settings\"]\ntimeout_seconds = 60\nmemory_mib = 64\n",
        ));
        assert!(problems.is_empty(), "{problems:?}");
        let policy = &policies["stuck-run-recovery"];
        assert!(policy.allows(Capability::Db) && policy.allows(Capability::Log));
        assert!(!policy.allows(Capability::Mail));
        assert_eq!(policy.timeout, Some(Duration::from_secs(60)));
        assert_eq!(policy.memory_mib, Some(64));
    }

    #[test]
    fn every_problem_is_named() {
        let (_, problems) = validate(raw(
            "[x]\ngrants = [\"dbb\"]\nschedule = \"sometimes\"\ntimeout_seconds = 0\nhttp_allow = [\"a.example\"]\n",
        ));
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("floh.toml [plugins.x] schedule: \"sometimes\""), "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("unknown capability `dbb`")), "{problems:#?}");
    }

    #[test]
    fn directories_must_exist_and_be_absolute_inside() {
        let existing = tempfile::tempdir().unwrap();
        let toml = format!(
            "[x.directories]\n\"/artifacts\" = {:?}\n\"relative\" = {:?}\n\"/missing\" = \"/no/such/folder\"\n",
            existing.path(),
            existing.path(),
        );
        let (policies, problems) = validate(raw(&toml));
        assert_eq!(policies["x"].directories["/artifacts"], existing.path());
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("\"relative\": the plugin's path must be absolute")));
        assert!(problems.iter().any(|p| p.contains("/no/such/folder: not a folder")));
    }
}
