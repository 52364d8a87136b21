//! The host capabilities a plugin can be granted.

use std::fmt;
use std::str::FromStr;

/// One host interface of the WIT world (plus outgoing HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    Log,
    Clock,
    Settings,
    Db,
    Queue,
    Mail,
    Audit,
    Http,
}

impl Capability {
    pub const ALL: [Capability; 8] = [
        Capability::Log,
        Capability::Clock,
        Capability::Settings,
        Capability::Db,
        Capability::Queue,
        Capability::Mail,
        Capability::Audit,
        Capability::Http,
    ];

    /// Granted to every plugin: they reveal nothing and change nothing outside the job.
    pub const ALWAYS_GRANTED: [Capability; 2] = [Capability::Log, Capability::Clock];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Clock => "clock",
            Capability::Settings => "settings",
            Capability::Db => "db",
            Capability::Queue => "queue",
            Capability::Mail => "mail",
            Capability::Audit => "audit",
            Capability::Http => "http",
        }
    }
}

impl serde::Serialize for Capability {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL.into_iter().find(|c| c.name() == s.trim()).ok_or_else(|| {
            let names: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
            format!("unknown capability `{s}` (expected one of: {})", names.join(", "))
        })
    }
}
