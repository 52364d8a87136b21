//! Parsers for single configuration values. Each returns what it expected on failure,
//! worded to follow `NAME=value: ` in an error line.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

pub type Expected = String;

/// An integer in `min..=max`.
pub fn int_in<T>(raw: &str, min: T, max: T) -> Result<T, Expected>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let expected = || format!("expected an integer {min}-{max}");
    let value: T = raw.trim().parse().map_err(|_| expected())?;
    if value < min || value > max { Err(expected()) } else { Ok(value) }
}

/// A positive number of milliseconds.
pub fn millis(raw: &str) -> Result<Duration, Expected> {
    int_in(raw, 1u64, 86_400_000).map(Duration::from_millis).map_err(|e| format!("{e} (milliseconds)"))
}

/// A positive number of seconds.
pub fn seconds(raw: &str, max: u64) -> Result<Duration, Expected> {
    int_in(raw, 1u64, max).map(Duration::from_secs).map_err(|e| format!("{e} (seconds)"))
}

/// One of a fixed set of lower-case words.
pub fn one_of<T: Copy>(raw: &str, choices: &[(&str, T)]) -> Result<T, Expected> {
    let wanted = raw.trim().to_ascii_lowercase();
    choices.iter().find(|(name, _)| *name == wanted).map(|(_, value)| *value).ok_or_else(|| {
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        format!("expected one of: {}", names.join(", "))
    })
}

pub fn ip_addr(raw: &str) -> Result<IpAddr, Expected> {
    raw.trim().parse().map_err(|_| "expected an IP address such as 0.0.0.0 or ::".to_owned())
}

/// A URL whose scheme is one of `schemes` and which names a host.
pub fn url_with_scheme(raw: &str, schemes: &[&str]) -> Result<url::Url, Expected> {
    let expected = || format!("expected a URL like {}://host:port/…", schemes[0]);
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("{} ({e})", expected()))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!("{} (scheme must be one of: {})", expected(), schemes.join(", ")));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{} (no host)", expected()));
    }
    Ok(url)
}

/// A PostgreSQL URL, or `sqlite://<file>` (a relative path is relative to the working folder).
pub fn database_url(raw: &str) -> Result<String, Expected> {
    let raw = raw.trim();
    if let Some(rest) = raw.strip_prefix("sqlite:") {
        let file = rest.trim_start_matches("//").split('?').next().unwrap_or_default();
        if file.is_empty() || file == ":memory:" || rest.contains("mode=memory") {
            return Err("expected sqlite://<file> naming a file (an in-memory database loses every row \
                        when the host stops)"
                .to_owned());
        }
        return Ok(raw.to_owned());
    }
    url_with_scheme(raw, &["postgres", "postgresql"])
        .map(|_| raw.to_owned())
        .map_err(|e| format!("{e}, or sqlite://<file>"))
}

/// A cron pattern: standard 5 fields (minute hour day month weekday), an optional leading
/// seconds field as BullMQ accepts, or an alias such as `@hourly`. Parsed by the same crate
/// the queue's job schedulers use, so what validates here also schedules there.
pub fn cron(raw: &str) -> Result<String, Expected> {
    croner::Cron::from_str(raw.trim())
        .map(|_| raw.trim().to_owned())
        .map_err(|e| format!("expected a cron expression such as \"0 */6 * * *\" ({e})"))
}

/// A 32-byte ed25519 secret key seed written as 64 hexadecimal digits.
pub fn ed25519_seed(raw: &str) -> Result<[u8; 32], Expected> {
    let expected =
        || "expected 64 hex digits (a 32-byte ed25519 seed, e.g. from `openssl rand -hex 32`)".to_owned();
    let raw = raw.trim();
    if raw.len() != 64 || !raw.is_ascii() {
        return Err(expected());
    }
    let mut seed = [0u8; 32];
    for (byte, pair) in seed.iter_mut().zip(raw.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| expected())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| expected())?;
    }
    Ok(seed)
}

/// An e-mail address, optionally with a display name: `floh@example.com` or
/// `Floh <floh@example.com>`.
/// An address, optionally with a name: `floh@example.com` or `Floh <floh@example.com>`.
pub fn mailbox(raw: &str) -> Result<String, Expected> {
    let raw = raw.trim();
    raw.parse::<lettre::message::Mailbox>()
        .map(|_| raw.to_owned())
        .map_err(|e| format!("expected an e-mail address such as floh@example.com ({e})"))
}

/// `smtp://[user:password@]host[:port][?tls=required|opportunistic]` or `smtps://…`, as the
/// mail transport reads it.
pub fn smtp_url(raw: &str) -> Result<String, Expected> {
    let url: String = url_with_scheme(raw, &["smtp", "smtps"])?.into();
    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(&url)
        .map(|_| url.clone())
        .map_err(|e| format!("not a usable SMTP URL: {e}"))
}

pub fn non_empty(raw: &str) -> Result<String, Expected> {
    if raw.trim().is_empty() {
        Err("expected a non-empty value".to_owned())
    } else {
        Ok(raw.trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_are_bounded() {
        assert_eq!(int_in("8080", 1u16, 65535), Ok(8080));
        assert_eq!(int_in("abc", 1u16, 65535), Err("expected an integer 1-65535".into()));
        assert!(int_in("0", 1u16, 65535).is_err());
        assert!(int_in("70000", 1u16, 65535).is_err());
    }

    #[test]
    fn cron_accepts_five_fields_and_aliases() {
        assert!(cron("0 */6 * * *").is_ok());
        assert!(cron("@hourly").is_ok());
        assert!(cron("0 0 */6 * * *").is_ok());
        assert!(cron("every 6 hours").is_err());
        assert!(cron("61 * * * *").is_err());
    }

    #[test]
    fn seeds_are_hex() {
        assert_eq!(ed25519_seed(&"ab".repeat(32)), Ok([0xab; 32]));
        assert!(ed25519_seed("abc").is_err());
        assert!(ed25519_seed(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn mailboxes() {
        assert!(mailbox("floh@example.com").is_ok());
        assert!(mailbox("Floh <floh@example.com>").is_ok());
        assert!(mailbox("root@localhost").is_ok());
        assert!(mailbox("floh").is_err());
        assert!(mailbox("@example.com").is_err());
        assert!(mailbox("@localhost").is_err());
    }

    #[test]
    fn urls_need_scheme_and_host() {
        assert!(url_with_scheme("postgres://u@h:5432/db", &["postgres", "postgresql"]).is_ok());
        assert!(url_with_scheme("mysql://h/db", &["postgres"]).is_err());
        assert!(url_with_scheme("not a url", &["postgres"]).is_err());
    }

    #[test]
    fn database_urls_name_postgres_or_a_sqlite_file() {
        assert!(database_url("postgres://u@h:5432/db").is_ok());
        assert_eq!(database_url(" sqlite://./data/floh.db ").unwrap(), "sqlite://./data/floh.db");
        assert!(database_url("sqlite:/var/lib/floh/floh.db").is_ok());
        for memory in ["sqlite::memory:", "sqlite://", "sqlite://x.db?mode=memory"] {
            assert!(database_url(memory).unwrap_err().contains("naming a file"), "{memory}");
        }
        assert!(database_url("mysql://h/db").unwrap_err().ends_with("or sqlite://<file>"));
    }
}
