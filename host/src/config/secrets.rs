//! Secrets: masking them wherever configuration is shown, and refusing well-known values in
//! production.

use super::vars::{self, Secrecy, Var};

/// A value that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

const REDACTED: &str = "<redacted>";

/// Passwords that ship as defaults with databases, brokers, tutorials and compose files.
const WELL_KNOWN_PASSWORDS: &[&str] = &[
    "", "postgres", "password", "passw0rd", "root", "admin", "secret", "changeme", "redis", "floh",
    "example", "test", "123456", "12345678",
];

/// How `value` of `var` may be shown to an operator.
pub fn redact(var: &Var, value: &str) -> String {
    match var.secrecy {
        Secrecy::Public => value.to_owned(),
        Secrecy::Secret => REDACTED.to_owned(),
        Secrecy::UrlWithPassword => match url::Url::parse(value) {
            Ok(mut url) if url.password().is_some() => {
                // Setting a password only fails for URLs that cannot have one.
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            Ok(_) => value.to_owned(),
            Err(_) => REDACTED.to_owned(),
        },
    }
}

/// Why a production deployment must not use `value` for `var`, if it must not.
pub fn production_objection(var: &Var, value: &str) -> Option<String> {
    match var.secrecy {
        Secrecy::Public => None,
        Secrecy::Secret if Some(value) == var.default => Some(
            "still the built-in development value; set a random secret (e.g. `openssl rand -hex 32`)"
                .to_owned(),
        ),
        Secrecy::Secret if var.name == vars::ADMIN_TOKEN.name && value.len() < 24 => {
            Some("too short for production; use at least 24 random characters".to_owned())
        }
        Secrecy::Secret => None,
        Secrecy::UrlWithPassword if Some(value) == var.default => Some(format!(
            "not set; production has no default: point it at your server, with a password{}",
            if var.name == vars::DATABASE_URL.name {
                ", or at sqlite://<file> for a single host"
            } else {
                ""
            }
        )),
        // A database file has no password to check.
        Secrecy::UrlWithPassword if crate::database::is_sqlite(value) => None,
        Secrecy::UrlWithPassword => {
            let url = url::Url::parse(value).ok()?;
            let password = url.password().unwrap_or("");
            let decoded = percent_decode(password);
            WELL_KNOWN_PASSWORDS.contains(&decoded.as_str()).then(|| {
                if decoded.is_empty() {
                    "has no password; production requires one".to_owned()
                } else {
                    format!("uses the well-known password `{decoded}`; set a strong one")
                }
            })
        }
    }
}

fn percent_decode(raw: &str) -> String {
    url::form_urlencoded::parse(format!("p={raw}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_everything_but_the_password() {
        assert_eq!(
            redact(&vars::DATABASE_URL, "postgres://floh:hunter2@db:5432/floh"),
            "postgres://floh:***@db:5432/floh"
        );
        assert_eq!(redact(&vars::REDIS_URL, "redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact(&vars::ADMIN_TOKEN, "abc"), REDACTED);
    }

    #[test]
    fn production_refuses_defaults_and_weak_passwords() {
        assert!(production_objection(&vars::ADMIN_TOKEN, vars::DEV_ADMIN_TOKEN).is_some());
        assert!(production_objection(&vars::ADMIN_TOKEN, "short").is_some());
        assert!(production_objection(&vars::ADMIN_TOKEN, &"x".repeat(32)).is_none());
        assert!(production_objection(&vars::AUDIT_SIGNING_KEY, vars::DEV_AUDIT_SIGNING_KEY).is_some());
        assert!(production_objection(&vars::DATABASE_URL, "postgres://postgres:postgres@db/floh").is_some());
        assert!(production_objection(&vars::DATABASE_URL, "postgres://floh@db/floh").is_some());
        assert!(production_objection(&vars::REDIS_URL, "redis://:s3cr%21t-xyz@r:6379").is_none());
        assert!(production_objection(&vars::REDIS_URL, "redis://:p%61ssword@r:6379").is_some());
        assert!(production_objection(&vars::DATABASE_URL, "postgres://floh:Xk9-2vQ@db/floh").is_none());
    }
}
